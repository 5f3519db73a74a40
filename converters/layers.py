"""One function per layer type: description layer + its blobs -> torch module.

`LAYER_BUILDERS` is keyed by the description's type names, which are Caffe's. Every
module takes the layer's bottoms as positional tensors (batched, N first) and returns
one tensor, or a tuple for several tops. Operators whose Caffe semantics differ from
PyTorch's defaults (pooling sizes and divisors, LRN) are written out here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .spec import ConversionError, Layer

Builder = Callable[[Layer, list[Tensor]], nn.Module]
LAYER_BUILDERS: dict[str, Builder] = {}


def register(*type_names: str) -> Callable[[Builder], Builder]:
    def add(fn: Builder) -> Builder:
        for name in type_names:
            LAYER_BUILDERS[name] = fn
        return fn
    return add


def build_module(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    """The module for `layer`, its parameters frozen; unknown types are an error."""
    builder = LAYER_BUILDERS.get(layer.type)
    if builder is None:
        raise ConversionError(f"layer {layer.name!r}: unsupported layer type {layer.type!r}")
    module = builder(layer, blobs)
    module.requires_grad_(False)
    return module


def _expect_blobs(layer: Layer, blobs: list[Tensor], counts: tuple[int, ...]) -> None:
    if len(blobs) not in counts:
        want = " or ".join(str(c) for c in counts)
        raise ConversionError(
            f"layer {layer.name!r} ({layer.type}): expected {want} weight blobs, "
            f"found {len(blobs)}")


class Lambda(nn.Module):
    """A parameter-free operator, with a readable repr."""

    def __init__(self, fn: Callable[..., Tensor], text: str) -> None:
        super().__init__()
        self.fn, self.text = fn, text

    def forward(self, *xs: Tensor) -> Tensor:
        return self.fn(*xs)

    def extra_repr(self) -> str:
        return self.text


# --- convolution and fully connected -------------------------------------------------

@register("Convolution")
def convolution(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    p = layer.params
    _expect_blobs(layer, blobs, (2,) if p.get("bias_term", True) else (1,))
    weight = blobs[0]
    conv = nn.Conv2d(weight.shape[1] * p["group"], weight.shape[0], tuple(weight.shape[2:]),
                     stride=tuple(p["stride"]), padding=tuple(p["pad"]),
                     dilation=tuple(p["dilation"]), groups=p["group"], bias=len(blobs) > 1,
                     device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(weight)
        if conv.bias is not None:
            conv.bias.copy_(blobs[1].reshape(-1))
    return conv


class InnerProduct(nn.Module):
    """Caffe's InnerProduct: flatten from `axis` on (C-order, as Caffe), then x W^T + b."""

    def __init__(self, weight: Tensor, bias: Tensor | None, axis: int) -> None:
        super().__init__()
        self.axis = axis
        self.linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None,
                                device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            self.linear.weight.copy_(weight)
            if bias is not None:
                self.linear.bias.copy_(bias.reshape(-1))

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x.flatten(self.axis))


