"""Normalisation layer types: LRN (Caffe's, both regions), BatchNorm, Scale, Bias."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..spec import ConversionError, Layer
from .arithmetic import Outcome, Shape, axis_index, error, mismatch, one_input
from .modules import expect_blobs
from .registry import Field, LayerType, params, register, same_field

# --- local response normalisation --------------------------------------------------------


BAND_BLOCK = 64  # output channels per product in band_window_sum (measured: C = 64, 192)


def channel_window_sum(t: Tensor, before: int, after: int) -> Tensor:
    """out[:, c] = Σ t[:, c − before … c + after] (channels outside count as 0), in t's
    memory layout: over channels-last data a product with a band of ones, else one pass
    per shift (never a C×C convolution)."""
    if t.dim() == 4 and t.is_floating_point() and not t.is_contiguous() and \
            t.is_contiguous(memory_format=torch.channels_last):
        return band_window_sum(t, before, after)
    channels = t.shape[1]
    shifts = [*range(-min(before, channels - 1), 0), *range(1, min(after, channels - 1) + 1)]
    out = torch.empty_like(t)
    if not shifts:
        return out.copy_(t)
    for i, d in enumerate(shifts):
        lo, hi = max(0, -d), channels - max(0, d)
        if i == 0:  # the first shift writes every channel: no separate copy of t
            torch.add(t[:, lo:hi], t[:, lo + d:hi + d], out=out[:, lo:hi])
            edge = slice(hi, channels) if d > 0 else slice(0, lo)
            out[:, edge] = t[:, edge]
        else:
            out[:, lo:hi] += t[:, lo + d:hi + d]
    return out


def band_window_sum(t: Tensor, before: int, after: int) -> Tensor:
    """channel_window_sum of channels-last t: its rows of channels times a band matrix of
    ones, BAND_BLOCK output channels at a time so that the zeros far from the band cost
    nothing. Each output is the same few products of 1, summed: exact to rounding."""
    n, channels, h, w = t.shape
    out = torch.empty_like(t)
    rows, out_rows = (v.permute(0, 2, 3, 1).reshape(n * h * w, channels) for v in (t, out))
    for start in range(0, channels, BAND_BLOCK):
        stop = min(channels, start + BAND_BLOCK)
        lo, hi = max(0, start - before), min(channels, stop + after)
        source = torch.arange(lo, hi, device=t.device)[:, None]
        target = torch.arange(start, stop, device=t.device)[None]
        band = ((source >= target - before) & (source <= target + after)).to(t.dtype)
        torch.mm(rows[:, lo:hi], band, out=out_rows[:, start:stop])
    return out


def power(log: Tensor, exponent: float) -> Tensor:
    """t^exponent from log = ln t, as exp(exponent · ln t) in place: several times faster
    than pow with a fractional exponent on the CPU, and within a few ulp of it."""
    return log.mul_(exponent).exp_()


def across_channel_lrn(x: Tensor, front: int, back: int, alpha_over_n: float, beta: float,
                       k: float) -> tuple[Tensor, Tensor, Tensor]:
    """(y, s, s^(−β)) with y = x · s^(−β), s = k + α/n · Σ_window x², the window `front`
    channels before each channel and `back` after it (α/n applied to the squares first,
    as Caffe does)."""
    squares = torch.addcmul(x.new_zeros(()), x, x, value=alpha_over_n)
    scale = channel_window_sum(squares, front, back).add_(k)
    factor = power(torch.log(scale), -beta)
    return x * factor, scale, factor


class _AcrossChannelLRN(torch.autograd.Function):
    """across_channel_lrn's y with its closed-form input gradient.

    Written out because autograd's generic graph for it costs several times more
    than this closed-form gradient: dx = dy · s^(−β) − 2β α/n · x · Σ_window'(dy · y / s),
    window' the mirrored window (channels whose window holds c).
    """

    @staticmethod
    def forward(ctx, x: Tensor, front: int, back: int, alpha_over_n: float, beta: float,
                k: float) -> Tensor:
        y, scale, factor = across_channel_lrn(x, front, back, alpha_over_n, beta, k)
        ctx.save_for_backward(x, y, scale, factor)
        ctx.coefficient, ctx.front, ctx.back = 2 * beta * alpha_over_n, front, back
        return y

    @staticmethod
    def backward(ctx, dy: Tensor):
        x, y, scale, factor = ctx.saved_tensors
        spread = channel_window_sum((dy * y).div_(scale), ctx.back, ctx.front)
        dx = (dy * factor).addcmul_(x, spread, value=-ctx.coefficient)
        return dx, None, None, None, None, None


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

    def extra_repr(self) -> str:
        return (f"{self.region}, size={self.size}, alpha={self.alpha}, beta={self.beta}, "
                f"k={self.k}")

    def forward(self, x: Tensor) -> Tensor:
        if self.region == "across":
            front = (self.size - 1) // 2
            window = front, self.size - 1 - front, self.alpha / self.size, self.beta, self.k
            if torch.is_grad_enabled() and x.requires_grad:
                return _AcrossChannelLRN.apply(x, *window)
            return across_channel_lrn(x, *window)[0]
        front = (self.size - 1) // 2
        mean = F.avg_pool2d(x * x, self.size, stride=1, padding=front, count_include_pad=True)
        return x * (mean * self.alpha + 1.0).pow(-self.beta)


def lrn(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    p = params(layer)
    return LRN(p["local_size"], p["alpha"], p["beta"], p["k"], p["region"])


def lrn_shape(layer: Layer, bottoms: list[Shape]) -> Outcome:
    x, p = one_input(layer, bottoms, 4), params(layer)
    if p["region"] not in ("across", "within"):
        raise error(layer, f"unsupported LRN region {p['region']!r}")
    if p["region"] == "within" and p["local_size"] % 2 == 0:
        raise error(layer, "within-channel LRN needs an odd local_size (as Caffe)")
    return [x] * len(layer.tops)


def lrn_field(layer: Layer, seen: Field) -> Field:
    """Across channels LRN is pointwise in space; within a channel it widens the field."""
    p, (size, jump) = params(layer), seen
    if p["region"] == "within":
        return size + (p["local_size"] - 1) * jump, jump
    return seen


# --- per-channel affine maps -------------------------------------------------------------

def _affine(x: Tensor, scale: Tensor | None, shift: Tensor | None, axis: int) -> Tensor:
    """x · scale + shift, the parameters laid along the axes from `axis` on."""
    def view(t: Tensor) -> Tensor:
        return t.view(list(t.shape) + [1] * (x.dim() - axis - t.dim()))

    if scale is not None:
        x = x * view(scale)
    if shift is not None:
        x = x + view(shift)
    return x


class ChannelAffine(nn.Module):
    """y = x · scale + shift with per-channel (or per-axis-slice) scale and shift."""

    def __init__(self, scale: Tensor | None, shift: Tensor | None, axis: int = 1) -> None:
        super().__init__()
        self.axis = axis
        self.register_buffer("scale", scale)
        self.register_buffer("shift", shift)

    def forward(self, x: Tensor) -> Tensor:
        return _affine(x, self.scale, self.shift, self.axis)


class BatchNorm(nn.Module):
    """Caffe BatchNorm (mean, variance, moving-average factor), inference statistics.

    Two more blobs (weight, bias) make it the affine batch norm of other frameworks.
    The blobs are the module's buffers as they are (no copy); `scale` and `shift`, the
    affine map they amount to, are computed from them.
    """

    axis = 1

    def __init__(self, blobs: list[Tensor], eps: float) -> None:
        super().__init__()
        for name, blob in zip(("mean", "variance", "factor", "weight", "bias"), blobs):
            self.register_buffer(name, blob)
        factor = float(blobs[2].reshape(-1)[0])
        self.inverse_factor, self.eps, self.affine_too = \
            0.0 if factor == 0 else 1.0 / factor, eps, len(blobs) == 5

    @property
    def scale(self) -> Tensor:
        return self.affine()[0]

    @property
    def shift(self) -> Tensor:
        return self.affine()[1]

    def affine(self) -> tuple[Tensor, Tensor]:
        mean = self.mean.reshape(-1) * self.inverse_factor
        var = self.variance.reshape(-1) * self.inverse_factor
        inv_std = 1.0 / torch.sqrt(var + self.eps)
        scale, shift = inv_std, -mean * inv_std
        if self.affine_too:
            weight = self.weight.reshape(-1)
            scale, shift = scale * weight, shift * weight + self.bias
        return scale, shift

    def forward(self, x: Tensor) -> Tensor:
        return _affine(x, *self.affine(), self.axis)


def batch_norm(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    expect_blobs(layer, blobs, (3, 5))
    return BatchNorm(blobs, params(layer)["eps"])


def scale(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    p = params(layer)
    expect_blobs(layer, blobs, (2,) if p["bias_term"] else (1,))
    return ChannelAffine(blobs[0], blobs[1] if len(blobs) > 1 else None, p["axis"])


def bias(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    expect_blobs(layer, blobs, (1,))
    return ChannelAffine(None, blobs[0], params(layer)["axis"])


def _parameter_axis(layer: Layer, rank: int) -> int:
    return axis_index(layer, 1 if layer.type == "BatchNorm" else params(layer)["axis"], rank)


def channel_affine_shape(layer: Layer, bottoms: list[Shape]) -> Outcome:
    x = one_input(layer, bottoms)
    if layer.blobs:
        axis = _parameter_axis(layer, len(x))
        want = [layer.blobs[0].size] if layer.type == "BatchNorm" else \
            list(layer.blobs[0].shape)
        if x[axis:axis + len(want)] != want:
            return mismatch(layer, f"parameters of shape {want}, input {x}")
    return [x] * len(layer.tops)


def batch_norm_blobs(layer: Layer, bottom: Shape) -> list[tuple[int, ...]]:
    return [(bottom[1],), (bottom[1],), (1,)]


def channel_affine_blobs(layer: Layer, bottom: Shape) -> list[tuple[int, ...]]:
    p = params(layer)
    axis = p["axis"] % len(bottom)
    end = len(bottom) if p["num_axes"] == -1 else axis + p["num_axes"]
    shape = tuple(bottom[axis:end])
    return [shape] + [shape] * p.get("bias_term", False)


register(
    LayerType("LRN", lrn, lrn_shape, lrn_field, is_feature=True,
              padding=lambda p: ((p["local_size"] - 1) // 2,) * 2 if p["region"] == "within"
              else (0, 0),
              defaults={"local_size": 5, "alpha": 1.0, "beta": 0.75, "k": 1.0,
                        "region": "across"}),
    LayerType("BatchNorm", batch_norm, channel_affine_shape, same_field,
              blob_shapes=batch_norm_blobs, defaults={"eps": 1e-5}),
    LayerType("Scale", scale, channel_affine_shape, same_field,
              blob_shapes=channel_affine_blobs,
              defaults={"axis": 1, "num_axes": 1, "bias_term": False}),
    LayerType("Bias", bias, channel_affine_shape, same_field,
              blob_shapes=channel_affine_blobs, defaults={"axis": 1, "num_axes": 1}),
)
