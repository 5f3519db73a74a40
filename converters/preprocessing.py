"""How images enter a net: the one typed `Preprocessing` of the network description, and
the one mapping of RGB pixels (0..255, H×W×3) to the net's input (C×H×W) and back.

Like timm's `PretrainedCfg`, one typed record says how a net was trained to see images;
the dreamer and `converters check --image` both use it. What it does not hold, and why:
the input size is the description's `input_shape`, the smallest size each layer can be
computed at is arithmetic on the layers (`shapes.min_input_sizes`), and a mean image is
reduced to one mean per channel when a zoo model is converted (the dreamer works at any
size, where a mean image of one size does not fit).
"""

from __future__ import annotations

import math
import reprlib
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np

from .errors import ConversionError

# Which image channel feeds each input channel; "L" is one grey channel (ITU-R 601 luma).
CHANNEL_ORDERS = ("BGR", "RGB", "L")
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
# Caffe's ImageNet convention, for colour nets that carry no preprocessing of their own.
IMAGENET_BGR_MEAN = (104.0, 117.0, 123.0)
FIELDS = ("channel_order", "scale", "mean", "std")


@dataclass(frozen=True)
class Preprocessing:
    """net[c] = (pixel[order[c]] · scale/255 − mean[c]) / std[c], pixels RGB 0..255.

    In network.json (and the ONNX metadata) it is the object of `to_json`, e.g.
    {"channel_order": "BGR", "scale": 255.0, "mean": [104.0, 117.0, 123.0],
    "std": [1.0, 1.0, 1.0]}; a bad value is a one-line ConversionError."""

    channel_order: str = "BGR"
    scale: float = 255.0
    mean: tuple[float, ...] = IMAGENET_BGR_MEAN
    std: tuple[float, ...] = (1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        if self.channel_order not in CHANNEL_ORDERS:
            _refuse("channel_order", f"one of {', '.join(CHANNEL_ORDERS)}", self.channel_order)
        if not (_is_number(self.scale) and self.scale > 0):
            _refuse("scale", "a positive number", self.scale)
        object.__setattr__(self, "scale", float(self.scale))
        channels = self.channels
        for name, positive in (("mean", False), ("std", True)):
            values = getattr(self, name)
            if not (isinstance(values, (list, tuple)) and len(values) == channels
                    and all(_is_number(v) and (v > 0 or not positive) for v in values)):
                kind = "positive numbers" if positive else "numbers"
                _refuse(name, f"{channels} {kind}, one per channel of {self.channel_order!r}",
                        values)
            object.__setattr__(self, name, tuple(float(v) for v in values))

    @property
    def channels(self) -> int:
        return len(self.channel_order)

    def to_json(self) -> dict[str, Any]:
        return {"channel_order": self.channel_order, "scale": self.scale,
                "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_json(cls, data: Any) -> Preprocessing:
        """From `to_json()` output (as written by every version); missing fields take
        the defaults, unknown ones are refused."""
        if not isinstance(data, dict):
            raise ConversionError(f"preprocessing: expected an object, got {reprlib.repr(data)}")
        unknown = sorted(set(data) - set(FIELDS))
        if unknown:
            raise ConversionError(f"preprocessing: unknown field {unknown[0]!r} "
                                  f"(fields: {', '.join(FIELDS)})")
        return cls(**data)

    def _columns(self) -> tuple[list[int], np.ndarray, np.ndarray]:
        order = ["RGB".index(c) for c in self.channel_order] if self.channels == 3 else []
        mean = np.asarray(self.mean, np.float32).reshape(-1, 1, 1)
        std = np.asarray(self.std, np.float32).reshape(-1, 1, 1)
        return order, mean, std

    def to_net(self, rgb: np.ndarray) -> np.ndarray:
        """H×W×3 RGB 0..255 -> C×H×W float32 net input."""
        order, mean, std = self._columns()
        x = np.asarray(rgb, np.float32).transpose(2, 0, 1)
        x = x[order] if order else np.tensordot(LUMA, x, 1)[None]
        if self.scale != 255.0:
            x = x * np.float32(self.scale / 255.0)
        return np.ascontiguousarray((x - mean) / std, dtype=np.float32)

    def to_rgb(self, x: np.ndarray) -> np.ndarray:
        """C×H×W net input -> H×W×3 RGB float32, 0..255 nominal (not clipped)."""
        order, mean, std = self._columns()
        pixels = x * std + mean
        if self.scale != 255.0:
            pixels = pixels * np.float32(255.0 / self.scale)
        if not order:
            return np.repeat(pixels, 3, axis=0).transpose(1, 2, 0)
        rgb = np.empty_like(pixels)
        rgb[order] = pixels
        return rgb.transpose(1, 2, 0)

    def input_range(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (low, high) of the net input that pixels 0..255 can produce."""
        order, mean, std = self._columns()
        return (0 - mean) / std, (self.scale - mean) / std


def default_preprocessing(channels: int) -> Preprocessing:
    """For a net that records none: Caffe's ImageNet one for colour, grey in [0, 1] for
    one channel (as Caffe's LeNet scales it)."""
    if channels == 3:
        return Preprocessing()
    if channels == 1:
        return Preprocessing("L", 1.0, (0.0,), (1.0,))
    raise ConversionError(f"the net's input has {channels} channels and no preprocessing is "
                          f"recorded: an image gives 3 (colour) or 1 (grey)")


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond float's range, as JSON can hold
        return False


def _refuse(name: str, expected: str, value: Any) -> NoReturn:
    raise ConversionError(f"preprocessing: {name!r} must be {expected}, got {reprlib.repr(value)}")
