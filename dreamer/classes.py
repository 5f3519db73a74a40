"""Classes of a classifier net: its class names, its logit layer, and `classify`.

    python -m dreamer classify IMG --model M [--top K] [--json] [--crop centre|none]
                                           [--labels FILE]
    python -m dreamer classify --list-classes [QUERY] --model M [--json]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from converters.network import Network
from converters.shapes import Unfit
from converters.spec import ConversionError
from dreamer.loops.gradient import Target, split_weight
from dreamer.networks import DEFAULT_MODEL, open_network
from dreamer.plan.numbers import COUNT
from models.labels import ClassList, class_index, read_labels, search

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
    import models

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


def fit_input(rgb: np.ndarray, height: int, width: int, crop: str) -> np.ndarray:
    """The image at the net's input size: a centre square crop then a bilinear resize
    (crop 'centre', as the Caffe references were made), or a plain resize ('none')."""
    image = Image.fromarray(rgb)
    if crop == "centre":
        side = min(image.width, image.height)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side))
    return np.asarray(image.resize((width, height), Image.BILINEAR))


def probabilities(network: Network, x: np.ndarray) -> np.ndarray:
    """The net's class probabilities for one input (C×H×W): its final Softmax's output,
    else the softmax of the last layer."""
    classifier = classifier_of(network)
    name = classifier.softmax or classifier.logits
    with torch.no_grad():
        out = network.forward_to(torch.from_numpy(x)[None], [name])[name]
    out = out.reshape(out.shape[0], out.shape[1], -1).mean(-1)[0]  # a spatial map: averaged
    return (out if classifier.softmax else torch.softmax(out, 0)).double().numpy()


def top_classes(probs: np.ndarray, labels: ClassList | None, top: int) -> list[dict]:
    order = np.argsort(-probs, kind="stable")[:top]
    return [{"index": int(i), "name": labels.name(i) if labels else f"class {i}",
             "probability": float(probs[i])} for i in order]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dreamer classify",
        description="The net's top classes for an image, with its own preprocessing at its "
                    "declared input size.")
    parser.add_argument("image", nargs="?", help="image to classify")
    parser.add_argument("--model", help="zoo name (default nin), converted directory, .t7, "
                        ".onnx, or prototxt (with --weights)")
    parser.add_argument("--weights", help="the caffemodel of a prototxt --model")
    parser.add_argument("--labels", help="class list file (default: the model's labels.txt)")
    parser.add_argument("--top", type=COUNT, default=5, help=f"how many classes, "
                        f"{COUNT.describe()} (default: %(default)s)")
    parser.add_argument("--crop", choices=("centre", "none"), default="centre",
                        help="centre square crop then resize (default), or a plain resize")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--list-classes", nargs="?", const="", metavar="QUERY",
                        help="print the index and names of every class (with QUERY: of those "
                        "whose names hold it), for --class; no IMAGE")
    return parser


def list_classes(labels: ClassList | None, query: str, as_json: bool) -> None:
    """Print the classes whose names hold `query` (all for ''): index and names."""
    if labels is None:
        raise ValueError("this net has no class names: give the list with --labels FILE")
    found = search(query, labels)
    if as_json:
        print(json.dumps([{"index": i, "names": list(labels.names[i])} for i in found],
                         indent=1))
        return
    for i in found:
        print(f"{i:>5}  {', '.join(labels.names[i])}")


def classify_main(argv: list[str]) -> int:
    from converters.images import load_rgb

    args = build_parser().parse_args(argv)
    if (args.image is None) == (args.list_classes is None):
        raise ValueError("give an IMAGE to classify, or --list-classes [QUERY] (not both)")
    network = open_network(args.model, args.weights)
    classifier = classifier_of(network)
    labels = labels_for(args.model, args.labels, classifier.classes)
    if args.list_classes is not None:
        list_classes(labels, args.list_classes, args.json)
        return 0
    height, width = network.spec.input_shape[-2:]
    rgb = fit_input(load_rgb(args.image), height, width, args.crop)
    probs = probabilities(network, network.spec.input_preprocessing().to_net(rgb))
    rows = top_classes(probs, labels, args.top)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for row in rows:
            print(f"{row['probability']:.4f}  {row['index']:>5}  {row['name']}")
    return 0
