"""`dream()`: one call from an image and a network to the dreamed image.

Three ways to dream, chosen by `preset`:
- None: Google's octave loop at the image's full size; `rate` is in the seed script's
  unit, the standard deviation of the image as the net sees it (so `conv4 20 0.01`
  means what it meant to the seed script's users).
- "google": Google's notebook as written: 10 iterations of step 1.5 in the net's input
  units, 4 octaves × 1.4, jitter 32, clipping; GoogLeNet (and nets without their own
  preprocessing) use the notebook's mean (104, 116, 122).
- "torch7": the seed `deepdream.lua` reproduced: the image normalised by its own mean
  and std, 224×224, 8 octaves of 1.25/1.4, no jitter, no clipping.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from converters.images import load_rgb
from converters.network import Network
from converters.preprocessing import Preprocessing
from dreamer.classes import cropped, size_problem_for
from dreamer.image_io import quantise
from dreamer.loops.google import (
    STEP_NORMS,
    OctaveSettings,
    dream_octaves,
    octave_sizes,
    plan_octaves,
)
from dreamer.loops.gradient import DreamGradient, Target, split_weight
from dreamer.loops.torch7 import MAX_OCTAVES as TORCH7_OCTAVES
from dreamer.loops.torch7 import SIZE as TORCH7_SIZE
from dreamer.networks import open_network
from dreamer.plan import numbers as numbers
from dreamer.plan.large_step import warn_if_noise
from dreamer.plan.layers import resolve_layer
from dreamer.runtime.devices import check_device, resolve_device
from dreamer.runtime.memory import DreamMemory, plan_tile
from dreamer.runtime.precision import check_precision, resolve_precision

PRESETS = ("google", "torch7", "deepdraw")
# Presets that reproduce their framework's numbers: `auto` precision keeps them in fp32.
REPRODUCING = ("google", "torch7")
# Google's notebook subtracts this from GoogLeNet's input (not the deploy's 104/117/123).
NOTEBOOK_GOOGLENET_MEAN = (104.0, 116.0, 122.0)


@dataclass
class Options:
    """Everything beyond (image, network, layer, iterations, rate); None = the preset's."""

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


def parse_targets(network: Network, layer: str | int | list,
                  option: str = "LAYER") -> list[Target]:
    """Targets from `a`, `a,b`, `a:1,b:0.5`, a layer_max integer, or a list of those;
    `option` (what gave them) is named in the error of a weight out of range."""
    if isinstance(layer, int):
        layer = str(layer)
    parts = layer if isinstance(layer, list) else [p for p in layer.split(",") if p]
    targets = []
    for part in parts:
        if isinstance(part, Target):
            targets.append(part)
            continue
        name, weight = split_weight(str(part), option)
        targets.append(Target(resolve_layer(network, name), weight))
    if not targets:
        raise ValueError("no layer given")
    return targets


def preprocessing_for(network: Network, preset: str | None) -> Preprocessing:
    pre = network.spec.input_preprocessing()
    zoo = (network.spec.source.get("zoo") or {}).get("model", "")
    if preset == "google" and (network.spec.preprocessing is None or zoo == "googlenet"):
        pre = replace(pre, mean=NOTEBOOK_GOOGLENET_MEAN)
    return pre


def dream(image: str | Path | np.ndarray, network: Network | str, layer: str | int | list,
          iterations: int | None = None, rate: float | None = None, *, raw: bool = False,
          on_step: Callable[[], None] | None = None,
          on_octave: Callable[[int, np.ndarray], None] | None = None,
          trace: dict | None = None, **options) -> np.ndarray:
    """Dream on `image` (a path, H×W×3 uint8 RGB, or float32 RGB 0..255, which is not
    rounded) at `layer` of `network` (a Network,
    or what `--model` accepts). Returns H×W×3 uint8 RGB (224×224 for the torch7
    preset), or the float RGB before quantisation with `raw=True`.

    Options (see `Options`): preset, octaves, octave_scale, jitter, step_norm, channel,
    objective, topk, guide, blur, laplacian, tile, tile_margin, seed, device (auto: a GPU
    if there is one), precision (auto, fp32, bf16, fp16; see dreamer/runtime/precision.py). `trace`
    (a dict) receives the first octave's input, first gradient, steps and jitter shifts
    in the net's input space (Google modes). A largest octave that does not fit in the
    memory the machine can give is tiled (a warning) or refused (a ValueError naming the
    size that fits) before any compute (dreamer/runtime/memory.py).
    """
    opts = Options(**options)
    opts.device = resolve_device(opts.device)
    dtype = resolve_precision(effective_precision(opts), torch.device(opts.device))
    net = network if isinstance(network, Network) else open_network(network)
    rgb = input_rgb(image)
    if opts.preset in ("deepdraw", "torch7"):  # these read the image's 8-bit values
        rgb = quantise(rgb)
    if opts.preset == "deepdraw":  # class visualisation (dreamer/loops/deepdraw.py)
        from dreamer.loops.deepdraw import check_canvas, dream_deepdraw
        validate(1 if iterations is None else iterations, 1.0 if rate is None else rate, opts)
        check_canvas(net, rgb, vars(opts))
        result = dream_deepdraw(rgb, on_device(net, opts.device), parse_targets(net, layer),
                                iterations, rate, opts.octaves, opts.seed, opts.device, on_step,
                                dtype)
        return result if raw else quantise_result(result, opts.preset)
    if iterations is None:
        iterations = 10
    if rate is None:
        rate = {"google": 1.5, "torch7": 0.01}.get(opts.preset or "", 0.01)
    validate(iterations, rate, opts)
    in_std = rate if opts.preset != "google" else rate / max(  # google: RATE in net units
        float(preprocessing_for(net, "google").to_net(rgb).std()), 1.0)
    warn_if_noise(iterations, in_std)
    net = on_device(net, opts.device)
    targets = parse_targets(net, layer)
    if opts.preset == "torch7":
        result = _dream_torch7(rgb, net, targets, iterations, rate, opts, on_step, dtype)
    else:
        opts.tile = memory_tile(net, targets, rgb.shape, opts, dtype)
        result = _dream_google(rgb, net, targets, iterations, rate, opts, on_step, on_octave,
                               trace, dtype)
    return result if raw else quantise_result(result, opts.preset)


