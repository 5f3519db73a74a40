"""The layer-type registry (converters/layer_types): one complete entry per type, no name
registered twice, every consumer reading the entries, weights held once, and each ONNX
layer converted once."""

from __future__ import annotations

from itertools import chain

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT

from converters.caffe.reader import PARAM_READERS, read_caffe
from converters.layer_types import LAYER_TYPES, LayerType, params
from converters.layer_types.modules import Lambda
from converters.layer_types.registry import register
from converters.network import Network
from converters.onnx.export import export_onnx, to_onnx
from converters.onnx.reader import load_onnx, read_onnx
from converters.registry import Registry
from converters.shapes import output_shapes
from converters.spec import Layer, NetSpec, blob_key
from converters.torch7.modules import MODULE_READERS
from dreamer.jobs.sheets import default_layers
from dreamer.loops.gradient import receptive_field

# The per-consumer tables that the registry replaced.
OLD_TABLES = ("LAYER_BUILDERS", "SHAPE_RULES", "EMITTERS", "POINTWISE", "FEATURE_TYPES",
              "expected_blob_shapes")


def test_every_type_has_every_field():
    assert {"Convolution", "Pooling", "LRN", "TorchView", "ONNX"} <= set(LAYER_TYPES)
    for name, entry in LAYER_TYPES.items():
        assert entry.name == name
        for rule in (entry.build, entry.shape, entry.field, entry.blob_shapes,
                     entry.exporters.get("onnx")):
            assert callable(rule), (name, rule)
        assert isinstance(entry.is_feature, bool) and isinstance(entry.closed_form, bool)


def test_every_caffe_type_read_has_an_entry():
    assert set(PARAM_READERS) <= set(LAYER_TYPES)


def test_registering_a_name_twice_is_an_error():
    relu = LAYER_TYPES["ReLU"]
    with pytest.raises(ValueError, match="layer type 'ReLU' is registered twice"):
        register(LayerType("ReLU", relu.build, relu.shape, relu.field))
    with pytest.raises(ValueError, match="format 'onnx' is registered twice"):
        relu.exporters.add("onnx", relu.exporters["onnx"])
    with pytest.raises(ValueError, match="'Convolution' is registered twice"):
        PARAM_READERS.register("Convolution")(PARAM_READERS["Convolution"])
    with pytest.raises(ValueError, match="'Sequential' is registered twice"):
        MODULE_READERS.register("Sequential")(MODULE_READERS["Sequential"])
    assert LAYER_TYPES["ReLU"] is relu


def test_a_registry_adds_each_name_once():
    table: Registry[int] = Registry("thing")
    table.register("a", "b")(1)
    assert table == {"a": 1, "b": 1}
    with pytest.raises(ValueError, match="thing 'b' is registered twice"):
        table.add("b", 2)
    assert table["b"] == 1


def test_no_consumer_keeps_a_table_of_its_own():
    files = chain(*(ROOT.joinpath(p).rglob("*.py") for p in ("converters", "dreamer", "models")))
    for path in files:
        text = path.read_text()
        assert not [name for name in OLD_TABLES if name in text], path


# --- a made-up type, registered for one test: every consumer must find it ---------------------

def _box_build(layer: Layer, blobs: list[torch.Tensor]) -> torch.nn.Module:
    size, weight = 2 * params(layer)["margin"] + 1, blobs[0]
    return Lambda(lambda x: F.avg_pool2d(x, size, 1, divisor_override=1) * weight.view(-1, 1, 1),
                  "box sum")


def _box_shape(layer: Layer, bottoms: list[list[int]]) -> list[list[int]]:
    n, c, h, w = bottoms[0]
    margin = params(layer)["margin"]
    return [[n, c, h - 2 * margin, w - 2 * margin]]


def _box_onnx(g, layer: Layer, xs: list[str], outs: list[str]) -> None:
    size = 2 * params(layer)["margin"] + 1
    mean = g.node("AveragePool", xs, kernel_shape=[size, size])
    total = g.node("Mul", [mean, g.floats("area", float(size * size))])
    g.node("Mul", [total, g.floats(blob_key(layer.name, 0), layer.blobs[0].reshape(-1, 1, 1))],
           outs[0])


@pytest.fixture
def box_type():
    """A per-channel weighted box sum without padding, as type "Box" (Caffe's too)."""
    entry = LayerType("Box", _box_build, _box_shape,
                      lambda layer, seen: (seen[0] + 2 * params(layer)["margin"] * seen[1],
                                           seen[1]),
                      is_feature=True, blob_shapes=lambda layer, bottom: [(bottom[1],)],
                      defaults={"margin": 1})
    register(entry)
    entry.exporters.add("onnx", _box_onnx)
    PARAM_READERS.add("Box", lambda lp: {})
    yield entry
    del LAYER_TYPES["Box"], PARAM_READERS["Box"]


BOX_NET = """name: "box"
input: "data"
input_shape { dim: 1 dim: 2 dim: 7 dim: 9 }
layer { name: "box" type: "Box" bottom: "data" top: "box" }
layer { name: "relu" type: "ReLU" bottom: "box" top: "box" }
"""


