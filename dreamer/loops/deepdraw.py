"""`--preset deepdraw`: class visualisation as auduno's deepdraw notebook does it
(http://www.auduno.com/2015/07/29/visualizing-googlenet-classes/).

A canvas (noise around grey 200, or an image) is drawn on in octaves. Each step takes a
crop of the net's declared size at a normally distributed offset around the centre
(σ = 0.3 × the room there is), moves it by step/mean|g| · g for the class scores, clips it
to the pixel range, blurs it with a Gaussian and puts it back. Sigma and step go linearly
from an octave's start to its end value; an octave may first zoom the canvas. GoogLeNet's
auxiliary classifiers (`loss2/classifier`, `loss1/classifier`) are the targets of the last
two octaves where the net has them (the deploy nets of BVLC do not: then the main
classifier stays the target).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import scipy.ndimage as nd
import torch

from converters.errors import UsageError
from converters.network import Network
from dreamer.loops.gradient import DreamGradient
from dreamer.plan.objectives import Objective
from dreamer.plan.plan import DreamPlan

BACKGROUND = 200.0  # the noise canvas: normal(200, 8) per pixel and channel
NOISE = 8.0


@dataclass(frozen=True)
class DrawOctave:
    iterations: int
    sigma: tuple[float, float]  # blur, start and end
    step: tuple[float, float]  # step size, start and end
    scale: float = 1.0  # zoom of the canvas before the octave
    aux: str | None = None  # GoogLeNet's auxiliary classifier used, where the net has it


# The notebook's published schedule (the one of the blog post's images): 500 steps.
SCHEDULE = (
    DrawOctave(190, (2.5, 0.78), (11.0, 11.0)),
    DrawOctave(150, (0.78 * 1.2, 0.78), (6.0, 6.0), 1.2),
    DrawOctave(150, (0.78 * 1.2, 0.44), (6.0, 3.0), 1.2, "loss2/classifier"),
    DrawOctave(10, (0.44, 0.304), (3.0, 3.0), aux="loss1/classifier"),
)


def noise_canvas(height: int, width: int, seed: int) -> np.ndarray:
    """The notebook's starting canvas, H×W×3 uint8: grey 200 with noise of σ 8."""
    noise = np.random.default_rng(seed).normal(BACKGROUND, NOISE, (height, width, 3))
    return np.clip(np.round(noise), 0, 255).astype(np.uint8)


def schedule(iterations: int | None, octaves: int | None) -> list[DrawOctave]:
    """The schedule's first `octaves` octaves, with `iterations` steps in all shared in
    the schedule's proportions (default: the published 500)."""
    chosen = list(SCHEDULE[:octaves] if octaves else SCHEDULE)
    if iterations is None:
        return chosen
    total = sum(o.iterations for o in chosen)
    return [replace(o, iterations=max(1, round(o.iterations * iterations / total)))
            for o in chosen]


def octave_objective(net: Network, objective: Objective, octave: DrawOctave) -> Objective:
    """The class scores read from the octave's auxiliary classifier, where the net has one."""
    if octave.aux is None or octave.aux not in net.layer_index:
        return objective
    return objective.classes_at(octave.aux)


def draw(canvas: np.ndarray, net: Network, objective: Objective, plan: list[DrawOctave],
         rate: float, low: np.ndarray, high: np.ndarray, seed: int, device: str,
         on_step: Callable[[], None] | None = None, dtype: torch.dtype | None = None
         ) -> np.ndarray:
    """Draw on `canvas` (C×H×W net input); returns the canvas after the schedule."""
    rng = np.random.RandomState(seed)
    h, w = net.spec.input_shape[-2:]
    for octave in plan:
        if octave.scale != 1.0:
            canvas = nd.zoom(canvas, (1, octave.scale, octave.scale))
        gradient = DreamGradient(net, octave_objective(net, objective, octave), dtype=dtype)
        for i in range(octave.iterations):
            top, left = (_offset(rng, size, crop) for size, crop in
                         zip(canvas.shape[1:], (h, w)))
            crop = torch.from_numpy(np.ascontiguousarray(canvas[:, top:top + h,
                                                                left:left + w]))[None]
            g = gradient(crop.to(device))[0].cpu().numpy()
            fraction = i / octave.iterations
            step = rate * (octave.step[0] + (octave.step[1] - octave.step[0]) * fraction)
            sigma = octave.sigma[0] + (octave.sigma[1] - octave.sigma[0]) * fraction
            g = g * (step / max(float(np.abs(g).mean()), 1e-12))
            moved = np.clip(crop[0].numpy() + g, low, high)
            canvas[:, top:top + h, left:left + w] = nd.gaussian_filter(moved, (0, sigma, sigma))
            if on_step is not None:
                on_step()
    return canvas


def _offset(rng: np.random.RandomState, size: int, crop: int) -> int:
    """A crop's offset: normal around the centre, σ 0.3 × the room, clipped into it."""
    room = size - crop
    if room <= 0:
        return 0
    return int(np.clip(rng.normal(room / 2, room * 0.3), 0, room))


def dream_deepdraw(rgb: np.ndarray, net: Network, plan: DreamPlan, on_step=None,
                   on_octave=None, trace: dict | None = None) -> np.ndarray:
    """The preset on H×W×3 RGB: float RGB of the final canvas. ITERATIONS is the total
    number of steps (default the schedule's 500), RATE multiplies its step sizes."""
    check_canvas(net, plan, rgb)
    pre = net.spec.input_preprocessing()
    low, high = (v.astype(np.float32) for v in pre.input_range())
    canvas = draw(pre.to_net(rgb), net, plan.objective, schedule(plan.iterations, plan.octaves),
                  plan.rate, low, high, plan.seed, plan.device, on_step, plan.dtype)
    return pre.to_rgb(canvas)


def check_canvas(net: Network, plan: DreamPlan, rgb: np.ndarray) -> None:
    """The canvas must hold one crop of the net's declared size."""
    h, w = net.spec.input_shape[-2:]
    if rgb.shape[0] < h or rgb.shape[1] < w:
        raise UsageError(f"--preset deepdraw draws on crops of {w}×{h}: the image "
                         f"({rgb.shape[1]}×{rgb.shape[0]}) is smaller")


def total_steps(plan: DreamPlan) -> int:
    return sum(o.iterations for o in schedule(plan.iterations, plan.octaves))
