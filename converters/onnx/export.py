"""A Network into an ONNX graph that onnxruntime and onnx2torch both run with our numbers.

Opset 13 (onnx2torch 1.5 registers no later MaxPool). Batch, height and width are
symbolic, and Caffe's pooling is the native MaxPool/AveragePool with `ceil_mode` and
symmetric pads, whose size rule and divisor equal Caffe's whenever PyTorch's do (the
`windows.torch_exact` case); nothing depends on the traced size except Torch7 View
shapes. Every layer's (first) output value is named after the layer, its k-th output
`NAME:k`, helper values `NAME::…`. The metadata entry `dreamzoo.network` records the
layers (original tops, node counts), the layer_max sequence and the preprocessing, so
the ONNX reader can give back the same layer and blob names.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from ..atomic import check_file_target, write_bytes
from ..layer_types import build_module, exports, layer_type, params
from ..layer_types.windows import torch_exact
from ..network import Network
from ..shapes import min_input_sizes, output_shapes
from ..spec import ConversionError, Layer, NetSpec, blob_key, first_line
from .format import IR_VERSION, METADATA_KEY, OPSET, node_proto, tensor_array


class GraphBuilder:
    """Collects nodes and initializers; names values after the layer being emitted."""

    def __init__(self, shapes: dict[str, list[int]]) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self.shapes = shapes  # ONNX value -> shape at the traced size
        self.layer: Layer | None = None
        self.counter = 0

    def helper_name(self, what: str) -> str:
        self.counter += 1
        return f"{self.layer.name}::{what}{self.counter}"

    def const(self, what: str, array: np.ndarray) -> str:
        name = what if "#" in what else self.helper_name(what)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def floats(self, what: str, values: Any) -> str:
        return self.const(what, np.asarray(values, dtype=np.float32))

    def ints(self, what: str, values: list[int]) -> str:
        return self.const(what, np.asarray(values, dtype=np.int64))

    def node(self, op: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        out = output or self.helper_name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out


# How a layer is written: its entry in `LAYER_TYPES` holds it under "onnx".
Emitter = Callable[[GraphBuilder, Layer, list[str], list[str]], None]


def emits(*types: str) -> Callable[[Emitter], Emitter]:
    return exports("onnx", *types)


def _unary(op: str, **attrs: Any) -> Emitter:
    def emit(g: GraphBuilder, layer: Layer, xs: list[str], outs: list[str]) -> None:
        g.node(op, xs[:1], outs[0], **attrs)
    return emit


for _type, _op in (("Sigmoid", "Sigmoid"), ("TanH", "Tanh"), ("AbsVal", "Abs"),
                   ("Dropout", "Identity")):
    emits(_type)(_unary(_op))


@emits("Convolution")
def _convolution(g: GraphBuilder, layer: Layer, xs: list[str], outs: list[str]) -> None:
    p, weight = params(layer), layer.blobs[0]
    inputs = [xs[0], g.floats(blob_key(layer.name, 0), weight)]
    if len(layer.blobs) > 1:
        inputs.append(g.floats(blob_key(layer.name, 1), layer.blobs[1].reshape(-1)))
    g.node("Conv", inputs, outs[0], kernel_shape=list(weight.shape[2:]),
           strides=list(p["stride"]), pads=list(p["pad"]) * 2,
           dilations=list(p["dilation"]), group=p["group"])


@emits("InnerProduct")
def _inner_product(g: GraphBuilder, layer: Layer, xs: list[str], outs: list[str]) -> None:
    p = params(layer)
    weight = layer.blobs[0].reshape(layer.blobs[0].shape[-2], layer.blobs[0].shape[-1])
    weight = weight.T if p["transpose"] else weight
    axis = p["axis"]
    w = g.floats(blob_key(layer.name, 0), weight)
    bias = [g.floats(blob_key(layer.name, 1), layer.blobs[1].reshape(-1))] \
        if len(layer.blobs) > 1 else []
    if axis == 1:
        flat = g.node("Flatten", [xs[0]], axis=1)
        g.node("Gemm", [flat, w, *bias], outs[0], transB=1)
        return
    flat = g.node("Reshape", [xs[0], g.ints("shape", [0] * axis + [-1])])
    product = g.node("MatMul", [flat, g.floats("weight_t", weight.T)],
                     None if bias else outs[0])
    if bias:
        g.node("Add", [product, bias[0]], outs[0])


@emits("Pooling")
def _pooling(g: GraphBuilder, layer: Layer, xs: list[str], outs: list[str]) -> None:
    p = params(layer)
    if p["global"]:
        if p["method"] == "max":
            g.node("ReduceMax", xs, outs[0], axes=[2, 3], keepdims=1)
        else:
            g.node("GlobalAveragePool", xs, outs[0])
        return
    if not torch_exact(p["kernel"], p["stride"], p["pad"]):
        raise ConversionError(
            f"layer {layer.name!r}: pooling with kernel {p['kernel']}, stride {p['stride']}, "
            f"pad {p['pad']} has Caffe output sizes that ONNX pooling cannot express")
    attrs = dict(kernel_shape=p["kernel"], strides=p["stride"], pads=p["pad"] * 2,
                 ceil_mode=int(p["round"] == "ceil"))
    if p["method"] == "max":
        g.node("MaxPool", xs, outs[0], **attrs)
    else:
        g.node("AveragePool", xs, outs[0], count_include_pad=int(p["count_pad"]), **attrs)


@emits("LRN")
def _lrn(g: GraphBuilder, layer: Layer, xs: list[str], outs: list[str]) -> None:
    p = params(layer)
    size, alpha, beta = p["local_size"], p["alpha"], p["beta"]
    if p["region"] == "across":
        g.node("LRN", xs, outs[0], size=int(size), alpha=float(alpha), beta=float(beta),
               bias=float(p["k"]))
        return
    front = (size - 1) // 2
    square = g.node("Mul", [xs[0], xs[0]])
    mean = g.node("AveragePool", [square], kernel_shape=[size] * 2, pads=[front] * 4,
                  count_include_pad=1)
    base = g.node("Add", [g.node("Mul", [mean, g.floats("alpha", alpha)]),
                          g.floats("one", 1.0)])
    g.node("Mul", [xs[0], g.node("Pow", [base, g.floats("beta", -beta)])], outs[0])


@emits("BatchNorm", "Scale", "Bias")
def _affine(g: GraphBuilder, layer: Layer, xs: list[str], outs: list[str]) -> None:
    module = build_module(layer, [torch.from_numpy(b) for b in layer.blobs])
    rank, x = len(g.shapes[xs[0]]), xs[0]
    steps = [("Mul", module.scale), ("Add", module.shift)]
    steps = [(op, t) for op, t in steps if t is not None]
    for i, (op, t) in enumerate(steps):
        shape = list(t.shape) + [1] * (rank - module.axis - t.dim())
        value = t.reshape(shape).numpy()
        x = g.node(op, [x, g.floats(op.lower(), value)], outs[0] if i == len(steps) - 1 else None)


@emits("ReLU")
def _relu(g: GraphBuilder, layer: Layer, xs: list[str], outs: list[str]) -> None:
    slope = params(layer)["negative_slope"]
    if slope == 0:
        g.node("Relu", xs, outs[0])
    else:
        g.node("LeakyRelu", xs, outs[0], alpha=float(slope))


@emits("Power")
def _power(g: GraphBuilder, layer: Layer, xs: list[str], outs: list[str]) -> None:
    p = params(layer)
    pw, sc, sh = p["power"], p["scale"], p["shift"]
    steps = [(op, v) for op, v, skip in (("Mul", sc, 1.0), ("Add", sh, 0.0), ("Pow", pw, 1.0))
             if v != skip]
    x = xs[0]
    if not steps:
        g.node("Identity", [x], outs[0])
    for i, (op, v) in enumerate(steps):
        x = g.node(op, [x, g.floats(op.lower(), v)], outs[0] if i == len(steps) - 1 else None)


@emits("DropoutV1")
def _dropout_v1(g: GraphBuilder, layer: Layer, xs: list[str], outs: list[str]) -> None:
    g.node("Mul", [xs[0], g.floats("keep", 1.0 - params(layer)["ratio"])], outs[0])


@emits("Split", "Identity")
def _identity(g: GraphBuilder, layer: Layer, xs: list[str], outs: list[str]) -> None:
    for i, out in enumerate(outs):
        g.node("Identity", [xs[i if len(xs) > 1 else 0]], out)


@emits("Eltwise")
def _eltwise(g: GraphBuilder, layer: Layer, xs: list[str], outs: list[str]) -> None:
    p = params(layer)
    op, coeffs = p["operation"], p["coeff"]
    if op == "sum":
        terms = [x if c == 1 else g.node("Mul", [x, g.floats("coeff", c)])
                 for x, c in zip(xs, coeffs or [1.0] * len(xs))]
        g.node("Sum", terms, outs[0])
    elif op == "max":
        g.node("Max", xs, outs[0])
    else:
        x = xs[0]
        for i, y in enumerate(xs[1:]):
            x = g.node("Mul", [x, y], outs[0] if i == len(xs) - 2 else None)


@emits("Concat")
def _concat(g: GraphBuilder, layer: Layer, xs: list[str], outs: list[str]) -> None:
    g.node("Concat", xs, outs[0], axis=params(layer)["axis"])


@emits("Softmax", "LogSoftmax")
def _softmax(g: GraphBuilder, layer: Layer, xs: list[str], outs: list[str]) -> None:
    g.node(layer.type, xs, outs[0], axis=params(layer)["axis"])


@emits("Flatten")
def _flatten(g: GraphBuilder, layer: Layer, xs: list[str], outs: list[str]) -> None:
    rank = len(g.shapes[xs[0]])
    p = params(layer)
    start, end = p["axis"] % rank, p["end_axis"] % rank
    if end != rank - 1:
        raise ConversionError(f"layer {layer.name!r}: Flatten with end_axis has no ONNX form here")
    if start == 1:
        g.node("Flatten", xs, outs[0], axis=1)
    else:
        g.node("Reshape", [xs[0], g.ints("shape", [0] * start + [-1])], outs[0])


@emits("Reshape", "TorchView", "TorchReshape")
def _reshape(g: GraphBuilder, layer: Layer, xs: list[str], outs: list[str]) -> None:
    before, after = g.shapes[xs[0]], g.shapes[outs[0]]
    p = params(layer)
    if layer.type == "Reshape" and p["axis"] == 0 and p["num_axes"] == -1:
        shape = list(p["shape"])  # Caffe's 0 and -1 mean what ONNX's do
    elif len(before) >= 2 and after == [before[0], int(np.prod(before[1:]))]:
        g.node("Flatten", xs, outs[0], axis=1)
        return
    else:  # a fixed view: only the batch dimension follows the input
        shape = [0, *after[1:]] if after[:1] == before[:1] else list(after)
    g.node("Reshape", [xs[0], g.ints("shape", shape)], outs[0])


@emits("DepthConcat")
def _depth_concat(g: GraphBuilder, layer: Layer, xs: list[str], outs: list[str]) -> None:
    """Zero-pad every input to the largest size, centred, from shapes known at run time."""
    axis = params(layer)["axis"] % len(g.shapes[xs[0]])
    rank = len(g.shapes[xs[0]])
    shapes = [g.node("Shape", [x]) for x in xs]
    target = g.node("Max", shapes) if len(shapes) > 1 else shapes[0]
    mask = g.ints("mask", [0 if d == axis else 1 for d in range(rank)])
    padded = []
    for x, shape in zip(xs, shapes):
        extra = g.node("Mul", [g.node("Sub", [target, shape]), mask])
        front = g.node("Div", [extra, g.ints("two", [2] * rank)])
        pads = g.node("Concat", [front, g.node("Sub", [extra, front])], axis=0)
        padded.append(g.node("Pad", [x, pads]))
    g.node("Concat", padded, outs[0], axis=axis)


@emits("TorchThreshold")
def _threshold(g: GraphBuilder, layer: Layer, xs: list[str], outs: list[str]) -> None:
    above = g.node("Greater", [xs[0], g.floats("threshold", params(layer)["threshold"])])
    g.node("Where", [above, xs[0], g.floats("value", params(layer)["value"])], outs[0])


@emits("Normalize")
def _normalize(g: GraphBuilder, layer: Layer, xs: list[str], outs: list[str]) -> None:
    settings = params(layer)
    p, eps = settings["p"], settings["eps"]
    absolute = g.node("Abs", xs)
    if p == "inf":
        peak = g.node("ReduceMax", [absolute], axes=[-1], keepdims=1)
        norm = g.node("Add", [peak, g.floats("eps", eps)])
    else:
        total = g.node("ReduceSum", [g.node("Pow", [absolute, g.floats("p", p)]),
                                     g.ints("axes", [-1])], keepdims=1)
        norm = g.node("Pow", [g.node("Add", [total, g.floats("eps", eps)]),
                              g.floats("inv_p", 1.0 / p)])
    g.node("Div", [xs[0], norm], outs[0])


@emits("ZeroPadding")
def _zero_padding(g: GraphBuilder, layer: Layer, xs: list[str], outs: list[str]) -> None:
    left, right, top, bottom = params(layer)["pad"]
    rank = len(g.shapes[xs[0]])
    begin, end = [0] * (rank - 2) + [top, left], [0] * (rank - 2) + [bottom, right]
    g.node("Pad", [xs[0], g.ints("pads", begin + end)], outs[0])


@emits("ONNX")
def _onnx_nodes(g: GraphBuilder, layer: Layer, xs: list[str], outs: list[str]) -> None:
    """A layer read from an ONNX file: its nodes again, values renamed, at opset 13 only."""
    p = layer.params
    if p["opset"] != {"": OPSET}:
        raise ConversionError(f"layer {layer.name!r}: re-exporting ONNX nodes of opset "
                              f"{p['opset']} is not supported (only {OPSET})")
    names = dict(zip(p["inputs"], xs)) | dict(zip(p["outputs"], outs))
    for blob, name, dtype in zip(layer.blobs, p["initializers"], p["initializer_dtypes"]):
        array = blob.astype(helper.tensor_dtype_to_np_dtype(dtype))
        names[name] = g.const(blob_key(layer.name, len(names)), array)
    for c in p["constants"]:
        names[c["name"]] = g.const("const", tensor_array(c["dtype"], c["dims"], c["values"]))
    for entry in p["nodes"]:
        node = node_proto(entry)
        for value in node.output:
            if value and value not in names:
                names[value] = g.helper_name(node.op_type.lower())
        node.input[:] = [names.get(v, v) if v else "" for v in node.input]
        node.output[:] = [names[v] if v else "" for v in node.output]
        node.name = node.output[0]
        g.nodes.append(node)


def output_names(layer: Layer) -> list[str]:
    """The ONNX value names of a layer's outputs: NAME, then NAME:1, NAME:2, …"""
    return [layer.name] + [f"{layer.name}:{k}" for k in range(1, len(layer.tops))]


