"""Caffe reader: deploy prototxt (V0, V1 or V2 syntax) + weights -> NetSpec.

Old layouts are first upgraded to V2 `LayerParameter` messages, as Caffe itself does,
so that one function per layer type (`PARAM_READERS`, keyed by Caffe's type name)
turns each message into the description's parameter dict. Weights come from a
`.caffemodel` (V1 or V2 binary) matched by layer name, or from a callable
`(layer_name, blob_index, caffe_shape) -> array`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf import text_format
from google.protobuf.message import DecodeError

from ..bounded import read_bounded
from ..layer_types import layer_type
from ..registry import Registry
from ..shapes import ShapeWalk, Unfit, check_input_shape
from ..spec import ConversionError, Layer, NetSpec
from . import proto

WeightSource = Callable[[str, int, tuple[int, ...]], np.ndarray]

# Types that feed data into the net; their first top is the input blob.
DATA_TYPES = {"Input", "Data", "ImageData", "MemoryData", "HDF5Data", "DummyData",
              "WindowData", "Python"}
# Training-only layers that have no place in an inference graph.
TRAINING_TYPES = {"Accuracy", "SoftmaxWithLoss", "EuclideanLoss", "HingeLoss",
                  "InfogainLoss", "MultinomialLogisticLoss", "SigmoidCrossEntropyLoss",
                  "ContrastiveLoss", "Silence", "HDF5Output"}
# Largest blob we agree to allocate for a weight callable (elements); model files are
# untrusted and a prototxt can declare any num_output.
MAX_BLOB_ELEMENTS = 1 << 31
MAX_PROTOTXT_BYTES = 64 << 20  # GoogLeNet's deploy.prototxt is 36 kB
MAX_CAFFEMODEL_BYTES = 2 << 30  # protobuf's limit on one message


# --- reading the files ---------------------------------------------------------------------

def read_prototxt(path: str | Path) -> Any:
    path = Path(path)
    try:
        text = read_bounded(path, MAX_PROTOTXT_BYTES, "prototxt").decode()
    except UnicodeDecodeError:
        raise ConversionError(f"{path}: not a text prototxt (binary content)") from None
    net = proto.NetParameter()
    try:
        text_format.Parse(text, net)
    except text_format.ParseError as e:
        line = e.GetLine()
        where = f"{path}:{line}" if line else str(path)
        message = str(e).split(" : ", 1)[-1] if line else str(e)
        raise ConversionError(f"{where}: prototxt syntax error: {message}") from None
    return net


def read_caffemodel(path: str | Path) -> dict[str, list[np.ndarray]]:
    """Parameter blobs by layer name, from a V1 or V2 binary caffemodel."""
    path = Path(path)
    data = read_bounded(path, MAX_CAFFEMODEL_BYTES, "caffemodel")
    net = proto.NetParameter()
    try:
        net.ParseFromString(data)
    except (DecodeError, RuntimeError) as e:
        raise ConversionError(f"{path}: not a valid caffemodel (protobuf: {e})") from None
    weights: dict[str, list[np.ndarray]] = {}
    entries = [(lp.name, lp.blobs) for lp in net.layer]
    entries += [(v1.name or v1.layer.name, v1.blobs or v1.layer.blobs) for v1 in net.layers]
    for name, blobs in entries:
        if blobs:
            weights[name] = [blob_array(path, name, i, b) for i, b in enumerate(blobs)]
    if not net.layer and not net.layers:
        raise ConversionError(f"{path}: not a caffemodel (no layers in it)")
    return weights


def blob_array(path: Path, layer: str, index: int, blob: Any) -> np.ndarray:
    """A BlobProto as a float32 array in its declared (or legacy 4-D) shape."""
    if blob.HasField("shape"):
        shape = tuple(int(d) for d in blob.shape.dim)
    else:
        shape = (blob.num, blob.channels, blob.height, blob.width)
    values = blob.data if len(blob.data) else blob.double_data
    if any(d < 0 for d in shape) or math.prod(shape) != len(values):
        raise ConversionError(f"{path}: layer {layer!r} blob {index}: shape {list(shape)} "
                              f"does not match its {len(values)} values")
    return np.asarray(values, dtype=np.float32).reshape(shape)


# --- upgrading V0 and V1 layers to V2 ---------------------------------------------------------

V1_TYPE_NAMES = {
    "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL",
    "CONCAT": "Concat", "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution",
    "DATA": "Data", "DECONVOLUTION": "Deconvolution", "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData", "EUCLIDEAN_LOSS": "EuclideanLoss", "ELTWISE": "Eltwise",
    "EXP": "Exp", "FLATTEN": "Flatten", "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col", "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct", "LRN": "LRN",
    "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN", "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence",
    "SOFTMAX": "Softmax", "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split",
    "SLICE": "Slice", "TANH": "TanH", "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}
V0_TYPE_NAMES = {
    "accuracy": "Accuracy", "bnll": "BNLL", "concat": "Concat", "conv": "Convolution",
    "data": "Data", "dropout": "Dropout", "euclidean_loss": "EuclideanLoss",
    "flatten": "Flatten", "hdf5_data": "HDF5Data", "hdf5_output": "HDF5Output",
    "im2col": "Im2col", "images": "ImageData", "infogain_loss": "InfogainLoss",
    "innerproduct": "InnerProduct", "lrn": "LRN", "multinomial_logistic_loss":
    "MultinomialLogisticLoss", "pool": "Pooling", "relu": "ReLU", "sigmoid": "Sigmoid",
    "softmax": "Softmax", "softmax_loss": "SoftmaxWithLoss", "split": "Split",
    "tanh": "TanH", "window_data": "WindowData",
}


def _upgrade_v0(v0: Any, out: Any) -> None:
    """Fill a V2 LayerParameter from a V0 layer's flat fields (as Caffe's upgrade does)."""
    out.name = v0.name
    out.type = V0_TYPE_NAMES.get(v0.type, v0.type)
    has = v0.HasField
    if out.type == "Convolution":
        p = out.convolution_param
        p.num_output = v0.num_output
        if has("biasterm"):
            p.bias_term = v0.biasterm
        if has("pad"):
            p.pad.append(v0.pad)
        if has("kernelsize"):
            p.kernel_size.append(v0.kernelsize)
        if has("stride"):
            p.stride.append(v0.stride)
        if has("group"):
            p.group = v0.group
    elif out.type == "InnerProduct":
        out.inner_product_param.num_output = v0.num_output
        if has("biasterm"):
            out.inner_product_param.bias_term = v0.biasterm
    elif out.type == "Pooling":
        p = out.pooling_param
        p.pool = v0.pool
        for field in ("pad", "stride"):
            if has(field):
                setattr(p, field, getattr(v0, field))
        if has("kernelsize"):
            p.kernel_size = v0.kernelsize
    elif out.type == "LRN":
        for field in ("local_size", "alpha", "beta", "k"):
            if has(field):
                setattr(out.lrn_param, field, getattr(v0, field))
    elif out.type == "Dropout" and has("dropout_ratio"):
        out.dropout_param.dropout_ratio = v0.dropout_ratio
    elif out.type == "Concat" and has("concat_dim"):
        out.concat_param.concat_dim = v0.concat_dim
    elif out.type in ("Data", "ImageData") and has("cropsize"):
        out.transform_param.crop_size = v0.cropsize
    out.blobs.extend(v0.blobs)


def _upgrade_v1(v1: Any) -> Any:
    out = proto.LayerParameter()
    if v1.HasField("layer"):
        _upgrade_v0(v1.layer, out)
    else:
        out.name = v1.name
        out.type = V1_TYPE_NAMES.get(v1.DESCRIPTOR.fields_by_name["type"].enum_type
                                     .values_by_number[v1.type].name, "")
    out.bottom.extend(v1.bottom)
    out.top.extend(v1.top)
    out.include.extend(v1.include)
    out.exclude.extend(v1.exclude)
    for field, value in v1.ListFields():
        if field.name.endswith("_param") and field.name in out.DESCRIPTOR.fields_by_name:
            getattr(out, field.name).CopyFrom(value)
    return out


def _in_test_phase(lp: Any) -> bool:
    def matches(rule: Any) -> bool:
        return not rule.HasField("phase") or rule.phase == 1  # TEST
    if lp.include and not any(matches(r) for r in lp.include):
        return False
    return not any(matches(r) for r in lp.exclude)


# --- one parameter reader per layer type ----------------------------------------------------

ParamReader = Callable[[Any], dict[str, Any]]
PARAM_READERS: Registry[ParamReader] = Registry("Caffe parameter reader")
reads = PARAM_READERS.register


def _pair(values: list[int], h: Any, w: Any, has_hw: bool, default: int) -> list[int]:
    if has_hw:
        return [int(h), int(w)]
    if not values:
        return [default, default]
    return [int(values[0]), int(values[-1])] if len(values) <= 2 else list(values)


@reads("Convolution")
def _convolution(lp: Any) -> dict[str, Any]:
    p = lp.convolution_param
    if not p.HasField("num_output"):
        raise ConversionError(f"layer {lp.name!r}: convolution_param has no num_output")
    kernel = _pair(p.kernel_size, p.kernel_h, p.kernel_w, p.HasField("kernel_h"), 0)
    if 0 in kernel:
        raise ConversionError(f"layer {lp.name!r}: convolution has no kernel size")
    if p.group < 1:
        raise ConversionError(f"layer {lp.name!r}: convolution group {p.group} is not at least 1")
    return {
        "num_output": p.num_output, "kernel": kernel,
        "stride": _pair(p.stride, p.stride_h, p.stride_w, p.HasField("stride_h"), 1),
        "pad": _pair(p.pad, p.pad_h, p.pad_w, p.HasField("pad_h"), 0),
        "dilation": _pair(p.dilation, 1, 1, False, 1),
        "group": p.group, "bias_term": p.bias_term,
    }


@reads("Pooling")
def _pooling(lp: Any) -> dict[str, Any]:
    p = lp.pooling_param
    method = {0: "max", 1: "ave"}.get(p.pool)
    if method is None:
        raise ConversionError(f"layer {lp.name!r}: STOCHASTIC pooling is not supported")
    out: dict[str, Any] = {"method": method, "round": "floor" if p.round_mode == 1 else "ceil"}
    if p.global_pooling:
        out["global"] = True
        return out
    kernel = _pair([p.kernel_size] if p.HasField("kernel_size") else [], p.kernel_h, p.kernel_w,
                   p.HasField("kernel_h"), 0)
    if 0 in kernel:
        raise ConversionError(f"layer {lp.name!r}: pooling has no kernel size")
    out["kernel"] = kernel
    out["stride"] = _pair([p.stride], p.stride_h, p.stride_w, p.HasField("stride_h"), 1)
    out["pad"] = _pair([p.pad], p.pad_h, p.pad_w, p.HasField("pad_h"), 0)
    return out


@reads("LRN")
def _lrn(lp: Any) -> dict[str, Any]:
    p = lp.lrn_param
    return {"local_size": p.local_size, "alpha": p.alpha, "beta": p.beta, "k": p.k,
            "region": "within" if p.norm_region == 1 else "across"}


@reads("InnerProduct")
def _inner_product(lp: Any) -> dict[str, Any]:
    p = lp.inner_product_param
    return {"num_output": p.num_output, "bias_term": p.bias_term, "axis": p.axis,
            "transpose": p.transpose}


@reads("ReLU")
def _relu(lp: Any) -> dict[str, Any]:
    slope = lp.relu_param.negative_slope
    return {"negative_slope": slope} if slope else {}


@reads("Sigmoid", "TanH", "AbsVal", "Split")
def _no_params(lp: Any) -> dict[str, Any]:
    return {}


@reads("Dropout")
def _dropout(lp: Any) -> dict[str, Any]:
    return {"ratio": lp.dropout_param.dropout_ratio}


@reads("Concat")
def _concat(lp: Any) -> dict[str, Any]:
    p = lp.concat_param
    return {"axis": p.axis if p.HasField("axis") or not p.HasField("concat_dim")
            else p.concat_dim}


@reads("Softmax")
def _softmax(lp: Any) -> dict[str, Any]:
    return {"axis": lp.softmax_param.axis}


@reads("Flatten")
def _flatten(lp: Any) -> dict[str, Any]:
    return {"axis": lp.flatten_param.axis, "end_axis": lp.flatten_param.end_axis}


@reads("Reshape")
def _reshape(lp: Any) -> dict[str, Any]:
    p = lp.reshape_param
    return {"shape": [int(d) for d in p.shape.dim], "axis": p.axis, "num_axes": p.num_axes}


@reads("Eltwise")
def _eltwise(lp: Any) -> dict[str, Any]:
    p = lp.eltwise_param
    return {"operation": {0: "prod", 1: "sum", 2: "max"}[p.operation],
            "coeff": [float(c) for c in p.coeff]}


@reads("BatchNorm")
def _batch_norm(lp: Any) -> dict[str, Any]:
    return {"eps": lp.batch_norm_param.eps}


@reads("Scale")
def _scale(lp: Any) -> dict[str, Any]:
    p = lp.scale_param
    if len(lp.bottom) > 1:
        raise ConversionError(f"layer {lp.name!r}: Scale with a second bottom is not supported")
    return {"axis": p.axis, "num_axes": p.num_axes, "bias_term": p.bias_term}


@reads("Bias")
def _bias(lp: Any) -> dict[str, Any]:
    return {"axis": lp.bias_param.axis, "num_axes": lp.bias_param.num_axes}


@reads("Power")
def _power(lp: Any) -> dict[str, Any]:
    p = lp.power_param
    return {"power": p.power, "scale": p.scale, "shift": p.shift}


def _legacy_equal(found: tuple[int, ...], expected: tuple[int, ...]) -> bool:
    """Caffe's rule for legacy 4-D blobs: equal once `expected` is padded to 4 axes."""
    return len(found) == 4 and len(expected) <= 4 and found == (1,) * (4 - len(expected)) + expected


