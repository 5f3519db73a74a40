"""Torch7 module semantics that the reference files do not exercise, checked against
the formulas of Torch7's nn sources written out here in numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchfile import TorchObject

import converters
from converters.network import Network
from converters.torch7.reader import convert_torch7

pytestmark = pytest.mark.numerical


def module(class_name: str, **fields) -> TorchObject:
    """A module as the file reader returns it: class name, fields with bytes keys."""
    return TorchObject(class_name.encode(), {k.encode(): v for k, v in fields.items()})


def sequential(*modules: TorchObject, **fields) -> TorchObject:
    return module("nn.Sequential", modules={i + 1: m for i, m in enumerate(modules)}, **fields)


def run(root: TorchObject, x: np.ndarray, batched: bool = True) -> np.ndarray:
    spec = convert_torch7(root, "test", input_shape=list(x.shape), batched=batched)
    with torch.no_grad():
        return Network(spec)(torch.from_numpy(x)).numpy()


@pytest.fixture
def x() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((2, 3, 6, 7)).astype(np.float32)


def test_threshold_with_value(x):
    y = run(module("nn.Threshold", threshold=0.5, val=-2.0), x)
    np.testing.assert_array_equal(y, np.where(x > 0.5, x, np.float32(-2.0)))


def test_dropout_v1_scales_in_evaluation_and_v2_does_not(x):
    np.testing.assert_allclose(run(module("nn.Dropout", p=0.3), x), x * np.float32(0.7))
    np.testing.assert_array_equal(run(module("nn.Dropout", p=0.3, v2=True), x), x)


def test_mul_constant(x):
    np.testing.assert_allclose(run(module("nn.MulConstant", constant_scalar=2.5), x), x * 2.5)


@pytest.mark.parametrize("p", [2.0, 1.0, float("inf")])
def test_normalize(p):
    v = np.random.default_rng(1).standard_normal((4, 9)).astype(np.float32)
    if p == float("inf"):
        norm = np.abs(v).max(1, keepdims=True) + 1e-10
    else:
        norm = ((np.abs(v) ** p).sum(1, keepdims=True) + 1e-10) ** (1 / p)
    np.testing.assert_allclose(run(module("nn.Normalize", p=p, eps=1e-10), v), v / norm,
                               rtol=1e-6)


def test_zero_padding_pads_and_crops(x):
    y = run(module("nn.SpatialZeroPadding", pad_l=2, pad_r=-1, pad_t=0, pad_b=1), x)
    expected = np.pad(x, [(0, 0), (0, 0), (0, 1), (2, 0)])[:, :, :, :-1]
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("size, input_dims, shape, batched, expected", [
    ([-1], 3, [2, 16, 9, 9], True, [2, 1296]),      # handbuilt's flatten
    ([-1], 3, [1, 16, 8, 8], False, [1, 1024]),      # loadcaffe's torch_view, one image
    ([128], None, [1, 128, 1, 1], False, [1, 128]),  # stl10: one view of 128
    ([128], None, [3, 128, 1, 1], True, [3, 128]),   # three of them: the batch
    ([4, -1], None, [2, 8, 1, 1], True, [4, 4]),     # -1 absorbs the rest, no batch
])
def test_view_batch_rules(size, input_dims, shape, batched, expected):
    fields = {"size": np.array(size)}
    if input_dims is not None:
        fields["numInputDims"] = input_dims
    y = run(module("nn.View", **fields), np.zeros(shape, np.float32), batched)
    assert list(y.shape) == expected


@pytest.mark.parametrize("shape, batched, batch_mode, expected", [
    ([1, 32, 1, 1], False, None, [1, 32]),      # one sample of 32: a view
    ([5, 32, 1, 1], True, None, [5, 32]),       # a batch of 5
    ([1, 32, 1, 1], True, None, [1, 32]),       # first dimension 1: batch mode
    ([4, 8, 1, 1], True, False, [32]),          # batch mode off
])
def test_reshape_batch_rules(shape, batched, batch_mode, expected):
    fields = {"size": np.array([32])}
    if batch_mode is not None:
        fields["batchMode"] = batch_mode
    y = run(module("nn.Reshape", **fields), np.zeros(shape, np.float32), batched)
    assert list(y.shape) == expected


def window_sums(x: np.ndarray, k: int, s: int) -> np.ndarray:
    """Sums over k×k windows, stride s, no padding, floor rounding."""
    n, c, h, w = x.shape
    out = np.zeros((n, c, (h - k) // s + 1, (w - k) // s + 1), np.float64)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = x[:, :, i * s:i * s + k, j * s:j * s + k].sum((2, 3))
    return out


def test_average_pooling_saved_before_divide_sums(x):
    """nn's updateOutput multiplies by kW·kH when `divide` is missing (old files);
    cudnn's does not."""
    old = module("nn.SpatialAveragePooling", kW=2, kH=2, dW=2, dH=2)
    np.testing.assert_allclose(run(old, x), window_sums(x, 2, 2), rtol=1e-6)
    cudnn = module("cudnn.SpatialAveragePooling", kW=2, kH=2, dW=2, dH=2)
    np.testing.assert_allclose(run(cudnn, x), window_sums(x, 2, 2) / 4, rtol=1e-6)


def test_inn_pooling_rounds_up(x):
    # 6×7 input, 3×3 windows, stride 2: floor gives 2×3, ceil 3×3.
    assert run(module("inn.SpatialMaxPooling", kW=3, kH=3, dW=2, dH=2), x).shape[2:] == (3, 3)
    assert run(module("nn.SpatialMaxPooling", kW=3, kH=3, dW=2, dH=2), x).shape[2:] == (2, 3)


