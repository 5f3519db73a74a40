"""The still dreamer, the command with no subcommand word:
`python -m dreamer SRC LAYER ITERATIONS RATE [options]`, as the seed script's
`qlua deepdream.lua <source_img> <layer_max> <iterations> <update_rate>`; also
`--list-layers [--model M]` and `--from-png PNG` (the dream a PNG of ours stores, again).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

import models
from converters.images import ImageError, load_rgb
from converters.ownership import OVERWRITE_HELP, check_writable_folder, marker, read_stored_run
from dreamer.cli.options import OBJECTIVE_HELP, add_dream_options, plan_from_args
from dreamer.image_io import (
    MAX_SIDE_HELP,
    check_image_output,
    check_max_side,
    check_octave_folder,
    check_raw_output,
    quantise,
    save_array,
    save_octave,
    save_rgb,
    scaled_down,
)
from dreamer.loops.deepdraw import noise_canvas
from dreamer.loops.run import check_image, dream_with_plan, loop_of
from dreamer.plan.plan import network_digest
from dreamer.plan.presets import preset_named

DESCRIPTION = """\
DeepDream on classic Caffe/Torch7 nets: SRC dreamed at LAYER, ITERATIONS steps per octave
of RATE each (defaults: a zoo model's default layer, 10 and 0.01; the presets below have
their own). SRC is an image file (PNG, JPEG, ...), or `noise` with --preset deepdraw (a
grey-noise canvas of the net's input size).

subcommands (python -m dreamer NAME --help for each):
  zoom      Google's endless zoom into a dream: an MP4, a GIF or a folder of PNGs
  video     a dreamed video whose detail follows the motion (optical flow)
  batch     the still dreamer on every image of a folder, a glob or a list
  gallery   a labelled grid: one short dream per layer
  sweep     a contact sheet: one row per layer, one column per channel
  classify  the net's top classes for an image; --list-classes [QUERY] lists class names
  visualize feature visualisation as Lucid's: a channel, neuron or class drawn from noise
  studio    the still dreamer in a local web page (the optional dreamzoo[studio])
"""

EPILOG = """\
LAYER is an exact layer name, a unique prefix of one (conv4 -> conv4-1024 in NIN), the
seed script's integer layer_max (module N of the net, 1-based, ReLU and Dropout
included), or several: a,b or with weights a:1,b:0.5 (gradients summed).

