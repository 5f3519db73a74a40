"""`python -m dreamer gallery SRC [ITERATIONS RATE] --model M [--layers a,b,...]`: one PNG
grid, one cell per layer (a short dream at that layer), each labelled with the layer's name
(the sheet: dreamer/jobs/sheets.py). The cells are work items of the engine
(dreamer/jobs/engine.py), so `--ray` spreads them over workers."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import models
from converters.images import load_rgb
from converters.ownership import OVERWRITE_HELP
from dreamer.cli.options import (
    DeprecatedForm,
    add_device_options,
    add_engine_options,
    add_model_options,
    workers_of,
)
from dreamer.image_io import check_image_output, save_rgb
from dreamer.jobs.engine import dream_cells, open_pool
from dreamer.jobs.sheets import default_layers, fit, grid
from dreamer.jobs.work import Still
from dreamer.loops.classify import fit_input
from dreamer.plan import numbers
from dreamer.plan.plan import make_plan
from dreamer.plan.targets import class_cells, resolve_layer

ITERATIONS, RATE = 5, 0.03  # short dreams: a gallery is a survey
PARSER = {"prog": "python -m dreamer gallery",
          "description": "A labelled grid: one short dream per layer."}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src")
    parser.add_argument("positional", nargs="*", metavar="ITERATIONS RATE",
                        help=f"as for the dreamer (default: {ITERATIONS} and {RATE})")
    add_model_options(parser)
    parser.add_argument("--layers", help="comma-separated layers (default: 12 spread "
                        "through the net)")
    parser.add_argument("--classes", help="comma-separated classes (names or indices): one "
                        "cell per class instead of per layer")
    parser.add_argument("--labels", help="class list for --classes (default: the model's "
                        "labels.txt)")
    parser.add_argument("--count", type=numbers.COUNT, default=12,
                        help="layers picked by default (default: %(default)s)")
    parser.add_argument("--iterations", dest="old_iterations", type=numbers.ITERATIONS,
                        metavar="ITERATIONS",
                        help="deprecated: give ITERATIONS after SRC; "
                        f"{numbers.ITERATIONS.describe()} (default: {ITERATIONS})")
    parser.add_argument("--rate", dest="old_rate", type=numbers.RATE, metavar="RATE",
                        help="deprecated: give RATE after SRC; "
                        f"{numbers.RATE.describe()} (default: {RATE})")
    parser.add_argument("--octaves", type=numbers.OCTAVES, help="default 3 (--classes: 1, "
                        "as a fully connected classifier cannot see a smaller octave)")
    parser.add_argument("--size", type=numbers.CELL_SIZE, default=224,
                        help=f"longer side of each cell, {numbers.CELL_SIZE.describe()} "
                        "(default: %(default)s)")
    parser.add_argument("--columns", type=numbers.COUNT, default=4,
                        help="(default: %(default)s)")
    parser.add_argument("--seed", type=numbers.SEED, default=0,
                        help=f"random seed, {numbers.SEED.describe()} (default: %(default)s)")
    add_device_options(parser)
    parser.add_argument("-o", "--output", help="default <src stem>_gallery.png")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    parser.add_argument("--quiet", action="store_true")
    add_engine_options(parser)


def iterations_and_rate(args: argparse.Namespace) -> tuple[int, float]:
    """ITERATIONS and RATE, given after SRC or (deprecated, with a warning) as options."""
    if len(args.positional) > 2:
        raise ValueError(f"too many arguments: {' '.join(args.positional[2:])}")
    given = dict(zip(("ITERATIONS", "RATE"), args.positional))
    old = {"ITERATIONS": args.old_iterations, "RATE": args.old_rate}
    deprecated = [f"--{name.lower()}" for name, value in old.items() if value is not None]
    both = next((name for name in given if old[name] is not None), None)
    if both:
        raise ValueError(f"give {both} once: after SRC, not also as --{both.lower()}")
    if deprecated:
        warnings.warn(f"{' and '.join(deprecated)} {'is' if len(deprecated) == 1 else 'are'} "
                      "deprecated: give ITERATIONS RATE after SRC", DeprecatedForm,
                      stacklevel=2)
    iterations = numbers.ITERATIONS.parse(given["ITERATIONS"], "ITERATIONS") \
        if "ITERATIONS" in given else old["ITERATIONS"]
    rate = numbers.RATE.parse(given["RATE"], "RATE") if "RATE" in given else old["RATE"]
    return (ITERATIONS if iterations is None else iterations,
            RATE if rate is None else rate)


def run(args: argparse.Namespace) -> int:
    iterations, rate = iterations_and_rate(args)
    out = check_image_output(args.output or f"{Path(args.src).stem}_gallery.png",
                             [args.src, args.model, args.weights, args.labels], args.overwrite)
    network = models.open(args.model, args.weights)
    if args.classes:
        jobs = class_cells(network, args.model, args.labels, args.classes)
        side = max(args.size, *network.spec.input_shape[-2:])  # the classifier's crops fit
        source = fit_input(load_rgb(args.src), side, side, "centre")
    else:
        layers = ([resolve_layer(network, name) for name in args.layers.split(",") if name]
                  if args.layers else default_layers(network, args.count))
        jobs = [(layer, layer) for layer in layers]
        source = fit(load_rgb(args.src), args.size)
    if not jobs:
        raise ValueError(f"{network.name!r} has no layer to show")
    with open_pool(workers_of(args), network, args.device) as pool:
        options = {"octaves": args.octaves or (1 if args.classes else 3), "seed": args.seed,
                   "device": pool.device, "precision": args.precision}
        cells = dream_cells([(label, Still(source, make_plan(network, target, iterations,
                                                             rate, **options)))
                             for label, target in jobs], pool, quiet=args.quiet)
    save_rgb(out, grid([("source", source), *cells], args.columns))
    print(f"gallery of {len(jobs)} {'classes' if args.classes else 'layers'} written to {out}")
    return 0
