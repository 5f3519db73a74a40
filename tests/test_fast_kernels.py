"""The fast CPU kernels (converters/layer_types/convolutions.py, the across-channel LRN)
against PyTorch's convolution and a straightforward LRN written here, in float64:
forward and input gradient, odd sizes, batch 2, channels-last and contiguous inputs.
The real-Caffe tests then show that the converted nets stay exact end to end."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from converters.layer_types.convolutions import Conv2d
from converters.layer_types.normalisation import LRN

pytestmark = pytest.mark.numerical

LAYOUTS = [torch.contiguous_format, torch.channels_last]


def seeded(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


def value_and_gradient(fn, x: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """fn(x) and the gradient to x of Σ fn(x) · dy for a seeded dy."""
    x = x.detach().requires_grad_(True)
    y = fn(x)
    dy = seeded(*y.shape, seed=seed)
    (dx,) = torch.autograd.grad(y, x, dy)
    return y.detach(), dx


def assert_close(ours: torch.Tensor, ref: torch.Tensor) -> None:
    assert ours.shape == ref.shape
    assert (ours - ref).abs().max() <= 1e-12 * max(1.0, ref.abs().max().item())


def conv(c_in: int, c_out: int, kernel: int, stride: int, padding: tuple[int, int],
         bias: bool, seed: int) -> Conv2d:
    module = Conv2d(c_in, c_out, kernel, stride, padding, bias=bias, dtype=torch.float64)
    module.weight = torch.nn.Parameter(seeded(c_out, c_in, kernel, kernel, seed=seed),
                                       requires_grad=False)
    if bias:
        module.bias = torch.nn.Parameter(seeded(c_out, seed=seed + 1), requires_grad=False)
    return module


CONVS = [  # c_in, c_out, kernel, stride, padding, bias, height, width
    (7, 5, 1, 1, (0, 0), True, 9, 13),  # 1×1: a matrix product
    (6, 3, 1, 1, (0, 0), False, 1, 7),
    (3, 8, 7, 2, (3, 3), True, 23, 30),  # GoogLeNet's conv1: space-to-depth gradient
    (3, 4, 7, 2, (3, 3), True, 24, 31),  # the last rows/columns reached by no window
    (2, 4, 5, 3, (1, 2), False, 17, 20),
    (1, 2, 4, 2, (0, 0), True, 10, 11),
    (3, 2, 1, 2, (0, 0), False, 9, 8),  # kernel smaller than the stride
    (5, 4, 3, 1, (1, 1), True, 8, 9),  # neither: nn.Conv2d's own path
]


@pytest.mark.parametrize("layout", LAYOUTS, ids=["contiguous", "channels_last"])
@pytest.mark.parametrize("case", CONVS, ids=lambda c: f"{c[0]}to{c[1]}k{c[2]}s{c[3]}")
def test_convolution_equals_conv2d(case, layout):
    c_in, c_out, kernel, stride, padding, bias, height, width = case
    module = conv(c_in, c_out, kernel, stride, padding, bias, seed=c_in + kernel)
    x = seeded(2, c_in, height, width, seed=3).contiguous(memory_format=layout)
    ours = value_and_gradient(module, x, seed=4)
    ref = value_and_gradient(lambda t: F.conv2d(t, module.weight, module.bias, stride,
                                                padding), x, seed=4)
    for a, b in zip(ours, ref):
        assert_close(a, b)
    with torch.no_grad():
        assert_close(module(x), ref[0])


def test_convolution_keeps_conv2d_parameters():
    """Converted weights are stored by name: the module must stay an nn.Conv2d."""
    module = conv(3, 4, 1, 1, (0, 0), True, seed=1)
    assert isinstance(module, torch.nn.Conv2d)
    assert sorted(module.state_dict()) == ["bias", "weight"]


def reference_lrn(x: torch.Tensor, size: int, alpha: float, beta: float,
                  k: float) -> torch.Tensor:
    """Caffe's ACROSS_CHANNELS formula, channel by channel: the window of channel c is
    c − (size − 1) // 2 … c + size − 1 − (size − 1) // 2, zero outside."""
    front = (size - 1) // 2
    channels = x.shape[1]
    out = []
    for c in range(channels):
        window = x[:, max(0, c - front):min(channels, c + size - front)]
        scale = k + alpha / size * (window * window).sum(1)
        out.append(x[:, c] * scale ** -beta)
    return torch.stack(out, 1)


@pytest.mark.parametrize("layout", LAYOUTS, ids=["contiguous", "channels_last"])
@pytest.mark.parametrize("size,alpha,beta,k,channels", [
    (5, 1e-4, 0.75, 1.0, 11),  # GoogLeNet's
    (5, 1e-4, 0.75, 1.0, 150),  # channels in several blocks of the band product
    (4, 0.3, 0.6, 2.0, 7),  # even: a window longer after the channel than before
    (3, 2.0, 1.5, 0.5, 2),  # fewer channels than the window
    (1, 0.5, 0.75, 1.0, 3),
])
def test_lrn_equals_reference(size, alpha, beta, k, channels, layout):
    lrn = LRN(size, alpha, beta, k, "across")
    x = (seeded(2, channels, 5, 7, seed=size) * 3).contiguous(memory_format=layout)
    ours = value_and_gradient(lrn, x, seed=9)
    ref = value_and_gradient(lambda t: reference_lrn(t, size, alpha, beta, k), x, seed=9)
    for a, b in zip(ours, ref):
        assert_close(a, b)
    with torch.no_grad():
        assert_close(lrn(x), ref[0])
