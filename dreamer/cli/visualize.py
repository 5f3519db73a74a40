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
from converters.ownership import OVERWRITE_HELP, check_writable_folder, marker
from dreamer.cli.options import add_device_options, add_model_options
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
"""

# Where the outputs go: not in the settings the PNG stores (the same image under two names
# is the same file).
OUTPUT_OPTIONS = ("output", "overwrite", "quiet")

PARSER = {"prog": "python -m dreamer visualize", "description": DESCRIPTION,
          "formatter_class": argparse.RawDescriptionHelpFormatter}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="TARGET", help="what to raise (see above)")
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


def run(args: argparse.Namespace) -> int:
    network = models.open(args.model, args.weights)
    labels = target_labels(network, args.model or DEFAULT_MODEL, args.labels, args.target)
    vis = visualisation(network, args.target, labels=labels, param=args.param,
                        transforms=args.transforms, batch=args.batch,
                        diversity=args.diversity, diversity_layer=args.diversity_layer,
                        size=args.size, steps=args.steps, lr=args.lr, seed=args.seed,
                        device=args.device, precision=args.precision)
    inputs = [args.model, args.weights, args.labels, *direction_files(args.target)]
    out = check_image_output(args.output or default_output(args.target), inputs,
                             args.overwrite)
    columns = math.ceil(math.sqrt(args.batch))
    check_writable_folder(out, 3 * (args.size + 32) ** 2 * columns ** 2 + (1 << 16))
    with tqdm(total=args.steps, disable=args.quiet, unit="step", leave=False) as bar:
        images = render(network, vis, on_step=bar.update)
    sheet = images[0] if args.batch == 1 else \
        grid([(f"{args.target} #{i}", image) for i, image in enumerate(images)], columns)
    settings = {k: v for k, v in vars(args).items() if k not in OUTPUT_OPTIONS}
    stored = marker(command="visualize", settings=settings, cwd=os.getcwd(),
                    network=f"{network.name} {network_digest(network)}")
    save_rgb(out, sheet, stored)
    print(f"visualisation written to {out}")
    return 0

