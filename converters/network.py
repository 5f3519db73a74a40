"""The builder: a NetSpec becomes a `Network`, a torch module that runs the layer graph.

`forward_to` computes only the layers needed for what is asked and stops after the
deepest one; parameters are frozen (no parameter gradients), gradients flow to the
input.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import Tensor, nn

from .errors import UsageError
from .layer_types import build_module
from .shapes import Unfit, closed_form, min_input_sizes, output_shapes, walk_shapes
from .spec import ConversionError, NetSpec


class Network(nn.Module):
    """A converted network. Layer names are the original ones, in execution order."""

    def __init__(self, spec: NetSpec) -> None:
        super().__init__()
        self.spec = spec
        self.layer_names: list[str] = [layer.name for layer in spec.layers]
        self.layer_types: list[str] = [layer.type for layer in spec.layers]
        self.layer_index = {name: i for i, name in enumerate(self.layer_names)}
        self.stages = nn.ModuleList(
            build_module(layer, [torch.from_numpy(np.ascontiguousarray(b)) for b in layer.blobs])
            for layer in spec.layers)
        # The last layer that writes each blob, i.e. the one whose result Caffe shows.
        self.blob_writer: dict[str, int] = {spec.input_name: -1}
        for i, layer in enumerate(spec.layers):
            for top in layer.tops:
                self.blob_writer[top] = i
        self._min_sizes: dict[str, list[int] | None] | None = None
        self.requires_grad_(False)
        self.eval()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def sequence(self) -> list[str]:
        """Layer names in the seed script's `layer_max` order (module N = sequence[N-1])."""
        return self.spec.sequence

    def forward(self, x: Tensor) -> Tensor:
        """The output of the last layer."""
        last = self.layer_names[-1]
        return self.forward_to(x, [last])[last]

    def forward_to(self, x: Tensor, names: Iterable[str] = (),
                   blobs: Iterable[str] = ()) -> dict[str, Tensor]:
        """Outputs of the named layers and the named blobs, computing no further than needed.

        A layer name gives that layer's own output (a convolution followed by an
        in-place ReLU: the pre-ReLU value). A blob name gives the blob as Caffe's
        `net.blobs` shows it after the forward pass: the value of its last writer.
        Both kinds may be asked at once; the result is keyed by the names given, so a
        name asked as both a layer and a blob (`conv2` in most nets) must be asked in
        two calls.
        """
        names, blobs = list(names), list(blobs)
        both = set(names) & set(blobs)
        if both:
            raise UsageError(f"{sorted(both)} asked as both layer and blob; ask in two calls")
        for name in names:
            if name not in self.layer_index:
                raise KeyError(f"network {self.name!r} has no layer named {name!r}")
        for blob in blobs:
            if blob not in self.blob_writer:
                raise KeyError(f"network {self.name!r} has no blob named {blob!r}")
        wanted_layers: dict[int, list[str]] = {}
        for name in names:
            wanted_layers.setdefault(self.layer_index[name], []).append(name)
        wanted_blobs: dict[int, list[str]] = {}
        for blob in blobs:
            wanted_blobs.setdefault(self.blob_writer[blob], []).append(blob)
        stop = max([*wanted_layers, *wanted_blobs], default=-1)
        results: dict[str, Tensor] = {b: x for b in wanted_blobs.get(-1, [])}
        values: dict[str, Tensor] = {self.spec.input_name: x}
        last_read = self._last_reads(stop)
        for i in range(stop + 1):
            layer = self.spec.layers[i]
            try:
                inputs = [values[b] for b in layer.bottoms]
            except KeyError as missing:
                raise ConversionError(f"layer {layer.name!r} reads blob {missing} "
                                      f"that no earlier layer writes") from None
            out = self.stages[i](*inputs)
            outs = out if isinstance(out, tuple) else (out,)
            for top, value in zip(layer.tops, outs):
                values[top] = value
            for name in wanted_layers.get(i, []):
                results[name] = out if len(outs) > 1 else outs[0]
            for blob in wanted_blobs.get(i, []):
                results[blob] = values[blob]
            for blob in last_read.get(i, []):
                values.pop(blob, None)
        return results

    def _last_reads(self, stop: int) -> dict[int, list[str]]:
        """For each layer up to `stop`, the blobs nobody reads after it (to free them)."""
        last: dict[str, int] = {}
        for i in range(stop + 1):
            for blob in self.spec.layers[i].bottoms:
                last[blob] = i
        by_layer: dict[int, list[str]] = {}
        for blob, i in last.items():
            by_layer.setdefault(i, []).append(blob)
        return by_layer

    def output_shapes(self, input_shape: list[int] | None = None) -> dict[str, list[int]]:
        """Each layer's output shape (first top) for an input shape (default: declared),
        by arithmetic (`shapes.py`); a size the net cannot be computed at is an error."""
        return {name: outs[0] for name, outs in output_shapes(self.spec, input_shape).items()}

    @property
    def min_sizes(self) -> dict[str, list[int] | None]:
        """Per layer, the smallest input [height, width] it is computed at (None: unknown)."""
        if self._min_sizes is None:
            self._min_sizes = min_input_sizes(self.spec)
        return self._min_sizes

    def size_problem(self, height: int, width: int, layers: Iterable[str]) -> Unfit | None:
        """Why `layers` cannot be computed on a height×width input, or None if they can.

        A net of layers without closed-form shapes (ONNX nodes) is judged by its recorded
        minimum sizes only (see shapes.py).
        """
        layers = list(layers)
        walk = None
        if closed_form(self.spec):
            shape = [1, *self.spec.input_shape[1:-2], height, width]
            walk = walk_shapes(self.spec, shape, max(layers, key=self.layer_index.get))
        for name in layers:
            if walk is not None:
                problem = walk.unfit.get(name)
            else:
                low = self.min_sizes.get(name)
                below = low is not None and (height < low[0] or width < low[1])
                problem = Unfit(name, f"{width}×{height} is below the recorded minimum",
                                too_small=True) if below else None
            if problem is None:
                continue
            low = self.min_sizes.get(name)
            if problem.too_small and low:
                need = f"; {name!r} needs at least {low[1]}×{low[0]} (W×H)"
            else:
                declared = "×".join(map(str, self.spec.input_shape[:1:-1]))
                need = f"; the net was made for {declared} (W×H)"
            return Unfit(problem.layer, problem.reason + need, problem.too_small)
        return None

    def layer_rows(self, input_shape: list[int] | None = None) -> list[tuple[str, ...]]:
        """Per layer: index (layer_max order, "-" if none), name, type, output shape
        (C×H×W) and the smallest input (W×H, "?" if unknown) the layer is computed at."""
        shapes = self.output_shapes(input_shape)
        order = {name: i + 1 for i, name in enumerate(self.sequence)}
        rows = []
        for name, kind in zip(self.layer_names, self.layer_types):
            index = str(order[name]) if name in order else "-"
            dims = "×".join(str(d) for d in shapes[name][1:])
            low = self.min_sizes.get(name)
            rows.append((index, name, kind, dims, f"{low[1]}×{low[0]}" if low else "?"))
        return rows

    def layer_table(self, input_shape: list[int] | None = None) -> str:
        """A printable table of `layer_rows`: index, name, type, output shape, and the
        smallest input (W×H) the layer is computed at."""
        width = max(len(n) for n in self.layer_names)
        lines = [f"{'#':>4}  {'layer':<{width}}  {'type':<13} {'output':<15} min W×H"]
        for index, name, kind, dims, smallest in self.layer_rows(input_shape):
            lines.append(f"{index:>4}  {name:<{width}}  {kind:<13} {dims:<15} {smallest}")
        return "\n".join(lines)
