"""The dream plan: every setting of one dream, built and checked once (`make_plan`) from
the command line or `dreamer.dream()`'s keywords, then only read by the loops
(dreamer/loops/), the jobs (dreamer/jobs/) and the animations (dreamer/motion/).

    plan = make_plan(network, "inception_4c/output", 10, 0.03, octaves=3)
    rgb = dream_with_plan("sky.jpg", network, plan)     # dreamer/loops/run.py

A plan holds no network (it is small to send to a worker) and resolves everything that
does not depend on the image: the preset's defaults, the targets and their objective,
the gradient's stages, the device and the arithmetic. `record` is what batch and frames
folders keep to refuse mixing two runs (`dream_settings`, below, with what JSON can hold).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from converters.digest import file_digest
from converters.errors import UsageError
from converters.images import load_rgb
from converters.network import Network
from dreamer.plan import numbers
from dreamer.plan.objectives import (
    ClassLogit,
    Guided,
    LayerObjective,
    Objective,
    rule_from_text,
)
from dreamer.plan.params import PARAMS, ParamPreconditioner
from dreamer.plan.presets import STEP_NORMS, Preset, preset_named
from dreamer.plan.stages import GradientStage, gradient_stages
from dreamer.plan.targets import Target, parse_targets
from dreamer.runtime.devices import check_device, resolve_device
from dreamer.runtime.precision import check_precision, resolve_precision


@dataclass(frozen=True)
class Options:
    """A dream's options as given, beyond (image, network, layer, iterations, rate); None:
    the preset's."""

    preset: str | None = None
    octaves: int | None = None
    octave_scale: float | None = None
    jitter: int | None = None
    step_norm: str | None = None
    channel: int | None = None
    objective: str = "l2"
    topk: float = 0.01
    guide: str | Path | np.ndarray | None = None
    blur: float = 0.0
    laplacian: int = 0
    param: str = "pixels"
    tile: int | None = None
    tile_margin: int | None = None
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"


# The ranges of the options, named as the command line names them.
OPTION_BOUNDS = (("octaves", numbers.OCTAVES), ("octave_scale", numbers.OCTAVE_SCALE),
                 ("jitter", numbers.JITTER), ("channel", numbers.CHANNEL),
                 ("topk", numbers.TOPK), ("blur", numbers.BLUR),
                 ("laplacian", numbers.LAPLACIAN), ("tile", numbers.TILE),
                 ("tile_margin", numbers.TILE_MARGIN), ("seed", numbers.SEED))


@dataclass(frozen=True)
class DreamPlan:
    """One dream, decided. `targets` are the layers (and class scores) dreamed at; the
    `objective` their output gradients; `stages` what each input gradient goes through."""

    preset: Preset
    targets: tuple[Target, ...]
    objective: Objective
    iterations: int | None  # per octave; None: the loop's own schedule (deepdraw)
    rate: float
    octaves: int | None  # None: the loop's own schedule (deepdraw)
    octave_scale: float
    jitter: int
    step_norm: str
    stages: tuple[GradientStage, ...]
    tile: int | None
    tile_margin: int | None
    seed: int
    device: str
    dtype: torch.dtype | None  # the network's arithmetic; None: float32
    given: Options = field(repr=False)  # as given: what the settings record holds
    given_numbers: tuple[int | None, float | None] = (None, None)  # ITERATIONS, RATE given
    composed: bool = False  # the objective was given as an object, not by targets

    @property
    def layers(self) -> list[str]:
        return [t.layer for t in self.targets]

    def for_frame(self, index: int) -> DreamPlan:
        """The plan of an animation's frame `index`: its own seed, so that any frame can be
        dreamed again alone and come out the same."""
        return replace(self, seed=self.seed + index)

    def on(self, device: str) -> DreamPlan:
        """The plan run on another device (a worker's)."""
        return replace(self, device=device)

    def record(self, kind: str, network: Network, **more) -> dict:
        """Everything that decides the outputs of a `kind` of run (JSON-ready)."""
        iterations, rate = self.given_numbers
        if self.composed:  # its targets name its layers only
            more = {"objective": repr(self.objective), **more}
        return dream_settings(kind, network, list(self.targets), iterations, rate,
                              asdict(self.given), **more)