@register("InnerProduct")
def inner_product(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    p = layer.params
    _expect_blobs(layer, blobs, (2,) if p.get("bias_term", True) else (1,))
    weight = blobs[0].reshape(blobs[0].shape[-2], blobs[0].shape[-1])
    if p.get("transpose", False):
        weight = weight.t()
    return InnerProduct(weight, blobs[1] if len(blobs) > 1 else None, p.get("axis", 1))


# --- pooling ---------------------------------------------------------------------------

def pooled_size(size: int, kernel: int, stride: int, pad: int, ceil: bool) -> int:
    """Caffe's (and Torch7's) output size: round, then the last window must start
    inside the padded input, i.e. before `size + pad`."""
    span = size + 2 * pad - kernel
    out = (-(-span // stride) if ceil else span // stride) + 1
    if pad > 0 and (out - 1) * stride >= size + pad:
        out -= 1
    return out


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
        self.torch_exact = all(
            p <= k // 2 and not (p == 0 and k < s) for k, s, p in zip(kernel, stride, pad))

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


@register("Pooling")
def pooling(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    p = layer.params
    return Pool(p["method"], p.get("kernel", [1, 1]), p.get("stride", [1, 1]),
                p.get("pad", [0, 0]), p.get("round", "ceil") == "ceil",
                p.get("count_pad", True), p.get("global", False))


# --- normalisation -----------------------------------------------------------------------

class _AcrossChannelLRN(torch.autograd.Function):
    """y = x · s^(−β), s = k + α/n · B x², B the 0/1 channel-window matrix.

    Written out because autograd's generic graph for it costs several times more
    than this closed-form gradient: dx = dy · s^(−β) − 2β α/n · x · Bᵀ(dy · y / s).
    """

    @staticmethod
    def forward(ctx, x: Tensor, band: Tensor, alpha_over_n: float, beta: float,
                k: float) -> Tensor:
        scale = F.conv2d(x * x, band) * alpha_over_n + k
        factor = scale.pow(-beta)
        ctx.save_for_backward(x, band, scale, factor)
        ctx.coefficient = 2 * beta * alpha_over_n
        return x * factor

    @staticmethod
    def backward(ctx, dy: Tensor):
        x, band, scale, factor = ctx.saved_tensors
        spread = F.conv2d(dy * x * factor / scale, band.transpose(0, 1))
        return dy * factor - ctx.coefficient * x * spread, None, None, None, None


class LRN(nn.Module):
    """Caffe's local response normalisation.

    ACROSS_CHANNELS: y = x · (k + α/n · Σ_{n neighbouring channels} x²)^(−β).
    WITHIN_CHANNEL:  y = x · (1 + α · mean_{n×n window, zero padded} x²)^(−β); Caffe
    builds it from AVE pooling (which counts the padding) and a Power layer with
    shift 1, so `k` plays no part.
    """

    def __init__(self, size: int, alpha: float, beta: float, k: float, region: str) -> None:
        super().__init__()
        if region not in ("across", "within"):
            raise ConversionError(f"unsupported LRN region {region!r}")
        self.size, self.alpha, self.beta, self.k, self.region = size, alpha, beta, k, region
        self._bands: dict[tuple, Tensor] = {}

    def extra_repr(self) -> str:
        return (f"{self.region}, size={self.size}, alpha={self.alpha}, beta={self.beta}, "
                f"k={self.k}")

    def band(self, x: Tensor) -> Tensor:
        """The (C, C, 1, 1) window matrix: 1 where channel j is in channel c's window."""
        channels = x.shape[1]
        key = (channels, x.dtype, x.device)
        if key not in self._bands:
            front = (self.size - 1) // 2
            c = torch.arange(channels)
            inside = (c[None, :] >= c[:, None] - front) & \
                (c[None, :] <= c[:, None] + self.size - 1 - front)
            self._bands[key] = inside.to(x.dtype).to(x.device).view(channels, channels, 1, 1)
        return self._bands[key]

    def forward(self, x: Tensor) -> Tensor:
        if self.region == "across":
            alpha_over_n = self.alpha / self.size
            if torch.is_grad_enabled() and x.requires_grad:
                return _AcrossChannelLRN.apply(x, self.band(x), alpha_over_n, self.beta, self.k)
            return x * (F.conv2d(x * x, self.band(x)) * alpha_over_n + self.k).pow(-self.beta)
        front = (self.size - 1) // 2
        mean = F.avg_pool2d(x * x, self.size, stride=1, padding=front, count_include_pad=True)
        return x * (mean * self.alpha + 1.0).pow(-self.beta)


@register("LRN")
def lrn(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    p = layer.params
    return LRN(p.get("local_size", 5), p.get("alpha", 1.0), p.get("beta", 0.75),
               p.get("k", 1.0), p.get("region", "across"))


class ChannelAffine(nn.Module):
    """y = x · scale + shift with per-channel (or per-axis-slice) scale and shift."""

    def __init__(self, scale: Tensor | None, shift: Tensor | None, axis: int = 1) -> None:
        super().__init__()
        self.axis = axis
        self.register_buffer("scale", scale)
        self.register_buffer("shift", shift)

    def _view(self, t: Tensor, x: Tensor) -> Tensor:
        return t.view(list(t.shape) + [1] * (x.dim() - self.axis - t.dim()))

    def forward(self, x: Tensor) -> Tensor:
        if self.scale is not None:
            x = x * self._view(self.scale, x)
        if self.shift is not None:
            x = x + self._view(self.shift, x)
        return x


@register("BatchNorm")
def batch_norm(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    """Caffe BatchNorm (mean, variance, moving-average factor), inference statistics.

    Two more blobs (weight, bias) make it the affine batch norm of other frameworks.
    """
    _expect_blobs(layer, blobs, (3, 5))
    factor = float(blobs[2].reshape(-1)[0])
    factor = 0.0 if factor == 0 else 1.0 / factor
    mean, var = blobs[0].reshape(-1) * factor, blobs[1].reshape(-1) * factor
    inv_std = 1.0 / torch.sqrt(var + layer.params.get("eps", 1e-5))
    scale, shift = inv_std, -mean * inv_std
    if len(blobs) == 5:
        scale, shift = scale * blobs[3].reshape(-1), shift * blobs[3].reshape(-1) + blobs[4]
    return ChannelAffine(scale, shift)


@register("Scale")
def scale(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    p = layer.params
    _expect_blobs(layer, blobs, (2,) if p.get("bias_term", False) else (1,))
    return ChannelAffine(blobs[0], blobs[1] if len(blobs) > 1 else None, p.get("axis", 1))


@register("Bias")
def bias(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    _expect_blobs(layer, blobs, (1,))
    return ChannelAffine(None, blobs[0], layer.params.get("axis", 1))


# --- element-wise ------------------------------------------------------------------------

@register("ReLU")
def relu(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    slope = layer.params.get("negative_slope", 0.0)
    if slope == 0:
        return Lambda(F.relu, "relu")
    return Lambda(lambda x: F.leaky_relu(x, slope), f"leaky_relu({slope})")


@register("Sigmoid")
def sigmoid(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    return Lambda(torch.sigmoid, "sigmoid")


@register("TanH")
def tanh(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    return Lambda(torch.tanh, "tanh")


@register("AbsVal")
def absval(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    return Lambda(torch.abs, "abs")


@register("Power")
def power(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    p = layer.params
    pw, sc, sh = p.get("power", 1.0), p.get("scale", 1.0), p.get("shift", 0.0)
    return Lambda(lambda x: (x * sc + sh) ** pw if pw != 1 else x * sc + sh,
                  f"({sc}·x + {sh})^{pw}")


@register("Dropout")
def dropout(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    # Caffe scales at training time, so inference is the identity.
    return Lambda(lambda x: x, f"dropout({layer.params.get('ratio', 0.5)}), identity")


@register("Split")
def split(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    count = len(layer.tops)
    return Lambda(lambda x: (x,) * count if count > 1 else x, f"split x{count}")


@register("Eltwise")
def eltwise(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    op, coeffs = layer.params.get("operation", "sum"), layer.params.get("coeff", [])
    if coeffs and len(coeffs) != len(layer.bottoms):
        raise ConversionError(f"layer {layer.name!r}: Eltwise has {len(coeffs)} coefficients "
                              f"for {len(layer.bottoms)} bottoms")

    def combine(*xs: Tensor) -> Tensor:
        if op == "sum":
            terms = [x * c if c != 1 else x for x, c in zip(xs, coeffs or [1.0] * len(xs))]
            return torch.stack(terms).sum(0) if len(terms) > 2 else terms[0] + terms[1]
        out = xs[0]
        for x in xs[1:]:
            out = out * x if op == "prod" else torch.maximum(out, x)
        return out

    if op not in ("sum", "prod", "max"):
        raise ConversionError(f"layer {layer.name!r}: unsupported Eltwise operation {op!r}")
    return Lambda(combine, f"eltwise {op} {coeffs or ''}".strip())


# --- shape -------------------------------------------------------------------------------

@register("Concat")
def concat(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    axis = layer.params.get("axis", 1)
    return Lambda(lambda *xs: torch.cat(xs, axis), f"concat axis={axis}")


@register("Softmax")
def softmax(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    axis = layer.params.get("axis", 1)
    return Lambda(lambda x: torch.softmax(x, axis), f"softmax axis={axis}")


@register("Flatten")
def flatten(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    start, end = layer.params.get("axis", 1), layer.params.get("end_axis", -1)
    return Lambda(lambda x: x.flatten(start, end), f"flatten {start}..{end}")


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


@register("Reshape")
def reshape(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    p = layer.params
    shape, axis, num_axes = p["shape"], p.get("axis", 0), p.get("num_axes", -1)
    return Lambda(lambda x: caffe_reshape(x, shape, axis, num_axes), f"reshape {shape}")


# --- Torch7 operators --------------------------------------------------------------------
# Types for Torch7 modules whose semantics no Caffe type has. Torch7 dimensions are
# already mapped to the batched (N first) layout by the Torch7 reader; `unbatched`
# marks a net whose Torch7 input had no batch dimension, so that View and Reshape
# apply Torch7's batch rules to each sample's shape.

@register("DepthConcat")
def depth_concat(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    """nn.DepthConcat: concatenate along `axis`, zero-padding the other dimensions of
    smaller inputs to the largest size, centred (the extra odd pixel after)."""
    axis = layer.params["axis"]

    def concat(*xs: Tensor) -> Tensor:
        dims = xs[0].dim()
        target = [max(x.shape[d] for x in xs) for d in range(dims)]
        padded = []
        for x in xs:
            pads: list[int] = []
            for d in reversed(range(dims)):  # F.pad lists the last dimension first
                extra = 0 if d == axis % dims else target[d] - x.shape[d]
                pads += [extra // 2, extra - extra // 2]
            padded.append(F.pad(x, pads) if any(pads) else x)
        return torch.cat(padded, axis)

    return Lambda(concat, f"depth concat axis={axis}")


@register("TorchThreshold")
def torch_threshold(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    """nn.Threshold: y = x where x > threshold, else value."""
    threshold, value = layer.params["threshold"], layer.params["value"]
    return Lambda(lambda x: torch.where(x > threshold, x, value),
                  f"x > {threshold} ? x : {value}")


@register("LogSoftmax")
def log_softmax(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    axis = layer.params.get("axis", 1)
    return Lambda(lambda x: torch.log_softmax(x, axis), f"log_softmax axis={axis}")


@register("DropoutV1")
def dropout_v1(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    """Torch7's original nn.Dropout (no `v2`): evaluation mode scales by 1 - p."""
    keep = 1.0 - layer.params["ratio"]
    return Lambda(lambda x: x * keep, f"dropout v1, x · {keep}")


@register("Normalize")
def normalize(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    """nn.Normalize: x / (Σ|x|^p + eps)^(1/p) over the last axis; p "inf": x / (max|x| + eps)."""
    p, eps = layer.params["p"], layer.params.get("eps", 1e-10)

    def norm(x: Tensor) -> Tensor:
        if p == "inf":
            return x / (x.abs().amax(-1, keepdim=True) + eps)
        return x / (x.abs().pow(p).sum(-1, keepdim=True) + eps).pow(1.0 / p)

    return Lambda(norm, f"normalize p={p}")


@register("ZeroPadding")
def zero_padding(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    """nn.SpatialZeroPadding: pad (or crop, when negative) [left, right, top, bottom]."""
    pad = list(layer.params["pad"])
    return Lambda(lambda x: F.pad(x, pad), f"zero padding {pad}")


@register("Identity")
def identity(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    """nn.Identity, and the table of tensors a ConcatTable outputs: inputs unchanged."""
    return Lambda(lambda *xs: xs if len(xs) > 1 else xs[0], "identity")


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


@register("TorchView", "TorchReshape")
def torch7_view(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    """nn.View (size may hold one -1) and nn.Reshape, with their batch-size rules.

    In an unbatched net the rules see one sample's shape and the batch dimension stays.
    """
    p = layer.params
    size, unbatched = list(p["size"]), p.get("unbatched", False)

    def out_shape(shape: list[int]) -> list[int] | None:
        if layer.type == "TorchView":
            return torch7_view_shape(shape, size, p.get("input_dims"))
        return torch7_reshape_shape(shape, size, p.get("batch_mode"))

    def view(x: Tensor) -> Tensor:
        sample = list(x.shape[1:]) if unbatched else list(x.shape)
        out = out_shape(sample)
        if out is None:
            raise RuntimeError(f"View{tuple(size)} cannot hold an input of shape {sample}")
        return x.reshape([x.shape[0], *out] if unbatched else out)

    return Lambda(view, f"{layer.type[5:]} {size}{' per sample' if unbatched else ''}")
