"""Feature visualisation as Lucid's `render_vis` does it (Olah et al., "Feature
Visualization", Distill 2017): a batch of images, each the output of a parameterisation
(dreamer/plan/params.py: pixels, Fourier, MACO), is optimised with Adam to raise an
objective (dreamer/plan/objectives.py); every step the images pass through random
transforms (dreamer/plan/transforms.py) and the net's own preprocessing, so that what
is drawn survives small shifts, scales and rotations.

    vis = visualisation(network, "inception_4c/output:97", param="fft")   # checked once
    images = render(network, vis)                        # B×H×W×3 uint8 RGB

A target behind a fully connected classifier is computed only at the net's declared
input size: the transformed images are then resized to it (a further random scale).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from converters.errors import UsageError
from converters.network import Network
from converters.numbers import Bounds
from converters.preprocessing import LUMA, Preprocessing
from dreamer.loops.classify import fit_input
from dreamer.loops.gradient import crop_size
from dreamer.loops.run import on_device
from dreamer.plan import numbers
from dreamer.plan.objectives import Diversity, Objective
from dreamer.plan.params import PARAMS
from dreamer.plan.targets import Target, resolve_layer
from dreamer.plan.transforms import (
    Transform,
    apply_transforms,
    smallest_size,
    transforms_from_text,
)
from dreamer.plan.visual_targets import visual_objective
from dreamer.runtime.devices import resolve_device
from dreamer.runtime.precision import reduced_precision, resolve_precision, warn_if_emulated
from models.labels import ClassList

# The ranges of the numbers (the command line's options name them).
BATCH = Bounds(1, 256, integer=True)
STEPS = Bounds(1, 100_000, integer=True)
LR = Bounds(0, 100, low_open=True)
DIVERSITY = Bounds(0, 1e6)
SIZE = Bounds(8, 4096, integer=True)
# --diversity without a weight. Measured on GoogLeNet (inception_4c/output:97, fft, batch 4,
# 32 steps): the batch's mean Gram cosine 0.92 without, 0.75 at 30, 0.43 at 100, the
# channel's means then 51-209 (without: 130-177; the photos' best crop: 10.4).
DEFAULT_DIVERSITY = 100.0


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


@dataclass(frozen=True)
class Each(Objective):
    """Image i of the batch raises `parts[i]` alone: a sheet of several targets (classes,
    channels) optimised as one batch."""

    parts: tuple[Objective, ...]

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(layer for p in self.parts for layer in p.layers))

    def terms(self, outputs):
        kept = []
        for i, part in enumerate(self.parts):
            for layer, dy in part.terms(outputs):
                mine = torch.zeros_like(dy)
                mine[i] = dy[i]
                kept.append((layer, mine))
        return kept


@dataclass(frozen=True, eq=False)
class Visualisation:
    """One visualisation, decided and checked: what is raised, through what."""

    objective: Objective
    param: str
    transforms: tuple[Transform, ...]
    settings: VisualSettings


def visualisation(network: Network, target: str | Objective | list[str], *,
                  labels: ClassList | None = None,
                  param: str = "fft", transforms: str = "standard", batch: int = 1,
                  diversity: float = 0.0, diversity_layer: str | None = None,
                  size: int = 224, steps: int = 512, lr: float = 0.05, seed: int = 0,
                  device: str = "auto", precision: str = "auto") -> Visualisation:
    """The visualisation of `target` (the TARGET text, an Objective, or a list of TARGET
    texts: one image each, `Each`) on `network`, every setting checked here with the
    option's name in the error. `diversity`: the weight of Lucid's diversity term at
    `diversity_layer` (default: the objective's first layer)."""
    for value, bounds, name in ((batch, BATCH, "--batch"), (steps, STEPS, "--steps"),
                                (lr, LR, "--lr"), (diversity, DIVERSITY, "--diversity"),
                                (size, SIZE, "--size"), (seed, numbers.SEED, "--seed")):
        bounds.check(value, name)
    if param not in PARAMS:
        raise UsageError(f"--param: unknown parameterisation {param!r} (choose from "
                         f"{', '.join(PARAMS)})")
    chosen = transforms_from_text(transforms)
    seen = smallest_size(chosen, size, size)  # the smallest image the net will see
    if isinstance(target, list):
        if batch != 1:
            raise UsageError("--batch goes with one TARGET (a sheet of several has one "
                             "image each)")
        batch = BATCH.check(len(target), "the number of targets")
        objective = Each(tuple(visual_objective(t, network, labels, seen) for t in target))
    else:
        objective = visual_objective(target, network, labels, seen) \
            if isinstance(target, str) else target
    if diversity:
        layer = resolve_layer(network, diversity_layer) if diversity_layer \
            else objective.layers[0]
        objective = objective + diversity * Diversity(layer)
    check_size(network, objective, seen, size)
    device = resolve_device(device)
    with warnings.catch_warnings():  # warned when the visualisation starts
        warnings.simplefilter("ignore")
        dtype = resolve_precision(precision, torch.device(device))
    settings = VisualSettings(batch, size, size, steps, lr, seed, device, dtype)
    return Visualisation(objective, param, chosen, settings)


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


def check_size(network: Network, objective: Objective, seen: tuple[int, int],
               size: int) -> None:
    """Refuse, before any compute, a size whose smallest transformed image (`seen`, H×W)
    the objective's layers cannot be computed on."""
    if fixed_size(network, objective) is not None:
        return  # resized to the declared size every step
    problem = network.size_problem(*seen, objective.layers)
    if problem is not None:
        raise UsageError(f"--size {size} ({seen[1]}×{seen[0]} at the smallest, after the "
                         f"transforms): {problem.reason}")


def render(network: Network, vis: Visualisation, start: np.ndarray | None = None,
           on_step: Callable[[], None] | None = None) -> np.ndarray:
    """The optimised images, B×H×W×3 uint8 RGB. `start`: an H×W×3 uint8 RGB photo every
    image begins from, centre-cropped and resized to the size (default: the
    parameterisation's random start)."""
    warn_if_emulated(vis.settings.dtype, torch.device(vis.settings.device))
    first = None if start is None else start_images(start, vis.settings)
    return optimised(on_device(network, vis.settings.device), vis.objective,
                     PARAMS[vis.param](), vis.transforms, vis.settings, first, on_step)


def start_images(rgb: np.ndarray, settings: VisualSettings) -> Tensor:
    """The photo as the batch's start: B×3×H×W in [0, 1], the square centre of the photo
    at the visualisation's size (as classify fits an image to a net)."""
    fitted = fit_input(rgb, settings.height, settings.width, "centre")
    image = torch.from_numpy(fitted.astype(np.float32) / 255).permute(2, 0, 1)
    return image[None].repeat(settings.batch, 1, 1, 1)


def optimised(network: Network, objective: Objective, parameterisation,
              transforms: Sequence[Transform], settings: VisualSettings,
              start: Tensor | None = None, on_step: Callable[[], None] | None = None
              ) -> np.ndarray:
    """`render`'s loop, the net on `settings.device` and `parameterisation` one of PARAMS'
    (random, from_image, to_image)."""
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
        images = apply_transforms(transforms, parameterisation.to_image(params), generator)
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