def make_plan(network: Network, layer: str | int | list | Objective,
              iterations: int | None = None, rate: float | None = None,
              **options) -> DreamPlan:
    """The plan of a dream at `layer` (what `parse_targets` reads, or an `Objective`
    composed by the caller, e.g. `LayerObjective("conv2") + 0.5 * ClassLogit("fc8", 1)`)
    of `network`; every option checked here, with the option's name in the error."""
    given = Options(**options)
    preset = preset_named(given.preset)
    check_numbers(given, iterations, rate)
    check_preset_takes(preset, given)
    device = resolve_device(given.device)
    precision = "fp32" if given.precision == "auto" and preset.reproduces else given.precision
    with warnings.catch_warnings():  # the dream warns when it starts, after every check
        warnings.simplefilter("ignore")
        dtype = resolve_precision(precision, torch.device(device))
    if isinstance(layer, Objective):
        targets, objective = composed_targets(network, layer, given), layer
    else:
        targets = tuple(parse_targets(network, layer))
        objective = objective_for(targets, given)
    return DreamPlan(
        preset=preset, targets=targets, objective=objective,
        iterations=preset.iterations if iterations is None else iterations,
        rate=preset.rate if rate is None else rate,
        octaves=preset.octaves if given.octaves is None else given.octaves,
        octave_scale=preset.octave_scale if given.octave_scale is None else given.octave_scale,
        jitter=preset.jitter if given.jitter is None else given.jitter,
        step_norm=given.step_norm or preset.step_norm,
        stages=(*gradient_stages(given.blur, given.laplacian), *param_stage(network, given)),
        tile=given.tile, tile_margin=given.tile_margin, seed=given.seed, device=device,
        dtype=dtype, given=given, given_numbers=(iterations, rate),
        composed=isinstance(layer, Objective))


def param_stage(network: Network, given: Options) -> tuple[GradientStage, ...]:
    """The gradient stage of `--param` (none for pixels), in the net's input space."""
    if given.param == "pixels":
        return ()
    pre = network.spec.input_preprocessing()
    gain = tuple(pre.scale / 255.0 / std for std in pre.std)
    return (ParamPreconditioner(given.param, pre.channel_order, gain),)


def composed_targets(network: Network, objective: Objective, given: Options
                     ) -> tuple[Target, ...]:
    """The layers a composed objective reads, as targets (exact names); the options that
    make an objective (--objective, --channel, --guide) are then refused."""
    for name in given_of(given, ("objective", "channel", "guide")):
        raise UsageError(f"--{name} makes an objective: give it in the composed objective")
    missing = [name for name in objective.layers if name not in network.layer_index]
    if missing:
        raise UsageError(f"{network.name!r} has no layer {missing[0]!r} (the objective's "
                         f"layers are exact names; see --list-layers)")
    return tuple(Target(name) for name in objective.layers)


def check_numbers(given: Options, iterations: int | None, rate: float | None) -> None:
    """Refuse, with the option's name, a setting out of its range (dreamer/plan/numbers.py)."""
    numbers.ITERATIONS.check(1 if iterations is None else iterations, "ITERATIONS")
    numbers.RATE.check(1.0 if rate is None else rate, "RATE")
    if given.step_norm not in (None, *STEP_NORMS):
        raise UsageError(f"unknown step norm {given.step_norm!r}")
    if given.param not in PARAMS:
        raise UsageError(f"--param: unknown parameterisation {given.param!r} (choose from "
                         f"{', '.join(PARAMS)})")
    for name, bounds in OPTION_BOUNDS:
        value = getattr(given, name)
        if value is not None:
            bounds.check(value, f"--{name.replace('_', '-')}")
    check_device(given.device)
    check_precision(given.precision)


def check_preset_takes(preset: Preset, given: Options) -> None:
    """Refuse an option the preset does not take (one left at its default is fine)."""
    for name in given_of(given, preset.refuses):
        raise UsageError(f"--preset {preset.name} does not take --{name.replace('_', '-')}")


def given_of(given: Options, names: tuple[str, ...]) -> list[str]:
    """Those of the options `names` that are not left at their default."""
    defaults = Options()
    return [name for name in names
            if (getattr(given, name) is not None if getattr(defaults, name) is None
                else getattr(given, name) != getattr(defaults, name))]


def objective_for(targets: tuple[Target, ...], given: Options = Options()) -> Objective:
    """The targets' objective: each layer target's rule (or the guide's, with --guide) on
    its output, each class target its score, weighted and summed."""
    rule = rule_from_text(given.objective, fraction=given.topk)
    guide = None if given.guide is None else guide_rgb(given.guide)
    total = None
    for target in targets:
        if target.channel is not None:
            leaf = ClassLogit(target.layer, target.channel)
        elif guide is not None:
            leaf = Guided(target.layer, guide, given.channel)
        else:
            leaf = LayerObjective(target.layer, rule, given.channel)
        term = leaf * target.weight
        total = term if total is None else total + term
    return total


