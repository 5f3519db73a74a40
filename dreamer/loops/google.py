"""The octave loop of Google's DeepDream notebook, in the net's input space (the loop of
the default and google presets: `dream_google`).

`dream_octaves` follows `deepdream()` / `make_step()` of the notebook: an octave
pyramid made with order-1 `scipy.ndimage.zoom`, smallest octave first, the detail
carried up between octaves, jitter drawn with NumPy's legacy RandomState exactly as
`np.random.randint(-jitter, jitter + 1, 2)`, a step normalised by the gradient's mean
magnitude, and clipping to what pixels can produce. Octaves too small for the net are
skipped with a warning before any compute (`plan_octaves`, by shape arithmetic).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import scipy.ndimage as nd
import torch
from torch import Tensor

from converters.errors import UsageError
from converters.network import Network
from converters.preprocessing import Preprocessing
from converters.shapes import Unfit
from dreamer.loops.gradient import DreamGradient, cropped, size_problem_for
from dreamer.loops.memory import DreamMemory, plan_tile
from dreamer.plan.plan import DreamPlan, warn_if_noise
from dreamer.plan.presets import NOTEBOOK_GOOGLENET_MEAN, Preset

Gradient = Callable[[Tensor], Tensor]
SizeProblem = Callable[[int, int], "Unfit | None"]


@dataclass
class OctaveSettings:
    iterations: int = 10
    step: float = 1.5
    octaves: int = 4
    octave_scale: float = 1.4
    jitter: int = 32
    step_norm: str = "mean"
    clip: bool = True


def normalised_step(grad: Tensor, step: float, norm: str) -> Tensor | float:
    """The factor the gradient is multiplied by before it is added: a 0-d float64 tensor
    on the gradient's device (no host synchronisation), divided as Python divided it."""
    if norm == "none":
        return step
    magnitude = {"mean": lambda: grad.abs().mean(), "max": lambda: grad.abs().max(),
                 "l2": lambda: grad.pow(2).mean().sqrt()}[norm]()
    return step / magnitude.double().clamp_min(1e-12)


def octave_pyramid(base: np.ndarray, count: int, scale: float) -> list[np.ndarray]:
    """[base, base/scale, base/scale², ...] with order-1 zoom, as the notebook builds it."""
    octaves = [base.astype(np.float32, copy=False)]
    for _ in range(count - 1):
        octaves.append(nd.zoom(octaves[-1], (1, 1.0 / scale, 1.0 / scale), order=1))
    return octaves


def octave_sizes(height: int, width: int, count: int, scale: float) -> list[tuple[int, int]]:
    """(height, width) of each octave, smallest first: `nd.zoom`'s rounding, octave by
    octave, as `octave_pyramid` makes them. At most `count`: the pyramid ends with its
    first octave one pixel high or wide (the next would be the same or empty)."""
    sizes = [(height, width)]
    while len(sizes) < count and min(sizes[-1]) > 1:
        h, w = sizes[-1]
        smaller = (int(round(h * (1.0 / scale))), int(round(w * (1.0 / scale))))
        if min(smaller) < 1:
            break
        sizes.append(smaller)
    return sizes[::-1]


def plan_octaves(sizes: list[tuple[int, int]], size_problem: SizeProblem | None
                 ) -> list[Unfit | None]:
    """Per octave (smallest first), why it is too small for the net, or None to run it.

    An octave the net cannot be computed at for another reason, or an image whose every
    octave is too small, is a ValueError naming the size needed.
    """
    if size_problem is None:
        return [None] * len(sizes)
    problems = [size_problem(h, w) for h, w in sizes]
    for k, ((h, w), problem) in enumerate(zip(sizes, problems)):
        if problem is not None and not problem.too_small:
            raise ValueError(f"octave {k + 1} ({w}×{h}): {problem.reason}")
    if all(problems):
        h, w = sizes[-1]
        raise ValueError(f"the image ({w}×{h}) is too small for the target: "
                         f"{problems[-1].reason}")
    return problems


