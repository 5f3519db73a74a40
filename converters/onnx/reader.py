"""ONNX files into the network description, run through onnx2torch's node converters.

Each layer of the description is one ONNX node (type "ONNX"), or, for a graph that
dreamzoo exported, the few nodes that one original layer became, so that layer names,
blob names, `sequence` and `forward_to` are those of the original net. A layer's params
hold its nodes in readable JSON, its float initializers are its blobs, small integer
constants stay in the params. The layer's module is built by onnx2torch from a graph of
just those nodes (see `layer.py`). Constant nodes are folded into their readers.
Shapes of such layers come from PyTorch's meta device (`layer.py`); a layer's minimum
input size (params "min_size") is the one dreamzoo's exporter recorded, else unknown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from ..bounded import load_json, read_bounded
from ..cli import warnings_held
from ..network import Network
from ..preprocessing import Preprocessing
from ..shapes import check_input_shape
from ..spec import ConversionError, Layer, NetSpec, first_line
from .format import METADATA_KEY

MAX_BYTES = 2 << 30
FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16}
ATTRIBUTE_TYPES = {"INT", "FLOAT", "STRING", "INTS", "FLOATS", "STRINGS", "TENSOR"}


def load_onnx(path: str | Path) -> Network:
    """A Network from an .onnx file."""
    with warnings_held():  # onnx2torch's, about its node converters
        spec = read_onnx(path)
        try:
            return Network(spec)
        except ConversionError as e:
            raise ConversionError(f"{path}: {e}") from None


def read_model(path: Path) -> onnx.ModelProto:
    """Parse and validate an ONNX file (no external data: every tensor must be inside)."""
    data = read_bounded(path, MAX_BYTES, "ONNX model")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:  # protobuf's DecodeError, or RuntimeError from its C++ core
        raise ConversionError(f"{path}: not an ONNX model (cannot parse it: {e})") from None
    if model.ir_version == 0 or not model.graph.node:
        raise ConversionError(f"{path}: not an ONNX model (no IR version or no graph nodes)")
    tensors = list(model.graph.initializer) + [a.t for n in model.graph.node
                                               for a in n.attribute if a.HasField("t")]
    if any(t.data_location == TensorProto.EXTERNAL for t in tensors):
        raise ConversionError(f"{path}: tensors in external data files are not supported")
    bad_text = _non_utf8_text(model)
    if bad_text is not None:
        raise ConversionError(f"{path}: invalid ONNX model (text {bad_text[:40]!r} is not UTF-8)")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        raise ConversionError(f"{path}: invalid ONNX model ({first_line(e)})") from None
    return model


def _non_utf8_text(message: Any) -> bytes | None:
    """The first text field that is not UTF-8 (protobuf gives such a field as bytes)."""
    for field, value in message.ListFields():
        for item in (value if field.is_repeated else [value]):
            if field.cpp_type == field.CPPTYPE_MESSAGE:
                found = _non_utf8_text(item)
                if found is not None:
                    return found
            elif field.type == field.TYPE_STRING and isinstance(item, bytes):
                return item
    return None


def _array(path: Path, tensor: TensorProto) -> np.ndarray:
    try:
        return numpy_helper.to_array(tensor)
    except (ValueError, KeyError, TypeError) as e:  # onnx's own checks of the tensor
        raise ConversionError(f"{path}: tensor {tensor.name!r} is malformed "
                              f"({first_line(e)})") from None


def _attribute_value(path: Path, attribute: onnx.AttributeProto) -> Any:
    try:
        return helper.get_attribute_value(attribute)
    except ValueError as e:
        raise ConversionError(f"{path}: attribute {attribute.name!r}: {first_line(e)}") \
            from None


def check_convertible(path: Path, model: onnx.ModelProto) -> dict[str, int]:
    """The opsets, after checking that onnx2torch has a converter for every node."""
    # optional: onnx2torch is heavy (torchvision), needed only when reading an ONNX file
    from onnx2torch.node_converters.registry import _CONVERTER_REGISTRY, get_converter

    opsets = {o.domain or "": o.version for o in model.opset_import}
    for node in model.graph.node:
        domain = node.domain or ""
        label = f"node {node.name or node.output[0]!r}"
        if domain not in opsets:
            raise ConversionError(f"{path}: {label} uses domain {domain!r}, not imported")
        try:
            get_converter(operation_type=node.op_type, version=opsets[domain], domain=domain)
        except NotImplementedError:
            known = sorted(d.version for d in _CONVERTER_REGISTRY
                           if d.operation_type == node.op_type and d.domain == domain)
            if not known:
                raise ConversionError(f"{path}: {label}: onnx2torch cannot convert operator "
                                      f"{node.op_type!r}") from None
            raise ConversionError(
                f"{path}: {label}: {node.op_type} at opset {opsets[domain]} is not supported by "
                f"onnx2torch (it converts versions {known}); export with opset 13") from None
    return opsets


def read_onnx(path: str | Path) -> NetSpec:
    """The network description of an .onnx file."""
    path = Path(path)
    model = read_model(path)
    opsets = check_convertible(path, model)
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except (onnx.shape_inference.InferenceError, RuntimeError) as e:
        raise ConversionError(f"{path}: invalid ONNX model ({first_line(e)})") from None
    try:
        return _describe(path, model, opsets)
    except ConversionError as e:
        raise ConversionError(str(e) if str(e).startswith(str(path)) else f"{path}: {e}") \
            from None


def _describe(path: Path, model: onnx.ModelProto, opsets: dict[str, int]) -> NetSpec:
    graph = model.graph
    constants = {t.name: t for t in graph.initializer}
    nodes = []
    for node in graph.node:
        if node.op_type == "Constant" and (node.domain or "") == "":
            constants[node.output[0]] = _constant_tensor(path, node)
        else:
            nodes.append(node)
    inputs = [v for v in graph.input if v.name not in constants]
    if len(inputs) != 1:
        raise ConversionError(f"{path}: the graph has {len(inputs)} inputs; one is supported")
    types = {v.name: v.type.tensor_type for v in [*graph.input, *graph.value_info, *graph.output]}
    meta = _metadata(model)
    groups = _groups(nodes, meta)
    outputs = {o.name for o in graph.output}
    reads = [{i for n in group for i in n.input} for group in groups]
    layers, blob_of = [], {inputs[0].name: (meta or {}).get("input", {}).get("name",
                                                                             inputs[0].name)}
    for k, (group, info) in enumerate(zip(groups, _layer_infos(groups, meta))):
        later = set().union(*reads[k + 1:]) | outputs
        layers.append(_layer(path, group, info, constants, types, opsets, blob_of, later))
    shape = _input_shape(inputs[0], meta)
    check_input_shape([1, *shape[1:]])
    source = {"format": "onnx", "file": path.name, "opset": opsets.get("", 0),
              "producer": f"{model.producer_name} {model.producer_version}".strip()}
    if meta:
        source["exported_from"] = meta.get("source", {})
    names = {layer.name for layer in layers}
    sequence = [n for n in (meta or {}).get("sequence", []) if n in names]
    recorded = (meta or {}).get("preprocessing")
    return NetSpec((meta or {}).get("name") or graph.name or path.stem, blob_of[inputs[0].name],
                   shape, layers, sequence, source,
                   None if recorded is None else Preprocessing.from_json(recorded))


def _constant_tensor(path: Path, node: onnx.NodeProto) -> TensorProto:
    attribute = node.attribute[0] if len(node.attribute) == 1 else None
    if attribute is None or attribute.name not in ("value", "value_float", "value_floats",
                                                   "value_int", "value_ints"):
        raise ConversionError(f"{path}: Constant node {node.output[0]!r}: unsupported form")
    if attribute.name == "value":
        tensor = TensorProto()
        tensor.CopyFrom(attribute.t)
    else:
        value = _attribute_value(path, attribute)
        dtype = np.float32 if "float" in attribute.name else np.int64
        tensor = numpy_helper.from_array(np.asarray(value, dtype=dtype))
    tensor.name = node.output[0]
    return tensor


def _metadata(model: onnx.ModelProto) -> dict[str, Any] | None:
    """The exporter's record (see export.py), if present and well formed."""
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            try:
                meta = load_json(prop.value, METADATA_KEY)
            except ConversionError:
                return None
            return meta if _well_formed(meta) else None
    return None


