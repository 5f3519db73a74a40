"""Transformation robustness (Lucid's `transform` module): what a visualisation is seen
through at each step, so that it must work from any nearby crop, scale and angle.

A `Transform` maps images (B×3×H×W, values in (0, 1)) and a torch.Generator to images,
differentiably (torch only). Each draws its random choice from the generator, once for the
whole batch (as Lucid does), so the same seed gives the same sequence. The size may change:
`Pad` grows the image, `Jitter` crops it, `RandomScale` resizes it; `smallest(height,
width)` tells the smallest size a transform can make, and `smallest_size` that of a list
(what to check a size against before any compute).

`STANDARD` is Lucid's `standard_transforms`, `ROBUST` a wider set; `transforms_from_text`
reads `--transforms` (`none`, `standard`, `robust`, or a list such as
`pad:12,jitter:8,scale:0.9-1.1,rotate:10`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from converters.errors import UsageError
from converters.numbers import Bounds


class Transform(Protocol):
    """images (B×3×H×W), generator -> images; `smallest`: the smallest (H, W) it makes."""

    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor: ...

    def smallest(self, height: int, width: int) -> tuple[int, int]: ...


PIXELS = Bounds(0, 10_000, integer=True)
SCALE = Bounds(0.1, 10)
DEGREES = Bounds(0, 180)
SCALE_STEPS = 11  # scale:LO-HI: Lucid's 11 scales (0.9-1.1 gives exactly its list)
ROTATE_STEPS = 21  # rotate:D: -D..D in 21 angles (D=10: Lucid's integers -10..10)


def choose(choices: Sequence[float], generator: torch.Generator) -> float:
    """One of `choices`, uniformly, drawn from `generator`."""
    index = torch.randint(len(choices), (1,), generator=generator).item()
    return choices[index]


@dataclass(frozen=True)
class Pad:
    """A border of `width` pixels of the constant `value` on every side."""

    width: int
    value: float = 0.5

    def smallest(self, height: int, width: int) -> tuple[int, int]:
        return height + 2 * self.width, width + 2 * self.width

    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor:
        w = self.width
        return F.pad(images, (w, w, w, w), mode="constant", value=self.value)


@dataclass(frozen=True)
class Jitter:
    """A crop `pixels` smaller in each dimension, its corner at a random offset 0..pixels
    (Lucid's jitter: a random crop)."""

    pixels: int

    def smallest(self, height: int, width: int) -> tuple[int, int]:
        if self.pixels >= min(height, width):
            raise UsageError(f"--transforms jitter:{self.pixels} is too large for a "
                             f"{width}×{height} image at that point")
        return height - self.pixels, width - self.pixels

    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor:
        d = self.pixels
        height, width = self.smallest(*images.shape[-2:])
        top, left = torch.randint(d + 1, (2,), generator=generator).tolist()
        return images[..., top:top + height, left:left + width]


@dataclass(frozen=True)
class RandomScale:
    """Resized (bilinear, as Lucid) by one of `scales`; the new size is rounded."""

    scales: tuple[float, ...]

    def smallest(self, height: int, width: int) -> tuple[int, int]:
        return scaled_size(min(self.scales), height, width)

    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor:
        scale = choose(self.scales, generator)
        height, width = images.shape[-2:]
        size = scaled_size(scale, height, width)
        if size == (height, width):
            return images
        return F.interpolate(images, size=size, mode="bilinear", align_corners=False)


def scaled_size(scale: float, height: int, width: int) -> tuple[int, int]:
    return max(1, round(scale * height)), max(1, round(scale * width))


@dataclass(frozen=True)
class RandomRotate:
    """Rotated about the centre by one of `degrees` (counterclockwise, as PIL and Lucid),
    bilinear; what comes in from outside is 0 (as Lucid's rotate)."""

    degrees: tuple[float, ...]

    def smallest(self, height: int, width: int) -> tuple[int, int]:
        return height, width

    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor:
        angle = choose(self.degrees, generator)
        return rotate(images, angle) if angle else images


def rotate(images: Tensor, degrees: float) -> Tensor:
    """`images` rotated counterclockwise by `degrees` about the centre, same size."""
    height, width = images.shape[-2:]
    radians = math.radians(degrees)
    cos, sin = math.cos(radians), math.sin(radians)
    # affine_grid works in [-1, 1] coordinates per axis: a rotation in pixels becomes
    # anisotropic there when the image is not square.
    theta = torch.tensor([[cos, -sin * height / width, 0.0],
                          [sin * width / height, cos, 0.0]],
                         dtype=images.dtype, device=images.device)
    grid = F.affine_grid(theta.expand(images.shape[0], 2, 3), list(images.shape),
                         align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)


def apply_transforms(transforms: Sequence[Transform], images: Tensor,
                     generator: torch.Generator) -> Tensor:
    """`images` through each of `transforms` in order."""
    for transform in transforms:
        images = transform(images, generator)
    return images


def smallest_size(transforms: Sequence[Transform], height: int, width: int
                  ) -> tuple[int, int]:
    """(H, W) of the smallest image `transforms` can make of a height×width one, by
    arithmetic (a jitter too large for the image on the way: a UsageError)."""
    for transform in transforms:
        height, width = transform.smallest(height, width)
    return height, width


def evenly(low: float, high: float, count: int) -> tuple[float, ...]:
    """`count` numbers from `low` to `high`, evenly spaced (one if low == high)."""
    if low == high:
        return (low,)
    return tuple(low + (high - low) * i / (count - 1) for i in range(count))


# Lucid's standard_transforms (lucid/optvis/transform.py).
STANDARD: tuple[Transform, ...] = (
    Pad(12, 0.5),
    Jitter(8),
    RandomScale(tuple(1 + (i - 5) / 50 for i in range(11))),
    RandomRotate((*range(-10, 11), 0, 0, 0, 0, 0)),
    Jitter(4),
)

# Wider than Lucid's in every draw. Measured on GoogLeNet (fft, seed 0), the class images'
# transfer to SqueezeNet v1.1 (classes in its top 5): at 256 steps, on 6 classes that no
# test, README sheet or benchmark dreams, 6 of 6 (ranks 1 1 1 3 1 1) against 5 of 6
# (1 11 1 3 1 1) through STANDARD; at 512 steps, bench/visualize.py's 10 classes, 10 of 10
# through both. A unit's mean on the untransformed image is lower through it (15.5 against
# 16.4 times the best natural crop, the benchmark's median).
ROBUST: tuple[Transform, ...] = (
    Pad(16, 0.5),
    Jitter(16),
    RandomScale(evenly(0.8, 1.2, SCALE_STEPS)),
    RandomRotate(evenly(-15, 15, ROTATE_STEPS)),
    Jitter(8),
)
NAMED = {"none": (), "standard": STANDARD, "robust": ROBUST}

TRANSFORMS_HELP = ("none, standard (Lucid's: pad:12,jitter:8,scale:0.9-1.1,rotate:10,"
                   "jitter:4), robust (wider: pad:16,jitter:16,scale:0.8-1.2,rotate:15,"
                   "jitter:8) or a list of "
                   "pad:PIXELS, jitter:PIXELS, scale:LOW-HIGH (or scale:S), "
                   "rotate:DEGREES (-D..D), in order")


EXAMPLES = {"pad": "pad:12", "jitter": "jitter:8", "scale": "scale:0.9-1.1", "rotate": "rotate:10"}


def transforms_from_text(text: str) -> tuple[Transform, ...]:
    """The transforms `--transforms` names; a one-line UsageError naming --transforms."""
    text = text.strip()
    if text in NAMED:
        return NAMED[text]
    parts = [p.strip() for p in text.split(",")]
    if not all(parts):
        raise UsageError(f"--transforms {text!r}: an empty item (give {TRANSFORMS_HELP})")
    return tuple(_transform(part) for part in parts)


def _transform(part: str) -> Transform:
    """One `NAME:VALUE` item of --transforms."""
    name, colon, value = part.partition(":")
    option = f"--transforms {part}:"
    makers = {"pad": lambda: Pad(PIXELS.parse(value, f"{option} the padding")),
              "jitter": lambda: Jitter(_jitter(value, option)),
              "scale": lambda: RandomScale(_scales(value, option)),
              "rotate": lambda: RandomRotate(_angles(value, option))}
    if name not in makers:
        raise UsageError(f"--transforms: unknown transform {name!r} in {part!r} (give "
                         f"{TRANSFORMS_HELP})")
    if not colon:
        raise UsageError(f"--transforms {part}: give a value, e.g. {EXAMPLES[name]}")
    return makers[name]()


def _jitter(value: str, option: str) -> int:
    pixels = PIXELS.parse(value, f"{option} the jitter")
    if pixels == 0:
        raise UsageError(f"{option} the jitter must be at least 1 pixel (got 0)")
    return pixels


def _scales(value: str, option: str) -> tuple[float, ...]:
    low, dash, high = value.partition("-")
    low_scale = SCALE.parse(low, f"{option} the scale")
    high_scale = SCALE.parse(high, f"{option} the largest scale") if dash else low_scale
    if high_scale < low_scale:
        raise UsageError(f"{option} the scales must be LOW-HIGH, low first (got {value!r})")
    return evenly(low_scale, high_scale, SCALE_STEPS)


def _angles(value: str, option: str) -> tuple[float, ...]:
    degrees = DEGREES.parse(value, f"{option} the angle")
    return evenly(-degrees, degrees, ROTATE_STEPS)
