"""`LayerType`: everything one layer type means, in one entry of `LAYER_TYPES`.

An entry says how the type is built (description layer + blobs -> torch module), its
output shapes by arithmetic, how it moves and widens what an output position sees
(receptive fields), whether it is a feature layer worth showing, the parameter blob
shapes it expects, and the defaults of its params, stated once. Writers of file
formats add their export functions to `exporters` (keyed by format name) with
`exports`; this layer knows no file format.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from ..registry import Registry
from ..spec import ConversionError, Layer
from .arithmetic import Outcome, Shape

Builder = Callable[[Layer, list[Tensor]], nn.Module]
ShapeRule = Callable[[Layer, list[Shape]], Outcome]
# (size, jump) of what one position sees, in input pixels: size of the window, and how
# far apart neighbouring positions' windows start.
Field = tuple[int, int]
FieldRule = Callable[[Layer, Field], Field | None]
BlobShapes = Callable[[Layer, Shape], list[tuple[int, ...]]]


@dataclass(frozen=True)
class LayerType:
    """One layer type. `field` gives None when an output position sees the whole image;
    `closed_form` False: the shape rule runs the module (too dear to search for the
    minimum input size, which then is the one recorded in the layer's params)."""

    name: str
    build: Builder
    shape: ShapeRule
    field: FieldRule
    # Rows and columns padded before the window slides (from the params, defaults filled
    # in); None: no window (the field's position is then known only where it does not grow).
    padding: Callable[[Mapping[str, Any]], tuple[int, int]] | None = None
    moves_field: bool = False  # keeps the field's size but moves it (pads, or centres)
    is_feature: bool = False
    blob_shapes: BlobShapes = lambda layer, bottom: []  # no weight blobs
    defaults: Mapping[str, Any] = field(default_factory=dict)
    closed_form: bool = True
    exporters: Registry[Callable[..., Any]] = field(
        default_factory=lambda: Registry("exporter for format"))

    def params(self, layer: Layer) -> dict[str, Any]:
        """The layer's params with this type's defaults for those it leaves out."""
        return {**self.defaults, **layer.params}


LAYER_TYPES: Registry[LayerType] = Registry("layer type")


def register(*entries: LayerType) -> None:
    for entry in entries:
        LAYER_TYPES.add(entry.name, entry)


def layer_type(layer: Layer) -> LayerType:
    """The entry of `layer`'s type; an unknown type is an error naming the layer."""
    entry = LAYER_TYPES.get(layer.type)
    if entry is None:
        raise ConversionError(f"layer {layer.name!r}: unsupported layer type {layer.type!r}")
    return entry


def params(layer: Layer) -> dict[str, Any]:
    """`layer`'s params, its type's defaults filled in."""
    return layer_type(layer).params(layer)


def exports(file_format: str, *type_names: str) -> Callable[[Callable], Callable]:
    """A decorator adding the decorated writer of `file_format` to each type's entry."""
    def add(fn: Callable) -> Callable:
        for name in type_names:
            LAYER_TYPES[name].exporters.add(file_format, fn)
        return fn
    return add


def build_module(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    """The module for `layer`, its parameters frozen; unknown types are an error."""
    module = layer_type(layer).build(layer, blobs)
    module.requires_grad_(False)
    return module


def same_field(layer: Layer, seen: Field) -> Field:
    """Each output position sees what the same input position saw."""
    return seen


def whole_image(layer: Layer, seen: Field) -> None:
    """Each output position sees the whole image (fully connected, global, reshaping)."""
    return None
