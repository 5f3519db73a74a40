"""Torch7 modules into description layers: one function per Torch7 class name.

`MODULE_READERS` is keyed by the class name without its package, so `nn.ReLU`,
`cudnn.ReLU` and `inn.X` share an entry (`PACKAGES` lists the packages accepted).
A reader gets the graph being built, the module, the blob (or, for a table, the list
of blobs) it reads, and its layer name; it adds layers and returns what it outputs.

Torch7 dimensions are 1-based and count the batch dimension only when the net runs on
batches; the graph knows which (`unbatched`) and maps them to the batched layout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from torchfile import TorchObject

from ..registry import Registry
from ..spec import ConversionError, Layer

PACKAGES = ("nn", "cudnn", "inn", "cunn", "fbcunn")
MAX_DEPTH = 200
Value = str | list[str]  # a blob, or a Lua table of blobs
MISSING = object()


class Module:
    """A Torch7 module as read from the file: its class, its fields, where it sits."""

    def __init__(self, obj: TorchObject, path: str) -> None:
        self.class_name = obj.torch_typename().decode("latin-1")
        self.package, _, self.kind = self.class_name.rpartition(".")
        self.fields = obj._obj if isinstance(obj._obj, dict) else {}
        self.path = path

    def error(self, message: str) -> ConversionError:
        return ConversionError(f"{self.class_name} at {self.path}: {message}")

    def get(self, key: str, default: Any = None) -> Any:
        value = self.fields.get(key.encode(), None)
        return default if value is None else value

    def number(self, key: str, default: Any = MISSING) -> float:
        value = self.get(key, default)
        if value is MISSING:
            raise self.error(f"field {key!r} is missing")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(f"field {key!r} is not a number ({type(value).__name__})")
        return value

    def integer(self, key: str, default: Any = MISSING, low: int = 0) -> int:
        value = self.number(key, default)
        if not low <= value < 2**31 or value != int(value):  # NaN fails the first test
            raise self.error(f"field {key!r} = {value} is not an integer >= {low}")
        return int(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise self.error(f"field {key!r} is not a boolean")
        return value

    def tensor(self, key: str, required: bool = True) -> np.ndarray | None:
        value = self.get(key)
        if isinstance(value, np.ndarray) and value.size == 0:
            value = None
        if value is None:
            if required:
                raise self.error(f"tensor {key!r} is missing")
            return None
        if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.number):
            raise self.error(f"field {key!r} is not a tensor")
        return value

    def sizes(self, key: str) -> list[int]:
        """A LongStorage (or Lua list) of sizes, such as View's `size`."""
        value = self.get(key)
        if isinstance(value, dict):
            value = [value.get(i) for i in range(1, len(value) + 1)]
        if not isinstance(value, (list, np.ndarray)) or \
                not all(isinstance(v, (int, float, np.integer)) for v in value):
            raise self.error(f"field {key!r} is not a list of sizes")
        return [int(v) for v in value]

    def children(self) -> list[tuple[str, Any]]:
        """The contained modules (`modules` table, 1-based) with their paths."""
        table = self.get("modules", {})
        if not isinstance(table, dict):
            raise self.error("field 'modules' is not a table")
        keys = sorted(k for k in table if isinstance(k, int))
        if keys != list(range(1, len(keys) + 1)) or len(keys) != len(table):
            raise self.error("field 'modules' is not a list")
        return [(f"{self.path}.modules[{k}]", table[k]) for k in keys]


