"""`classify`: a classifier net's top classes for an image (dreamer/loops/classify.py).

    python -m dreamer classify IMG --model M [--top K] [--json] [--crop centre|none]
                                           [--labels FILE]
    python -m dreamer classify --list-classes [QUERY] --model M [--json]
"""

from __future__ import annotations

import argparse
import json

import models
from dreamer.cli.options import add_model_options
from dreamer.loops.classify import classified
from dreamer.plan.numbers import COUNT
from dreamer.plan.targets import classifier_of, labels_for
from models.labels import ClassList, search

PARSER = {"prog": "python -m dreamer classify",
          "description": "The net's top classes for an image, with its own preprocessing at "
          "its declared input size."}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", nargs="?", help="image to classify")
    add_model_options(parser)
    parser.add_argument("--labels", help="class list file (default: the model's labels.txt)")
    parser.add_argument("--top", type=COUNT, default=5, help=f"how many classes, "
                        f"{COUNT.describe()} (default: %(default)s)")
    parser.add_argument("--crop", choices=("centre", "none"), default="centre",
                        help="centre square crop then resize (default), or a plain resize")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--list-classes", nargs="?", const="", metavar="QUERY",
                        help="print the index and names of every class (with QUERY: of those "
                        "whose names hold it), for --class; no IMAGE")


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




def run(args: argparse.Namespace) -> int:
    if (args.image is None) == (args.list_classes is None):
        raise ValueError("give an IMAGE to classify, or --list-classes [QUERY] (not both)")
    network = models.open(args.model, args.weights)
    classifier = classifier_of(network)
    labels = labels_for(args.model, args.labels, classifier.classes)
    if args.list_classes is not None:
        list_classes(labels, args.list_classes, args.json)
        return 0
    rows = classified(network, args.image, labels, args.top, args.crop)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for row in rows:
            print(f"{row['probability']:.4f}  {row['index']:>5}  {row['name']}")
    return 0
