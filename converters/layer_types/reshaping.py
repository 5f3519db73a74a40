"""Layer types that change a tensor's shape, not its values: Flatten, Caffe's Reshape,
Torch7's View and Reshape (with their batch-size rules)."""

from __future__ import annotations

import math

from torch import Tensor, nn

from ..spec import Layer
from .arithmetic import Outcome, Shape, axis_index, error, mismatch, one_input
from .modules import Lambda
from .registry import LayerType, params, register, whole_image


def flatten(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    p = params(layer)
    start, end = p["axis"], p["end_axis"]
    return Lambda(lambda x: x.flatten(start, end), f"flatten {start}..{end}")


def flatten_shape(layer: Layer, bottoms: list[Shape]) -> Outcome:
    x, p = one_input(layer, bottoms), params(layer)
    start = axis_index(layer, p["axis"], len(x))
    end = axis_index(layer, p["end_axis"], len(x))
    if end < start:
        raise error(layer, f"end_axis {end} comes before axis {start}")
    return [[*x[:start], math.prod(x[start:end + 1]), *x[end + 1:]]] * len(layer.tops)


def caffe_reshape_shape(dims: list[int], shape: list[int], axis: int, num_axes: int
                        ) -> list[int] | None:
    """Caffe's Reshape: 0 copies the input dimension, -1 is inferred; it replaces
    dimensions [axis, axis + num_axes) (num_axes -1: to the end). None: impossible."""
    start = axis if axis >= 0 else len(dims) + 1 + axis
    end = len(dims) if num_axes == -1 else start + num_axes
    if not 0 <= start <= end <= len(dims) or any(
            d == 0 and start + i >= len(dims) for i, d in enumerate(shape)) \
            or shape.count(-1) > 1:
        return None
    middle = [dims[start + i] if d == 0 else d for i, d in enumerate(shape)]
    out = dims[:start] + middle + dims[end:]
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        if known <= 0 or math.prod(dims) % known:
            return None
        out[out.index(-1)] = math.prod(dims) // known
    return out if math.prod(out) == math.prod(dims) else None


def caffe_reshape(x: Tensor, shape: list[int], axis: int, num_axes: int) -> Tensor:
    """`x` reshaped as Caffe's Reshape layer does (see `caffe_reshape_shape`)."""
    out = caffe_reshape_shape(list(x.shape), shape, axis, num_axes)
    if out is None:
        raise RuntimeError(f"Reshape{tuple(shape)} cannot hold an input of shape {list(x.shape)}")
    return x.reshape(out)


def reshape(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    p = params(layer)
    shape, axis, num_axes = p["shape"], p["axis"], p["num_axes"]
    return Lambda(lambda x: caffe_reshape(x, shape, axis, num_axes), f"reshape {shape}")


def _reshaped(layer: Layer, x: Shape, out: Shape | None) -> Outcome:
    """`out` (with one -1 inferred, as reshape does) if it holds `x`'s elements."""
    if out is not None and out.count(-1) == 1:
        known = -math.prod(out)
        out = [math.prod(x) // known if d == -1 else d for d in out] if known > 0 else None
    if out is None or math.prod(out) != math.prod(x) or min(out, default=1) < 0:
        target = layer.params.get("size", layer.params.get("shape"))
        return mismatch(layer, f"cannot reshape {x} to {target}")
    return [out] * len(layer.tops)


def reshape_shape(layer: Layer, bottoms: list[Shape]) -> Outcome:
    x, p = one_input(layer, bottoms), params(layer)
    out = caffe_reshape_shape(x, p["shape"], p["axis"], p["num_axes"])
    return _reshaped(layer, x, out)


# Torch7 dimensions are already mapped to the batched (N first) layout by the Torch7
# reader; `unbatched` marks a net whose Torch7 input had no batch dimension, so that
# View and Reshape apply Torch7's batch rules to each sample's shape.

def torch7_view_shape(shape: list[int], size: list[int], input_dims: int | None
                      ) -> list[int] | None:
    """nn.View's output shape: `size`, with a batch dimension in front when the input
    holds several views (its `numInputDims` says how many dimensions one sample has).
    None when the input cannot be viewed so."""
    elements = math.prod(s for s in size if s != -1)
    sample_dims = min(input_dims or len(shape), len(shape))
    inner = math.prod(shape[len(shape) - sample_dims:])
    if elements == 0 or inner % elements:
        return None
    batch = 1 if -1 in size else inner // elements
    batch *= math.prod(shape[:len(shape) - sample_dims])
    if batch == 1 and (input_dims is None or len(shape) <= input_dims):
        return list(size)
    return [batch, *size]


def torch7_reshape_shape(shape: list[int], size: list[int], batch_mode: bool | None
                         ) -> list[int]:
    """nn.Reshape's output shape: `size`, or the first input dimension then `size` in
    batch mode (when not forced, whenever the input is not exactly one view or its first
    dimension is 1)."""
    single = math.prod(shape) == math.prod(size) and shape[0] != 1
    if batch_mode is False or (batch_mode is None and single):
        return list(size)
    return [shape[0], *size]


def _torch7_out_shape(kind: str, p: dict, sample: Shape) -> Shape | None:
    if kind == "TorchView":
        return torch7_view_shape(sample, list(p["size"]), p["input_dims"])
    return torch7_reshape_shape(sample, list(p["size"]), p["batch_mode"])


def torch7_view(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    """nn.View (size may hold one -1) and nn.Reshape, with their batch-size rules.

    In an unbatched net the rules see one sample's shape and the batch dimension stays.
    """
    p = params(layer)
    size, unbatched = list(p["size"]), p["unbatched"]

    def view(x: Tensor) -> Tensor:
        sample = list(x.shape[1:]) if unbatched else list(x.shape)
        out = _torch7_out_shape(layer.type, p, sample)
        if out is None:
            raise RuntimeError(f"View{tuple(size)} cannot hold an input of shape {sample}")
        return x.reshape([x.shape[0], *out] if unbatched else out)

    return Lambda(view, f"{layer.type[5:]} {size}{' per sample' if unbatched else ''}")


def torch7_view_rule(layer: Layer, bottoms: list[Shape]) -> Outcome:
    x, p = one_input(layer, bottoms), params(layer)
    unbatched = p["unbatched"]
    out = _torch7_out_shape(layer.type, p, x[1:] if unbatched else x)
    if out is not None and unbatched:
        out = [x[0], *out]
    return _reshaped(layer, x, out)


register(
    LayerType("Flatten", flatten, flatten_shape, whole_image,
              defaults={"axis": 1, "end_axis": -1}),
    LayerType("Reshape", reshape, reshape_shape, whole_image,
              defaults={"axis": 0, "num_axes": -1}),
    LayerType("TorchView", torch7_view, torch7_view_rule, whole_image,
              defaults={"input_dims": None, "unbatched": False}),
    LayerType("TorchReshape", torch7_view, torch7_view_rule, whole_image,
              defaults={"batch_mode": None, "unbatched": False}),
)
