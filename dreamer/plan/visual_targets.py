"""TARGET of `python -m dreamer visualize`: what a feature visualisation raises, as an
Objective (dreamer/plan/objectives.py).

    layer:channel          the channel's mean (ChannelMean)
    layer:channel@y,x      one neuron of the layer's output (Neuron)
    class:NAME|INDEX       a class's pre-softmax score (ClassLogit)
    layer:@file.npy        a direction: one number per channel (Direction)
    0.5*class:goldfish + inception_4c/output:97    a weighted sum of these

A layer is named as LAYER is everywhere (an exact name or a unique prefix). Every bad
target is a one-line UsageError naming it.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np

from converters.bounded import read_bounded
from converters.errors import DreamzooError, UsageError
from converters.network import Network
from converters.numbers import Bounds
from converters.shapes import walk_shapes
from dreamer.plan.numbers import CHANNEL, WEIGHT
from dreamer.plan.objectives import ChannelMean, ClassLogit, Direction, Neuron, Objective
from dreamer.plan.targets import classifier_of, resolve_layer
from models.labels import ClassList, class_index

MAX_DIRECTION_BYTES = 1 << 20  # a .npy of 100,000 float64 channels; no net has as many
WEIGHTED = re.compile(r"([^*:@]*)\*(.*)", re.DOTALL)  # WEIGHT*target
POSITION = Bounds(0, integer=True)  # the layer's output size is checked with the net
FORMS = "layer:channel, layer:channel@y,x, class:NAME|INDEX, layer:@file.npy"


def visual_objective(text: str, network: Network, labels: ClassList | None,
                     size: tuple[int, int] | None = None) -> Objective:
    """The Objective TARGET `text` names on `network` (`labels`: its class names, if any);
    a neuron's position is checked at the input `size` (H, W; default: declared)."""
    parts = [part.strip() for part in text.split("+")]
    if not text.strip() or not all(parts):
        raise UsageError(f"TARGET {text!r}: an empty term (give {FORMS}, or a sum of "
                         f"them: 0.5*a + b)")
    terms = [_weighted_term(part, network, labels, size) for part in parts]
    objective = terms[0]
    for term in terms[1:]:
        objective = objective + term
    return objective


def _weighted_term(part: str, network: Network, labels: ClassList | None,
                   size: tuple[int, int] | None) -> Objective:
    """One term, `WEIGHT*target` or `target`."""
    match = WEIGHTED.fullmatch(part)
    if match is None:
        return _term(part, network, labels, size)
    weight = WEIGHT.parse(match[1].strip(), f"TARGET {part}: the weight")
    if not match[2].strip():
        raise UsageError(f"TARGET {part}: nothing after the weight (give WEIGHT*target)")
    return weight * _term(match[2].strip(), network, labels, size)


def _term(term: str, network: Network, labels: ClassList | None,
          size: tuple[int, int] | None) -> Objective:
    """One unweighted target."""
    if term.startswith("class:"):
        return _class(term, network, labels)
    if ":@" in term:
        return _direction(term, network)
    layer_text, colon, rest = term.rpartition(":")
    if not colon or not layer_text:
        raise UsageError(f"TARGET {term!r}: give one of {FORMS}")
    layer = _layer(network, layer_text, term)
    channel_text, at, position = rest.partition("@")
    channel = _channel(channel_text, _channels(network, layer), layer, term)
    if not at:
        return ChannelMean(layer, channel)
    y, x = _position(position, term)
    height, width = _output_size(network, layer, size)
    if not height:
        raise UsageError(f"TARGET {term}: layer {layer!r} has no positions (a fully "
                         f"connected output); give layer:channel")
    if not (y < height and x < width):
        raise UsageError(f"TARGET {term}: neuron {y},{x} (y,x) is outside the output of "
                         f"layer {layer!r}, {height}×{width} (H×W): y 0-{height - 1}, "
                         f"x 0-{width - 1}")
    return Neuron(layer, channel, y, x)


def _position(text: str, term: str) -> tuple[int, int]:
    """`y,x` of a neuron."""
    coordinates = text.split(",")
    if len(coordinates) != 2:
        raise UsageError(f"TARGET {term}: give the neuron's position as "
                         f"layer:channel@y,x (got {text!r})")
    y, x = (POSITION.parse(c, f"TARGET {term}: {axis}")
            for c, axis in zip(coordinates, "yx"))
    return y, x


def _direction(term: str, network: Network) -> Objective:
    layer_text, _, path = term.partition(":@")
    layer = _layer(network, layer_text, term)
    try:
        return Direction(layer, read_direction(path, _channels(network, layer)))
    except UsageError as e:
        raise UsageError(f"TARGET {term}: {e}") from None


def _class(term: str, network: Network, labels: ClassList | None) -> Objective:
    try:
        classifier = classifier_of(network)
        index = class_index(term.removeprefix("class:"), classifier.classes, labels)
    except DreamzooError as e:
        raise UsageError(f"TARGET {term}: {e}") from None
    return ClassLogit(classifier.logits, index)


def _layer(network: Network, text: str, term: str) -> str:
    try:
        return resolve_layer(network, text)
    except DreamzooError as e:
        raise UsageError(f"TARGET {term}: {e}") from None


def _channels(network: Network, layer: str) -> int:
    shape = network.output_shapes()[layer]
    return shape[1] if len(shape) > 1 else 0


def _channel(text: str, channels: int, layer: str, term: str) -> int:
    channel = CHANNEL.parse(text, f"TARGET {term}: the channel")
    if channel >= channels:
        raise UsageError(f"TARGET {term}: channel {channel} is out of range: layer {layer!r} "
                         f"has {channels} channels (0-{channels - 1})")
    return channel


def _output_size(network: Network, layer: str, size: tuple[int, int] | None
                 ) -> tuple[int, int]:
    """(H, W) of `layer`'s output at the input `size`; (0, 0) for an output without
    positions."""
    if size is None:
        shape = network.output_shapes()[layer]
    else:
        input_shape = [1, *network.spec.input_shape[1:-2], *size]
        shapes = walk_shapes(network.spec, input_shape, until=layer).outputs.get(layer)
        if not shapes:
            raise UsageError(f"layer {layer!r} cannot be computed on a "
                             f"{size[1]}×{size[0]} (W×H) input")
        shape = shapes[0]
    return (shape[2], shape[3]) if len(shape) == 4 else (0, 0)


def read_direction(path: str, channels: int) -> np.ndarray:
    """The direction vector in the .npy `path` (read bounded, never unpickled): one finite
    number per channel, not all zero; else a UsageError naming the file."""
    data = read_bounded(Path(path), MAX_DIRECTION_BYTES, "direction (.npy)", UsageError)
    try:
        vector = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UsageError(f"{path}: not a .npy array ({str(e).splitlines()[0]})") from None
    if not isinstance(vector, np.ndarray) or vector.dtype.kind not in "fiu":
        raise UsageError(f"{path}: expected a .npy array of numbers")
    if vector.ndim != 1 or vector.size != channels:
        raise UsageError(f"{path}: expected one vector of {channels} numbers (one per "
                         f"channel), got shape {vector.shape}")
    vector = vector.astype(np.float32)
    if not np.isfinite(vector).all() or not vector.any():
        raise UsageError(f"{path}: the direction must be finite and not all zero")
    return vector
