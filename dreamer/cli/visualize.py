"""`python -m dreamer visualize TARGET --model M [-o OUT]`: feature visualisation as Lucid
does it (dreamer/loops/visualize.py): images optimised from noise to raise TARGET, written
as one PNG (a labelled sheet with --batch N > 1).
"""

from __future__ import annotations

import argparse
import math
import os
import re

from tqdm import tqdm

import models
from converters.errors import UsageError
from converters.images import load_rgb
from converters.ownership import OVERWRITE_HELP, check_writable_folder, marker
from dreamer.cli.options import add_device_options, add_model_options
from dreamer.cli.sweep import parse_channels
from dreamer.dream import target_labels
from dreamer.image_io import check_image_output, save_rgb
from dreamer.jobs.sheets import grid
from dreamer.loops.visualize import (
    BATCH,
    DEFAULT_DIVERSITY,
    DIVERSITY,
    LR,
    SIZE,
    STEPS,
    render,
    visualisation,
)
from dreamer.plan import numbers
from dreamer.plan.params import PARAMS
from dreamer.plan.plan import network_digest
from dreamer.plan.transforms import TRANSFORMS_HELP
from models.open import DEFAULT_MODEL

DESCRIPTION = """\
Feature visualisation (Olah et al., Distill 2017; Lucid's render_vis): images optimised
from noise with Adam to raise TARGET, seen through random transforms each step.

TARGET:
  layer:channel          a channel's mean        inception_4c/output:97
  layer:channel@y,x      one neuron              inception_4c/output:97@7,7
  class:NAME|INDEX       a class's score         class:goldfish
  layer:@file.npy        a direction (one number per channel)
  a weighted sum         0.5*class:goldfish + inception_4c/output:97

sheets, one image per cell optimised as one batch:
  --classes goldfish,flamingo,zebra          one per class (no TARGET)
  inception_4c/output --channels 0-15        a channel atlas of the layer
"""

# Where the outputs go: not in the settings the PNG stores (the same image under two names
# is the same file).
OUTPUT_OPTIONS = ("output", "overwrite", "quiet")

PARSER = {"prog": "python -m dreamer visualize", "description": DESCRIPTION,
          "formatter_class": argparse.RawDescriptionHelpFormatter}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="TARGET", nargs="?", help="what to raise (see "
                        "above); with --channels, a layer")
    parser.add_argument("--classes", metavar="NAME|INDEX,...", help="a sheet: one image per "
                        "class (no TARGET)")
    parser.add_argument("--channels", metavar="RANGES", help="a sheet: one image per channel "
                        "of the layer TARGET, e.g. 0-7,12 (a channel atlas)")
    add_model_options(parser)
    parser.add_argument("--labels", help="class list for class:NAME (default: the model's "
                        "labels.txt)")
    parser.add_argument("--param", choices=tuple(PARAMS), default="fft",
                        help="what is optimised: fft (Lucid's default: a 1/f-scaled Fourier "
                        "basis with decorrelated colour), pixels, or maco (the phase only, "
                        "the magnitude fixed) (default: %(default)s)")
    parser.add_argument("--transforms", default="standard", help=TRANSFORMS_HELP
                        + " (default: %(default)s)")
    parser.add_argument("--batch", type=BATCH, default=1, help="images at once, "
                        f"{BATCH.describe()}; more than one: a labelled sheet (default: "
                        "%(default)s)")
    parser.add_argument("--diversity", type=DIVERSITY, nargs="?", const=DEFAULT_DIVERSITY,
                        default=0.0, metavar="W", help="weight of Lucid's diversity term "
                        "(the batch's Gram matrices made unlike), "
                        f"{DIVERSITY.describe()} (default 0; alone: {DEFAULT_DIVERSITY:g})")
    parser.add_argument("--diversity-layer", metavar="LAYER", help="where the diversity is "
                        "measured (default: TARGET's first layer)")
    parser.add_argument("--size", type=SIZE, default=224, help=f"image side, "
                        f"{SIZE.describe()} (default: %(default)s)")
    parser.add_argument("--steps", type=STEPS, default=512, help=f"Adam steps, "
                        f"{STEPS.describe()} (default: %(default)s, as Lucid)")
    parser.add_argument("--lr", type=LR, default=0.05, help=f"Adam's learning rate, "
                        f"{LR.describe()} (default: %(default)s, as Lucid)")
    parser.add_argument("--seed", type=numbers.SEED, default=0, help="random seed (the start "
                        f"and the transforms), {numbers.SEED.describe()} (default: %(default)s)")
    parser.add_argument("--start", metavar="IMG", help="begin from this photo (its square "
                        "centre at --size) instead of noise")
    add_device_options(parser)
    parser.add_argument("-o", "--output", help="output PNG (default: <TARGET>_vis.png)")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def default_output(target: str) -> str:
    """A file name from TARGET: its letters, digits, dots and dashes, the rest `_`."""
    return re.sub(r"[^\w.-]+", "_", target, flags=re.ASCII).strip("_.")[:80] + "_vis.png"


def direction_files(target: str) -> list[str]:
    """The .npy files TARGET reads (`layer:@file.npy` terms): no output may replace them."""
    return [term.partition(":@")[2].strip() for term in target.split("+") if ":@" in term]


def cells_of(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(label, TARGET) per image of a sheet of --classes or --channels; [] for TARGET alone."""
    if args.classes is not None:
        if args.target is not None or args.channels is not None:
            raise UsageError("--classes makes the sheet: give no TARGET or --channels")
        names = [name.strip() for name in args.classes.split(",") if name.strip()]
        if not names:
            raise UsageError("--classes names no class")
        return [(name, f"class:{name}") for name in names]
    if args.target is None:
        raise UsageError("give a TARGET, or --classes (see --help)")
    if args.channels is None:
        return []
    return [(f"#{c}", f"{args.target}:{c}") for c in parse_channels(args.channels)]


def run(args: argparse.Namespace) -> int:
    cells = cells_of(args)
    target = [text for _, text in cells] if cells else args.target
    network = models.open(args.model, args.weights)
    named = "+".join(target) if cells else args.target  # for the classes it names
    labels = target_labels(network, args.model or DEFAULT_MODEL, args.labels, named)
    vis = visualisation(network, target, labels=labels, param=args.param,
                        transforms=args.transforms, batch=args.batch,
                        diversity=args.diversity, diversity_layer=args.diversity_layer,
                        size=args.size, steps=args.steps, lr=args.lr, seed=args.seed,
                        device=args.device, precision=args.precision)
    photo = None if args.start is None else load_rgb(args.start)
    inputs = [args.model, args.weights, args.labels, args.start,
              *direction_files(args.target or "")]
    name = args.target or f"classes_{args.classes}"
    out = check_image_output(args.output or default_output(name), inputs, args.overwrite)
    count = vis.settings.batch
    columns = math.ceil(math.sqrt(count))
    check_writable_folder(out, 3 * (args.size + 32) ** 2 * columns ** 2 + (1 << 16))
    with tqdm(total=args.steps, disable=args.quiet, unit="step", leave=False) as bar:
        images = render(network, vis, start=photo, on_step=bar.update)
    captions = [label for label, _ in cells] or [f"{args.target} #{i}" for i in range(count)]
    sheet = images[0] if count == 1 and not cells else grid(list(zip(captions, images)), columns)
    settings = {k: v for k, v in vars(args).items() if k not in OUTPUT_OPTIONS}
    stored = marker(command="visualize", settings=settings, cwd=os.getcwd(),
                    network=f"{network.name} {network_digest(network)}")
    save_rgb(out, sheet, stored)
    print(f"visualisation written to {out}")
    return 0