class Graph:
    """The layers being built; converts modules and keeps names unique."""

    def __init__(self, input_name: str, unbatched: bool) -> None:
        self.input_name, self.unbatched = input_name, unbatched
        self.layers: list[Layer] = []
        self.writer: dict[str, str] = {}
        self.ancestors: list[int] = []

    def add(self, name: str, kind: str, bottoms: Value, params: dict[str, Any] | None = None,
            blobs: list[np.ndarray] | None = None, table: int | None = None) -> Value:
        """Append a layer; returns its top blob, or a table of `table` blobs."""
        bottoms = [bottoms] if isinstance(bottoms, str) else list(bottoms)
        names = {layer.name for layer in self.layers}
        unique, n = name, 1
        while unique in names or unique == self.input_name:
            n += 1
            unique = f"{name}_{n}"
        top_names = [unique] if table is None else [f"{unique}:{i + 1}" for i in range(table)]
        blobs = [np.ascontiguousarray(b, dtype=np.float32) for b in blobs or []]
        self.layers.append(Layer(unique, kind, bottoms, top_names, params or {}, blobs))
        for top in top_names:
            self.writer[top] = unique
        return top_names[0] if table is None else top_names

    def producer(self, value: Value) -> str:
        """The layer whose output `value` is."""
        return self.writer[value if isinstance(value, str) else value[0]]

    def axis(self, dimension: int) -> int:
        """A Torch7 dimension (1-based; negative counts from the end) as a batched axis."""
        if dimension < 0:
            return dimension
        return dimension if self.unbatched else dimension - 1

    def convert(self, obj: Any, x: Value, path: str) -> Value:
        """Add the layers of the module `obj` (at `path`) reading `x`; returns its output."""
        if not isinstance(obj, TorchObject):
            raise ConversionError(f"{path}: expected a Torch7 module, found "
                                  f"{describe(obj)}")
        if id(obj) in self.ancestors:
            raise ConversionError(f"{path}: reference cycle (the module contains itself)")
        if len(self.ancestors) >= MAX_DEPTH:
            raise ConversionError(f"{path}: modules nested more than {MAX_DEPTH} deep")
        module = Module(obj, path)
        reader = MODULE_READERS.get(module.kind) if module.package in PACKAGES else None
        if reader is None:
            raise ConversionError(f"unsupported Torch7 class {module.class_name!r} at {path}")
        name = module.get("name")
        if isinstance(name, bytes) and name:
            name = name.decode("utf-8", "replace")
        else:
            name = f"{module.kind}_{path_indices(path)}".rstrip("_")
        self.ancestors.append(id(obj))
        try:
            return reader(self, module, x, name)
        finally:
            self.ancestors.pop()


def describe(obj: Any) -> str:
    """What a non-module object is, for messages."""
    if isinstance(obj, TorchObject):
        return f"an object of class {obj.torch_typename().decode('latin-1')!r}"
    if isinstance(obj, np.ndarray):
        return f"a tensor of shape {list(obj.shape)}"
    if isinstance(obj, dict):
        return "a Lua table"
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "dumped"):
        return "a list"
    return "a Lua function" if hasattr(obj, "dumped") else f"a {type(obj).__name__}"


def path_indices(path: str) -> str:
    """'net.modules[6].modules[2]' -> '6.2': the position part of a generated name."""
    return ".".join(part.split("]")[0] for part in path.split("[")[1:])


def tensor_input(module: Module, x: Value) -> str:
    if not isinstance(x, str):
        raise module.error("expects a tensor but receives a table")
    return x


def table_input(module: Module, x: Value) -> list[str]:
    if isinstance(x, str):
        raise module.error("expects a table of tensors but receives a tensor")
    return x


# --- the table ------------------------------------------------------------------------------

Reader = Callable[[Graph, Module, Value, str], Value]
MODULE_READERS: Registry[Reader] = Registry("Torch7 module reader")
reads = MODULE_READERS.register


# containers

@reads("Sequential")
def sequential(graph: Graph, m: Module, x: Value, name: str) -> Value:
    children = m.children()
    if not children:
        return graph.add(name, "Identity", x, table=None if isinstance(x, str) else len(x))
    for path, child in children:
        x = graph.convert(child, x, path)
    return x


def branches(graph: Graph, m: Module, x: Value) -> list[str]:
    children = m.children()
    if not children:
        raise m.error("has no branches")
    return [tensor_input(m, graph.convert(child, x, path)) for path, child in children]


@reads("Concat", "DepthConcat")
def concat(graph: Graph, m: Module, x: Value, name: str) -> Value:
    axis = graph.axis(m.integer("dimension", low=1))
    kind = "Concat" if m.kind == "Concat" else "DepthConcat"
    return graph.add(name, kind, branches(graph, m, x), {"axis": axis})


@reads("ConcatTable")
def concat_table(graph: Graph, m: Module, x: Value, name: str) -> Value:
    outs = branches(graph, m, x)
    return graph.add(name, "Identity", outs, table=len(outs))


@reads("JoinTable")
def join_table(graph: Graph, m: Module, x: Value, name: str) -> Value:
    dimension = m.integer("dimension", low=-2**31)
    if dimension == 0:
        raise m.error("dimension 0 does not exist (Torch7 counts from 1)")
    # With nInputDims Torch7 itself skips a batch dimension, so the dimension counts
    # within a sample in both kinds of net.
    has_sample_dims = m.get("nInputDims") is not None and dimension > 0
    axis = dimension if has_sample_dims else graph.axis(dimension)
    return graph.add(name, "Concat", table_input(m, x), {"axis": axis})


@reads("CAddTable")
def cadd_table(graph: Graph, m: Module, x: Value, name: str) -> Value:
    return graph.add(name, "Eltwise", table_input(m, x), {"operation": "sum", "coeff": []})


@reads("Identity")
def identity(graph: Graph, m: Module, x: Value, name: str) -> Value:
    return graph.add(name, "Identity", x, table=None if isinstance(x, str) else len(x))


# convolution and fully connected

