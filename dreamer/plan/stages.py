"""What each input gradient goes through before the step, in order: small callables (as
lucent's transforms) that a plan lists and the gradient composes once."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

GradientStage = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Blur:
    """Gaussian smoothing of the gradient (`--blur SIGMA`)."""

    sigma: float

    def __call__(self, grad: Tensor) -> Tensor:
        return gaussian_blur(grad, self.sigma)


@dataclass(frozen=True)
class LaplacianNorm:
    """Each Laplacian-pyramid level of the gradient at unit deviation (`--laplacian N`)."""

    levels: int

    def __call__(self, grad: Tensor) -> Tensor:
        return laplacian_normalise(grad, self.levels)


def gradient_stages(blur: float, laplacian: int) -> tuple[GradientStage, ...]:
    """The stages the options ask for: blur, then the Laplacian normalisation."""
    return (*((Blur(blur),) if blur > 0 else ()),
            *((LaplacianNorm(laplacian),) if laplacian > 0 else ()))


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian smoothing per channel, truncated at 3σ, reflecting edges."""
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = x.shape[1]
    pad = min(radius, x.shape[2] - 1, x.shape[3] - 1)
    if pad < radius:  # reflection needs the image to be wider than the kernel
        x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    else:
        x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)


def _binomial(x: Tensor) -> Tensor:
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=x.dtype, device=x.device)
    k2 = torch.outer(k, k) / 256.0
    return k2.expand(x.shape[1], 1, 5, 5).contiguous()


def laplacian_split(x: Tensor, levels: int) -> list[Tensor]:
    """Laplacian pyramid: band-pass levels, finest first, then the low-pass residual."""
    bands, kernel = [], _binomial(x)
    for _ in range(levels - 1):
        if min(x.shape[2:]) < 4:
            break
        low = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), kernel, stride=2,
                       groups=x.shape[1])
        up = F.interpolate(low, size=x.shape[2:], mode="bilinear", align_corners=False)
        bands.append(x - up)
        x = low
    return [*bands, x]


def laplacian_normalise(grad: Tensor, levels: int) -> Tensor:
    """Scale each Laplacian level of the gradient to unit standard deviation and merge:
    low and high frequencies then contribute alike (the TensorFlow tutorial's trick)."""
    bands = laplacian_split(grad, levels)
    out = bands[-1] / (bands[-1].std() + 1e-8)
    for band in reversed(bands[:-1]):
        out = F.interpolate(out, size=band.shape[2:], mode="bilinear", align_corners=False)
        out = out + band / (band.std() + 1e-8)
    return out
