"""`classify`: a classifier net's top classes for an image (its class names and logit
layer: dreamer/plan/targets.py).

    python -m dreamer classify IMG --model M [--top K] [--json] [--crop centre|none]
                                           [--labels FILE]
    python -m dreamer classify --list-classes [QUERY] --model M [--json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from PIL import Image

from converters.images import load_rgb
from converters.network import Network
from dreamer.networks import open_network
from dreamer.plan.numbers import COUNT
from dreamer.plan.targets import classifier_of, labels_for
from models.labels import ClassList, search


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
