"""Output shapes by arithmetic: one rule per layer type, no module built, no tensor run.

`SHAPE_RULES` is keyed by the description's type names (as `LAYER_BUILDERS` is). A
rule maps a layer and its bottoms' shapes to its tops' shapes, or to an `Unfit` value
when the layer cannot be computed at this input size (an empty output, a fan-in that
does not match the weights); a description that is wrong at any size is a
`ConversionError` naming the layer. `ShapeWalk` runs the rules over a net for one input
shape; `min_input_sizes` finds, per layer, the smallest input height and width at which
it is computed.

Types of one file format register their rule from that format's package (the "ONNX"
type's, which runs the layer's onnx2torch module, is in `converters/onnx/layer.py`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from .layers import (
    caffe_reshape_shape,
    pooled_size,
    torch7_reshape_shape,
    torch7_view_shape,
)
from .spec import ConversionError, Layer, NetSpec

Shape = list[int]
# Declared input sizes are bounded: model files are untrusted (3×4096×5461 fits).
MAX_INPUT_ELEMENTS = 1 << 26


@dataclass(frozen=True)
class Unfit:
    """Why a layer cannot be computed at some input size; `too_small` if only larger ones do."""

    layer: str
    reason: str
    too_small: bool = False


Outcome = list[Shape] | Unfit
ShapeRule = Callable[[Layer, list[Shape]], Outcome]
SHAPE_RULES: dict[str, ShapeRule] = {}


def shape_rule(*type_names: str) -> Callable[[ShapeRule], ShapeRule]:
    def add(fn: ShapeRule) -> ShapeRule:
        for name in type_names:
            if name in SHAPE_RULES:
                raise ValueError(f"two shape rules for layer type {name!r}")
            SHAPE_RULES[name] = fn
        return fn
    return add


def _error(layer: Layer, message: str) -> ConversionError:
    return ConversionError(f"layer {layer.name!r} ({layer.type}): {message}")


def _one(layer: Layer, bottoms: list[Shape], rank: int | None = None) -> Shape:
    if len(bottoms) != 1:
        raise _error(layer, f"reads {len(bottoms)} blobs, expected 1")
    if rank is not None and len(bottoms[0]) != rank:
        raise _error(layer, f"needs a {rank}-D input, gets shape {bottoms[0]}")
    return bottoms[0]


def _axis(layer: Layer, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise _error(layer, f"axis {axis} is out of range for a {rank}-D input")
    return axis % rank


def _window(layer: Layer, **values: list[int]) -> None:
    """Kernels, strides and dilations must be at least 1 and pads at least 0."""
    for name, pair in values.items():
        low = 0 if name == "pad" else 1
        if len(pair) != 2 or any(not isinstance(v, int) or v < low for v in pair):
            raise _error(layer, f"invalid {name} {pair}")


def _spatial(layer: Layer, x: Shape, channels: int, sizes: list[int]) -> Outcome:
    """[N, channels, *sizes] for each top, or too small when a size is below 1."""
    if min(sizes) < 1:
        return Unfit(layer.name, f"layer {layer.name!r} ({layer.type}) has no output on its "
                     f"{x[3]}×{x[2]} input", too_small=True)
    return [[x[0], channels, *sizes]] * len(layer.tops)


def _mismatch(layer: Layer, message: str) -> Unfit:
    return Unfit(layer.name, f"layer {layer.name!r} ({layer.type}): {message}")


# --- convolution, fully connected, pooling ---------------------------------------------

@shape_rule("Convolution")
def convolution(layer: Layer, bottoms: list[Shape]) -> Outcome:
    x, p = _one(layer, bottoms, 4), layer.params
    _window(layer, kernel=p["kernel"], stride=p["stride"], pad=p["pad"],
            dilation=p["dilation"])
    if layer.blobs and layer.blobs[0].shape[1] * p["group"] != x[1]:
        return _mismatch(layer, f"weights for {layer.blobs[0].shape[1] * p['group']} input "
                         f"channels, input has {x[1]}")
    sizes = [(n + 2 * pad - d * (k - 1) - 1) // s + 1 for n, k, s, pad, d in
             zip(x[2:], p["kernel"], p["stride"], p["pad"], p["dilation"])]
    return _spatial(layer, x, p["num_output"], sizes)


@shape_rule("InnerProduct")
def inner_product(layer: Layer, bottoms: list[Shape]) -> Outcome:
    x, p = _one(layer, bottoms), layer.params
    axis = _axis(layer, p.get("axis", 1), len(x))
    fan_in = math.prod(x[axis:])
    if layer.blobs:
        rows, cols = layer.blobs[0].shape[-2:]
        expected = rows if p.get("transpose", False) else cols
        if fan_in != expected:
            return _mismatch(layer, f"weights for {expected} inputs, input {x} gives {fan_in}")
    return [[*x[:axis], p["num_output"]]] * len(layer.tops)


@shape_rule("Pooling")
def pooling(layer: Layer, bottoms: list[Shape]) -> Outcome:
    x, p = _one(layer, bottoms, 4), layer.params
    if p.get("method") not in ("max", "ave"):
        raise _error(layer, f"unsupported pooling method {p.get('method')!r}")
    if p.get("global", False):
        return [[*x[:2], 1, 1]] * len(layer.tops)
    kernel, stride, pad = p.get("kernel", [1, 1]), p.get("stride", [1, 1]), p.get("pad", [0, 0])
    _window(layer, kernel=kernel, stride=stride, pad=pad)
    sizes = [pooled_size(n, k, s, q, p.get("round", "ceil") == "ceil")
             for n, k, s, q in zip(x[2:], kernel, stride, pad)]
    return _spatial(layer, x, x[1], sizes)


@shape_rule("ZeroPadding")
def zero_padding(layer: Layer, bottoms: list[Shape]) -> Outcome:
    x = _one(layer, bottoms, 4)
    left, right, top, bottom = layer.params["pad"]
    return _spatial(layer, x, x[1], [x[2] + top + bottom, x[3] + left + right])


# --- same shape in, same shape out ---------------------------------------------------------

@shape_rule("ReLU", "Sigmoid", "TanH", "AbsVal", "Power", "Dropout", "DropoutV1",
            "TorchThreshold", "Normalize", "Split")
def pointwise(layer: Layer, bottoms: list[Shape]) -> Outcome:
    return [_one(layer, bottoms)] * len(layer.tops)


@shape_rule("Softmax", "LogSoftmax")
def softmax(layer: Layer, bottoms: list[Shape]) -> Outcome:
    x = _one(layer, bottoms)
    _axis(layer, layer.params.get("axis", 1), len(x))
    return [x] * len(layer.tops)


@shape_rule("LRN")
def lrn(layer: Layer, bottoms: list[Shape]) -> Outcome:
    x, p = _one(layer, bottoms, 4), layer.params
    if p.get("region", "across") not in ("across", "within"):
        raise _error(layer, f"unsupported LRN region {p.get('region')!r}")
    if p.get("region") == "within" and p.get("local_size", 5) % 2 == 0:
        raise _error(layer, "within-channel LRN needs an odd local_size (as Caffe)")
    return [x] * len(layer.tops)


@shape_rule("BatchNorm", "Scale", "Bias")
def channel_affine(layer: Layer, bottoms: list[Shape]) -> Outcome:
    x = _one(layer, bottoms)
    if layer.blobs:
        axis = _axis(layer, 1 if layer.type == "BatchNorm" else layer.params.get("axis", 1),
                     len(x))
        want = [layer.blobs[0].size] if layer.type == "BatchNorm" else \
            list(layer.blobs[0].shape)
        if x[axis:axis + len(want)] != want:
            return _mismatch(layer, f"parameters of shape {want}, input {x}")
    return [x] * len(layer.tops)


@shape_rule("Identity")
def identity(layer: Layer, bottoms: list[Shape]) -> Outcome:
    if len(bottoms) != len(layer.tops):
        raise _error(layer, f"{len(bottoms)} inputs for {len(layer.tops)} outputs")
    return list(bottoms)


# --- joining -------------------------------------------------------------------------------

@shape_rule("Eltwise")
def eltwise(layer: Layer, bottoms: list[Shape]) -> Outcome:
    p = layer.params
    if p.get("operation", "sum") not in ("sum", "prod", "max"):
        raise _error(layer, f"unsupported Eltwise operation {p.get('operation')!r}")
    if p.get("coeff") and len(p["coeff"]) != len(bottoms):
        raise _error(layer, f"{len(p['coeff'])} coefficients for {len(bottoms)} bottoms")
    if len(bottoms) < 2:
        raise _error(layer, "needs at least two bottoms")
    if any(b != bottoms[0] for b in bottoms):
        return _mismatch(layer, f"input shapes differ: {bottoms}")
    return [bottoms[0]] * len(layer.tops)


def _joined(layer: Layer, bottoms: list[Shape], pad_others: bool) -> Outcome:
    if not bottoms or any(len(b) != len(bottoms[0]) for b in bottoms):
        raise _error(layer, f"cannot join inputs of shapes {bottoms}")
    rank = len(bottoms[0])
    axis = _axis(layer, layer.params.get("axis", 1), rank)
    out = [max(b[d] for b in bottoms) for d in range(rank)]
    if not pad_others and any(b[d] != out[d] for b in bottoms for d in range(rank) if d != axis):
        return _mismatch(layer, f"input shapes differ outside axis {axis}: {bottoms}")
    out[axis] = sum(b[axis] for b in bottoms)
    return [out] * len(layer.tops)


@shape_rule("Concat")
def concat(layer: Layer, bottoms: list[Shape]) -> Outcome:
    return _joined(layer, bottoms, pad_others=False)


@shape_rule("DepthConcat")
def depth_concat(layer: Layer, bottoms: list[Shape]) -> Outcome:
    return _joined(layer, bottoms, pad_others=True)


# --- reshaping -----------------------------------------------------------------------------

@shape_rule("Flatten")
def flatten(layer: Layer, bottoms: list[Shape]) -> Outcome:
    x = _one(layer, bottoms)
    start = _axis(layer, layer.params.get("axis", 1), len(x))
    end = _axis(layer, layer.params.get("end_axis", -1), len(x))
    if end < start:
        raise _error(layer, f"end_axis {end} comes before axis {start}")
    return [[*x[:start], math.prod(x[start:end + 1]), *x[end + 1:]]] * len(layer.tops)


def _reshaped(layer: Layer, x: Shape, out: Shape | None) -> Outcome:
    """`out` (with one -1 inferred, as reshape does) if it holds `x`'s elements."""
    if out is not None and out.count(-1) == 1:
        known = -math.prod(out)
        out = [math.prod(x) // known if d == -1 else d for d in out] if known > 0 else None
    if out is None or math.prod(out) != math.prod(x) or min(out, default=1) < 0:
        target = layer.params.get("size", layer.params.get("shape"))
        return _mismatch(layer, f"cannot reshape {x} to {target}")
    return [out] * len(layer.tops)


@shape_rule("Reshape")
def reshape(layer: Layer, bottoms: list[Shape]) -> Outcome:
    x, p = _one(layer, bottoms), layer.params
    out = caffe_reshape_shape(x, p["shape"], p.get("axis", 0), p.get("num_axes", -1))
    return _reshaped(layer, x, out)


@shape_rule("TorchView", "TorchReshape")
def torch7_view(layer: Layer, bottoms: list[Shape]) -> Outcome:
    x, p = _one(layer, bottoms), layer.params
    sample = x[1:] if p.get("unbatched", False) else x
    if layer.type == "TorchView":
        out = torch7_view_shape(sample, list(p["size"]), p.get("input_dims"))
    else:
        out = torch7_reshape_shape(sample, list(p["size"]), p.get("batch_mode"))
    if out is not None and p.get("unbatched", False):
        out = [x[0], *out]
    return _reshaped(layer, x, out)


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
        rule = SHAPE_RULES.get(layer.type)
        if rule is None:
            raise ConversionError(f"layer {layer.name!r}: unsupported layer type "
                                  f"{layer.type!r}")
        bottoms = self.bottoms(layer)
        out = bottoms if isinstance(bottoms, Unfit) else rule(layer, bottoms)
        if isinstance(out, Unfit):
            self.unfit[layer.name] = out
            self.blocked.update({top: out for top in layer.tops})
            return out
        self.outputs[layer.name] = out
        for top, shape in zip(layer.tops, out):
            self.blobs[top] = shape
            self.blocked.pop(top, None)
        return out


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

    For ONNX layers it is what dreamzoo's exporter recorded in the layer's params.
    """
    if any(layer.type == "ONNX" for layer in spec.layers):
        return {layer.name: layer.params.get("min_size") for layer in spec.layers}
    if len(spec.input_shape) != 4:
        return {layer.name: None for layer in spec.layers}
    heights, widths = _first_sizes(spec, 2), _first_sizes(spec, 3)
    return {layer.name: [heights[layer.name], widths[layer.name]]
            if layer.name in heights and layer.name in widths else None
            for layer in spec.layers}


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