def input_rgb(image: str | Path | np.ndarray) -> np.ndarray:
    """A path's image, or an array: float32 (0..255, e.g. an animation's previous frame)
    kept as it is, unrounded; anything else as uint8."""
    if isinstance(image, (str, Path)):
        return load_rgb(image)
    array = np.asarray(image)
    return array if array.dtype == np.float32 else np.asarray(array, np.uint8)


def on_device(net: Network, device: str) -> Network:
    """`net` if it is on `device` already, else a copy there: the caller's net stays put."""
    here = next(net.parameters(), torch.empty(0)).device
    there = torch.device(resolve_device(device) if device == "auto" else device)
    if here.type == there.type and there.index in (None, here.index):
        return net
    return copy.deepcopy(net).to(there)


def quantise_result(rgb: np.ndarray, preset: str | None) -> np.ndarray:
    """Float RGB -> uint8 as the preset's framework wrote its PNG."""
    if preset == "torch7":
        from dreamer.loops.torch7_image import torch7_png_bytes
        return torch7_png_bytes(rgb.transpose(2, 0, 1))
    return quantise(rgb)


def validate(iterations: int, rate: float, opts: Options) -> None:
    """Refuse, with the option's name, a setting out of its range (dreamer/plan/numbers.py)."""
    numbers.ITERATIONS.check(iterations, "ITERATIONS")
    numbers.RATE.check(rate, "RATE")
    if opts.preset not in (None, *PRESETS):
        raise ValueError(f"unknown preset {opts.preset!r} (choose from {', '.join(PRESETS)})")
    if opts.step_norm not in (None, *STEP_NORMS):
        raise ValueError(f"unknown step norm {opts.step_norm!r}")
    for name, bounds in (("octaves", numbers.OCTAVES), ("octave_scale", numbers.OCTAVE_SCALE),
                         ("jitter", numbers.JITTER), ("channel", numbers.CHANNEL),
                         ("topk", numbers.TOPK), ("blur", numbers.BLUR),
                         ("laplacian", numbers.LAPLACIAN), ("tile", numbers.TILE),
                         ("tile_margin", numbers.TILE_MARGIN), ("seed", numbers.SEED)):
        value = getattr(opts, name)
        if value is not None:
            bounds.check(value, f"--{name.replace('_', '-')}")
    check_device(opts.device)
    check_precision(opts.precision)


def octave_settings(opts: Options, iterations: int, step: float) -> OctaveSettings:
    """The octave loop's settings: the options given, else Google's notebook's."""
    return OctaveSettings(
        iterations=iterations, step=step,
        octaves=opts.octaves if opts.octaves is not None else 4,
        octave_scale=opts.octave_scale if opts.octave_scale is not None else 1.4,
        jitter=opts.jitter if opts.jitter is not None else 32,
        step_norm=opts.step_norm or "mean")


def check_size(net: Network, targets: list[Target], rgb: np.ndarray, opts: Options) -> None:
    """Refuse, before any compute, an image on which the targets cannot be dreamed: no
    octave large enough (a ValueError naming the size needed), or a size the net cannot
    be computed at. The torch7 preset dreams at 224×224 whatever the image, but divides
    by the image's standard deviation, which must not be 0."""
    layers = [t.layer for t in targets]
    if opts.preset == "deepdraw":
        from dreamer.loops.deepdraw import check_canvas
        return check_canvas(net, rgb, vars(opts))
    if opts.preset == "torch7":
        from dreamer.loops.torch7_image import torch7_stats
        if torch7_stats(rgb)[1] == 0:
            raise ValueError("--preset torch7 normalises the image by its standard "
                             "deviation, and this image has none (one colour)")
        problem = net.size_problem(TORCH7_SIZE, TORCH7_SIZE, layers)
        if problem is not None:
            raise ValueError(f"--preset torch7 dreams at {TORCH7_SIZE}×{TORCH7_SIZE}: "
                             f"{problem.reason}")
        return
    settings = octave_settings(opts, 1, 1.0)
    plan_octaves(octave_sizes(*rgb.shape[:2], settings.octaves, settings.octave_scale),
                 size_problem_for(net, targets))
    with warnings.catch_warnings():  # dream() warns, once, of what it chooses
        warnings.simplefilter("ignore")
        device = torch.device(resolve_device(opts.device))
        dtype = resolve_precision(effective_precision(opts), device)
        memory_tile(net, targets, rgb.shape, opts, dtype)


