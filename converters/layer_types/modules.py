"""Small pieces the builders share: a module for parameter-free operators, blob counts."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from ..spec import ConversionError, Layer


class Lambda(nn.Module):
    """A parameter-free operator, with a readable repr."""

    def __init__(self, fn: Callable[..., Tensor], text: str) -> None:
        super().__init__()
        self.fn, self.text = fn, text

    def forward(self, *xs: Tensor) -> Tensor:
        return self.fn(*xs)

    def extra_repr(self) -> str:
        return self.text


def expect_blobs(layer: Layer, blobs: list[Tensor], counts: tuple[int, ...]) -> None:
    if len(blobs) not in counts:
        want = " or ".join(str(c) for c in counts)
        raise ConversionError(
            f"layer {layer.name!r} ({layer.type}): expected {want} weight blobs, "
            f"found {len(blobs)}")


def frozen(tensor: Tensor) -> nn.Parameter:
    """`tensor` as a parameter without a copy (the description's array stays its storage)."""
    return nn.Parameter(tensor, requires_grad=False)
