"""Layer types that slide a window or connect everything: convolution, inner product,
pooling. Pooling's sizes and divisors are Caffe's, written out where PyTorch's differ."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..spec import ConversionError, Layer
from .arithmetic import (
    Outcome,
    Shape,
    axis_index,
    check_window,
    error,
    mismatch,
    one_input,
    spatial,
)
from .convolutions import Conv2d
from .modules import expect_blobs, frozen
from .registry import Field, LayerType, params, register, whole_image

# --- convolution -------------------------------------------------------------------------


def convolution(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    p = params(layer)
    expect_blobs(layer, blobs, (2,) if p["bias_term"] else (1,))
    weight = blobs[0]
    conv = Conv2d(weight.shape[1] * p["group"], weight.shape[0], tuple(weight.shape[2:]),
                  stride=tuple(p["stride"]), padding=tuple(p["pad"]),
                  dilation=tuple(p["dilation"]), groups=p["group"], bias=len(blobs) > 1,
                  device="meta", dtype=weight.dtype)
    conv.weight = frozen(weight)
    if len(blobs) > 1:
        conv.bias = frozen(blobs[1].reshape(-1))
    return conv


def convolution_shape(layer: Layer, bottoms: list[Shape]) -> Outcome:
    x, p = one_input(layer, bottoms, 4), params(layer)
    check_window(layer, kernel=p["kernel"], stride=p["stride"], pad=p["pad"],
                 dilation=p["dilation"])
    if layer.blobs and layer.blobs[0].shape[1] * p["group"] != x[1]:
        return mismatch(layer, f"weights for {layer.blobs[0].shape[1] * p['group']} input "
                        f"channels, input has {x[1]}")
    sizes = [(n + 2 * pad - d * (k - 1) - 1) // s + 1 for n, k, s, pad, d in
             zip(x[2:], p["kernel"], p["stride"], p["pad"], p["dilation"])]
    return spatial(layer, x, p["num_output"], sizes)


def convolution_field(layer: Layer, seen: Field) -> Field:
    p, (size, jump) = params(layer), seen
    return size + (layer.blobs[0].shape[2] - 1) * p["dilation"][0] * jump, jump * p["stride"][0]


def convolution_blobs(layer: Layer, bottom: Shape) -> list[tuple[int, ...]]:
    p, channels = params(layer), bottom[1]
    if channels % p["group"] or p["num_output"] % p["group"]:
        raise ConversionError(f"layer {layer.name!r}: {channels} input channels and "
                              f"{p['num_output']} outputs do not divide into "
                              f"{p['group']} groups")
    shapes = [(p["num_output"], channels // p["group"], *p["kernel"])]
    return shapes + [(p["num_output"],)] * p["bias_term"]


# --- fully connected ---------------------------------------------------------------------

class InnerProduct(nn.Module):
    """Caffe's InnerProduct: flatten from `axis` on (C-order, as Caffe), then x W^T + b."""

    def __init__(self, weight: Tensor, bias: Tensor | None, axis: int) -> None:
        super().__init__()
        self.axis = axis
        self.linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None,
                                device="meta", dtype=weight.dtype)
        self.linear.weight = frozen(weight)
        if bias is not None:
            self.linear.bias = frozen(bias.reshape(-1))

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x.flatten(self.axis))


