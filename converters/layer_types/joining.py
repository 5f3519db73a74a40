"""Layer types that join several inputs: Eltwise, Concat and Torch7's DepthConcat."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..spec import ConversionError, Layer
from .arithmetic import Outcome, Shape, axis_index, error, mismatch
from .modules import Lambda
from .registry import LayerType, params, register, same_field


def eltwise(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    p = params(layer)
    op, coeffs = p["operation"], p["coeff"]
    if coeffs and len(coeffs) != len(layer.bottoms):
        raise ConversionError(f"layer {layer.name!r}: Eltwise has {len(coeffs)} coefficients "
                              f"for {len(layer.bottoms)} bottoms")

    def combine(*xs: Tensor) -> Tensor:
        if op == "sum":
            terms = [x * c if c != 1 else x for x, c in zip(xs, coeffs or [1.0] * len(xs))]
            return torch.stack(terms).sum(0) if len(terms) > 2 else terms[0] + terms[1]
        out = xs[0]
        for x in xs[1:]:
            out = out * x if op == "prod" else torch.maximum(out, x)
        return out

    if op not in ("sum", "prod", "max"):
        raise ConversionError(f"layer {layer.name!r}: unsupported Eltwise operation {op!r}")
    return Lambda(combine, f"eltwise {op} {coeffs or ''}".strip())


def eltwise_shape(layer: Layer, bottoms: list[Shape]) -> Outcome:
    p = params(layer)
    if p["operation"] not in ("sum", "prod", "max"):
        raise error(layer, f"unsupported Eltwise operation {p['operation']!r}")
    if p["coeff"] and len(p["coeff"]) != len(bottoms):
        raise error(layer, f"{len(p['coeff'])} coefficients for {len(bottoms)} bottoms")
    if len(bottoms) < 2:
        raise error(layer, "needs at least two bottoms")
    if any(b != bottoms[0] for b in bottoms):
        return mismatch(layer, f"input shapes differ: {bottoms}")
    return [bottoms[0]] * len(layer.tops)


def concat(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    axis = params(layer)["axis"]
    return Lambda(lambda *xs: torch.cat(xs, axis), f"concat axis={axis}")


def depth_concat(layer: Layer, blobs: list[Tensor]) -> nn.Module:
    """nn.DepthConcat: concatenate along `axis`, zero-padding the other dimensions of
    smaller inputs to the largest size, centred (the extra odd pixel after)."""
    axis = params(layer)["axis"]

    def join(*xs: Tensor) -> Tensor:
        dims = xs[0].dim()
        target = [max(x.shape[d] for x in xs) for d in range(dims)]
        padded = []
        for x in xs:
            pads: list[int] = []
            for d in reversed(range(dims)):  # F.pad lists the last dimension first
                extra = 0 if d == axis % dims else target[d] - x.shape[d]
                pads += [extra // 2, extra - extra // 2]
            padded.append(F.pad(x, pads) if any(pads) else x)
        return torch.cat(padded, axis)

    return Lambda(join, f"depth concat axis={axis}")


def _joined(layer: Layer, bottoms: list[Shape], pad_others: bool) -> Outcome:
    if not bottoms or any(len(b) != len(bottoms[0]) for b in bottoms):
        raise error(layer, f"cannot join inputs of shapes {bottoms}")
    rank = len(bottoms[0])
    axis = axis_index(layer, params(layer)["axis"], rank)
    out = [max(b[d] for b in bottoms) for d in range(rank)]
    if not pad_others and any(b[d] != out[d] for b in bottoms for d in range(rank) if d != axis):
        return mismatch(layer, f"input shapes differ outside axis {axis}: {bottoms}")
    out[axis] = sum(b[axis] for b in bottoms)
    return [out] * len(layer.tops)


def concat_shape(layer: Layer, bottoms: list[Shape]) -> Outcome:
    return _joined(layer, bottoms, pad_others=False)


def depth_concat_shape(layer: Layer, bottoms: list[Shape]) -> Outcome:
    return _joined(layer, bottoms, pad_others=True)


register(
    LayerType("Eltwise", eltwise, eltwise_shape, same_field, is_feature=True,
              defaults={"operation": "sum", "coeff": []}),
    LayerType("Concat", concat, concat_shape, same_field, is_feature=True,
              defaults={"axis": 1}),
    LayerType("DepthConcat", depth_concat, depth_concat_shape, same_field, moves_field=True,
              is_feature=True,
              defaults={"axis": 1}),
)
