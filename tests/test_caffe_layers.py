"""Layer types that no reference net uses, checked against numpy re-implementations of
Caffe's formulas (written here, independently of converters/layer_types)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

import converters

pytestmark = pytest.mark.numerical

PROTOTXT = """
name: "AllTypes"
input: "data"
input_shape { dim: 1 dim: 4 dim: 9 dim: 11 }
layer { name: "within" type: "LRN" bottom: "data" top: "within"
  lrn_param { norm_region: WITHIN_CHANNEL local_size: 3 alpha: 0.5 beta: 0.75 k: 7 } }
layer { name: "across" type: "LRN" bottom: "data" top: "across"
  lrn_param { local_size: 3 alpha: 0.3 beta: 0.6 k: 2 } }
layer { name: "split" type: "Split" bottom: "data" top: "a" top: "b" }
layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" bottom: "within" top: "sum"
  eltwise_param { operation: SUM coeff: 0.5 coeff: -2 coeff: 3 } }
layer { name: "prod" type: "Eltwise" bottom: "a" bottom: "across" top: "prod"
  eltwise_param { operation: PROD } }
layer { name: "max" type: "Eltwise" bottom: "a" bottom: "across" top: "max"
  eltwise_param { operation: MAX } }
layer { name: "bn" type: "BatchNorm" bottom: "sum" top: "bn" batch_norm_param { eps: 0.001 } }
layer { name: "scale" type: "Scale" bottom: "bn" top: "scale" scale_param { bias_term: true } }
layer { name: "power" type: "Power" bottom: "scale" top: "power"
  power_param { power: 2 scale: 0.5 shift: 1.5 } }
layer { name: "leaky" type: "ReLU" bottom: "prod" top: "leaky" relu_param { negative_slope: 0.1 } }
layer { name: "sigmoid" type: "Sigmoid" bottom: "max" top: "sigmoid" }
layer { name: "tanh" type: "TanH" bottom: "max" top: "tanh" }
layer { name: "cat" type: "Concat" bottom: "sigmoid" bottom: "tanh" top: "cat" }
layer { name: "drop" type: "Dropout" bottom: "cat" top: "cat" }
layer { name: "sparse_pool" type: "Pooling" bottom: "power" top: "sparse_pool"
  pooling_param { pool: MAX kernel_size: 2 stride: 3 } }
layer { name: "sparse_ave" type: "Pooling" bottom: "power" top: "sparse_ave"
  pooling_param { pool: AVE kernel_size: 2 stride: 3 } }
layer { name: "wide_pad" type: "Pooling" bottom: "power" top: "wide_pad"
  pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 2 } }
layer { name: "floor" type: "Pooling" bottom: "power" top: "floor"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 round_mode: FLOOR } }
layer { name: "global" type: "Pooling" bottom: "power" top: "global"
  pooling_param { pool: AVE global_pooling: true } }
layer { name: "conv" type: "Convolution" bottom: "cat" top: "conv"
  convolution_param { num_output: 4 kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1
                      pad_h: 1 pad_w: 0 dilation: 2 group: 2 bias_term: false } }
layer { name: "flat" type: "Flatten" bottom: "conv" top: "flat" flatten_param { axis: 2 } }
layer { name: "reshape" type: "Reshape" bottom: "conv" top: "reshape"
  reshape_param { shape { dim: 0 dim: -1 dim: 2 } } }
layer { name: "fc" type: "InnerProduct" bottom: "flat" top: "fc"
  inner_product_param { num_output: 3 axis: 2 } }
