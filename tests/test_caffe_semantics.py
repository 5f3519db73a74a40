"""Caffe semantics that the references do not pin down by themselves: in-place taps,
truncation, pooling sizes at odd input sizes, layer_max order, saving."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from caffe_refs import CaffeReference
from conftest import shared_path

import converters

pytestmark = pytest.mark.numerical


def caffe_pooled(size: int, kernel: int, stride: int, pad: int) -> int:
    """Caffe's PoolingLayer::Reshape, written out independently of the converter."""
    out = int(np.ceil(float(size + 2 * pad - kernel) / stride)) + 1
    if pad and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def test_layer_output_is_pre_relu_and_blob_is_post_relu(tiny):
    ref = CaffeReference(shared_path(), "tiny")
    with torch.no_grad():
        layer = tiny.forward_to(ref.input, ["conv2"])["conv2"]
        blob = tiny.forward_to(ref.input, blobs=["conv2"])["conv2"]
    # The layer's own output is what Caffe's dream gradient started from (pre-ReLU) ...
    assert float(layer.double().sum()) == pytest.approx(
        float(ref.arrays["grad_endvalue_sum:conv2"]), rel=1e-5)
    # ... while the blob is what net.blobs shows after the in-place ReLU.
    full = ref.arrays["full:conv2"]
    assert np.abs(layer.numpy() - full).max() > 1  # they really differ
    np.testing.assert_allclose(blob.numpy(), full, atol=1e-4)
    with pytest.raises(ValueError):
        tiny.forward_to(ref.input, ["conv2"], blobs=["conv2"])


def test_forward_to_stops_after_the_deepest_request(tiny):
    ran: list[str] = []
    hooks = [stage.register_forward_hook(lambda *a, n=name: ran.append(n))
             for name, stage in zip(tiny.layer_names, tiny.stages)]
    try:
        tiny.forward_to(torch.zeros(1, 3, 35, 35), ["pool1"])
    finally:
        for hook in hooks:
            hook.remove()
    assert ran == ["conv1", "relu1", "pool1"]


def test_names_and_blobs_differ_in_nin(formula_weights):
    models = shared_path("models", "nin_imagenet")
    net = converters.load_caffe(models / "deploy.prototxt", formula_weights)
    assert "conv4-1024" in net.layer_names and "conv4" not in net.layer_names
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        outs = net.forward_to(x, ["conv4-1024"], blobs=["conv4"])
    assert torch.equal(outs["conv4"], outs["conv4-1024"].clamp(min=0))
    with pytest.raises(KeyError):
        net.forward_to(x, ["conv4"])


@pytest.mark.parametrize("model,prototxt,weights", [
    ("bvlc_googlenet", "deploy.prototxt", "bvlc_googlenet.caffemodel"),
    ("nin_imagenet", "deploy.prototxt", None),
])
def test_odd_input_size_follows_caffe_pooling_rule(model, prototxt, weights, formula_weights):
    models = shared_path("models", model)
    net = converters.load_caffe(models / prototxt,
                                models / weights if weights else formula_weights)
    pools = [layer for layer in net.spec.layers if layer.type == "Pooling"]
    x = torch.randn(1, 3, 301, 257, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        outs = net.forward_to(x, [layer.name for layer in pools])  # FC layers need 224
        bottoms = net.forward_to(x, blobs=[layer.bottoms[0] for layer in pools])
    for layer in pools:
        bottom, top = bottoms[layer.bottoms[0]].shape, outs[layer.name].shape
        p = layer.params
        if p.get("global"):
            assert list(top[2:]) == [1, 1]
            continue
        expected = [caffe_pooled(bottom[2 + i], p["kernel"][i], p["stride"][i], p["pad"][i])
                    for i in range(2)]
        assert list(top[2:]) == expected, layer.name
    assert torch.isfinite(outs[pools[-1].name]).all()


def test_layer_max_order_is_file_order_without_inputs():
    googlenet = shared_path("models", "bvlc_googlenet")
    spec = converters.read_caffe(googlenet / "deploy.prototxt",
                                 googlenet / "bvlc_googlenet.caffemodel")
    assert spec.sequence[9] == "pool2/3x3_s2"  # module 10, as loadcaffe built it
    cifar = shared_path("models", "cifar10_quick_v1")
    spec = converters.read_caffe(cifar / "deploy_v1.prototxt",
                                 cifar / "cifar10_quick_iter_5000.caffemodel")
    assert spec.sequence[7] == "relu3"  # module 8


def test_save_and_load_round_trip(tiny, tmp_path):
    directory = converters.save(tiny, tmp_path / "tiny")
    description = json.loads((directory / "network.json").read_text())
    assert [layer["name"] for layer in description["layers"]] == tiny.layer_names
    assert description["layers"][0]["params"]["kernel"] == [5, 5]
    assert (directory / "weights.safetensors").read_bytes()[:8] != b"\x80\x04\x95"  # no pickle
    again = converters.load(directory)
    assert again.layer_names == tiny.layer_names and again.sequence == tiny.sequence
    x = torch.randn(1, 3, 35, 35, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(again(x), tiny(x))


def test_parameters_are_frozen_and_gradients_reach_the_input(tiny):
    assert not any(p.requires_grad for p in tiny.parameters())
    x = torch.randn(1, 3, 35, 35, generator=torch.Generator().manual_seed(3), requires_grad=True)
    tiny.forward_to(x, ["norm1"])["norm1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