def value_shapes(network: Network, layers: list[Layer]) -> dict[str, list[int]]:
    """Every output value's shape at the declared input size (batch 1), by arithmetic."""
    by_layer = output_shapes(network.spec)
    shapes = {network.spec.input_name: [1, *network.spec.input_shape[1:]]}
    for layer in layers:
        shapes.update(zip(output_names(layer), by_layer[layer.name]))
    return shapes


def to_onnx(network: Network | NetSpec, until: str | None = None) -> onnx.ModelProto:
    """The ONNX model of `network`, up to layer `until` (then its only output)."""
    network = network if isinstance(network, Network) else Network(network)
    spec = network.spec
    if until is not None and until not in network.layer_index:
        raise ConversionError(f"network {spec.name!r} has no layer named {until!r}")
    layers = spec.layers[:network.layer_index[until] + 1] if until else spec.layers
    names = {spec.input_name} | {n for layer in layers for n in output_names(layer)}
    if len(names) != 1 + sum(len(layer.tops) for layer in layers):
        raise ConversionError(f"network {spec.name!r}: a layer name is also the input's or "
                              f"another layer's output name")
    g = GraphBuilder(value_shapes(network, layers))
    current = {spec.input_name: spec.input_name}  # blob -> ONNX value holding it now
    read: set[str] = set()
    counts = []
    for layer in layers:
        emit = layer_type(layer).exporters.get("onnx")
        if emit is None:
            raise ConversionError(f"layer {layer.name!r}: no ONNX export for type {layer.type!r}")
        try:
            xs = [current[b] for b in layer.bottoms]
        except KeyError as missing:
            raise ConversionError(f"layer {layer.name!r} reads blob {missing} "
                                  f"that no earlier layer writes") from None
        read.update(xs)
        g.layer, g.counter, before = layer, 0, len(g.nodes)
        emit(g, layer, xs, output_names(layer))
        counts.append(len(g.nodes) - before)
        current.update(zip(layer.tops, output_names(layer)))
    outputs = output_names(layers[-1]) if until else \
        [n for layer in layers for n in output_names(layer) if n not in read]
    return _model(spec, layers, counts, g, outputs)


