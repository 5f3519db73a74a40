"""The network description every reader produces and the builder consumes.

A network is an ordered list of named layers. Each layer has a type (Caffe's type
name, e.g. "Convolution"; readers of other formats map their types onto these),
parameters in a plain JSON-able dict, the names of the blobs it reads and writes, and
its parameter blobs as numpy arrays in Caffe's layout (conv: out, in/group, kh, kw).
Blob names follow Caffe: a layer that writes a blob it also reads (an in-place ReLU)
overwrites it, so a blob's value is the one after its last writer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ConversionError
from .preprocessing import Preprocessing, default_preprocessing


def first_line(e: Exception) -> str:
    """The first non-blank line of an exception's message (else its type's name)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[0] if lines else type(e).__name__


# The format string of network.json (and of the weights file's metadata).
NETWORK_FORMAT = "dreamzoo-network/1"

@dataclass
class Layer:
    name: str
    type: str
    bottoms: list[str]
    tops: list[str]
    params: dict[str, Any] = field(default_factory=dict)
    blobs: list[np.ndarray] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type,
                               "bottoms": self.bottoms, "tops": self.tops}
        if self.params:
            out["params"] = self.params
        if self.blobs:
            out["blobs"] = [list(b.shape) for b in self.blobs]
        return out


@dataclass
class NetSpec:
    """A whole network: its input blob, layers in execution order, and metadata.

    `sequence` lists, for the seed script's integer `layer_max`, which layer is
    module N (1-based): for Caffe the prototxt's layers in file order without input
    layers (as loadcaffe built its nn.Sequential); for Torch7 the top-level modules.
    """

    name: str
    input_name: str
    input_shape: list[int]
    layers: list[Layer]
    sequence: list[str] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)
    preprocessing: Preprocessing | None = None

    def __post_init__(self) -> None:
        if not self.layers:
            raise ConversionError(f"network {self.name!r} has no layers")
        seen: set[str] = set()
        for layer in self.layers:
            if layer.name in seen:
                raise ConversionError(f"network {self.name!r}: two layers are named {layer.name!r}")
            if not layer.tops:
                raise ConversionError(f"network {self.name!r}: layer {layer.name!r} writes no blob")
            seen.add(layer.name)
        if not self.sequence:
            self.sequence = [layer.name for layer in self.layers]

    def input_preprocessing(self) -> Preprocessing:
        """The recorded preprocessing, else the default for the input's channel count."""
        return self.preprocessing or default_preprocessing(self.input_shape[1])

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def to_json(self, min_sizes: dict[str, list[int] | None] | None = None) -> dict[str, Any]:
        """The description as JSON; `min_sizes` (`shapes.min_input_sizes`) gives each layer
        a "min_size": the smallest input [height, width] it is computed at, null if
        unknown (for readers of the file: loading recomputes it)."""
        out: dict[str, Any] = {
            "format": NETWORK_FORMAT,
            "name": self.name,
            "input": {"name": self.input_name, "shape": self.input_shape},
            "source": self.source,
            "sequence": self.sequence,
            "layers": [layer.to_json() for layer in self.layers],
        }
        if min_sizes is not None:
            for entry in out["layers"]:
                entry["min_size"] = min_sizes.get(entry["name"])
        if self.preprocessing is not None:
            out["preprocessing"] = self.preprocessing.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any], blobs: dict[str, np.ndarray]) -> NetSpec:
        """Rebuild from `to_json()` output and the blobs keyed by `blob_key`."""
        layers = []
        for entry in data["layers"]:
            layer_blobs = []
            for i, shape in enumerate(entry.get("blobs", [])):
                key = blob_key(entry["name"], i)
                if key not in blobs or list(blobs[key].shape) != list(shape):
                    raise ConversionError(
                        f"weights for {key!r} are missing or have the wrong shape")
                layer_blobs.append(blobs[key])
            layers.append(Layer(entry["name"], entry["type"], list(entry["bottoms"]),
                                list(entry["tops"]), dict(entry.get("params", {})), layer_blobs))
        preprocessing = data.get("preprocessing")
        return cls(data["name"], data["input"]["name"], list(data["input"]["shape"]), layers,
                   list(data.get("sequence", [])), dict(data.get("source", {})),
                   None if preprocessing is None else Preprocessing.from_json(preprocessing))


def blob_key(layer_name: str, index: int) -> str:
    """The key of a layer's parameter blob in a saved weights file."""
    return f"{layer_name}#{index}"