def test_batch_norm_from_running_std(x):
    rng = np.random.default_rng(2)
    mean, var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    weight, bias = rng.standard_normal(3), rng.standard_normal(3)
    std = (1 / np.sqrt(var + 1e-5)).astype(np.float32)
    bn = module("nn.SpatialBatchNormalization", running_mean=mean.astype(np.float32),
                running_std=std, weight=weight.astype(np.float32),
                bias=bias.astype(np.float32), eps=1e-5)
    view = (slice(None), None, None)
    expected = (x - mean[view]) * std[view] * weight[view] + bias[view]
    np.testing.assert_allclose(run(bn, x), expected, rtol=1e-5, atol=1e-5)


def test_old_convolution_mm_defaults():
    """Face-detector era SpatialConvolutionMM: no dW/dH/padW/padH, `padding` instead."""
    rng = np.random.default_rng(3)
    weight, bias = rng.standard_normal((4, 2 * 3 * 3)).astype(np.float32), np.zeros(4, np.float32)
    conv = module("nn.SpatialConvolutionMM", nInputPlane=2, nOutputPlane=4, kW=3, kH=3,
                  padding=1, weight=weight, bias=bias)
    v = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    padded = np.pad(v, [(0, 0), (0, 0), (1, 1), (1, 1)])
    expected = np.zeros((1, 4, 5, 5))
    for i in range(5):
        for j in range(5):
            expected[0, :, i, j] = weight @ padded[0, :, i:i + 3, j:j + 3].reshape(-1)
    np.testing.assert_allclose(run(conv, v), expected, rtol=1e-5, atol=1e-5)


def test_concat_table_with_join_and_add(x):
    """ConcatTable feeds each branch the input; its output is a table that JoinTable
    and CAddTable consume. Torch7 dimension 1 of one sample is the channel axis."""
    branches = module("nn.ConcatTable", modules={
        1: module("nn.MulConstant", constant_scalar=2.0),
        2: module("nn.MulConstant", constant_scalar=3.0)})
    joined = run(sequential(branches, module("nn.JoinTable", dimension=1)), x[:1], False)
    np.testing.assert_allclose(joined, np.concatenate([2 * x[:1], 3 * x[:1]], 1))
    joined = run(sequential(branches, module("nn.JoinTable", dimension=1, nInputDims=3)), x)
    np.testing.assert_allclose(joined, np.concatenate([2 * x, 3 * x], 1))
    added = run(sequential(branches, module("nn.CAddTable")), x)
    np.testing.assert_allclose(added, 5 * x, rtol=1e-6)
    single = module("nn.ConcatTable", modules={1: module("nn.Identity")})
    joined = run(sequential(single, module("nn.JoinTable", dimension=2)), x)
    np.testing.assert_array_equal(joined, x)


def test_names_sequence_and_tables(x):
    net = sequential(
        module("nn.ReLU", name=b"relu"),
        sequential(module("nn.MulConstant", constant_scalar=2.0),
                   module("nn.ConcatTable", modules={1: module("nn.Identity"),
                                                     2: module("nn.Tanh", name=b"relu")})),
        module("nn.CAddTable", name=b"sum"))
    spec = convert_torch7(net, "test", batched=True)
    assert [layer.name for layer in spec.layers] == [
        "relu", "MulConstant_2.1", "Identity_2.2.1", "relu_2", "ConcatTable_2.2", "sum"]
    assert spec.sequence == ["relu", "ConcatTable_2.2", "sum"]
    assert spec.input_shape == [1, 3, 224, 224]
    outs = Network(spec).forward_to(torch.from_numpy(x), spec.sequence)
    assert isinstance(outs["ConcatTable_2.2"], tuple) and len(outs["ConcatTable_2.2"]) == 2
    relu = np.maximum(x, 0)
    np.testing.assert_allclose(outs["sum"].numpy(), 2 * relu + np.tanh(2 * relu), rtol=1e-6)


def test_batched_detection_needs_agreeing_concat_dimensions():
    branch = {1: module("nn.Identity")}
    net = sequential(module("nn.Concat", dimension=1, modules=branch),
                     module("nn.Concat", dimension=2, modules=branch))
    with pytest.raises(converters.ConversionError, match="pass batched=True or False"):
        convert_torch7(net, "test")
    assert convert_torch7(net, "test", input_shape=[1, 3, 8, 8], batched=True).source[
        "batched"] is True


def test_cudnn_grouped_convolution_is_two_convolutions_side_by_side():
    rng = np.random.default_rng(4)
    weight = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)  # (out, in/groups, kH, kW)
    bias = rng.standard_normal(4).astype(np.float32)
    grouped = module("cudnn.SpatialConvolution", nInputPlane=2, nOutputPlane=4, kW=3, kH=3,
                     dW=1, dH=1, padW=0, padH=0, groups=2, weight=weight, bias=bias)
    v = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    halves = []
    for g in range(2):
        half = module("nn.SpatialConvolution", nInputPlane=1, nOutputPlane=2, kW=3, kH=3,
                      weight=weight[2 * g:2 * g + 2], bias=bias[2 * g:2 * g + 2])
        halves.append(run(half, v[:, g:g + 1]))
    np.testing.assert_allclose(run(grouped, v), np.concatenate(halves, 1), atol=1e-5)
