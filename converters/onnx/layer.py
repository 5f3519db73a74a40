"""The "ONNX" layer type: its module (the layer's nodes, converted by onnx2torch) and its
shape rule, registered into the builder's and the shape tables from here, so that the
builder knows no file format. `converters/__init__.py` imports this package, so the type
is registered whenever any part of `converters` is imported.

The shape rule has no closed form: it runs the layer's module on PyTorch's meta device
(shapes only, nothing allocated), at the one size asked; a layer whose nodes read sizes as
data (Shape, Size: dreamzoo's export of a DepthConcat) runs on zeros on the CPU instead.
"""

from __future__ import annotations

import weakref

import onnx
import torch
from onnx import helper, numpy_helper
from torch import Tensor, nn

from ..layers import build_module, register
from ..shapes import Outcome, Shape, shape_rule
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


@register("ONNX")
def build_onnx_module(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    """The module of an "ONNX" layer: its nodes in a graph of their own, onnx2torch'd."""
    from onnx2torch import convert

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


# Modules of ONNX layers for shapes, by layer identity; an entry goes with its layer.
_SHAPE_MODULES: dict[int, nn.Module] = {}
# ONNX operators that read a tensor's size as data (nodes after them compute sizes from
# values, which the meta device does not hold).
SIZE_READING_OPS = {"Shape", "Size"}


@shape_rule("ONNX")
def onnx_nodes(layer: Layer, bottoms: list[Shape]) -> Outcome:
    """Not closed-form: the layer's onnx2torch module runs on the meta device, or, when
    its nodes read sizes as data (a padded concatenation), on zeros on the CPU."""
    device = "cpu" if any(n["op"] in SIZE_READING_OPS for n in layer.params["nodes"]) \
        else "meta"
    key = id(layer)
    if key not in _SHAPE_MODULES:
        module = build_module(layer, [torch.from_numpy(b) for b in layer.blobs]).to(device)
        _SHAPE_MODULES[key] = module
        weakref.finalize(layer, _SHAPE_MODULES.pop, key, None)
    module = _SHAPE_MODULES[key]
    try:
        with torch.no_grad():
            out = module(*[torch.zeros(b, device=device) for b in bottoms])
    except Exception as e:  # onnx2torch's modules raise anything on shapes they refuse
        raise ConversionError(f"layer {layer.name!r} ({layer.type}): cannot run on {bottoms}: "
                              f"{first_line(e)}") from None
    return [list(t.shape) for t in (out if isinstance(out, tuple) else (out,))]