def inner_product(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    p = params(layer)
    expect_blobs(layer, blobs, (2,) if p["bias_term"] else (1,))
    weight = blobs[0].reshape(blobs[0].shape[-2], blobs[0].shape[-1])
    if p["transpose"]:
        weight = weight.t()
    return InnerProduct(weight, blobs[1] if len(blobs) > 1 else None, p["axis"])


def inner_product_shape(layer: Layer, bottoms: list[Shape]) -> Outcome:
    x, p = one_input(layer, bottoms), params(layer)
    axis = axis_index(layer, p["axis"], len(x))
    fan_in = math.prod(x[axis:])
    if layer.blobs:
        rows, cols = layer.blobs[0].shape[-2:]
        expected = rows if p["transpose"] else cols
        if fan_in != expected:
            return mismatch(layer, f"weights for {expected} inputs, input {x} gives {fan_in}")
    return [[*x[:axis], p["num_output"]]] * len(layer.tops)


def inner_product_blobs(layer: Layer, bottom: Shape) -> list[tuple[int, ...]]:
    p = params(layer)
    fan_in = math.prod(bottom[p["axis"]:])
    weight = (fan_in, p["num_output"]) if p["transpose"] else (p["num_output"], fan_in)
    return [weight] + [(p["num_output"],)] * p["bias_term"]


# --- pooling -----------------------------------------------------------------------------

def pooled_size(size: int, kernel: int, stride: int, pad: int, ceil: bool) -> int:
    """Caffe's (and Torch7's) output size: round, then the last window must start
    inside the padded input, i.e. before `size + pad`."""
    span = size + 2 * pad - kernel
    out = (-(-span // stride) if ceil else span // stride) + 1
    if pad > 0 and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def torch_exact(kernel: list[int], stride: list[int], pad: list[int]) -> bool:
    """Whether PyTorch's (and ONNX's) pooling sizes and divisors equal Caffe's here."""
    return all(p <= k // 2 and not (p == 0 and k < s) for k, s, p in zip(kernel, stride, pad))


class Pool(nn.Module):
    """MAX or AVE pooling with Caffe's output size and averaging divisor.

    The divisor of a window counts the padded positions it covers but not those past
    the padding (Caffe; Torch7's default), or only image positions (`count_pad` False,
    Torch7's setCountExcludePad). PyTorch's pooling has exactly these rules except
    that it also drops a last window starting beyond `size + pad` when pad is 0,
    which can only happen when kernel < stride; it also refuses pad > kernel / 2.
    Those two cases take the explicit path.
    """

    def __init__(self, method: str, kernel: list[int], stride: list[int], pad: list[int],
                 ceil: bool = True, count_pad: bool = True, global_pool: bool = False) -> None:
        super().__init__()
        if method not in ("max", "ave"):
            raise ConversionError(f"unsupported pooling method {method!r}")
        self.method, self.kernel, self.stride, self.pad = method, kernel, stride, pad
        self.ceil, self.count_pad, self.global_pool = ceil, count_pad, global_pool
        self.torch_exact = torch_exact(kernel, stride, pad)

    def extra_repr(self) -> str:
        if self.global_pool:
            return f"{self.method}, global"
        return (f"{self.method}, kernel={self.kernel}, stride={self.stride}, pad={self.pad}, "
                f"{'ceil' if self.ceil else 'floor'}"
                + ("" if self.count_pad else ", exclude pad"))

    def forward(self, x: Tensor) -> Tensor:
        if self.global_pool:
            return x.amax((2, 3), keepdim=True) if self.method == "max" else x.mean((2, 3), True)
        if self.torch_exact:
            if self.method == "max":
                return F.max_pool2d(x, self.kernel, self.stride, self.pad, ceil_mode=self.ceil)
            return F.avg_pool2d(x, self.kernel, self.stride, self.pad, ceil_mode=self.ceil,
                                count_include_pad=self.count_pad)
        return self._explicit(x)

    def _explicit(self, x: Tensor) -> Tensor:
        sizes = x.shape[2:]
        outs = [pooled_size(n, k, s, p, self.ceil)
                for n, k, s, p in zip(sizes, self.kernel, self.stride, self.pad)]
        # Pad (or crop, when negative) so that the windows tile the input exactly.
        ends = [(o - 1) * s + k - n - p
                for o, s, k, n, p in zip(outs, self.stride, self.kernel, sizes, self.pad)]
        padding = (self.pad[1], ends[1], self.pad[0], ends[0])
        if self.method == "max":
            # Caffe starts each max at -FLT_MAX, so a window wholly outside the input
            # (possible when kernel < stride) yields that, not -inf.
            padded = F.pad(x, padding, value=torch.finfo(x.dtype).min)
            return F.max_pool2d(padded, self.kernel, self.stride)
        sums = F.avg_pool2d(F.pad(x, padding), self.kernel, self.stride, divisor_override=1)
        divisor = torch.ones((), dtype=x.dtype, device=x.device)
        for dim, (o, n, k, s, p) in enumerate(zip(outs, sizes, self.kernel, self.stride, self.pad)):
            start = torch.arange(o, device=x.device) * s - p
            end = torch.clamp(start + k, max=n + p)
            if not self.count_pad:
                start, end = start.clamp(min=0), end.clamp(max=n)
            count = (end - start).to(x.dtype)
            divisor = divisor * (count.view(-1, 1) if dim == 0 else count.view(1, -1))
        return sums / divisor


def pooling(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    p = params(layer)
    return Pool(p["method"], p["kernel"], p["stride"], p["pad"], p["round"] == "ceil",
                p["count_pad"], p["global"])


def pooling_shape(layer: Layer, bottoms: list[Shape]) -> Outcome:
    x, p = one_input(layer, bottoms, 4), params(layer)
    if p.get("method") not in ("max", "ave"):
        raise error(layer, f"unsupported pooling method {p.get('method')!r}")
    if p["global"]:
        return [[*x[:2], 1, 1]] * len(layer.tops)
    check_window(layer, kernel=p["kernel"], stride=p["stride"], pad=p["pad"])
    sizes = [pooled_size(n, k, s, q, p["round"] == "ceil")
             for n, k, s, q in zip(x[2:], p["kernel"], p["stride"], p["pad"])]
    return spatial(layer, x, x[1], sizes)


def pooling_field(layer: Layer, seen: Field) -> Field | None:
    p, (size, jump) = params(layer), seen
    if p["global"]:
        return None
    return size + (max(p["kernel"]) - 1) * jump, jump * max(p["stride"])


register(
    LayerType("Convolution", convolution, convolution_shape, convolution_field,
              padding=lambda p: tuple(p["pad"]), is_feature=True, blob_shapes=convolution_blobs,
              defaults={"stride": [1, 1], "pad": [0, 0], "dilation": [1, 1], "group": 1,
                        "bias_term": True}),
    LayerType("InnerProduct", inner_product, inner_product_shape, whole_image,
              blob_shapes=inner_product_blobs,
              defaults={"bias_term": True, "axis": 1, "transpose": False}),
    LayerType("Pooling", pooling, pooling_shape, pooling_field,
              padding=lambda p: tuple(p["pad"]), is_feature=True,
              defaults={"kernel": [1, 1], "stride": [1, 1], "pad": [0, 0], "round": "ceil",
                        "count_pad": True, "global": False}),
)