layer { name: "softmax" type: "Softmax" bottom: "fc" top: "softmax" softmax_param { axis: 2 } }
"""


def weights(layer: str, index: int, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng([zlib.crc32(layer.encode()), index])
    array = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    if layer == "bn" and index == 2:
        array[:] = 2.0  # the moving-average factor divides mean and variance
    return array


def pool_np(x, kernel, stride, pad, method, ceil=True):
    """Caffe's PoolingLayer::Forward_cpu, loop for loop."""
    n, c, h, w = x.shape
    def size(s):
        span = s + 2 * pad - kernel
        out = (-(-span // stride) if ceil else span // stride) + 1
        return out - 1 if pad and (out - 1) * stride >= s + pad else out
    oh, ow = size(h), size(w)
    out = np.zeros((n, c, oh, ow), np.float64)
    for i in range(oh):
        for j in range(ow):
            hs, ws = i * stride - pad, j * stride - pad
            he, we = min(hs + kernel, h + pad), min(ws + kernel, w + pad)
            count = (he - hs) * (we - ws)
            window = x[:, :, max(hs, 0):min(he, h), max(ws, 0):min(we, w)]
            if method == "max":  # Caffe starts from -FLT_MAX; an empty window keeps it
                out[:, :, i, j] = window.max((2, 3), initial=np.finfo(np.float32).min)
            else:  # and divides by zero for an empty window (0/0)
                with np.errstate(invalid="ignore"):
                    out[:, :, i, j] = window.sum((2, 3)) / count
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("net") / "deploy.prototxt"
    path.write_text(PROTOTXT)
    net = converters.load_caffe(path, weights)
    x = np.random.default_rng(0).normal(0, 2, (1, 4, 9, 11)).astype(np.float32)
    with torch.no_grad():
        outs = net.forward_to(torch.from_numpy(x), net.layer_names)
    values = {k: (tuple(t.double().numpy() for t in v) if isinstance(v, tuple)
                  else v.double().numpy()) for k, v in outs.items()}
    return x.astype(np.float64), values, net


def close(ours, expected):
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)


def test_lrn_within_channel_ignores_k(run):
    x, out, _ = run
    padded = np.pad(x * x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    window = sum(padded[:, :, i:i + 9, j:j + 11] for i in range(3) for j in range(3)) / 9
    close(out["within"], x * (1 + 0.5 * window) ** -0.75)


def test_lrn_across_channels(run):
    x, out, _ = run
    padded = np.pad(x * x, ((0, 0), (1, 1), (0, 0), (0, 0)))
    window = sum(padded[:, i:i + 4] for i in range(3))
    close(out["across"], x * (2 + 0.3 / 3 * window) ** -0.6)


def test_eltwise_split_and_activations(run):
    x, out, _ = run
    a, b = out["split"]
    close(a, x)
    close(out["sum"], 0.5 * x - 2 * x + 3 * out["within"])
    close(out["prod"], x * out["across"])
    close(out["max"], np.maximum(x, out["across"]))
    close(out["leaky"], np.where(out["prod"] > 0, out["prod"], 0.1 * out["prod"]))
    close(out["sigmoid"], 1 / (1 + np.exp(-out["max"])))
    close(out["tanh"], np.tanh(out["max"]))
    close(out["drop"], np.concatenate([out["sigmoid"], out["tanh"]], 1))


def test_batch_norm_scale_power(run):
    x, out, _ = run
    mean, var = weights("bn", 0, (4,)) / 2, weights("bn", 1, (4,)) / 2
    bn = (out["sum"] - mean[:, None, None]) / np.sqrt(var[:, None, None] + 0.001)
    close(out["bn"], bn)
    gamma, beta = weights("scale", 0, (4,)), weights("scale", 1, (4,))
    close(out["scale"], bn * gamma[:, None, None] + beta[:, None, None])
    close(out["power"], (0.5 * out["scale"] + 1.5) ** 2)


@pytest.mark.parametrize("name,kernel,stride,pad,method,ceil", [
    # kernel < stride: Caffe keeps a last window that starts at or past the edge
    ("sparse_pool", 2, 3, 0, "max", True),
    ("sparse_ave", 2, 3, 0, "ave", True),
    ("wide_pad", 3, 2, 2, "ave", True),  # pad > kernel / 2: PyTorch refuses it
    ("floor", 3, 2, 0, "max", False),
])
def test_pooling_edge_cases(run, name, kernel, stride, pad, method, ceil):
    _, out, _ = run
    close(out[name], pool_np(out["power"], kernel, stride, pad, method, ceil))


def test_global_pooling(run):
    _, out, _ = run
    close(out["global"], out["power"].mean((2, 3), keepdims=True))


def test_grouped_dilated_rectangular_convolution(run):
    _, out, _ = run
    x, w = out["drop"], weights("conv", 0, (4, 4, 3, 2)).astype(np.float64)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0)))
    oh, ow = (xp.shape[2] - 5) // 2 + 1, xp.shape[3] - 2
    expected = np.zeros((1, 4, oh, ow))
    for o in range(4):
        g = o // 2
        for i in range(oh):
            for j in range(ow):
                patch = xp[0, 4 * g:4 * g + 4, 2 * i:2 * i + 5:2, j:j + 3:2]
                expected[0, o, i, j] = (patch * w[o]).sum()
    close(out["conv"], expected)


def test_flatten_reshape_inner_product_softmax(run):
    _, out, _ = run
    conv = out["conv"]
    flat = conv.reshape(1, 4, -1)
    close(out["flat"], flat)
    close(out["reshape"], conv.reshape(1, -1, 2))
    fc = flat @ weights("fc", 0, (3, flat.shape[2])).T.astype(np.float64) + weights("fc", 1, (3,))
    close(out["fc"], fc)
    e = np.exp(fc - fc.max(2, keepdims=True))
    close(out["softmax"], e / e.sum(2, keepdims=True))
