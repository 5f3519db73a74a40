"""What a dream is aimed at: LAYER (an exact name, a unique prefix, the seed script's integer
`layer_max`, or several with weights: `a:1,b:0.5`) and `--class` scores, as `Target`s;
and the classes a net has (its logit layer, its class names)."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

import models
from converters.errors import ConversionError
from converters.network import Network
from dreamer.plan.numbers import WEIGHT
from models.labels import ClassList, class_index, read_labels
from models.open import DEFAULT_MODEL


@dataclass(frozen=True)
class Target:
    layer: str
    weight: float = 1.0
    channel: int | None = None  # a class target: raise this channel's score (dy = 1 there)


WEIGHT_SUFFIX = re.compile(r"(.+):([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
                           r"|[-+]?(?i:nan|inf|infinity))")


def split_weight(part: str, option: str = "LAYER") -> tuple[str, float]:
    """`name:0.5` -> ("name", 0.5); a part without a numeric suffix keeps weight 1. A
    weight out of range (nan, 1e999) is a ValueError naming `option`."""
    match = WEIGHT_SUFFIX.fullmatch(part)
    if match is None:
        return part, 1.0
    return match[1], WEIGHT.parse(match[2], f"{option} {part}: the weight")


def parse_targets(network: Network, layer: str | int | list,
                  option: str = "LAYER") -> list[Target]:
    """Targets from `a`, `a,b`, `a:1,b:0.5`, a layer_max integer, or a list of those;
    `option` (what gave them) is named in the error of a weight out of range."""
    if isinstance(layer, int):
        layer = str(layer)
    parts = layer if isinstance(layer, list) else [p for p in layer.split(",") if p]
    targets = []
    for part in parts:
        if isinstance(part, Target):
            targets.append(part)
            continue
        name, weight = split_weight(str(part), option)
        targets.append(Target(resolve_layer(network, name), weight))
    if not targets:
        raise ValueError("no layer given")
    return targets


def dream_layer_default(network: Network) -> str:
    """The zoo's default dream layer, if the net came from the zoo."""
    zoo = network.spec.source.get("zoo") or {}
    if zoo.get("default_layer") in network.layer_index:
        return zoo["default_layer"]
    raise ConversionError("give a LAYER (see --list-layers)")


def resolve_layer(network: Network, text: str) -> str:
    """A layer name from an exact name, a unique prefix or a 1-based `layer_max`."""
    names = network.layer_names
    if text.isdigit():
        index, sequence = int(text), network.sequence
        if not 1 <= index <= len(sequence):
            raise ConversionError(f"layer_max {index} is out of range: {network.name!r} has "
                                  f"{len(sequence)} modules (1..{len(sequence)})")
        return sequence[index - 1]
    if text in network.layer_index:
        return text
    matches = [n for n in names if n.startswith(text)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ConversionError(f"layer {text!r} is ambiguous in {network.name!r}: it starts "
                              f"{_listing(matches)}")
    close = difflib.get_close_matches(text, names, n=5, cutoff=0.4)
    hint = f"; closest: {_listing(close)}" if close else ""
    raise ConversionError(f"{network.name!r} has no layer {text!r}{hint} (see --list-layers)")


def _listing(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


LABELS_FILE = "labels.txt"  # in a converted model's folder (written by models/convert.py)


@dataclass(frozen=True)
class Classifier:
    """Where a net's class scores are: the logit layer and the Softmax on it (if any)."""

    logits: str  # the layer whose output is the pre-softmax score
    softmax: str | None
    classes: int


def classifier_of(network: Network) -> Classifier:
    """The layer feeding the net's final Softmax (else the last layer) and its width."""
    layers = network.spec.layers
    last = next((i for i in reversed(range(len(layers))) if layers[i].type == "Softmax"), None)
    softmax = layers[last].name if last is not None else None
    if last is not None:
        logits = layers[network.blob_writer[layers[last].bottoms[0]]].name
    else:
        logits = layers[-1].name
    shape = network.output_shapes()[logits]
    if len(shape) < 2:
        raise ConversionError(f"{network.name!r}: layer {logits!r} gives no class scores")
    return Classifier(logits, softmax, shape[1])


def model_directory(model: str | None) -> Path | None:
    """The converted folder a `--model` names, if it names one (where labels.txt is)."""
    path = Path(model or DEFAULT_MODEL)
    if path.is_dir():
        return path
    if path.exists() or "/" in str(path) or path.suffix:
        return None

    return models.find_converted(str(path))


def labels_for(model: str | None, labels: str | None, classes: int) -> ClassList | None:
    """`--labels FILE`, else the converted model's labels.txt, else None; the list must
    have one name per class of the net."""
    if labels is None:
        directory = model_directory(model)
        if directory is None or not (directory / LABELS_FILE).is_file():
            return None
        labels = str(directory / LABELS_FILE)
    names = read_labels(labels)
    if len(names) != classes:
        raise ConversionError(f"{labels}: {len(names)} class names, but the net has "
                              f"{classes} classes")
    return names


def class_targets(network: Network, text: str, labels: ClassList | None,
                  option: str = "--class") -> list[Target]:
    """Targets from `--class NAME|INDEX[:WEIGHT],...`: each a class's pre-softmax score;
    errors name `option`."""
    classifier = classifier_of(network)
    targets = []
    for part in (p for p in text.split(",") if p.strip()):
        name, weight = split_weight(part, option)
        try:
            index = class_index(name, classifier.classes, labels)
        except ValueError as e:
            raise ValueError(f"{option}: {e}") from None
        targets.append(Target(classifier.logits, weight, channel=index))
    if not targets:
        raise ValueError(f"{option} names no class")
    return targets


def class_cells(network: Network, model: str | None, labels_file: str | None, text: str
                ) -> list[tuple[str, list[Target]]]:
    """(label, targets) per class of `--classes a,b,c`, for the gallery."""
    labels = labels_for(model, labels_file, classifier_of(network).classes)
    cells = []
    for part in (p for p in text.split(",") if p.strip()):
        targets = class_targets(network, part, labels, "--classes")
        index = targets[0].channel
        cells.append((labels.name(index) if labels else f"class {index}", targets))
    return cells

