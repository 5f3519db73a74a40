"""`--preset torch7`: the seed script (erilyth/DeepDream-Torch deepdream.lua), number for number.

Pipeline: seed normalisation, bilinear `image.scale` to size x size, an 8-octave bicubic
pyramid (factor 1.25/1.4 compounded), then per octave from the smallest: add the upscaled
previous change into the stored octave, scale to size x size, `iterations` normalised
gradient-ascent steps, scale back, take the change. All in float32 like Torch's CPU run.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable

import numpy as np
import torch

from converters.errors import UsageError
from converters.network import Network
from dreamer.loops.gradient import DreamGradient
from dreamer.loops.torch7_image import (
    scale,
    torch7_normalise,
    torch7_png_bytes,
    torch7_postprocess,
    torch7_stats,
)
from dreamer.plan.plan import DreamPlan, warn_if_noise

DROP_SCALE = 1.25 / 1.4
SIZE = 224  # the script's working size: every octave is dreamed at SIZE×SIZE
# The most octaves whose smallest is at least one pixel (floor(SIZE·d^k) >= 1): 48.
MAX_OCTAVES = next(k for k in itertools.count(1) if math.floor(SIZE * DROP_SCALE ** k) < 1)
F32 = np.float32


def octave_sizes(size: int = SIZE, octaves: int = 8) -> list[int]:
    """Octave side lengths, smallest first: floor(size * d^k) for k = octaves-1 .. 0."""
    return [math.floor(size * DROP_SCALE ** k) for k in range(octaves - 1, -1, -1)]


def ascent_step(x: np.ndarray, g: np.ndarray, rate: float) -> tuple[np.ndarray, float, float]:
    """`x:add(g:mul(rate / torch.abs(g):mean()))`; returns the new x, mean|g| and the scale."""
    # Torch accumulates the mean in double, one value after another (hence cumsum).
    mean_abs = float(np.cumsum(np.abs(g).ravel(), dtype=np.float64)[-1] / g.size)
    factor = rate / mean_abs
    return (x + g * F32(factor)).astype(F32), mean_abs, factor


def dream_torch7(rgb: np.ndarray, gradient: Callable[[torch.Tensor], torch.Tensor],
                 iterations: int, rate: float, size: int = SIZE, octaves: int = 8,
                 on_step: Callable[[], None] | None = None,
                 trace: dict | None = None) -> np.ndarray:
    """Dream on (H,W,3) uint8 `rgb`; returns the final (3,size,size) float32 net input.

    `gradient` maps a (1,3,size,size) float32 tensor to d(objective)/d(input) of the same
    shape (the seed's objective: backward with dy = y). Post-process the result with
    `torch7_postprocess(result, mean, std)` using `torch7_normalise`'s mean and std.
    `trace`, if given, is filled with intermediate arrays and per-step figures.
    """
    x, _, _ = torch7_normalise(rgb)
    sizes = octave_sizes(size, octaves)
    pyramid = [scale(x, size, size, "bilinear")]
    for s in reversed(sizes[:-1]):
        pyramid.insert(0, scale(pyramid[0], s, s, "bicubic"))
    if trace is not None:
        trace["octave_sizes"] = [(3, s, s) for s in sizes]
        trace["steps"] = []
    change: np.ndarray | None = None
    src = pyramid[-1]
    for k, (s, base) in enumerate(zip(sizes, pyramid), start=1):
        if change is not None:
            base += scale(change, s, s, "bicubic")  # in place: the script aliases the octave
        src = scale(base, size, size, "bicubic")
        if trace is not None and k == 1:
            trace["oct1_input"] = src.copy()
        for it in range(1, iterations + 1):
            g = gradient(torch.from_numpy(src[None].copy())).detach()[0].numpy()
            g = np.ascontiguousarray(g, F32)
            src, mean_abs, factor = ascent_step(src, g, rate)
            if trace is not None:
                _record(trace, k, it, g, src, mean_abs, factor)
            if on_step is not None:
                on_step()
        if trace is not None:
            trace[f"oct{k}_end"] = src.copy()
        change = scale(src, s, s, "bicubic") - base
    return src


def _record(trace: dict, k: int, it: int, g: np.ndarray, x: np.ndarray,
            mean_abs: float, factor: float) -> None:
    trace["steps"].append({"oct": k, "it": it, "mean_abs_g": mean_abs, "scale": factor,
                           "x_sum": float(x.sum(dtype=np.float64))})
    if k == 1 and it == 1:
        trace["oct1_grad1"] = g.copy()
    if k == 1 and it <= 3:
        trace[f"oct1_step{it}"] = x.copy()


def check_torch7(net: Network, plan: DreamPlan, rgb: np.ndarray) -> None:
    """The preset dreams at SIZE×SIZE whatever the image, but divides by the image's
    standard deviation, which must not be 0."""
    if torch7_stats(rgb)[1] == 0:
        raise UsageError("--preset torch7 normalises the image by its standard deviation, "
                         "and this image has none (one colour)")
    problem = net.size_problem(SIZE, SIZE, plan.layers)
    if problem is not None:
        raise UsageError(f"--preset torch7 dreams at {SIZE}×{SIZE}: {problem.reason}")


def dream_torch7_plan(rgb: np.ndarray, net: Network, plan: DreamPlan, on_step=None,
                      on_octave=None, trace: dict | None = None) -> np.ndarray:
    """The seed script on H×W×3 uint8 RGB, as the plan says: float RGB, SIZE×SIZE."""
    warn_if_noise(plan.iterations, plan.rate)
    gradient = DreamGradient(net, plan.objective, plan.stages, dtype=plan.dtype)
    check_torch7(net, plan, rgb)
    octaves = plan.octaves
    if octaves > MAX_OCTAVES:
        warnings.warn(f"--octaves {octaves}: --preset torch7 holds only {MAX_OCTAVES} "
                      f"octaves (the smallest 1×1); dreaming {MAX_OCTAVES}", stacklevel=2)
        octaves = MAX_OCTAVES
    final = dream_torch7(rgb, lambda x: gradient(x.to(plan.device)).cpu(), plan.iterations,
                         plan.rate, octaves=octaves, on_step=on_step)
    _, mean, std = torch7_normalise(rgb)
    return torch7_postprocess(final, mean, std).transpose(1, 2, 0)


def torch7_quantised(rgb: np.ndarray) -> np.ndarray:
    """Float RGB -> uint8 as the seed script's PNG writer rounds it."""
    return torch7_png_bytes(rgb.transpose(2, 0, 1))