def _well_formed(meta: Any) -> bool:
    def strings(v: Any) -> bool:
        return isinstance(v, list) and all(isinstance(s, str) for s in v)

    try:
        return (strings(meta["sequence"]) and isinstance(meta["name"], str)
                and isinstance(meta["input"]["name"], str)
                and isinstance(meta["source"], dict)
                and isinstance(meta.get("preprocessing") or {}, dict)
                and all(isinstance(e["name"], str) and strings(e["tops"]) and e["tops"]
                        and isinstance(e["nodes"], int) and e["nodes"] > 0
                        for e in meta["layers"]))
    except (TypeError, KeyError):
        return False


def _groups(nodes: list[onnx.NodeProto], meta: dict[str, Any] | None) -> list[list]:
    """Nodes per layer: as the exporter recorded them when consistent, else one each."""
    if meta is None:
        return [[n] for n in nodes]
    counts = [entry["nodes"] for entry in meta["layers"]]
    names = [entry["name"] for entry in meta["layers"]]
    if sum(counts) != len(nodes):
        return [[n] for n in nodes]
    groups, start = [], 0
    for count, name in zip(counts, names):
        group = nodes[start:start + count]
        start += count
        if name not in {o for n in group for o in n.output}:
            return [[n] for n in nodes]
        groups.append(group)
    return groups


