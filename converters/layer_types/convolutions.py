"""nn.Conv2d with faster CPU paths for the shapes PyTorch serves slowly on one thread.

Same parameters (names and values) as nn.Conv2d and the same numbers up to the order of
summation (fp32); every other case, any weight that needs a gradient, and autocast,
is nn.Conv2d's.
- 1×1 kernels: PyTorch sends them (one thread, batch 1) to a slow non-oneDNN path in
  both directions. Over channels-last data such a convolution is exactly the product
  (N·H·W, C_in) × (C_in, C_out), and autograd's input gradient of it one more product.
- A strided first layer on few channels (GoogLeNet's 7×7 / 2 on RGB): oneDNN's input
  gradient with 3 output channels runs at a fraction of its rate. The same gradient is
  a stride-1 transposed convolution of the space-to-depth rearranged problem (s·s times
  the channels, kernel ⌈k/s⌉) followed by depth-to-space.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

FEW_CHANNELS = 4  # input channels up to which a strided convolution's gradient is rearranged


class Conv2d(nn.Conv2d):
    """nn.Conv2d, with the CPU paths above where they apply."""

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu" or x.dim() != 4 or self.weight.requires_grad or \
                self.groups != 1 or self.dilation != (1, 1) or self.padding_mode != "zeros" \
                or isinstance(self.padding, str) or torch.is_autocast_enabled("cpu"):
            return super().forward(x)  # (autocast: its own reduced-precision kernels)
        if self.kernel_size == (1, 1) and self.stride == (1, 1) and self.padding == (0, 0):
            return pointwise_conv(x, self.weight, self.bias)
        if self.stride[0] == self.stride[1] > 1 and self.in_channels <= FEW_CHANNELS \
                and x.requires_grad and torch.is_grad_enabled():
            return _StridedFewChannels.apply(x, self.weight, self.bias, self.stride[0],
                                             self.padding)
        return super().forward(x)


def pointwise_conv(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """F.conv2d(x, weight, bias) for a (C_out, C_in, 1, 1) weight, as a matrix product in
    x's memory layout (channels-last: rows of channels; else channels × pixels)."""
    n, _, h, w = x.shape
    matrix = weight.view(weight.shape[0], weight.shape[1])
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        rows = x.permute(0, 2, 3, 1).reshape(n * h * w, -1)
        out = torch.mm(rows, matrix.t()) if bias is None else torch.addmm(bias, rows, matrix.t())
        return out.view(n, h, w, -1).permute(0, 3, 1, 2)
    out = torch.matmul(matrix, x.reshape(n, x.shape[1], h * w))
    if bias is not None:
        out = out + bias.view(-1, 1)
    return out.view(n, -1, h, w)


def space_to_depth_weight(weight: Tensor, stride: int) -> Tensor:
    """(C_out, C_in, kh, kw) -> (C_out, C_in·s², ⌈kh/s⌉, ⌈kw/s⌉): tap (s·a + p, s·b + q)
    of input channel c becomes tap (a, b) of channel (c·s + p)·s + q, as
    F.pixel_unshuffle orders channels; the kernel is zero-padded to a multiple of s."""
    c_out, c_in, kh, kw = weight.shape
    ah, aw = -(-kh // stride), -(-kw // stride)
    padded = F.pad(weight, (0, aw * stride - kw, 0, ah * stride - kh))
    split = padded.view(c_out, c_in, ah, stride, aw, stride)
    return split.permute(0, 1, 3, 5, 2, 4).reshape(c_out, c_in * stride * stride, ah, aw)


def strided_input_gradient(dy: Tensor, weight: Tensor, stride: int,
                           padding: tuple[int, int], size: tuple[int, int]) -> Tensor:
    """The input gradient of F.conv2d(x, weight, stride=stride, padding=padding) for an
    x of spatial `size`, by space-to-depth: a stride-1 transposed convolution, then
    depth-to-space, then the padding cut off (and rows no window reached set to 0)."""
    weight = space_to_depth_weight(weight, stride).contiguous(memory_format=torch.channels_last)
    dz = F.conv_transpose2d(dy, weight)  # (channels-last weights: measured faster)
    padded = F.pixel_shuffle(dz, stride)
    (ph, pw), (h, w) = padding, size
    return F.pad(padded, (-pw, w + pw - padded.shape[3], -ph, h + ph - padded.shape[2]))


class _StridedFewChannels(torch.autograd.Function):
    """F.conv2d forward; the input gradient by strided_input_gradient."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, stride: int,
                padding: tuple[int, int]) -> Tensor:
        ctx.save_for_backward(weight)
        ctx.stride, ctx.padding, ctx.size = stride, padding, tuple(x.shape[2:])
        return F.conv2d(x, weight, bias, stride, padding)

    @staticmethod
    def backward(ctx, dy: Tensor):
        (weight,) = ctx.saved_tensors
        dx = strided_input_gradient(dy, weight, ctx.stride, ctx.padding, ctx.size)
        return dx, None, None, None, None