def _model(spec: NetSpec, layers: list[Layer], counts: list[int], g: GraphBuilder,
           outputs: list[str]) -> onnx.ModelProto:
    dims = ["batch", *spec.input_shape[1:-2], "height", "width"]
    graph = helper.make_graph(
        g.nodes, spec.name, [helper.make_tensor_value_info(spec.input_name, TensorProto.FLOAT,
                                                           dims)],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, [None] * len(g.shapes[o]))
         for o in outputs],
        initializer=g.initializers)
    model = helper.make_model(graph, producer_name="dreamzoo", ir_version=IR_VERSION,
                              opset_imports=[helper.make_opsetid("", OPSET)])
    kept = {layer.name for layer in layers}
    min_sizes = min_input_sizes(spec)
    meta = {"name": spec.name, "input": {"name": spec.input_name, "shape": spec.input_shape},
            "sequence": [n for n in spec.sequence if n in kept], "source": spec.source,
            "preprocessing": spec.preprocessing and spec.preprocessing.to_json(),
            "layers": [{"name": layer.name, "type": layer.type, "tops": layer.tops, "nodes": n,
                        "min_size": min_sizes.get(layer.name)}
                       for layer, n in zip(layers, counts)]}
    helper.set_model_props(model, {METADATA_KEY: json.dumps(meta)})
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        raise ConversionError(f"network {spec.name!r}: exported graph is invalid "
                              f"({first_line(e)})") from None
    return model


def export_onnx(network: Network | NetSpec, path: str | Path, until: str | None = None) -> Path:
    """Write the ONNX model to `path` atomically (all of it, or nothing)."""
    path = check_file_target(Path(path))
    return write_bytes(path, to_onnx(network, until).SerializeToString())
