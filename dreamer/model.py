"""Which network to dream with, how images enter it, and which layer is the target.

`open_network` accepts a zoo name (converted into models/), a converted directory, a
`.t7`/`.net`, an `.onnx`, or a prototxt with its caffemodel. `Preprocessing` maps RGB
pixels (0..255, H×W×3) to the net's input (C×H×W) and back. `resolve_layer` turns the
command line's LAYER (exact name, unique prefix, or the seed script's integer
`layer_max`) into a layer name.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import converters
from converters.network import Network
from converters.spec import ConversionError

DEFAULT_MODEL = "nin"
# Caffe's ImageNet convention, for nets that carry no preprocessing of their own.
IMAGENET_BGR_MEAN = (104.0, 117.0, 123.0)
# Google's notebook subtracts this from GoogLeNet's input (not the deploy's 104/117/123).
NOTEBOOK_GOOGLENET_MEAN = (104.0, 116.0, 122.0)


def open_network(model: str | None, weights: str | None = None) -> Network:
    """The network named by `--model` (default: the zoo's NIN) and `--weights`."""
    model = model or DEFAULT_MODEL
    path = Path(model)
    if path.suffix.lower() in (".prototxt", ".protxt", ".pbtxt"):
        return converters.load_caffe(path, weights)
    if weights is not None:
        raise ConversionError("--weights goes with a prototxt --model")
    if path.exists():
        return converters.load(path)
    import models

    if "/" in model or path.suffix:
        raise ConversionError(f"{model}: no such file or directory")
    return converters.load(models.find_converted(model))


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


def dream_layer_default(network: Network) -> str:
    """The zoo's default dream layer, if the net came from the zoo."""
    zoo = network.spec.source.get("zoo") or {}
    if zoo.get("default_layer") in network.layer_index:
        return zoo["default_layer"]
    raise ConversionError("give a LAYER (see --list-layers)")


def resolve_layer(network: Network, text: str) -> str:
    """A layer name from an exact name, a unique prefix or a 1-based `layer_max`."""
    names = network.layer_names
    if text.isdigit():
        index, sequence = int(text), network.sequence
        if not 1 <= index <= len(sequence):
            raise ConversionError(f"layer_max {index} is out of range: {network.name!r} has "
                                  f"{len(sequence)} modules (1..{len(sequence)})")
        return sequence[index - 1]
    if text in network.layer_index:
        return text
    matches = [n for n in names if n.startswith(text)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ConversionError(f"layer {text!r} is ambiguous in {network.name!r}: it starts "
                              f"{_listing(matches)}")
    close = difflib.get_close_matches(text, names, n=5, cutoff=0.4)
    hint = f"; closest: {_listing(close)}" if close else ""
    raise ConversionError(f"{network.name!r} has no layer {text!r}{hint} (see --list-layers)")


def _listing(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