def test_every_consumer_reads_the_entry(box_type, tmp_path):
    prototxt = tmp_path / "box.prototxt"
    prototxt.write_text(BOX_NET)
    weight, asked = np.array([0.5, -2.0], dtype=np.float32), []

    def weights(layer: str, index: int, shape: tuple[int, ...]) -> np.ndarray:
        asked.append((layer, index, shape))
        return weight.reshape(shape)

    network = Network(read_caffe(prototxt, weights))
    assert asked == [("box", 0, (2,))]  # the Caffe reader: blob shapes
    assert network.output_shapes() == {"box": [1, 2, 5, 7], "relu": [1, 2, 5, 7]}
    x = np.random.default_rng(10).standard_normal((1, 2, 7, 9)).astype(np.float32)
    want = np.array([[[w * x[0, c, i:i + 3, j:j + 3].sum() for j in range(7)] for i in range(5)]
                     for c, w in enumerate(weight)])
    got = network.forward_to(torch.from_numpy(x), ["box"])["box"]  # the builder
    np.testing.assert_allclose(got[0].numpy(), want, rtol=1e-5, atol=1e-5)
    assert receptive_field(network, ["relu"]) == (3, 1)
    assert default_layers(network, 4) == ["box"]  # a feature layer; ReLU is not
    assert [n.op_type for n in to_onnx(network).graph.node] == \
        ["AveragePool", "Mul", "Mul", "Relu"]


def test_defaults_are_the_same_for_every_consumer():
    """Pooling without kernel, stride and pad: [1, 1], [1, 1], [0, 0] everywhere."""
    layer = Layer("pool", "Pooling", ["data"], ["pool"], {"method": "max"})
    network = Network(NetSpec("pool", "data", [1, 1, 4, 5], [layer]))
    assert network.output_shapes() == {"pool": [1, 1, 4, 5]}
    x = torch.arange(20.0).view(1, 1, 4, 5)
    assert torch.equal(network(x), x)
    assert receptive_field(network, ["pool"]) == (1, 1)
    (node,) = to_onnx(network).graph.node
    assert {a.name: list(a.ints) for a in node.attribute if a.ints} == \
        {"kernel_shape": [1, 1], "strides": [1, 1], "pads": [0, 0, 0, 0]}


# --- weights held once, modules built once -----------------------------------------------------

WEIGHTED_NET = """name: "weighted"
input: "data"
input_shape { dim: 1 dim: 4 dim: 6 dim: 6 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" }
layer { name: "scale" type: "Scale" bottom: "conv" top: "conv" scale_param { bias_term: true } }
layer { name: "bias" type: "Bias" bottom: "conv" top: "conv" }
layer { name: "norm" type: "LRN" bottom: "conv" top: "norm" lrn_param { local_size: 3 } }
layer { name: "pool" type: "Pooling" bottom: "norm" top: "pool"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc"
        inner_product_param { num_output: 3 } }
layer { name: "fct" type: "InnerProduct" bottom: "pool" top: "fct"
        inner_product_param { num_output: 3 transpose: true } }
"""


def weighted_net(tmp_path) -> NetSpec:
    prototxt = tmp_path / "weighted.prototxt"
    prototxt.write_text(WEIGHTED_NET)
    rng = np.random.default_rng(3)
    return read_caffe(prototxt, lambda layer, index, shape:
                      rng.uniform(0.5, 1.5, shape).astype(np.float32))


def test_weights_are_held_once(tmp_path):
    """Every blob is its module's parameter or buffer (same memory), and the modules
    hold no tensor that is not a blob."""
    spec = weighted_net(tmp_path)
    network = Network(spec)
    for layer, module in zip(spec.layers, network.stages):
        held = [t.numpy() for t in chain(module.parameters(), module.buffers())]
        assert all(any(np.shares_memory(b, t) for t in held) for b in layer.blobs), layer.name
        assert all(any(np.shares_memory(b, t) for b in layer.blobs) for t in held), layer.name
    conv = network.stages[0]
    assert conv.weight.data_ptr() == spec.layers[0].blobs[0].ctypes.data
    assert sum(len(layer.blobs) for layer in spec.layers) == 12


def test_each_onnx_layer_is_converted_once(tmp_path, monkeypatch):
    import onnx2torch

    calls = []
    convert = onnx2torch.convert
    monkeypatch.setattr(onnx2torch, "convert", lambda model: calls.append(1) or convert(model))
    path = export_onnx(Network(weighted_net(tmp_path)), tmp_path / "weighted.onnx")
    network = load_onnx(path)
    network.output_shapes()
    network.layer_table()
    assert len(calls) == len(network.spec.layers) == 8
    calls.clear()
    spec = read_onnx(path)
    output_shapes(spec)  # shapes first, then the network takes the same modules
    first = Network(spec)
    assert len(calls) == len(spec.layers)
    second = Network(spec)  # a second network gets modules of its own
    assert not set(map(id, first.stages)) & set(map(id, second.stages))