presets:
  (none)   Google's octave loop at the image's full size; RATE is in the seed script's
           unit, the standard deviation of the image as the net sees it.
  google   Google's DeepDream notebook: ITERATIONS 10 and step RATE 1.5 (in the net's
           input units) by default, 4 octaves x 1.4, jitter 32, clipping; GoogLeNet uses
           the notebook's mean (104, 116, 122).
  deepdraw auduno's class visualisation (with --class): random crops of the net's size
           from a canvas (SRC `noise`: grey noise), 4 octaves of 500 steps in all with a
           decreasing blur and step; ITERATIONS is the total, RATE scales the steps.
  torch7   the seed deepdream.lua: the image normalised by its own mean and std, scaled
           to 224x224 (Torch7's bilinear and bicubic image.scale), 8 octaves of 1.25/1.4,
           x += g * RATE / mean|g|, output 224x224. One deliberate deviation: the script
           never called :evaluate(), so a Dropout inside the cut drew random masks; here
           the net always runs in evaluation mode.

objectives (the output gradient dy sent back from the layer):
{objectives}
"""


OBJECTIVES = "\n".join(f"  {k:<8} {v}" for k, v in OBJECTIVE_HELP.items()) \
    + "\n  (--guide IMG replaces the objective by the notebook's guided dream)"
PARSER = {"prog": "python -m dreamer", "description": DESCRIPTION,
          "epilog": EPILOG.format(objectives=OBJECTIVES),
          "formatter_class": argparse.RawDescriptionHelpFormatter}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", nargs="?", help="source image (PNG, JPEG, ...)")
    parser.add_argument("positional", nargs="*", metavar="LAYER ITERATIONS RATE",
                        help="target layer(s), iterations per octave, update rate")
    add_dream_options(parser)
    parser.add_argument("-o", "--output", help="output PNG/JPEG (default <src stem>_dream.png)")
    parser.add_argument("--max-side", type=int, metavar="N", help=MAX_SIDE_HELP)
    parser.add_argument("--save-raw", help="also save the float RGB result as .npy")
    parser.add_argument("--save-octaves", help="also save each octave's result in this folder")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    parser.add_argument("--from-png", metavar="PNG", help="dream again with the command line "
                        "and model stored in a dream PNG of ours (keeps -o if given)")
    parser.add_argument("--list-layers", action="store_true",
                        help="print index, name, type, output shape and smallest input "
                        "size of every layer")


def still_parser() -> argparse.ArgumentParser:
    """The still dreamer's parser on its own: to read the command line a PNG stores."""
    parser = argparse.ArgumentParser(**PARSER)
    add_arguments(parser)
    return parser


# Options naming a file, read relative to the folder the command was given in.
PATH_OPTIONS = ("src", "model", "weights", "guide", "labels")
# Options of where the outputs go, which --from-png takes from the new command line.
OUTPUT_OPTIONS = ("output", "save_raw", "save_octaves", "overwrite", "quiet", "list_layers")
OUTPUT_FLAGS = ("-o", "--output", "--save-raw", "--save-octaves", "--from-png")


def run(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    replayed, made_by, cwd = args.from_png, None, os.getcwd()
    if replayed:
        args, stored = replay_args(args)
        argv, made_by, cwd = stored["argv"], stored.get("network"), stored["cwd"]
    network = models.open(args.model, args.weights)
    if args.list_layers:
        print(network.layer_table())
        return 0
    preset = preset_named(args.preset)
    if args.src is None and not preset.noise_source:
        raise ValueError("give a source image (see --help)")
    digest = f"{network.name} {network_digest(network)}"
    if made_by is not None and made_by != digest:
        raise ValueError(f"{replayed}: was dreamed with another model ({made_by}); "
                         f"the model {args.model or 'nin'} is {digest}")
    plan = plan_from_args(network, args)
    noise = preset.noise_source and (args.src or "noise") == "noise" \
        and not Path("noise").exists()
    inputs = [replayed, *(getattr(args, name) for name in PATH_OPTIONS)]
    out = check_image_output(args.output or f"{Path(args.src or 'noise').stem}_dream.png",
                             inputs, args.overwrite)
    if args.save_raw:
        check_raw_output(args.save_raw, [*inputs, out], args.overwrite)
    octave_dir = check_octave_folder(args.save_octaves, args.overwrite) \
        if args.save_octaves else None
    check_max_side(args.max_side)
    rgb = noise_canvas(*network.spec.input_shape[-2:], args.seed) if noise \
        else scaled_down(load_rgb(args.src), args.max_side)
    check_image(network, plan, rgb)
    check_writable_folder(out, rgb.size + rgb.shape[0] + (1 << 16))  # PNG: at most raw + rows
    if args.save_raw:
        check_writable_folder(Path(args.save_raw), rgb.size * 4 + 128)

    def on_octave(k: int, octave_rgb: np.ndarray) -> None:
        save_octave(octave_dir, k + 1, quantise(octave_rgb))

    loop = loop_of(plan)
    with tqdm(total=loop.steps(plan), disable=args.quiet, unit="step", leave=False) as bar:
        result = dream_with_plan(rgb, network, plan, raw=True, on_step=bar.update,
                                 on_octave=on_octave if octave_dir else None)
    save_rgb(out, loop.quantise(result),
             marker(argv=without_outputs(sys.argv[1:] if argv is None else argv), cwd=cwd,
                    network=digest))
    if args.save_raw:
        save_array(args.save_raw, result)
    print(f"dream written to {out}")
    return 0


def without_outputs(argv: list[str]) -> list[str]:
    """The command line less where its outputs go (so the same dream made under two names
    is the same file): what a dream PNG stores to be made again."""
    kept, skip = [], False
    for arg in argv:
        flag = arg.split("=", 1)[0]
        if skip or flag in ("--overwrite", "--quiet"):
            skip = False
        elif flag in OUTPUT_FLAGS or (arg.startswith("-o") and not arg.startswith("--")):
            skip = "=" not in arg and arg in OUTPUT_FLAGS  # its value is the next argument
        else:
            kept.append(arg)
    return kept


def replay_args(args: argparse.Namespace) -> tuple[argparse.Namespace, dict]:
    """The arguments stored in the dream PNG `args.from_png` (its paths read from the folder
    the dream was made in), with the output options of `args`; and what the PNG stores
    (`argv`, `cwd`, `network`: the digest of the model it was dreamed with)."""
    if args.src is not None or args.positional:
        raise ValueError("--from-png takes the whole command from the PNG: give no SRC, "
                         "LAYER, ITERATIONS or RATE")
    defaults = vars(still_parser().parse_args([]))
    given = [name for name, value in vars(args).items()
             if name not in (*OUTPUT_OPTIONS, "from_png") and value != defaults[name]]
    if given:
        option = "--" + given[0].rstrip("_").replace("_", "-")
        raise ValueError(f"--from-png takes the dream's settings from the PNG, not {option}: "
                         f"give only -o, --save-raw, --save-octaves, --overwrite or --quiet")
    stored = read_stored_run(Path(args.from_png))
    if stored is None:
        raise ImageError(f"{args.from_png}: holds no dreamzoo settings (a PNG of "
                         f"`python -m dreamer` has them); nothing to dream again")
    argv, folder = stored["argv"], Path(stored["cwd"])
    replay = still_parser().parse_intermixed_args(argv)
    for name in PATH_OPTIONS:
        value = getattr(replay, name)
        if value and not Path(value).is_absolute() and os.path.lexists(folder / value):
            setattr(replay, name, str(folder / value))
    for name in OUTPUT_OPTIONS:
        setattr(replay, name, getattr(args, name))
    replay.from_png = None
    return replay, stored
