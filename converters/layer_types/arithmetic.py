"""What shape rules share: shapes, `Unfit`, and the checks most rules make.

A shape rule maps a layer and its bottoms' shapes to its tops' shapes, or to an `Unfit`
value when the layer cannot be computed at this input size (an empty output, a fan-in
that does not match the weights); a description that is wrong at any size is a
`ConversionError` naming the layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..spec import ConversionError, Layer

Shape = list[int]


@dataclass(frozen=True)
class Unfit:
    """Why a layer cannot be computed at some input size; `too_small` if only larger ones do."""

    layer: str
    reason: str
    too_small: bool = False


Outcome = list[Shape] | Unfit


def error(layer: Layer, message: str) -> ConversionError:
    return ConversionError(f"layer {layer.name!r} ({layer.type}): {message}")


def one_input(layer: Layer, bottoms: list[Shape], rank: int | None = None) -> Shape:
    if len(bottoms) != 1:
        raise error(layer, f"reads {len(bottoms)} blobs, expected 1")
    if rank is not None and len(bottoms[0]) != rank:
        raise error(layer, f"needs a {rank}-D input, gets shape {bottoms[0]}")
    return bottoms[0]


def axis_index(layer: Layer, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise error(layer, f"axis {axis} is out of range for a {rank}-D input")
    return axis % rank


def check_window(layer: Layer, **values: list[int]) -> None:
    """Kernels, strides and dilations must be at least 1 and pads at least 0."""
    for name, pair in values.items():
        low = 0 if name == "pad" else 1
        if len(pair) != 2 or any(not isinstance(v, int) or v < low for v in pair):
            raise error(layer, f"invalid {name} {pair}")


def spatial(layer: Layer, x: Shape, channels: int, sizes: list[int]) -> Outcome:
    """[N, channels, *sizes] for each top, or too small when a size is below 1."""
    if min(sizes) < 1:
        return Unfit(layer.name, f"layer {layer.name!r} ({layer.type}) has no output on its "
                     f"{x[3]}×{x[2]} input", too_small=True)
    return [[x[0], channels, *sizes]] * len(layer.tops)


def mismatch(layer: Layer, message: str) -> Unfit:
    return Unfit(layer.name, f"layer {layer.name!r} ({layer.type}): {message}")


def same_shape(layer: Layer, bottoms: list[Shape]) -> Outcome:
    """One input, every top of its shape."""
    return [one_input(layer, bottoms)] * len(layer.tops)
