"""The dream plan: every setting of one dream, built and checked once (`make_plan`) from
the command line or `dreamer.dream()`'s keywords, then only read by the loops
(dreamer/loops/), the jobs (dreamer/jobs/) and the animations (dreamer/motion/).

    plan = make_plan(network, "inception_4c/output", 10, 0.03, octaves=3)
    rgb = dream_with_plan("sky.jpg", network, plan)     # dreamer/loops/run.py

A plan holds no network (it is small to send to a worker) and resolves everything that
does not depend on the image: the preset's defaults, the targets and their objective,
the gradient's stages, the device and the arithmetic. `record` is what batch and frames
folders keep to refuse mixing two runs.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from converters.errors import UsageError
from converters.images import load_rgb
from converters.network import Network
from dreamer.plan import numbers
from dreamer.plan.objectives import (
    ClassLogit,
    Guided,
    LayerObjective,
    Objective,
    rule_from_name,
)
from dreamer.plan.presets import STEP_NORMS, Preset, preset_named
from dreamer.plan.record import dream_settings
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
        return dream_settings(kind, network, list(self.targets), iterations, rate,
                              asdict(self.given), **more)


def make_plan(network: Network, layer: str | int | list, iterations: int | None = None,
              rate: float | None = None, **options) -> DreamPlan:
    """The plan of a dream at `layer` (what `parse_targets` reads) of `network`; every
    option checked here, with the option's name in the error."""
    given = Options(**options)
    preset = preset_named(given.preset)
    check_numbers(given, iterations, rate)
    check_preset_takes(preset, given)
    device = resolve_device(given.device)
    precision = "fp32" if given.precision == "auto" and preset.reproduces else given.precision
    with warnings.catch_warnings():  # the dream warns when it starts, after every check
        warnings.simplefilter("ignore")
        dtype = resolve_precision(precision, torch.device(device))
    targets = tuple(parse_targets(network, layer))
    return DreamPlan(
        preset=preset, targets=targets, objective=objective_for(targets, given),
        iterations=preset.iterations if iterations is None else iterations,
        rate=preset.rate if rate is None else rate,
        octaves=preset.octaves if given.octaves is None else given.octaves,
        octave_scale=preset.octave_scale if given.octave_scale is None else given.octave_scale,
        jitter=preset.jitter if given.jitter is None else given.jitter,
        step_norm=given.step_norm or preset.step_norm,
        stages=gradient_stages(given.blur, given.laplacian),
        tile=given.tile, tile_margin=given.tile_margin, seed=given.seed, device=device,
        dtype=dtype, given=given, given_numbers=(iterations, rate))


def check_numbers(given: Options, iterations: int | None, rate: float | None) -> None:
    """Refuse, with the option's name, a setting out of its range (dreamer/plan/numbers.py)."""
    numbers.ITERATIONS.check(1 if iterations is None else iterations, "ITERATIONS")
    numbers.RATE.check(1.0 if rate is None else rate, "RATE")
    if given.step_norm not in (None, *STEP_NORMS):
        raise UsageError(f"unknown step norm {given.step_norm!r}")
    for name, bounds in OPTION_BOUNDS:
        value = getattr(given, name)
        if value is not None:
            bounds.check(value, f"--{name.replace('_', '-')}")
    check_device(given.device)
    check_precision(given.precision)


def check_preset_takes(preset: Preset, given: Options) -> None:
    """Refuse an option the preset does not take (one left at its default is fine)."""
    defaults = Options()
    for name in preset.refuses:
        value, default = getattr(given, name), getattr(defaults, name)
        if value is not None if default is None else value != default:
            raise UsageError(f"--preset {preset.name} does not take --{name.replace('_', '-')}")


def objective_for(targets: tuple[Target, ...], given: Options = Options()) -> Objective:
    """The targets' objective: each layer target's rule (or the guide's, with --guide) on
    its output, each class target its score, weighted and summed."""
    rule = rule_from_name(given.objective, fraction=given.topk)
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
