"""`--preset torch7`: the seed script (erilyth/DeepDream-Torch deepdream.lua), number for number.

Pipeline: seed normalisation, bilinear `image.scale` to size x size, an 8-octave bicubic
pyramid (factor 1.25/1.4 compounded), then per octave from the smallest: add the upscaled
previous change into the stored octave, scale to size x size, `iterations` normalised
gradient-ascent steps, scale back, take the change. All in float32 like Torch's CPU run.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import torch

from dreamer.loops.torch7_image import scale, torch7_normalise

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
