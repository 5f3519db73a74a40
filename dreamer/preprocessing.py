"""How images enter the net: `Preprocessing` maps RGB pixels (0..255, H×W×3) to the
net's input (C×H×W) and back."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from converters.network import Network

# Caffe's ImageNet convention, for nets that carry no preprocessing of their own.
IMAGENET_BGR_MEAN = (104.0, 117.0, 123.0)
# Google's notebook subtracts this from GoogLeNet's input (not the deploy's 104/117/123).
NOTEBOOK_GOOGLENET_MEAN = (104.0, 116.0, 122.0)


@dataclass(frozen=True)
class Preprocessing:
    """net[c] = (pixel[order[c]] · scale/255 − mean[c]) / std[c], pixels RGB 0..255."""

    channel_order: str = "BGR"
    scale: float = 255.0
    mean: tuple[float, ...] = IMAGENET_BGR_MEAN
    std: tuple[float, ...] = (1.0, 1.0, 1.0)

    @classmethod
    def of(cls, network: Network) -> Preprocessing:
        """The net's own preprocessing (zoo models carry one), else Caffe's ImageNet one."""
        p = network.spec.preprocessing
        if not p:
            return cls()
        return cls(p.get("channel_order", "BGR"), float(p.get("scale", 255.0)),
                   tuple(float(m) for m in p.get("mean", IMAGENET_BGR_MEAN)),
                   tuple(float(s) for s in p.get("std", (1.0, 1.0, 1.0))))

    def _columns(self) -> tuple[list[int], np.ndarray, np.ndarray]:
        order = ["RGB".index(c) for c in self.channel_order]
        mean = np.asarray(self.mean, np.float32).reshape(-1, 1, 1)
        std = np.asarray(self.std, np.float32).reshape(-1, 1, 1)
        return order, mean, std

    def to_net(self, rgb: np.ndarray) -> np.ndarray:
        """H×W×3 RGB 0..255 -> C×H×W float32 net input."""
        order, mean, std = self._columns()
        x = np.asarray(rgb, np.float32).transpose(2, 0, 1)[order]
        if self.scale != 255.0:
            x = x * np.float32(self.scale / 255.0)
        return np.ascontiguousarray((x - mean) / std, dtype=np.float32)

    def to_rgb(self, x: np.ndarray) -> np.ndarray:
        """C×H×W net input -> H×W×3 RGB float32, 0..255 nominal (not clipped)."""
        order, mean, std = self._columns()
        pixels = x * std + mean
        if self.scale != 255.0:
            pixels = pixels * np.float32(255.0 / self.scale)
        rgb = np.empty_like(pixels)
        rgb[order] = pixels
        return rgb.transpose(1, 2, 0)

    def input_range(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (low, high) of the net input that pixels 0..255 can produce."""
        order, mean, std = self._columns()
        return (0 - mean) / std, (self.scale - mean) / std
