"""What the ONNX reader and exporter share: the opset, the metadata key, node JSON.

An "ONNX" layer's params hold its nodes as JSON (see `reader.py`); `node_proto` and
`tensor_array` turn that JSON back into protobuf nodes and arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import AttributeProto, helper, numpy_helper

OPSET = 13
IR_VERSION = 8  # what onnxruntime >= 1.17 reads at opset 13
METADATA_KEY = "dreamzoo.network"


def tensor_array(dtype: int, dims: list[int], values: list[Any]) -> np.ndarray:
    return np.asarray(values, dtype=helper.tensor_dtype_to_np_dtype(dtype)).reshape(dims)


def node_proto(entry: dict[str, Any]) -> onnx.NodeProto:
    node = helper.make_node(entry["op"], entry["inputs"], entry["outputs"],
                            name=entry["name"] or None, domain=entry["domain"] or None)
    for name, kind, value in entry["attributes"]:
        if kind == "TENSOR":
            value = numpy_helper.from_array(tensor_array(value["dtype"], value["dims"],
                                                   value["values"]))
        node.attribute.append(helper.make_attribute(
            name, value, attr_type=getattr(AttributeProto, kind)))
    return node
