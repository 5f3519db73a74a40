"""`python -m dreamer gallery SRC --model M [--layers a,b,...]`: one PNG grid, one cell
per layer (a short dream at that layer), each labelled with the layer's name. The cells
are work items of the engine (dreamer/jobs/engine.py), so `--ray` spreads them over workers."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from converters.images import load_rgb
from converters.layer_types import LAYER_TYPES
from converters.network import Network
from converters.ownership import OVERWRITE_HELP
from dreamer.classes import fit_input
from dreamer.image_io import check_image_output, save_rgb
from dreamer.jobs.engine import add_engine_options, dream_cells, open_pool
from dreamer.jobs.work import Still
from dreamer.loops.gradient import receptive_field
from dreamer.networks import open_network
from dreamer.plan import numbers as numbers
from dreamer.plan.plan import make_plan
from dreamer.plan.targets import class_cells, resolve_layer

LABEL_HEIGHT = 18


def default_layers(network: Network, count: int) -> list[str]:
    """`count` feature layers (of a type whose entry says so: not ReLUs, splits, ...)
    spread evenly through the net: those with a spatial output larger than 1×1 at the
    net's declared input size."""
    candidates, shapes = [], network.output_shapes()
    for name in network.sequence:
        if not LAYER_TYPES[network.layer_types[network.layer_index[name]]].is_feature:
            continue
        if len(shapes[name]) < 4 or shapes[name][2] * shapes[name][3] <= 1:
            continue
        try:
            receptive_field(network, [name])
        except Exception:  # behind a fully connected or global layer: no picture to show
            continue
        candidates.append(name)
    if len(candidates) <= count:
        return candidates
    picks = np.linspace(0, len(candidates) - 1, count).round().astype(int)
    return [candidates[i] for i in dict.fromkeys(picks)]


def fit(rgb: np.ndarray, size: int) -> np.ndarray:
    """The image scaled so that its longer side is `size`."""
    h, w = rgb.shape[:2]
    factor = size / max(h, w)
    target = (max(1, round(w * factor)), max(1, round(h * factor)))
    return np.asarray(Image.fromarray(rgb).resize(target, Image.BICUBIC))


def grid(cells: list[tuple[str, np.ndarray]], columns: int) -> np.ndarray:
    """Cells side by side, `columns` per row, each with its label underneath."""
    h, w = cells[0][1].shape[:2]
    rows = math.ceil(len(cells) / columns)
    sheet = Image.new("RGB", (columns * w, rows * (h + LABEL_HEIGHT)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for i, (label, rgb) in enumerate(cells):
        x, y = (i % columns) * w, (i // columns) * (h + LABEL_HEIGHT)
        sheet.paste(Image.fromarray(rgb), (x, y))
        text = label if draw.textlength(label, font=font) <= w - 4 else "…" + label[-(w // 7):]
        draw.text((x + 2, y + h + 3), text, fill="black", font=font)
    return np.asarray(sheet)


def gallery_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m dreamer gallery",
                                     description="A labelled grid: one short dream per layer.")
    parser.add_argument("src")
    parser.add_argument("--model", help="as for the dreamer (default nin)")
    parser.add_argument("--weights", help="the caffemodel of a prototxt --model")
    parser.add_argument("--layers", help="comma-separated layers (default: 12 spread "
                        "through the net)")
    parser.add_argument("--classes", help="comma-separated classes (names or indices): one "
                        "cell per class instead of per layer")
    parser.add_argument("--labels", help="class list for --classes (default: the model's "
                        "labels.txt)")
    parser.add_argument("--count", type=numbers.COUNT, default=12,
                        help="layers picked by default (default: %(default)s)")
    parser.add_argument("--iterations", type=numbers.ITERATIONS, default=5,
                        help=f"as ITERATIONS of the dreamer, {numbers.ITERATIONS.describe()} "
                        "(default: %(default)s)")
    parser.add_argument("--rate", type=numbers.RATE, default=0.03,
                        help=f"as RATE of the dreamer, {numbers.RATE.describe()} "
                        "(default: %(default)s)")
    parser.add_argument("--octaves", type=numbers.OCTAVES, help="default 3 (--classes: 1, "
                        "as a fully connected classifier cannot see a smaller octave)")
    parser.add_argument("--size", type=numbers.CELL_SIZE, default=224,
                        help=f"longer side of each cell, {numbers.CELL_SIZE.describe()} "
                        "(default: %(default)s)")
    parser.add_argument("--columns", type=numbers.COUNT, default=4,
                        help="(default: %(default)s)")
    parser.add_argument("--seed", type=numbers.SEED, default=0,
                        help=f"random seed, {numbers.SEED.describe()} (default: %(default)s)")
    parser.add_argument("-o", "--output", help="default <src stem>_gallery.png")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    parser.add_argument("--quiet", action="store_true")
    add_engine_options(parser)
    args = parser.parse_args(argv)
    out = check_image_output(args.output or f"{Path(args.src).stem}_gallery.png",
                             [args.src, args.model, args.weights, args.labels], args.overwrite)
    network = open_network(args.model, args.weights)
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
    with open_pool(args, network, "cpu") as pool:
        options = {"octaves": args.octaves or (1 if args.classes else 3), "seed": args.seed,
                   "device": pool.device}
        cells = dream_cells([(label, Still(source, make_plan(network, target, args.iterations,
                                                             args.rate, **options)))
                             for label, target in jobs], pool, quiet=args.quiet)
    save_rgb(out, grid([("source", source), *cells], args.columns))
    print(f"gallery of {len(jobs)} {'classes' if args.classes else 'layers'} written to {out}")
    return 0
