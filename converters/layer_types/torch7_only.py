"""Layer types for Torch7 modules whose semantics no Caffe type has."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..spec import Layer
from .arithmetic import Outcome, Shape, error, one_input, same_shape, spatial
from .modules import Lambda
from .registry import LayerType, params, register, same_field, whole_image


def torch_threshold(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    """nn.Threshold: y = x where x > threshold, else value."""
    p = params(layer)
    threshold, value = p["threshold"], p["value"]
    return Lambda(lambda x: torch.where(x > threshold, x, value),
                  f"x > {threshold} ? x : {value}")


def dropout_v1(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    """Torch7's original nn.Dropout (no `v2`): evaluation mode scales by 1 - p."""
    keep = 1.0 - params(layer)["ratio"]
    return Lambda(lambda x: x * keep, f"dropout v1, x · {keep}")


def normalize(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    """nn.Normalize: x / (Σ|x|^p + eps)^(1/p) over the last axis; p "inf": x / (max|x| + eps)."""
    settings = params(layer)
    p, eps = settings["p"], settings["eps"]

    def norm(x: Tensor) -> Tensor:
        if p == "inf":
            return x / (x.abs().amax(-1, keepdim=True) + eps)
        return x / (x.abs().pow(p).sum(-1, keepdim=True) + eps).pow(1.0 / p)

    return Lambda(norm, f"normalize p={p}")


def zero_padding(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    """nn.SpatialZeroPadding: pad (or crop, when negative) [left, right, top, bottom]."""
    pad = list(params(layer)["pad"])
    return Lambda(lambda x: F.pad(x, pad), f"zero padding {pad}")


def zero_padding_shape(layer: Layer, bottoms: list[Shape]) -> Outcome:
    x = one_input(layer, bottoms, 4)
    left, right, top, bottom = params(layer)["pad"]
    return spatial(layer, x, x[1], [x[2] + top + bottom, x[3] + left + right])


def identity(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    """nn.Identity, and the table of tensors a ConcatTable outputs: inputs unchanged."""
    return Lambda(lambda *xs: xs if len(xs) > 1 else xs[0], "identity")


def identity_shape(layer: Layer, bottoms: list[Shape]) -> Outcome:
    if len(bottoms) != len(layer.tops):
        raise error(layer, f"{len(bottoms)} inputs for {len(layer.tops)} outputs")
    return list(bottoms)


register(
    LayerType("TorchThreshold", torch_threshold, same_shape, same_field),
    LayerType("DropoutV1", dropout_v1, same_shape, same_field),
    LayerType("Normalize", normalize, same_shape, whole_image, defaults={"eps": 1e-10}),
    # Kept as the receptive-field rule always had it: padding does not widen the field.
    LayerType("ZeroPadding", zero_padding, zero_padding_shape, same_field, moves_field=True),
    LayerType("Identity", identity, identity_shape, same_field),
)