def dream_octaves(base: np.ndarray, gradient: Gradient, settings: OctaveSettings,
                  low: np.ndarray, high: np.ndarray, rng: np.random.RandomState,
                  device: torch.device | str = "cpu", on_step: Callable[[], None] | None = None,
                  on_octave: Callable[[int, np.ndarray], None] | None = None,
                  trace: dict | None = None, size_problem: SizeProblem | None = None,
                  overwrite_base: bool = False) -> np.ndarray:
    """Dream on `base` (C×H×W net input); returns the result at the same size.

    `low`/`high` (C×1×1) are the clip bounds; `on_octave(k, data)` sees each octave's
    result, `trace` (a dict) receives the first input, gradient and steps;
    `size_problem(h, w)` says why the net cannot run at h×w (see `plan_octaves`);
    `overwrite_base`: the last octave's steps may work in `base` (one image-sized array
    less).
    """
    sizes = octave_sizes(*base.shape[-2:], settings.octaves, settings.octave_scale)
    if len(sizes) < settings.octaves:
        h, w = base.shape[-2:]
        warnings.warn(f"--octaves {settings.octaves}: a {w}×{h} image holds only "
                      f"{len(sizes)} octaves of scale {settings.octave_scale:g} (the smallest "
                      f"{sizes[0][1]}×{sizes[0][0]}); dreaming {len(sizes)}", stacklevel=2)
    problems = plan_octaves(sizes, size_problem)
    for k, ((h, w), problem) in enumerate(zip(sizes, problems)):
        if problem is not None:
            warnings.warn(f"octave {k + 1} ({w}×{h}) skipped: the net cannot reach the "
                          f"target layer at this size ({problem.reason})", stacklevel=2)
    octaves = octave_pyramid(base, len(sizes), settings.octave_scale)
    detail = None  # none before the first octave: no image-sized array of zeros
    data = octaves[-1]
    for k, octave_base in enumerate(reversed(octaves)):
        h, w = octave_base.shape[-2:]
        if detail is not None:
            h1, w1 = detail.shape[-2:]
            detail = nd.zoom(detail, (1, h / h1, w / w1), order=1)
        # an array of its own: the octave's steps update it in place
        mine = overwrite_base and k + 1 == len(octaves)
        if detail is None:
            data = octave_base if mine else octave_base.copy()
        else:
            data = np.add(octave_base, detail, out=octave_base if mine else None)
        detail = None
        if problems[k] is None:
            data = _octave(data, gradient, settings, low, high, rng, device, on_step,
                           trace if k == 0 else None)
        elif on_step is not None:
            for _ in range(settings.iterations):
                on_step()
        if k + 1 < len(octaves):
            detail = data - octave_base
        if on_octave is not None:
            on_octave(k, data)
    return data


def _octave(data: np.ndarray, gradient: Gradient, settings: OctaveSettings, low: np.ndarray,
            high: np.ndarray, rng: np.random.RandomState, device, on_step, trace) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(data)).to(device)[None]
    low_t = torch.from_numpy(low).to(device)[None]
    high_t = torch.from_numpy(high).to(device)[None]
    if trace is not None:
        trace["first_input"] = data.copy()
    shifts = [(int(ox), int(oy)) for ox, oy in  # drawn one pair at a time, as the notebook
              (rng.randint(-settings.jitter, settings.jitter + 1, 2)
               for _ in range(settings.iterations))]
    for i, (ox, oy) in enumerate(shifts):
        # x += roll back(g(roll(x))) · step, in place: the notebook's roll, step, roll back
        # element for element, with at most the image, the shifted image and g alive
        grad = gradient(torch.roll(x, (oy, ox), (-2, -1)) if ox or oy else x)
        if trace is not None and i == 0:
            trace["first_grad"] = grad[0].cpu().numpy().copy()
        step = normalised_step(grad, settings.step, settings.step_norm)
        if ox or oy:
            grad = torch.roll(grad, (-oy, -ox), (-2, -1))
        x.add_(grad.mul_(step))
        del grad
        if settings.clip:
            torch.maximum(torch.minimum(x, high_t, out=x), low_t, out=x)
        if trace is not None:
            trace.setdefault("steps", []).append(x[0].cpu().numpy().copy())
            trace.setdefault("shifts", []).append((ox, oy))
        if on_step is not None:
            on_step()
    return x[0].cpu().numpy()