def _checked(source: str, layer: Layer, index: int, array: np.ndarray,
             expected: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    if tuple(array.shape) == expected:
        return array
    if _legacy_equal(tuple(array.shape), expected):
        return array.reshape(expected)
    raise ConversionError(f"{source}: layer {layer.name!r} blob {index}: expected shape "
                          f"{list(expected)} from the prototxt, found {list(array.shape)}")


# --- assembling the network -----------------------------------------------------------------

def _input_shape(net: Any, lp: Any | None, override: list[int] | None) -> list[int]:
    if override:
        return list(override)
    if lp is None:
        if net.input_shape:
            return [int(d) for d in net.input_shape[0].dim]
        if len(net.input_dim) >= 4:
            return [int(d) for d in net.input_dim[:4]]
        return []
    if lp.type == "Input" and lp.input_param.shape:
        return [int(d) for d in lp.input_param.shape[0].dim]
    if lp.type == "MemoryData":
        m = lp.memory_data_param
        return [m.batch_size or 1, m.channels, m.height, m.width]
    if lp.type == "DummyData" and lp.dummy_data_param.shape:
        return [int(d) for d in lp.dummy_data_param.shape[0].dim]
    crop = lp.transform_param.crop_size
    if lp.type == "ImageData":
        p = lp.image_data_param
        channels = 3 if p.is_color else 1
        if crop:
            return [1, channels, crop, crop]
        if p.new_height and p.new_width:
            return [1, channels, p.new_height, p.new_width]
    if crop:
        return [1, 3, crop, crop]
    return []


def read_caffe(prototxt: str | Path, weights: str | Path | WeightSource | None,
               input_shape: list[int] | None = None) -> NetSpec:
    """Read a deploy prototxt and its weights into a network description.

    `weights` is a `.caffemodel` path, a callable `(layer, blob_index, caffe_shape)`
    returning an array, or None for a net with no parameters. `input_shape`
    (N, C, H, W) overrides the shape declared in the prototxt.
    """
    prototxt = Path(prototxt)
    net = read_prototxt(prototxt)
    messages = list(net.layer) + [_upgrade_v1(v1) for v1 in net.layers]
    messages = [lp for lp in messages if _in_test_phase(lp)]

    data_layer = next((lp for lp in messages if lp.type in DATA_TYPES), None)
    if net.input:
        input_name, data_layer = net.input[0], None
    elif data_layer is not None and data_layer.top:
        input_name = data_layer.top[0]
    else:
        raise ConversionError(f"{prototxt}: the net declares no input (no `input:` and no "
                              f"Input or data layer)")
    shape = _input_shape(net, data_layer, input_shape)
    if len(shape) != 4 or any(d <= 0 for d in shape):
        raise ConversionError(f"{prototxt}: cannot tell the input size (found {shape}); "
                              f"give one as input_shape, e.g. [1, 3, 224, 224]")
    try:
        check_input_shape([1, *shape[1:]])
    except ConversionError as e:
        raise ConversionError(f"{prototxt}: {e}") from None

    layers = []
    for lp in messages:
        if lp.type in DATA_TYPES or lp.type in TRAINING_TYPES:
            continue
        if not lp.type:
            raise ConversionError(f"{prototxt}: layer {lp.name!r} has no type")
        if not lp.bottom:
            raise ConversionError(f"{prototxt}: layer {lp.name!r} reads no blob")
        reader = PARAM_READERS.get(lp.type)
        if reader is None:
            raise ConversionError(f"{prototxt}: layer {lp.name!r} has unsupported type "
                                  f"{lp.type!r}")
        try:
            params = reader(lp)
        except ConversionError as e:
            raise ConversionError(f"{prototxt}: {e}") from None
        layers.append(Layer(lp.name, lp.type, list(lp.bottom), list(lp.top), params))

    if callable(weights):
        source_name, lookup = "weights callable", None
    elif weights is not None:
        source_name, lookup = str(weights), read_caffemodel(weights)
    else:
        source_name, lookup = "no weights", {}
    _fill_weights(layers, input_name, shape, weights, lookup, source_name, prototxt)

    source = {"format": "caffe", "prototxt": prototxt.name,
              "weights": Path(weights).name if isinstance(weights, (str, Path)) else None}
    name = net.name or prototxt.stem
    try:
        return NetSpec(name, input_name, [1, *shape[1:]], layers, source=source)
    except ConversionError as e:
        raise ConversionError(f"{prototxt}: {e}") from None


def _fill_weights(layers: list[Layer], input_name: str, shape: list[int], weights: Any,
                  lookup: dict[str, list[np.ndarray]] | None, source_name: str,
                  prototxt: Path) -> None:
    """Give each layer its blobs, checking shapes by arithmetic (`shapes.py`)."""
    walk = ShapeWalk(input_name, [1, *shape[1:]])
    for layer in layers:
        try:
            bottoms = walk.bottoms(layer)
        except ConversionError as e:
            raise ConversionError(f"{prototxt}: {e}") from None
        # No bottom is blocked: the first layer that cannot be computed stops the reader.
        expected = layer_type(layer).blob_shapes(layer, bottoms[0] if bottoms else [])
        if expected:
            if lookup is None:
                for s in expected:
                    if math.prod(s) > MAX_BLOB_ELEMENTS:
                        raise ConversionError(f"layer {layer.name!r}: blob shape {list(s)} "
                                              f"is too large")
                found = [weights(layer.name, i, s) for i, s in enumerate(expected)]
            else:
                found = lookup.get(layer.name, [])
                if not found:
                    raise ConversionError(f"{source_name}: no weights for layer {layer.name!r}")
            if len(found) != len(expected):
                raise ConversionError(f"{source_name}: layer {layer.name!r} has {len(found)} "
                                      f"weight blobs, the prototxt implies {len(expected)}")
            layer.blobs = [_checked(source_name, layer, i, a, s)
                           for i, (a, s) in enumerate(zip(found, expected))]
        try:
            out = walk.add(layer)
        except ConversionError as e:
            raise ConversionError(f"{prototxt}: {e}") from None
        if isinstance(out, Unfit):
            raise ConversionError(f"{prototxt}: cannot compute the net on input shape "
                                  f"{walk.input_shape}: {out.reason}")