def effective_precision(opts: Options) -> str:
    """`opts.precision`, with `auto` kept in fp32 for the presets that reproduce numbers."""
    return "fp32" if opts.precision == "auto" and opts.preset in REPRODUCING \
        else opts.precision


def memory_tile(net: Network, targets: list[Target], shape: tuple[int, ...], opts: Options,
                dtype: torch.dtype | None) -> int | None:
    """The tile a Google-loop dream of an image of `shape` runs with: `opts.tile`, or one
    chosen (with a warning) because the largest octave does not fit in memory whole; a
    ValueError naming the size that fits where none does (dreamer/runtime/memory.py)."""
    settings = octave_settings(opts, 1, 1.0)
    sizes = octave_sizes(*shape[:2], settings.octaves, settings.octave_scale)
    element_size = 4 if dtype is None else torch.finfo(dtype).bits // 8
    memory = DreamMemory(net, targets, element_size, opts.tile_margin)
    return plan_tile(memory, sizes, opts.tile, resolve_device(opts.device))


def make_gradient(net: Network, targets: list[Target], opts: Options,
                  pre: Preprocessing, dtype: torch.dtype | None = None) -> DreamGradient:
    guide_features = None
    if opts.guide is not None:
        guide_rgb = load_rgb(opts.guide) if isinstance(opts.guide, (str, Path)) else opts.guide
        problem = net.size_problem(*guide_rgb.shape[:2], [t.layer for t in targets])
        if problem is not None:
            raise ValueError(f"the guide image cannot be used: {problem.reason}")
        x = torch.from_numpy(pre.to_net(guide_rgb))[None].to(resolve_device(opts.device))
        with torch.no_grad():
            outs = net.forward_to(x, [t.layer for t in targets])
        guide_features = {name: value for name, value in outs.items()}
    return DreamGradient(net, targets, opts.objective, opts.channel, opts.topk,
                         guide_features, opts.tile, opts.tile_margin, opts.blur,
                         opts.laplacian, dtype)


def _dream_google(rgb, net, targets, iterations, rate, opts, on_step, on_octave, trace, dtype):
    pre = preprocessing_for(net, opts.preset)
    base = pre.to_net(rgb)
    step = rate if opts.preset == "google" else rate * float(base.std())
    settings = octave_settings(opts, iterations, step)
    low, high = pre.input_range()
    # a fully connected classifier target sees random crops of its declared size
    gradient = cropped(net, targets, make_gradient(net, targets, opts, pre, dtype),
                       opts.seed + 1)
    octave_hook = None
    if on_octave is not None:
        def octave_hook(k: int, data: np.ndarray) -> None:
            on_octave(k, pre.to_rgb(data))
    result = dream_octaves(base, gradient, settings, low.astype(np.float32),
                           high.astype(np.float32), np.random.RandomState(opts.seed),
                           opts.device, on_step, octave_hook, trace,
                           size_problem_for(net, targets), overwrite_base=True)
    return pre.to_rgb(result)


def _dream_torch7(rgb, net, targets, iterations, rate, opts, on_step, dtype):
    from dreamer.loops.torch7 import dream_torch7
    from dreamer.loops.torch7_image import torch7_normalise, torch7_postprocess

    unsupported = [name for name in ("octave_scale", "jitter", "step_norm", "tile", "guide")
                   if getattr(opts, name) is not None]
    if unsupported:
        raise ValueError(f"--preset torch7 does not take --{unsupported[0].replace('_', '-')}")
    gradient = DreamGradient(net, targets, opts.objective, opts.channel, opts.topk,
                             blur=opts.blur, laplacian=opts.laplacian, dtype=dtype)
    check_size(net, targets, rgb, opts)
    kwargs = {"octaves": opts.octaves} if opts.octaves is not None else {}
    if opts.octaves is not None and opts.octaves > TORCH7_OCTAVES:
        warnings.warn(f"--octaves {opts.octaves}: --preset torch7 holds only {TORCH7_OCTAVES} "
                      f"octaves (the smallest 1×1); dreaming {TORCH7_OCTAVES}", stacklevel=2)
        kwargs["octaves"] = TORCH7_OCTAVES
    final = dream_torch7(rgb, lambda x: gradient(x.to(opts.device)).cpu(), iterations, rate,
                         on_step=on_step, **kwargs)
    _, mean, std = torch7_normalise(rgb)
    return torch7_postprocess(final, mean, std).transpose(1, 2, 0)
