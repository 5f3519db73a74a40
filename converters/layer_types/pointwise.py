"""Element-wise layer types (each output value from the input value at its position)
and the softmaxes along one axis."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..spec import Layer
from .arithmetic import Outcome, Shape, axis_index, one_input, same_shape
from .modules import Lambda
from .registry import LayerType, params, register, same_field, whole_image


def relu(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    slope = params(layer)["negative_slope"]
    if slope == 0:
        return Lambda(F.relu, "relu")
    return Lambda(lambda x: F.leaky_relu(x, slope), f"leaky_relu({slope})")


def sigmoid(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    return Lambda(torch.sigmoid, "sigmoid")


def tanh(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    return Lambda(torch.tanh, "tanh")


def absval(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    return Lambda(torch.abs, "abs")


def power(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    p = params(layer)
    pw, sc, sh = p["power"], p["scale"], p["shift"]
    return Lambda(lambda x: (x * sc + sh) ** pw if pw != 1 else x * sc + sh,
                  f"({sc}·x + {sh})^{pw}")


def dropout(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    # Caffe scales at training time, so inference is the identity.
    return Lambda(lambda x: x, f"dropout({params(layer)['ratio']}), identity")


def split(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    count = len(layer.tops)
    return Lambda(lambda x: (x,) * count if count > 1 else x, f"split x{count}")


def softmax(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    axis = params(layer)["axis"]
    return Lambda(lambda x: torch.softmax(x, axis), f"softmax axis={axis}")


def log_softmax(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    axis = params(layer)["axis"]
    return Lambda(lambda x: torch.log_softmax(x, axis), f"log_softmax axis={axis}")


def softmax_shape(layer: Layer, bottoms: list[Shape]) -> Outcome:
    x = one_input(layer, bottoms)
    axis_index(layer, params(layer)["axis"], len(x))
    return [x] * len(layer.tops)


register(
    LayerType("ReLU", relu, same_shape, same_field, defaults={"negative_slope": 0.0}),
    LayerType("Sigmoid", sigmoid, same_shape, same_field),
    LayerType("TanH", tanh, same_shape, same_field),
    LayerType("AbsVal", absval, same_shape, same_field),
    LayerType("Power", power, same_shape, same_field,
              defaults={"power": 1.0, "scale": 1.0, "shift": 0.0}),
    LayerType("Dropout", dropout, same_shape, same_field, defaults={"ratio": 0.5}),
    LayerType("Split", split, same_shape, same_field),
    LayerType("Softmax", softmax, softmax_shape, whole_image, defaults={"axis": 1}),
    LayerType("LogSoftmax", log_softmax, softmax_shape, whole_image, defaults={"axis": 1}),
)