@reads("SpatialConvolution", "SpatialConvolutionMM", "SpatialDilatedConvolution")
def convolution(graph: Graph, m: Module, x: Value, name: str) -> Value:
    """Weights (out, in/groups, kH, kW); SpatialConvolutionMM stores them 2-D. Old files
    lack dW/dH/padW/padH (stride 1, pad `padding` or 0)."""
    weight = m.tensor("weight")
    groups = m.integer("groups", 1, low=1)
    outputs, inputs = m.integer("nOutputPlane", low=1), m.integer("nInputPlane", low=1)
    kernel = [m.integer("kH", low=1), m.integer("kW", low=1)]
    if inputs % groups or outputs % groups:
        raise m.error(f"{inputs} inputs and {outputs} outputs do not divide into {groups} groups")
    shape = (outputs, inputs // groups, *kernel)
    if weight.size != np.prod(shape):
        raise m.error(f"weight of shape {list(weight.shape)} does not match {list(shape)}")
    bias = m.tensor("bias", required=False)
    if bias is not None and bias.size != outputs:
        raise m.error(f"bias has {bias.size} values for {outputs} outputs")
    pad = m.integer("padding", 0)
    params = {"num_output": outputs, "kernel": kernel,
              "stride": [m.integer("dH", 1, low=1), m.integer("dW", 1, low=1)],
              "pad": [m.integer("padH", pad), m.integer("padW", pad)],
              "dilation": [m.integer("dilationH", 1, low=1), m.integer("dilationW", 1, low=1)],
              "group": groups, "bias_term": bias is not None}
    blobs = [weight.reshape(shape)] + ([bias.reshape(-1)] if bias is not None else [])
    return graph.add(name, "Convolution", tensor_input(m, x), params, blobs)


@reads("Linear")
def linear(graph: Graph, m: Module, x: Value, name: str) -> Value:
    weight = m.tensor("weight")
    if weight.ndim != 2:
        raise m.error(f"weight has shape {list(weight.shape)}, expected 2 dimensions")
    bias = m.tensor("bias", required=False)
    if bias is not None and bias.size != weight.shape[0]:
        raise m.error(f"bias has {bias.size} values for {weight.shape[0]} outputs")
    params = {"num_output": weight.shape[0], "bias_term": bias is not None, "axis": 1,
              "transpose": False}
    blobs = [weight] + ([bias.reshape(-1)] if bias is not None else [])
    return graph.add(name, "InnerProduct", tensor_input(m, x), params, blobs)


# pooling and normalisation

@reads("SpatialMaxPooling", "SpatialAveragePooling")
def pooling(graph: Graph, m: Module, x: Value, name: str) -> Value:
    """Torch7 rounds like Caffe (ceil or floor, the last window starting inside the padded
    input) and averages over the window clipped to the padded input, or to the input with
    setCountExcludePad. inn's pooling always rounds up. nn's average pooling saved before
    it had `divide` sums (the average times kW·kH), as Torch7 still computes it."""
    is_max = m.kind == "SpatialMaxPooling"
    kernel = [m.integer("kH", low=1), m.integer("kW", low=1)]
    default_stride = kernel if is_max else [1, 1]
    params = {"method": "max" if is_max else "ave", "kernel": kernel,
              "stride": [m.integer("dH", default_stride[0], low=1),
                         m.integer("dW", default_stride[1], low=1)],
              "pad": [m.integer("padH", 0), m.integer("padW", 0)],
              "round": "ceil" if m.flag("ceil_mode", m.package == "inn") else "floor",
              "count_pad": m.flag("count_include_pad", True)}
    x = tensor_input(m, x)
    if is_max or m.package != "nn" or m.flag("divide", False):
        return graph.add(name, "Pooling", x, params)
    average = graph.add(f"{name}/average", "Pooling", x, params)
    return graph.add(name, "Power", average, {"scale": float(kernel[0] * kernel[1])})


@reads("SpatialCrossMapLRN", "SpatialCrossResponseNormalization")
def lrn(graph: Graph, m: Module, x: Value, name: str) -> Value:
    params = {"local_size": m.integer("size", low=1), "alpha": m.number("alpha", 1e-4),
              "beta": m.number("beta", 0.75), "k": m.number("k", 1.0), "region": "across"}
    return graph.add(name, "LRN", tensor_input(m, x), params)


@reads("SpatialBatchNormalization", "BatchNormalization")
def batch_norm(graph: Graph, m: Module, x: Value, name: str) -> Value:
    """Evaluation mode: (x - running_mean) / sqrt(running_var + eps) · weight + bias.
    Old files keep running_std = 1 / sqrt(var + eps) instead of running_var."""
    eps = m.number("eps", 1e-5)
    mean = m.tensor("running_mean").reshape(-1)
    var = m.tensor("running_var", required=False)
    if var is None:
        std = m.tensor("running_std").astype(np.float64)
        var = 1.0 / (std * std) - eps
    blobs = [mean, var.reshape(-1), np.ones(1)]
    weight, bias = m.tensor("weight", required=False), m.tensor("bias", required=False)
    if weight is not None or bias is not None:
        blobs += [np.ones(mean.size) if weight is None else weight.reshape(-1),
                  np.zeros(mean.size) if bias is None else bias.reshape(-1)]
    if any(b.size != mean.size for i, b in enumerate(blobs) if i != 2):
        raise m.error("running statistics and affine parameters differ in size")
    return graph.add(name, "BatchNorm", tensor_input(m, x), {"eps": eps}, blobs)


@reads("Normalize")
def normalize(graph: Graph, m: Module, x: Value, name: str) -> Value:
    p = m.number("p")
    if p <= 0:
        raise m.error(f"norm p = {p} must be positive")
    params = {"p": "inf" if p == float("inf") else p, "eps": m.number("eps", 1e-10)}
    return graph.add(name, "Normalize", tensor_input(m, x), params)


# element-wise

@reads("ReLU", "Threshold")
def threshold(graph: Graph, m: Module, x: Value, name: str) -> Value:
    """nn.ReLU is Threshold(0, 0); cudnn.ReLU has neither field."""
    limit, value = m.number("threshold", 0.0), m.number("val", 0.0)
    if limit == 0 and value == 0:
        return graph.add(name, "ReLU", tensor_input(m, x))
    return graph.add(name, "TorchThreshold", tensor_input(m, x),
                     {"threshold": limit, "value": value})


@reads("Tanh")
def tanh(graph: Graph, m: Module, x: Value, name: str) -> Value:
    return graph.add(name, "TanH", tensor_input(m, x))


@reads("Sigmoid")
def sigmoid(graph: Graph, m: Module, x: Value, name: str) -> Value:
    return graph.add(name, "Sigmoid", tensor_input(m, x))


@reads("MulConstant")
def mul_constant(graph: Graph, m: Module, x: Value, name: str) -> Value:
    return graph.add(name, "Power", tensor_input(m, x), {"scale": m.number("constant_scalar")})


@reads("Dropout")
def dropout(graph: Graph, m: Module, x: Value, name: str) -> Value:
    """Evaluation mode: the identity, except the original Dropout (no `v2`: files from
    before it existed, or Dropout(p, true)) which scales by 1 - p."""
    p = m.number("p", 0.5)
    kind = "Dropout" if m.flag("v2", False) else "DropoutV1"
    return graph.add(name, kind, tensor_input(m, x), {"ratio": p})


@reads("SoftMax")
def softmax(graph: Graph, m: Module, x: Value, name: str) -> Value:
    # Torch7 normalises over the feature (channel) dimension, axis 1 once batched.
    return graph.add(name, "Softmax", tensor_input(m, x), {"axis": 1})


@reads("LogSoftMax")
def log_softmax(graph: Graph, m: Module, x: Value, name: str) -> Value:
    return graph.add(name, "LogSoftmax", tensor_input(m, x), {"axis": 1})


# shape

@reads("View")
def view(graph: Graph, m: Module, x: Value, name: str) -> Value:
    size = m.sizes("size")
    if size.count(-1) > 1 or any(s < -1 for s in size):
        raise m.error(f"invalid view size {size}")
    input_dims = m.get("numInputDims")
    params = {"size": size, "input_dims": None if input_dims is None else
              m.integer("numInputDims", low=1), "unbatched": graph.unbatched}
    return graph.add(name, "TorchView", tensor_input(m, x), params)


@reads("Reshape")
def reshape(graph: Graph, m: Module, x: Value, name: str) -> Value:
    size = m.sizes("size")
    if any(s < 1 for s in size):
        raise m.error(f"invalid reshape size {size}")
    batch_mode = m.get("batchMode")
    params = {"size": size, "batch_mode": None if batch_mode is None else
              m.flag("batchMode", False), "unbatched": graph.unbatched}
    return graph.add(name, "TorchReshape", tensor_input(m, x), params)


@reads("SpatialZeroPadding")
def zero_padding(graph: Graph, m: Module, x: Value, name: str) -> Value:
    pad = [m.integer(key, 0, low=-2**31) for key in ("pad_l", "pad_r", "pad_t", "pad_b")]
    return graph.add(name, "ZeroPadding", tensor_input(m, x), {"pad": pad})


@reads("gModule")
def graph_module(graph: Graph, m: Module, x: Value, name: str) -> Value:
    raise ConversionError(f"unsupported Torch7 class {m.class_name!r} at {m.path}: nngraph "
                          f"graphs are not supported, only containers (Sequential, Concat, ...)")