def preprocessing_for(net: Network, preset: Preset) -> Preprocessing:
    """The net's preprocessing; the notebook's mean where the preset uses it (GoogLeNet,
    and nets without a mean of their own)."""
    pre = net.spec.input_preprocessing()
    zoo = (net.spec.source.get("zoo") or {}).get("model", "")
    if preset.notebook_mean and (net.spec.preprocessing is None or zoo == "googlenet"):
        pre = replace(pre, mean=NOTEBOOK_GOOGLENET_MEAN)
    return pre


def octave_settings(plan: DreamPlan, step: float) -> OctaveSettings:
    return OctaveSettings(iterations=plan.iterations, step=step, octaves=plan.octaves,
                          octave_scale=plan.octave_scale, jitter=plan.jitter,
                          step_norm=plan.step_norm, clip=plan.preset.clip)


def memory_tile(net: Network, plan: DreamPlan, shape: tuple[int, ...]) -> int | None:
    """The tile a dream of an image of `shape` runs with: the plan's, or one chosen (with
    a warning) because the largest octave does not fit in memory whole; a ValueError
    naming the size that fits where none does (dreamer/loops/memory.py)."""
    sizes = octave_sizes(*shape[:2], plan.octaves, plan.octave_scale)
    element_size = 4 if plan.dtype is None else torch.finfo(plan.dtype).bits // 8
    memory = DreamMemory(net, list(plan.targets), element_size, plan.tile_margin)
    return plan_tile(memory, sizes, plan.tile, plan.device)


def check_google(net: Network, plan: DreamPlan, rgb: np.ndarray) -> None:
    """Refuse, before any compute, an image with no octave large enough for the targets
    (a ValueError naming the size needed), or one that does not fit in memory."""
    plan_octaves(octave_sizes(*rgb.shape[:2], plan.octaves, plan.octave_scale),
                 size_problem_for(net, list(plan.targets)))
    with warnings.catch_warnings():  # the dream warns, once, of what it chooses
        warnings.simplefilter("ignore")
        memory_tile(net, plan, rgb.shape)


def guide_features(net: Network, pre: Preprocessing, device: str):
    """`features(rgb, layers)`: a guide image's outputs at `layers`, for a guided dream."""
    def features(rgb: np.ndarray, layers: list[str]) -> dict[str, Tensor]:
        problem = net.size_problem(*rgb.shape[:2], layers)
        if problem is not None:
            raise UsageError(f"the guide image cannot be used: {problem.reason}")
        x = torch.from_numpy(pre.to_net(rgb))[None].to(device)
        with torch.no_grad():
            return net.forward_to(x, layers)
    return features


def dream_google(rgb: np.ndarray, net: Network, plan: DreamPlan, on_step=None, on_octave=None,
                 trace: dict | None = None) -> np.ndarray:
    """The octave loop on H×W×3 RGB, as the plan says: float RGB at the same size."""
    pre = preprocessing_for(net, plan.preset)
    base = pre.to_net(rgb)
    std = float(base.std())
    warn_if_noise(plan.iterations, plan.rate if plan.preset.rate_in_std
                  else plan.rate / max(std, 1.0))
    tile = memory_tile(net, plan, rgb.shape)
    step = plan.rate * std if plan.preset.rate_in_std else plan.rate
    low, high = pre.input_range()
    objective = plan.objective.bound(guide_features(net, pre, plan.device))
    # a fully connected classifier target sees random crops of its declared size
    gradient = cropped(net, list(plan.targets),
                       DreamGradient(net, objective, plan.stages, tile, plan.tile_margin,
                                     plan.dtype), plan.seed + 1)
    octave_hook = None
    if on_octave is not None:
        def octave_hook(k: int, data: np.ndarray) -> None:
            on_octave(k, pre.to_rgb(data))
    result = dream_octaves(base, gradient, octave_settings(plan, step), low.astype(np.float32),
                           high.astype(np.float32), np.random.RandomState(plan.seed),
                           plan.device, on_step, octave_hook, trace,
                           size_problem_for(net, list(plan.targets)), overwrite_base=True)
    return pre.to_rgb(result)