def guide_rgb(guide: str | Path | np.ndarray) -> np.ndarray:
    return load_rgb(guide) if isinstance(guide, (str, Path)) else np.asarray(guide)


# --- the settings record -------------------------------------------------------------

NOT_SETTINGS = ("device",)  # where a dream runs, not what it computes
# Options added after records were first kept, with the value that dreams as before: at
# that value they are left out, so that a folder an older version made still resumes.
ADDED_LATER = {"param": "pixels"}


def fingerprint(value) -> object:
    """`value` as JSON can hold it: arrays and files by their SHA-256."""
    if isinstance(value, np.ndarray):
        digest = hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()
        return f"array {value.shape} {value.dtype} sha256:{digest}"
    if isinstance(value, Path):
        try:
            return f"sha256:{file_digest(value, 'sha256')}"
        except OSError as e:
            raise ValueError(f"{value}: cannot be read ({e.strerror or e})") from None
    if isinstance(value, (list, tuple)):
        return [fingerprint(v) for v in value]
    return value


def network_digest(net: Network) -> str:
    """The SHA-256 of the layers' description and every weight and buffer, by name: the same
    net, whatever its files."""
    digest = hashlib.sha256(json.dumps(net.spec.to_json(), sort_keys=True).encode())
    for name, tensor in sorted(net.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().flatten().view(torch.uint8).numpy())
    return f"sha256:{digest.hexdigest()}"


def dream_settings(kind: str, net: Network, targets: list, iterations: int | None,
                   rate: float | None, options: dict, **more) -> dict:
    """Everything that decides the outputs of a `kind` of run: the net, targets, every
    option of `dream()` (`options`: all of them, given or not, so that the CLI and the API
    agree) and `more`."""
    every = dict(options)
    if isinstance(every["guide"], str):
        every["guide"] = Path(every["guide"])  # by its content
    kept = {k: fingerprint(v) for k, v in sorted(every.items())
            if k not in NOT_SETTINGS and (k not in ADDED_LATER or v != ADDED_LATER[k])}
    return {"kind": kind, "network": f"{net.name} {network_digest(net)}",
            "targets": [[t.layer, t.weight, t.channel] for t in targets],
            "iterations": iterations, "rate": rate, "options": kept,
            **{k: fingerprint(v) for k, v in more.items()}}


def changed(old: dict, new: dict) -> list[str]:
    """The names of the settings that differ, sorted."""
    return [name for name in sorted(old.keys() | new.keys()) if old.get(name) != new.get(name)]


# --- a step too large to dream (see NOISE_TRAVEL) ---------------------------------------

# Each step moves a pixel by RATE standard deviations of the image on average (the step is
# normalised by the gradient's mean |g|), so ITERATIONS × RATE is how far an octave can
# carry the image from itself. Measured on real GoogLeNet (inception_4c/output, 4 octaves),
# as the correlation of the blurred result with the blurred photo (random pixels: 0.04), on
# the BVLC cat at 256×192: 0.99 at 0.5, 0.98 at 1, 0.93 at 2, 0.84 at 3 (heavy dreams), 0.58
# at 5 (the cat gone, a dreamt animal in its place), 0.15 at 7.5 (`10 0.75`), 0.04 at 7.5
# (`5 1.5`), 0.45 at 8 (`20 0.4`), 0.07 at 10 and 0.03 at 15 (`10 1.5`); on the astronaut at
# 512×512: 0.36 at 5 and 0.11 at 7.5, pattern soup with no photo left. Hence the warning
# beyond 4. The figures behind the measures are in tests/test_demo.py.
NOISE_TRAVEL = 4.0  # ITERATIONS × RATE (in standard deviations) beyond which it is noise


def warn_if_noise(iterations: int, rate_in_std: float) -> None:
    """Warn (UserWarning; one `warning:` line in the CLI) when the steps add up to noise."""
    travel = iterations * rate_in_std
    if travel > NOISE_TRAVEL:
        warnings.warn(f"{iterations} iterations at this RATE move each pixel about "
                      f"{travel:.3g} standard deviations of the image per octave (noise beyond "
                      f"{NOISE_TRAVEL:g}): expect noise, not a dream; without a preset, RATE is "
                      f"in standard deviations and 10 0.03 makes a classic dream", stacklevel=3)
