"""Torch7 reader: a `.t7`/`.net` file (binary or ASCII) -> NetSpec.

The description runs batched NCHW. Torch7 nets run either on batches (N×C×H×W) or on
single samples (C×H×W); the file does not say which, yet the meaning of Concat,
DepthConcat and JoinTable dimensions and of View/Reshape depends on it. We decide it
as follows (`batched` argument first):

1. `batched=True/False` given by the caller;
2. otherwise the first Concat, DepthConcat or JoinTable (without nInputDims) decides:
   dimension 1 joins channels of single samples (unbatched), dimension 2 joins the
   channels of a batch (batched); a later one that disagrees is an error;
3. otherwise unbatched, Torch7's single-image convention (loadcaffe nets, the seed
   script). Without such modules both readings give the same numbers.

Layer names are the modules' `.name` (loadcaffe sets Caffe's layer names) or a stable
`<Class>_<position>` such as `SpatialConvolution_6.2.1` (1-based indices from the
root). `sequence` lists, for each top-level module of the outer nn.Sequential, the
layer whose output is that module's output (the seed script's `layer_max` order).

The input size is not stored in Torch7 files: unless given, it is the first of
224×224, then 1×1, 2×2, ... up to 512×512, on which the net runs (by the shape
arithmetic of `converters/shapes.py`), with the channel count of the first convolution
or batch normalisation (or the feature count of a first Linear).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torchfile import TorchObject

from ..shapes import computed_shapes, walk_shapes
from ..spec import ConversionError, Layer, NetSpec
from .modules import PACKAGES, Graph, Module, describe
from .t7file import read_t7

INPUT_NAME = "input"
PROBE_SIZES = [224, *range(1, 513)]
CONCAT_KINDS = ("Concat", "DepthConcat", "JoinTable")


def read_torch7(path: str | Path, input_shape: list[int] | None = None,
                batched: bool | None = None) -> NetSpec:
    """Read a Torch7 network file into a description.

    `input_shape` (N, C, H, W) overrides the probed input size; `batched` says whether
    the Torch7 net ran on batches (default: decided from the file, see the module doc).
    """
    path = Path(path)
    root, encoding = read_t7(path)
    source = {"format": "torch7", "file": path.name, "encoding": encoding}
    try:
        return convert_torch7(root, path.stem, input_shape, batched, source)
    except ConversionError as e:
        raise ConversionError(f"{path}: {e}") from None


def convert_torch7(root: Any, name: str, input_shape: list[int] | None = None,
                   batched: bool | None = None, source: dict[str, Any] | None = None
                   ) -> NetSpec:
    """A description from a deserialized Torch7 object (a module tree)."""
    if not isinstance(root, TorchObject):
        raise ConversionError(f"the file holds {describe(root)}, not a network")
    if batched is None:
        batched = detect_batched(root)
    graph = Graph(INPUT_NAME, unbatched=not batched)
    sequence = convert_root(graph, root)
    source = {**(source or {"format": "torch7"}), "batched": batched}
    spec = NetSpec(name, INPUT_NAME, [], graph.layers, sequence, source)
    if input_shape:
        computed_shapes(spec, list(input_shape))  # bounded, and every layer computable
        spec.input_shape = list(input_shape)
    else:
        spec.input_shape = probe_input_shape(spec)
    return spec


def convert_root(graph: Graph, root: TorchObject) -> list[str]:
    """Convert the whole tree; returns the layer of each top-level module."""
    module = Module(root, "net")
    if module.kind != "Sequential" or module.package not in PACKAGES:
        return [graph.producer(graph.convert(root, INPUT_NAME, "net"))]
    sequence, x = [], INPUT_NAME
    graph.ancestors.append(id(root))
    for path, child in module.children():
        x = graph.convert(child, x, path)
        sequence.append(graph.producer(x))
    if not sequence:
        raise ConversionError("the net is an empty nn.Sequential")
    return sequence


def detect_batched(root: TorchObject) -> bool:
    """Whether the net ran on batches, from its concatenation dimensions (see above)."""
    votes: list[tuple[bool, str]] = []
    stack, seen = [(root, "net")], set()
    while stack:
        obj, path = stack.pop()
        if not isinstance(obj, TorchObject) or id(obj) in seen:
            continue  # the conversion reports non-modules and cycles with their path
        seen.add(id(obj))
        module = Module(obj, path)
        dimension = module.get("dimension")
        if (module.kind in CONCAT_KINDS and dimension in (1, 2)
                and module.get("nInputDims") is None):
            votes.append((dimension == 2, f"{module.class_name}({dimension}) at {path}"))
        children = module.get("modules")
        if isinstance(children, dict):
            stack += [(children[k], f"{path}.modules[{k}]")
                      for k in sorted((k for k in children if isinstance(k, int)), reverse=True)]
    if not votes:
        return False
    first = votes[0]
    for vote in votes[1:]:
        if vote[0] != first[0]:
            raise ConversionError(f"{first[1]} implies a {'' if first[0] else 'un'}batched "
                                  f"net but {vote[1]} does not; pass batched=True or False")
    return first[0]


def probe_input_shape(spec: NetSpec) -> list[int]:
    """The first input shape on which every layer can be computed (by arithmetic)."""
    for shape in probe_shapes(spec.layers):
        if not walk_shapes(spec, shape).unfit:
            return shape
    raise ConversionError("found no square input size up to 512×512 on which the net "
                          "runs; give one: read_torch7(path, input_shape=[1, C, H, W])")


def probe_shapes(layers: list[Layer]) -> list[list[int]]:
    first = next((layer for layer in layers if layer.blobs), None)
    if first is not None and first.type == "InnerProduct":
        return [[1, first.blobs[0].shape[1]]]
    channels = 3
    if first is not None and first.type == "Convolution":
        channels = first.blobs[0].shape[1] * first.params["group"]
    elif first is not None and first.type == "BatchNorm":
        channels = first.blobs[0].size
    return [[1, channels, size, size] for size in PROBE_SIZES]
