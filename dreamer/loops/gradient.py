"""The dream gradient: d(objective)/d(input) for one or several target layers.

`DreamGradient(x)` runs the net only up to the deepest target, takes the objective's
output gradients (dreamer/plan/objectives.py) back to the input, optionally in tiles
(bounded memory for large images, exact), and passes the result through the plan's
gradient stages (dreamer/plan/stages.py: blur, Laplacian normalisation). A target behind a
fully connected classifier (computable only at the declared input size) gets its gradient
on one seeded random crop of that size per step, as deepdraw feeds GoogLeNet (`cropped`).

Tiling cuts the targets' output into tiles: each tile's share of the gradient, Jᵀ·dy
with dy zero outside the tile, is computed on the input window its units see and added
in (`output_tiles`); the windows overlap by one receptive field. Where the field's
position is not known (a layer type below whose entry has a window but no `padding`, or
`moves_field`), or with an explicit `tile_margin`, tiles of the input are computed on the
tile widened by the margin on each side and only the tile is kept (overlap: two
receptive fields).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import product

import numpy as np
import torch
from torch import Tensor

from converters.errors import ConversionError, UsageError
from converters.layer_types import layer_type
from converters.network import Network
from converters.shapes import Unfit
from dreamer.plan.objectives import Objective
from dreamer.plan.stages import GradientStage
from dreamer.plan.targets import Target
from dreamer.runtime.precision import reduced_precision


@dataclass(frozen=True)
class Span:
    """Output unit u of a blob sees input rows (axis 0) or columns (axis 1)
    start[axis] + u·jump ... end[axis] + u·jump."""
    start: tuple[int, int]
    end: tuple[int, int]
    jump: int



class DreamGradient:
    """Callable: input x (1×C×H×W) -> the input gradient of `objective`'s output
    gradients, through `stages` in order (blur, Laplacian normalisation), same shape."""

    def __init__(self, network: Network, objective: Objective,
                 stages: tuple[GradientStage, ...] = (), tile: int | None = None,
                 tile_margin: int | None = None, dtype: torch.dtype | None = None) -> None:
        if not objective.layers:
            raise UsageError("no target layer")
        self.network, self.objective, self.stages = network, objective, stages
        self.layers = list(objective.layers)
        self.tile = tile
        self.dtype = dtype  # the network's autocast dtype; None: float32
        self.spans = None  # per target layer, where the output is tiled (see output_tiled)
        if tile is not None:
            size, self.tile_align = receptive_field(network, self.layers)
            self.tile_margin = size if tile_margin is None else tile_margin
            spans = field_spans(network, self.layers) if tile_margin is None else None
            if spans is not None:
                self.spans = spans
                self.output_align = math.lcm(*(s.jump for s in spans.values()))
                self.reach = max(max(s.end[a] - s.start[a] for a in (0, 1))
                                 for s in spans.values())

    def __call__(self, x: Tensor) -> Tensor:
        if not self.tile:
            grad = self.plain(x)
        else:
            grad = self.tiled(x) if self.spans is None else self.output_tiled(x)
        for stage in self.stages:  # --param maco's step reads the image
            grad = stage(grad, x) if getattr(stage, "reads_input", False) else stage(grad)
        return grad

    def largest_window(self, height: int, width: int) -> tuple[int, int]:
        """(rows, columns) of the largest input window a step on height×width computes on."""
        if not self.tile:
            return height, width
        if self.spans is None:
            return tuple(max(end - start for *_, start, end in
                             tile_windows(n, self.tile, self.tile_margin, self.tile_align))
                         for n in (height, width))
        return tuple(max(w.stop - w.start for _, w in
                         output_tiles(n, self.tile, self.output_align, self.reach))
                     for n in (height, width))

    def plain(self, x: Tensor, units: dict[str, tuple[slice, slice]] | None = None) -> Tensor:
        """The gradient over the whole input at once; with `units` (per target layer, its
        rows and columns of output), only theirs."""
        # oneDNN's convolutions are faster channels-last (and cuDNN's tensor-core ones), and
        # PyTorch's convolution runs channels-last when its input is: the caller's network
        # stays as it is.
        if x.device.type in ("cpu", "cuda"):
            x = x.contiguous(memory_format=torch.channels_last)
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            with reduced_precision(self.network, x.device.type, self.dtype):
                outs = self.network.forward_to(x, self.layers)
            # objectives in float32; one output per term, as each target had its own
            terms = self.objective.terms({name: outs[name].float().detach()
                                          for name in self.layers})
            ys = [outs[layer].float() for layer, _ in terms]
            dys = [dy for _, dy in terms]
            if units is not None:
                dys = [_only(dy, *units[layer]) for dy, (layer, _) in zip(dys, terms)]
            (grad,) = torch.autograd.grad(ys, x, dys)
        return grad

    def tiled(self, x: Tensor) -> Tensor:
        """The gradient tile by tile: each tile's gradient is computed on the tile
        widened by the margin (its start aligned to the target's stride, so pooling
        windows fall where they fall on the whole image) and only the tile is kept."""
        grad = torch.empty_like(x)
        height, width = x.shape[2:]
        for top, bottom, y0, y1 in tile_windows(height, self.tile, self.tile_margin,
                                                self.tile_align):
            for left, right, x0, x1 in tile_windows(width, self.tile, self.tile_margin,
                                                    self.tile_align):
                window = self.plain(x[:, :, y0:y1, x0:x1])
                grad[:, :, top:bottom, left:right] = \
                    window[:, :, top - y0:bottom - y0, left - x0:right - x0]
        return grad

    def output_tiled(self, x: Tensor) -> Tensor:
        """The gradient as the sum of each output tile's (see the module docstring)."""
        grad = torch.zeros_like(x)
        tiles = [output_tiles(n, self.tile, self.output_align, self.reach) for n in x.shape[2:]]
        for (rows, row_window), (cols, col_window) in product(*tiles):
            window = x[:, :, row_window, col_window]
            units = {layer: (units_in(rows, row_window, s, 0), units_in(cols, col_window, s, 1))
                     for layer, s in self.spans.items()}
            grad[:, :, row_window, col_window] += self.plain(window, units)
        return grad


