"""The "ONNX" layer type: its module (the layer's nodes, converted by onnx2torch) and its
shape rule, registered into `LAYER_TYPES` from here, so that the builder knows no file
format. `converters/__init__.py` imports this package, so the type is registered
whenever any part of `converters` is imported.

The shape rule has no closed form: it runs the layer's module with its parameters on
PyTorch's meta device (shapes only, nothing allocated), at the one size asked; a layer
whose nodes read sizes as data (Shape, Size: dreamzoo's export of a DepthConcat) runs on
zeros on the CPU instead. Each layer's nodes are converted once: the shape rule runs the
module the builder made (a `Network`'s), and the builder takes the one the shape rule
made when shapes came first.
"""

from __future__ import annotations

import weakref
from itertools import chain

import onnx
import torch
from onnx import helper, numpy_helper
from torch import Tensor, nn

from ..layer_types import LayerType, Outcome, Shape
from ..layer_types.registry import register, whole_image
from ..spec import ConversionError, Layer, first_line
from .format import node_proto, tensor_array


class OnnxLayer(nn.Module):
    """One layer's nodes, converted by onnx2torch; returns a tensor or a tuple."""

    def __init__(self, module: nn.Module, ops: list[str]) -> None:
        super().__init__()
        self.module, self.ops = module, ops

    def forward(self, *xs: Tensor) -> Tensor | tuple[Tensor, ...]:
        out = self.module(*xs)
        return tuple(out) if isinstance(out, (list, tuple)) else out

    def extra_repr(self) -> str:
        return " → ".join(self.ops)


# Per layer (by identity; an entry goes with its layer): the module converted from its
# own blobs, and whether a builder's caller (a Network) has it already.
_MODULES: dict[int, tuple[nn.Module, bool]] = {}


def _own_blobs(layer: Layer, blobs: list[Tensor]) -> bool:
    """Whether `blobs` are the layer's own arrays (not copies, not other values)."""
    return len(blobs) == len(layer.blobs) and all(
        t.device.type == "cpu" and t.data_ptr() == a.ctypes.data
        for t, a in zip(blobs, layer.blobs))


def _remember(layer: Layer, module: nn.Module, taken: bool) -> None:
    if id(layer) not in _MODULES:
        weakref.finalize(layer, _MODULES.pop, id(layer), None)
    _MODULES[id(layer)] = (module, taken)


def build_onnx_layer(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    """The module of an "ONNX" layer: the one the shape rule converted from the same
    blobs if no one has it yet, else a new conversion."""
    if not _own_blobs(layer, blobs):
        return convert_nodes(layer, blobs)
    module, taken = _MODULES.get(id(layer), (None, True))
    if taken:
        module = convert_nodes(layer, blobs)
    _remember(layer, module, taken=True)
    return module


def convert_nodes(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    """The layer's nodes in a graph of their own, onnx2torch'd."""
    from onnx2torch import convert  # optional: heavy (torchvision), only for ONNX layers

    p = layer.params
    initializers = [numpy_helper.from_array(
        blob.numpy().astype(helper.tensor_dtype_to_np_dtype(dtype)), name)
        for blob, name, dtype in zip(blobs, p["initializers"], p["initializer_dtypes"])]
    initializers += [numpy_helper.from_array(tensor_array(c["dtype"], c["dims"], c["values"]),
                                             c["name"]) for c in p["constants"]]
    graph = helper.make_graph(
        [node_proto(n) for n in p["nodes"]], layer.name,
        [helper.make_tensor_value_info(v, t, dims) for v, (t, dims) in
         zip(p["inputs"], p["input_types"])],
        [helper.make_value_info(v, onnx.TypeProto()) for v in p["outputs"]],
        initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v)
                                                    for d, v in p["opset"].items()])
    try:
        module = convert(model)
    except Exception as e:  # onnx2torch raises anything; the file is untrusted
        raise ConversionError(f"layer {layer.name!r}: onnx2torch cannot convert it "
                              f"({first_line(e)})") from None
    return OnnxLayer(module, [n["op"] for n in p["nodes"]])


# ONNX operators that read a tensor's size as data (nodes after them compute sizes from
# values, which the meta device does not hold).
SIZE_READING_OPS = {"Shape", "Size"}


def _shape_module(layer: Layer) -> nn.Module:
    """The module converted from the layer's blobs: a builder's, or one made here."""
    if id(layer) not in _MODULES:
        blobs = [torch.from_numpy(b) for b in layer.blobs]
        _remember(layer, convert_nodes(layer, blobs).requires_grad_(False), taken=False)
    return _MODULES[id(layer)][0]


def onnx_nodes_shape(layer: Layer, bottoms: list[Shape]) -> Outcome:
    """Not closed-form: the layer's onnx2torch module runs on the meta device, or, when
    its nodes read sizes as data (a padded concatenation), on zeros on the CPU; its
    parameters are moved there for the call only (the module stays where it is)."""
    device = "cpu" if any(n["op"] in SIZE_READING_OPS for n in layer.params["nodes"]) \
        else "meta"
    module = _shape_module(layer)
    tensors = {name: t.to(device) for name, t in
               chain(module.named_parameters(), module.named_buffers())}
    try:
        with torch.no_grad():
            out = torch.func.functional_call(
                module, tensors, tuple(torch.zeros(b, device=device) for b in bottoms))
    except Exception as e:  # onnx2torch's modules raise anything on shapes they refuse
        raise ConversionError(f"layer {layer.name!r} ({layer.type}): cannot run on {bottoms}: "
                              f"{first_line(e)}") from None
    return [list(t.shape) for t in (out if isinstance(out, tuple) else (out,))]


register(LayerType("ONNX", build_onnx_layer, onnx_nodes_shape, whole_image, closed_form=False))
