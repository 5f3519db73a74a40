"""A plan run on an image: the loop its preset names, from one table.

    rgb = dream_with_plan(image, network, plan)        # H×W×3 uint8 RGB

Each loop has four parts: `dream` (RGB in, float RGB out), `check` (refuse an image before
any compute), `steps` (for a progress bar) and `quantise` (float RGB to the 8-bit image its
framework wrote).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from converters.images import load_rgb
from converters.network import Network
from dreamer.image_io import quantise
from dreamer.loops import deepdraw, google, torch7
from dreamer.plan.plan import DreamPlan
from dreamer.runtime.devices import resolve_device
from dreamer.runtime.precision import warn_if_emulated


@dataclass(frozen=True)
class Loop:
    dream: Callable[..., np.ndarray]  # (rgb, network, plan, on_step, on_octave, trace)
    check: Callable[[Network, DreamPlan, np.ndarray], None]
    steps: Callable[[DreamPlan], int]
    quantise: Callable[[np.ndarray], np.ndarray]


def octave_steps(plan: DreamPlan) -> int:
    return plan.octaves * plan.iterations


LOOPS = {
    "google": Loop(google.dream_google, google.check_google, octave_steps, quantise),
    "torch7": Loop(torch7.dream_torch7_plan, torch7.check_torch7, octave_steps,
                   torch7.torch7_quantised),
    "deepdraw": Loop(deepdraw.dream_deepdraw, deepdraw.check_canvas, deepdraw.total_steps,
                     quantise),
}


def loop_of(plan: DreamPlan) -> Loop:
    return LOOPS[plan.preset.loop]


def dream_with_plan(image: str | Path | np.ndarray, network: Network, plan: DreamPlan, *,
                    raw: bool = False, on_step: Callable[[], None] | None = None,
                    on_octave: Callable[[int, np.ndarray], None] | None = None,
                    trace: dict | None = None) -> np.ndarray:
    """The plan's dream of `image` (a path, H×W×3 uint8 RGB, or float32 RGB 0..255, which
    is not rounded): H×W×3 uint8 RGB, or the float RGB before quantisation with `raw`."""
    loop = loop_of(plan)
    warn_if_emulated(plan.dtype, torch.device(plan.device))
    rgb = input_rgb(image)
    if plan.preset.eight_bit_input:
        rgb = quantise(rgb)
    result = loop.dream(rgb, on_device(network, plan.device), plan, on_step, on_octave, trace)
    return result if raw else loop.quantise(result)


def check_image(network: Network, plan: DreamPlan, rgb: np.ndarray) -> None:
    """Refuse, before any compute, an image the plan cannot dream (a ValueError naming
    the size needed, or the size that fits in memory)."""
    loop_of(plan).check(network, plan, rgb)


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