def _only(dy: Tensor, rows: slice, cols: slice) -> Tensor:
    kept = torch.zeros_like(dy)
    kept[..., rows, cols] = dy[..., rows, cols]
    return kept


def output_tiles(size: int, tile: int, align: int, reach: int
                 ) -> list[tuple[tuple[float, float], slice]]:
    """Along one axis: ((first, end) of the tile's field starts, input window) per tile.
    Tiles are multiples of `align` long; the first and last take every field start
    before/after them; a last tile shorter than `reach` joins the one before."""
    step = max(align, tile // align * align)
    bounds = list(range(0, size, step))[1:]
    while bounds and size - bounds[-1] <= reach:
        bounds.pop()
    edges = [-math.inf, *bounds, math.inf]
    return [((lo, hi), slice(max(0, int(lo)) if lo > -math.inf else 0,
                             size if hi == math.inf else min(size, int(hi) + reach)))
            for lo, hi in zip(edges, edges[1:])]


def units_in(starts: tuple[float, float], window: slice, span: Span, axis: int) -> slice:
    """The window's output units whose fields start in [starts): unit j of the window is
    unit j + window.start / jump of the image."""
    offset = window.start // span.jump
    first, end = (0 if v == -math.inf else None if v == math.inf else
                  max(0, math.ceil((v - span.start[axis]) / span.jump) - offset)
                  for v in starts)
    return slice(first, end)


def field_spans(network: Network, layers: list[str]) -> dict[str, Span] | None:
    """Each target's `Span`, from each layer's field rule and padding; None where a layer
    widens the field with a padding this does not know, or mixes strides."""
    spans = {network.spec.input_name: Span((0, 0), (0, 0), 1)}
    last = max(network.layer_index[name] for name in layers)
    result = {}
    for layer in network.spec.layers[:last + 1]:
        seen = [spans[b] for b in layer.bottoms if b in spans] or [Span((0, 0), (0, 0), 1)]
        jump = seen[0].jump
        entry = layer_type(layer)
        widened = entry.field(layer, (1, jump))
        if widened is None or entry.moves_field or any(s.jump != jump for s in seen):
            return None
        growth = widened[0] - 1
        if entry.padding is None and growth:
            return None
        pad = entry.padding(entry.params(layer)) if entry.padding else (0, 0)
        span = Span(tuple(min(s.start[a] for s in seen) - pad[a] * jump for a in (0, 1)),
                    tuple(max(s.end[a] for s in seen) + growth - pad[a] * jump
                          for a in (0, 1)), widened[1])
        for top in layer.tops:
            spans[top] = span
        if layer.name in layers:
            result[layer.name] = span
    return result


def tile_windows(size: int, tile: int, margin: int, align: int
                 ) -> list[tuple[int, int, int, int]]:
    """(start, end, window start, window end) per tile along one axis."""
    out = []
    for start in range(0, size, tile):
        end = min(size, start + tile)
        window_start = max(0, start - margin) // align * align
        out.append((start, end, window_start, min(size, end + margin)))
    return out


def receptive_field(network: Network, layers: list[str]) -> tuple[int, int]:
    """(size, stride) of the union of the targets' receptive fields, in input pixels.

    Each layer type's entry says how it widens the field; a fully connected or global
    layer sees everything, so such a target cannot be tiled.
    """
    field = {network.spec.input_name: (1, 1)}
    last = max(network.layer_index[name] for name in layers)
    result = (1, 1)
    for layer in network.spec.layers[:last + 1]:
        seen = max((field.get(b, (1, 1)) for b in layer.bottoms), default=(1, 1))
        widened = layer_type(layer).field(layer, seen)
        if widened is None:
            raise ConversionError(f"cannot tile a dream whose target depends on layer "
                                  f"{layer.name!r} ({layer.type}): it sees the whole image")
        for top in layer.tops:
            field[top] = widened
        if layer.name in layers:
            result = max(result, widened)
    return result










# --- random crops, for targets behind a fully connected classifier ---------------------

def crop_size(network: Network, targets: list[Target]) -> tuple[int, int] | None:
    """The declared input size (H, W) when a target can be computed only there (behind a
    fully connected classifier): the dream then feeds it crops of that size."""
    height, width = network.spec.input_shape[-2:]
    layers = [t.layer for t in targets]
    if network.size_problem(height, width, layers) is not None:
        return None
    return None if network.size_problem(height + 32, width + 32, layers) is None \
        else (height, width)


def size_problem_for(network: Network, targets: list[Target]
                     ) -> Callable[[int, int], Unfit | None]:
    """Why the targets cannot be dreamed on an h×w image (None: they can), crops included."""
    layers, crop = [t.layer for t in targets], crop_size(network, targets)
    if crop is None:
        return lambda h, w: network.size_problem(h, w, layers)

    def problem(h: int, w: int) -> Unfit | None:
        if h >= crop[0] and w >= crop[1]:
            return None
        return Unfit(layers[0], f"{w}×{h} is smaller than the {crop[1]}×{crop[0]} crops the "
                     f"classifier sees", too_small=True)
    return problem


class RandomCrops:
    """A gradient computed on one random crop of the declared size per step (seeded), as
    deepdraw feeds GoogLeNet; zero outside the crop."""

    def __init__(self, gradient: Callable[[Tensor], Tensor], size: tuple[int, int],
                 seed: int) -> None:
        self.gradient, self.size = gradient, size
        self.rng = np.random.RandomState(seed)

    def __call__(self, x: Tensor) -> Tensor:
        (h, w), (height, width) = self.size, x.shape[-2:]
        top, left = (int(self.rng.randint(0, n - k + 1)) for n, k in ((height, h), (width, w)))
        grad = torch.zeros_like(x)
        grad[..., top:top + h, left:left + w] = self.gradient(x[..., top:top + h, left:left + w])
        return grad


def cropped(network: Network, targets: list[Target], gradient: Callable[[Tensor], Tensor],
            seed: int) -> Callable[[Tensor], Tensor]:
    """`gradient`, fed random crops where a target needs the declared input size."""
    size = crop_size(network, targets)
    return gradient if size is None else RandomCrops(gradient, size, seed)
