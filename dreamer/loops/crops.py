"""Random crops of the declared input size, for targets behind a fully connected classifier
(they can be computed only there): the gradient is taken on one seeded crop per step, as
deepdraw feeds GoogLeNet, and is zero outside it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from converters.network import Network
from converters.shapes import Unfit
from dreamer.plan.targets import Target


def crop_size(network: Network, targets: list[Target]) -> tuple[int, int] | None:
    """The declared input size (H, W) when a target can be computed only there (behind a
    fully connected classifier): the dream then feeds it crops of that size."""
    height, width = network.spec.input_shape[-2:]
    layers = [t.layer for t in targets]
    if network.size_problem(height, width, layers) is not None:
        return None
    return None if network.size_problem(height + 32, width + 32, layers) is None \
        else (height, width)


def size_problem_for(network: Network, targets: list[Target]
                     ) -> Callable[[int, int], Unfit | None]:
    """Why the targets cannot be dreamed on an h×w image (None: they can), crops included."""
    layers, crop = [t.layer for t in targets], crop_size(network, targets)
    if crop is None:
        return lambda h, w: network.size_problem(h, w, layers)

    def problem(h: int, w: int) -> Unfit | None:
        if h >= crop[0] and w >= crop[1]:
            return None
        return Unfit(layers[0], f"{w}×{h} is smaller than the {crop[1]}×{crop[0]} crops the "
                     f"classifier sees", too_small=True)
    return problem


class RandomCrops:
    """A gradient computed on one random crop of the declared size per step (seeded), as
    deepdraw feeds GoogLeNet; zero outside the crop."""

    def __init__(self, gradient: Callable[[Tensor], Tensor], size: tuple[int, int],
                 seed: int) -> None:
        self.gradient, self.size = gradient, size
        self.rng = np.random.RandomState(seed)

    def __call__(self, x: Tensor) -> Tensor:
        (h, w), (height, width) = self.size, x.shape[-2:]
        top, left = (int(self.rng.randint(0, n - k + 1)) for n, k in ((height, h), (width, w)))
        grad = torch.zeros_like(x)
        grad[..., top:top + h, left:left + w] = self.gradient(x[..., top:top + h, left:left + w])
        return grad


def cropped(network: Network, targets: list[Target], gradient: Callable[[Tensor], Tensor],
            seed: int) -> Callable[[Tensor], Tensor]:
    """`gradient`, fed random crops where a target needs the declared input size."""
    size = crop_size(network, targets)
    return gradient if size is None else RandomCrops(gradient, size, seed)

