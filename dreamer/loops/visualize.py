"""Feature visualisation as Lucid's `render_vis` does it (Olah et al., "Feature
Visualization", Distill 2017): a batch of images, each the output of a parameterisation
(dreamer/plan/params.py: pixels, Fourier, MACO), is optimised with Adam to raise an
objective (dreamer/plan/objectives.py); every step the images pass through random
transforms (dreamer/plan/transforms.py) and the net's own preprocessing, so that what
is drawn survives small shifts, scales and rotations.

    images = render(network, objective, PARAMS["fft"](), STANDARD, VisualSettings())

A target behind a fully connected classifier is computed only at the net's declared
input size: the transformed images are then resized to it (a further random scale).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from converters.errors import UsageError
from converters.network import Network
from converters.preprocessing import LUMA, Preprocessing
from dreamer.loops.gradient import crop_size
from dreamer.plan.objectives import Objective
from dreamer.plan.targets import Target
from dreamer.runtime.precision import reduced_precision

Transform = Callable[[Tensor, torch.Generator], Tensor]


@dataclass(frozen=True)
class VisualSettings:
    """How the images are optimised (Lucid's defaults: Adam at 0.05, 512 steps)."""

    batch: int = 1
    height: int = 224
    width: int = 224
    steps: int = 512
    lr: float = 0.05
    seed: int = 0
    device: str = "cpu"
    dtype: torch.dtype | None = None  # the network's autocast dtype; None: float32


def net_input(images: Tensor, pre: Preprocessing) -> Tensor:
    """B×3×H×W RGB in (0, 1) -> the net's input, as `Preprocessing.to_net` maps pixels
    (differentiable: the same arithmetic in torch)."""
    pixels = images * pre.scale  # pixel·scale/255 with pixel = 255·image
    if pre.channels == 3:
        pixels = pixels[:, ["RGB".index(c) for c in pre.channel_order]]
    else:
        pixels = torch.einsum("c,bchw->bhw", torch.from_numpy(LUMA).to(images), pixels)[:, None]
    mean, std = (torch.tensor(v, dtype=images.dtype, device=images.device).reshape(1, -1, 1, 1)
                 for v in (pre.mean, pre.std))
    return (pixels - mean) / std


def fixed_size(network: Network, objective: Objective) -> tuple[int, int] | None:
    """The declared input size (H, W) when the objective reads a layer computed only there."""
    return crop_size(network, [Target(layer) for layer in objective.layers])


def check_size(network: Network, objective: Objective, height: int, width: int) -> None:
    """Refuse, before any compute, an image size the objective's layers cannot be read at."""
    if fixed_size(network, objective) is not None:
        return  # resized to the declared size every step
    problem = network.size_problem(height, width, objective.layers)
    if problem is not None:
        raise UsageError(f"--size {max(height, width)}: layer {problem.layer!r} cannot be "
                         f"computed: {problem.reason}")


def render(network: Network, objective: Objective, parameterisation, transforms:
           Sequence[Transform], settings: VisualSettings, start: Tensor | None = None,
           on_step: Callable[[], None] | None = None) -> np.ndarray:
    """The optimised images, B×H×W×3 uint8 RGB. `parameterisation` is one of PARAMS'
    (random, from_image, to_image); `start`: B×3×H×W RGB in (0, 1) to begin from (default:
    the parameterisation's random start). The net must be on `settings.device`."""
    generator = torch.Generator().manual_seed(settings.seed)
    if start is None:
        params = parameterisation.random(settings.batch, settings.height, settings.width,
                                         generator)
    else:
        params = parameterisation.from_image(start)
    params = [p.detach().to(settings.device).requires_grad_(True) for p in params]
    optimiser = torch.optim.Adam(params, lr=settings.lr, maximize=True)
    size = fixed_size(network, objective)
    pre = network.spec.input_preprocessing()
    for _ in range(settings.steps):
        optimiser.zero_grad(set_to_none=True)
        images = parameterisation.to_image(params)
        for transform in transforms:
            images = transform(images, generator)
        if size is not None and tuple(images.shape[-2:]) != size:
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
        backward_objective(network, objective, net_input(images, pre), settings.dtype)
        optimiser.step()
        if on_step is not None:
            on_step()
    with torch.no_grad():
        final = parameterisation.to_image(params)
    return quantised(final)


def backward_objective(network: Network, objective: Objective, x: Tensor,
                       dtype: torch.dtype | None) -> None:
    """Send the objective's output gradients back through the net to whatever `x` was
    computed from (the objective's dy terms, as DreamGradient sends them)."""
    if x.device.type in ("cpu", "cuda"):  # oneDNN's and cuDNN's faster layout
        x = x.contiguous(memory_format=torch.channels_last)
    layers = list(objective.layers)
    with reduced_precision(network, x.device.type, dtype):
        outs = network.forward_to(x, layers)
    terms = objective.terms({name: outs[name].float().detach() for name in layers})
    torch.autograd.backward([outs[layer].float() for layer, _ in terms],
                            [dy for _, dy in terms])


def quantised(images: Tensor) -> np.ndarray:
    """B×3×H×W in (0, 1) -> B×H×W×3 uint8."""
    pixels = (images.detach().float() * 255).round().clamp(0, 255).to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).cpu().numpy()
