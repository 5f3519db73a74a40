"""Output shapes by arithmetic, over whole nets: no module built, no tensor run.

Each layer type's shape rule lives in its `LayerType` entry (`converters/layer_types`).
`ShapeWalk` runs the rules over a net for one input shape; `min_input_sizes` finds, per
layer, the smallest input height and width at which it is computed; for a net with a
type whose rule is not closed-form (ONNX nodes), the one recorded in the layers' params.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .layer_types import Outcome, Shape, Unfit, layer_type
from .spec import ConversionError, Layer, NetSpec

# Declared input sizes are bounded: model files are untrusted (3×4096×5461 fits).
MAX_INPUT_ELEMENTS = 1 << 26
# So is every layer's output at any input (a pad of 1e9 in a model file): 2⁴⁰ elements
# (4 TiB of float32) is far beyond any dream, and far below where torch's sizes overflow.
MAX_BLOB_ELEMENTS = 1 << 40

__all__ = ["MAX_BLOB_ELEMENTS", "MAX_INPUT_ELEMENTS", "Outcome", "Shape", "ShapeWalk", "Unfit",
           "check_input_shape", "closed_form", "computed_shapes", "min_input_sizes",
           "output_shapes", "walk_shapes"]


# --- whole nets ----------------------------------------------------------------------------

@dataclass
class ShapeWalk:
    """Blob and layer shapes for one input shape, layer by layer in net order.

    A layer that cannot be computed gets its `Unfit` in `unfit`, and so does every
    layer that reads what it would have written.
    """

    input_name: str
    input_shape: Shape
    blobs: dict[str, Shape] = field(default_factory=dict)
    blocked: dict[str, Unfit] = field(default_factory=dict)
    outputs: dict[str, list[Shape]] = field(default_factory=dict)
    unfit: dict[str, Unfit] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.blobs[self.input_name] = list(self.input_shape)

    def bottoms(self, layer: Layer) -> list[Shape] | Unfit:
        """The shapes `layer` reads, or the reason one of them cannot be computed."""
        for blob in layer.bottoms:
            if blob in self.blocked:
                return self.blocked[blob]
            if blob not in self.blobs:
                raise ConversionError(f"layer {layer.name!r} reads blob {blob!r} that no "
                                      f"earlier layer writes")
        return [self.blobs[b] for b in layer.bottoms]

    def add(self, layer: Layer) -> Outcome:
        """Compute `layer`'s top shapes (recording them) from the shapes so far."""
        rule = layer_type(layer).shape
        bottoms = self.bottoms(layer)
        out = bottoms if isinstance(bottoms, Unfit) else rule(layer, bottoms)
        if not isinstance(out, Unfit):
            out = _bounded(layer, out)
        if isinstance(out, Unfit):
            self.unfit[layer.name] = out
            self.blocked.update({top: out for top in layer.tops})
            return out
        self.outputs[layer.name] = out
        for top, shape in zip(layer.tops, out):
            self.blobs[top] = shape
            self.blocked.pop(top, None)
        return out


def _bounded(layer: Layer, shapes: list[Shape]) -> Outcome:
    """`shapes`, or an Unfit naming the layer where one has more than MAX_BLOB_ELEMENTS."""
    for shape in shapes:
        if math.prod(shape) > MAX_BLOB_ELEMENTS:
            return Unfit(layer.name, f"layer {layer.name!r} ({layer.type}): its output "
                         f"{shape} would have {math.prod(shape):.3g} elements (at most "
                         f"{MAX_BLOB_ELEMENTS:.3g}); check its parameters")
    return shapes


def walk_shapes(spec: NetSpec, input_shape: Shape, until: str | None = None) -> ShapeWalk:
    """Every layer's shapes (up to and including `until`) for `input_shape`."""
    walk = ShapeWalk(spec.input_name, input_shape)
    for layer in spec.layers:
        walk.add(layer)
        if layer.name == until:
            break
    return walk


def check_input_shape(shape: Shape) -> None:
    """A declared input shape must be positive and bounded (it may come from a file)."""
    if not shape or any(not isinstance(d, int) or d < 1 for d in shape):
        raise ConversionError(f"invalid input shape {shape}")
    if math.prod(shape) > MAX_INPUT_ELEMENTS:
        raise ConversionError(f"input shape {shape} has {math.prod(shape):,} elements, more "
                              f"than the {MAX_INPUT_ELEMENTS:,} a declared input may have")


def output_shapes(spec: NetSpec, input_shape: Shape | None = None) -> dict[str, list[Shape]]:
    """Each layer's top shapes at `input_shape` (default: declared, batch 1); a layer that
    cannot be computed there is an error naming it."""
    shape = list(input_shape or spec.input_shape)
    return computed_shapes(spec, [1, *shape[1:]])


def computed_shapes(spec: NetSpec, input_shape: Shape) -> dict[str, list[Shape]]:
    """Each layer's top shapes at exactly `input_shape`, which must be bounded and
    compute every layer (else an error naming the first that it does not)."""
    check_input_shape(input_shape)
    walk = walk_shapes(spec, input_shape)
    if walk.unfit:
        first = next(iter(walk.unfit.values()))
        raise ConversionError(f"cannot compute the net on input shape {input_shape}: "
                              f"{first.reason}")
    return walk.outputs


def min_input_sizes(spec: NetSpec) -> dict[str, Shape | None]:
    """Per layer, the smallest input [height, width] at which it is computed (each axis
    with the other at its declared size), or None where unknown.

    A net with a layer whose shapes have no closed form (ONNX nodes) has the sizes
    recorded in the layers' params (by dreamzoo's exporter), if any.
    """
    if not closed_form(spec):
        return {layer.name: layer.params.get("min_size") for layer in spec.layers}
    if len(spec.input_shape) != 4:
        return {layer.name: None for layer in spec.layers}
    heights, widths = _first_sizes(spec, 2), _first_sizes(spec, 3)
    return {layer.name: [heights[layer.name], widths[layer.name]]
            if layer.name in heights and layer.name in widths else None
            for layer in spec.layers}


def closed_form(spec: NetSpec) -> bool:
    """Whether every layer's shape rule is arithmetic, cheap at any input size."""
    return all(layer_type(layer).closed_form for layer in spec.layers)


def _first_sizes(spec: NetSpec, axis: int) -> dict[str, int]:
    """Per layer, the first size along `axis` (1 up to the declared one) computing it."""
    first: dict[str, int] = {}
    for size in range(1, spec.input_shape[axis] + 1):
        shape = [1, *spec.input_shape[1:]]
        shape[axis] = size
        for name in walk_shapes(spec, shape).outputs:
            first.setdefault(name, size)
        if len(first) == len(spec.layers):
            break
    return first