def _layer_infos(groups: list[list], meta: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Per group: the layer name and the blob name of each ONNX output value."""
    if meta and len(meta["layers"]) == len(groups) and \
            sum(e["nodes"] for e in meta["layers"]) == sum(map(len, groups)):
        infos = []
        for entry in meta["layers"]:
            name, tops = entry["name"], list(entry["tops"])
            values = [name] + [f"{name}:{k}" for k in range(1, len(tops))]
            infos.append({"name": name, "values": values, "tops": tops,
                          "min_size": _min_size(entry.get("min_size"))})
        return infos
    infos, seen = [], set()
    for (node,) in groups:
        base = node.name or node.output[0]
        name, k = base, 0
        while name in seen:
            k += 1
            name = f"{base}_{k}"
        seen.add(name)
        values = [o for o in node.output if o]
        infos.append({"name": name, "values": values, "tops": values})
    return infos


def _min_size(value: Any) -> list[int] | None:
    """The exporter's minimum input [height, width] for a layer, if well formed."""
    if isinstance(value, list) and len(value) == 2 and \
            all(isinstance(v, int) and v > 0 for v in value):
        return value
    return None


def _layer(path: Path, group: list, info: dict[str, Any], constants: dict[str, TensorProto],
           types: dict[str, Any], opsets: dict[str, int], blob_of: dict[str, str],
           later: set[str]) -> Layer:
    produced = {o for n in group for o in n.output}
    inputs, blobs, blob_names, inline = [], [], [], []
    for value in (i for n in group for i in n.input):
        if not value or value in produced or value in inputs or value in blob_names \
                or any(c["name"] == value for c in inline):
            continue
        if value in constants:
            tensor = constants[value]
            array = _array(path, tensor)
            if tensor.data_type in FLOAT_TYPES:
                blobs.append(array.astype(np.float32))
                blob_names.append(value)
            else:
                inline.append({"name": value, "dtype": int(tensor.data_type),
                               "dims": list(array.shape), "values": array.ravel().tolist()})
        elif value in blob_of:
            inputs.append(value)
        else:
            raise ConversionError(f"{path}: node {group[0].name or group[0].output[0]!r} reads "
                                  f"{value!r}, which no earlier node writes")
    named = [(v, t) for v, t in zip(info["values"], info["tops"]) if v in produced]
    values = [v for v, _ in named]
    extra = [o for n in group for o in n.output if o and o in later and o not in values]
    outputs = values + extra
    tops = [t for _, t in named] + extra
    params = {"opset": opsets, "inputs": inputs, "outputs": outputs,
              "input_types": [_type_json(types.get(v)) for v in inputs],
              "initializers": blob_names,
              "initializer_dtypes": [int(constants[b].data_type) for b in blob_names],
              "constants": inline, "nodes": [_node_json(path, n) for n in group]}
    if info.get("min_size"):
        params["min_size"] = info["min_size"]
    bottoms = [blob_of[v] for v in inputs]
    blob_of.update(zip(outputs, tops))
    return Layer(info["name"], "ONNX", bottoms, tops, params, blobs)


def _type_json(tensor_type: Any) -> list[Any]:
    """[element type, dims] with dims as ints, symbolic names or None (unknown)."""
    if tensor_type is None or not tensor_type.HasField("shape"):
        return [TensorProto.FLOAT, None]
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in tensor_type.shape.dim]
    return [int(tensor_type.elem_type) or TensorProto.FLOAT, dims]


def _node_json(path: Path, node: onnx.NodeProto) -> dict[str, Any]:
    attributes = []
    for a in node.attribute:
        kind = AttributeProto.AttributeType.Name(a.type)
        if kind not in ATTRIBUTE_TYPES:
            raise ConversionError(f"{path}: node {node.name or node.output[0]!r}: attribute "
                                  f"{a.name!r} of type {kind} is not supported")
        value = _attribute_value(path, a)
        if kind == "TENSOR":
            array = _array(path, value)
            value = {"dtype": int(value.data_type), "dims": list(array.shape),
                     "values": array.ravel().tolist()}
        elif kind in ("STRING", "STRINGS"):
            value = value.decode() if kind == "STRING" else [s.decode() for s in value]
        attributes.append([a.name, kind, value])
    return {"op": node.op_type, "domain": node.domain, "name": node.name,
            "inputs": list(node.input), "outputs": list(node.output), "attributes": attributes}


def _input_shape(value: onnx.ValueInfoProto, meta: dict[str, Any] | None) -> list[int]:
    """The declared input shape: the exporter's, else the file's (1 for a symbolic batch,
    224 for other symbolic sizes)."""
    shape = (meta or {}).get("input", {}).get("shape")
    if isinstance(shape, list) and all(isinstance(d, int) for d in shape):
        return shape
    dims = _type_json(value.type.tensor_type)[1] or [1, 3, 224, 224]
    return [d if isinstance(d, int) and d > 0 else (1 if i == 0 else 224)
            for i, d in enumerate(dims)]
