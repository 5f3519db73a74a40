"""`python -m dreamer sweep SRC [LAYERS [ITERATIONS RATE]] --channels 0-3 [options]`: a
labelled contact sheet of one net, one row per layer and one column per channel, each cell
a dream of that channel alone (every option of the dreamer applies). The cells are work
items of the engine (dreamer/jobs/engine.py), so `--ray` spreads them over workers.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import models
from converters.images import load_rgb
from converters.ownership import OVERWRITE_HELP
from dreamer.cli.options import (
    add_dream_options,
    add_engine_options,
    check_channel,
    dream_options,
    plan_from_args,
    workers_of,
)
from dreamer.image_io import check_image_output, save_rgb
from dreamer.jobs.engine import dream_cells, open_pool
from dreamer.jobs.sheets import default_layers, fit, grid
from dreamer.jobs.work import Still
from dreamer.loops.run import check_image
from dreamer.plan.numbers import CELL_SIZE
from dreamer.plan.plan import guide_rgb, make_plan

DEFAULT_LAYERS = 4
MAX_CELLS = 4096
CHANNELS = re.compile(r"(\d{1,9})(?:-(\d{1,9}))?", re.ASCII)  # 7 or 0-3


PARSER = {"prog": "python -m dreamer sweep",
          "description": "A contact sheet: one row per layer, one column per channel."}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="source image")
    parser.add_argument("positional", nargs="*", metavar="LAYERS ITERATIONS RATE",
                        help=f"layers a,b,... (default: {DEFAULT_LAYERS} spread through the "
                        f"net), iterations per octave, update rate, as for the dreamer")
    add_dream_options(parser)
    add_engine_options(parser)
    parser.add_argument("--channels", default="0-3",
                        help="channels (0-based) to sweep: 0-3,7 (default 0-3)")
    parser.add_argument("--size", type=CELL_SIZE, default=224, help="longer side of each "
                        f"cell, {CELL_SIZE.describe()} (default: %(default)s)")
    parser.add_argument("-o", "--output", help="default <src stem>_sweep.png")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)


def parse_channels(text: str) -> list[int]:
    """`0-3,7` -> [0, 1, 2, 3, 7]."""
    channels: list[int] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        match = CHANNELS.fullmatch(part)
        first, last = (int(match[1]), int(match[2] or match[1])) if match else (0, -1)
        if last < first:
            raise ValueError(f"--channels: {part!r} is not a channel or a range like 0-3")
        if len(channels) + last - first >= MAX_CELLS:
            raise ValueError(f"--channels: more than {MAX_CELLS} channels")
        channels.extend(range(first, last + 1))
    if not channels:
        raise ValueError("--channels: no channel given")
    return channels


def run(args: argparse.Namespace) -> int:
    if args.channel is not None or args.class_ is not None:
        raise ValueError("sweep: give the channels with --channels (and no --class)")
    channels = parse_channels(args.channels)
    out = check_image_output(args.output or f"{Path(args.src).stem}_sweep.png",
                             [args.src, args.model, args.weights, args.guide, args.labels],
                             args.overwrite)
    network = models.open(args.model, args.weights)
    if args.layer is None and not args.positional:
        args.layer = ",".join(default_layers(network, DEFAULT_LAYERS))
    plan = plan_from_args(network, args)
    check_channel(network, plan.targets, *channels)  # one shape inference for all
    source = fit(load_rgb(args.src), args.size)
    check_image(network, plan, source)
    iterations, rate = plan.given_numbers
    with open_pool(workers_of(args), network, args.device) as pool:
        options = {**dream_options(args), "device": pool.device}
        if args.guide is not None:  # read once, not once per cell
            options["guide"] = guide_rgb(args.guide)
        cells = [(f"{target.layer} #{channel}",
                  Still(source, make_plan(network, [target], iterations, rate,
                                          **{**options, "channel": channel})))
                 for target in plan.targets for channel in channels]
        sheet = dream_cells(cells, pool, quiet=args.quiet)
    save_rgb(out, grid(sheet, len(channels)))
    print(f"sweep of {len(plan.targets)} layers × {len(channels)} channels written to {out}")
    return 0
