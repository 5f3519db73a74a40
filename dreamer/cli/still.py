"""Command line: `python -m dreamer SRC LAYER ITERATIONS RATE [options]`, as the seed
script's `qlua deepdream.lua <source_img> <layer_max> <iterations> <update_rate>`.

Also `python -m dreamer gallery SRC --model M` (one labelled cell per layer),
`python -m dreamer batch INPUT LAYER ITERATIONS RATE -o OUTDIR` (many images),
`python -m dreamer sweep SRC LAYERS ITERATIONS RATE --channels 0-3` (layers × channels),
`python -m dreamer classify IMG --model M` (the net's top classes),
`python -m dreamer zoom|video ...` (animations: dreamer/motion/) and
`python -m dreamer --list-layers [--model M]`. Errors are one line, exit status 2, and
no output file.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import warnings
from importlib import import_module
from pathlib import Path

import numpy as np
from tqdm import tqdm

from converters.cli import broken_pipe, flushed, interrupted
from converters.errors import DreamzooError
from converters.images import ImageError, load_rgb
from converters.ownership import OVERWRITE_HELP, check_writable_folder, marker, read_stored_run
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
from dreamer.jobs.engine import shown_once
from dreamer.loops.deepdraw import noise_canvas
from dreamer.loops.gradient import receptive_field
from dreamer.loops.run import check_image, dream_with_plan, loop_of
from dreamer.networks import UnofficialWeights, open_network
from dreamer.plan import numbers
from dreamer.plan.numbers import ITERATIONS, RATE
from dreamer.plan.objectives import RULES
from dreamer.plan.plan import DreamPlan, Options, make_plan
from dreamer.plan.presets import PRESET_NAMES, STEP_NORMS, preset_named
from dreamer.plan.record import network_digest
from dreamer.plan.targets import (
    class_targets as targets_of,
)
from dreamer.plan.targets import (
    classifier_of,
    dream_layer_default,
    labels_for,
    parse_targets,
)
from dreamer.runtime.allocator import keep_freed_memory
from dreamer.runtime.precision import PRECISIONS

OBJECTIVE_HELP = {name: rule.help for name, rule in RULES.items()}

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


def add_dream_options(parser: argparse.ArgumentParser) -> None:
    """The options of a dream, shared by the still dreamer and every subcommand that
    dreams (each then reads them with `dream_options` and `prepare_dream`)."""
    parser.add_argument("--model", help="zoo name (default nin), converted directory, .t7, "
                        ".onnx, or prototxt (with --weights)")
    parser.add_argument("--weights", help="the caffemodel of a prototxt --model")
    parser.add_argument("--layer", help="target layer(s); then the positionals are "
                        "ITERATIONS RATE")
    parser.add_argument("--class", dest="class_", metavar="NAME|INDEX[:WEIGHT],...",
                        help="dream these classes: each one's pre-softmax score (exact names "
                        "or synonyms, case-insensitive, or indices); with a LAYER, both")
    parser.add_argument("--labels", help="class list for --class (default: the model's "
                        "labels.txt)")
    parser.add_argument("--preset", choices=PRESET_NAMES,
                        help="see presets below (default: none)")
    parser.add_argument("--octaves", type=numbers.OCTAVES, help="octaves of the pyramid, "
                        f"{numbers.OCTAVES.describe()} (default 4; video 2; torch7 8), at most "
                        "as many as shrink the image to 1 pixel")
    parser.add_argument("--octave-scale", type=numbers.OCTAVE_SCALE, help="size ratio of "
                        f"one octave to the next, {numbers.OCTAVE_SCALE.describe()} "
                        "(default 1.4)")
    parser.add_argument("--jitter", type=numbers.JITTER, help="largest random shift per step "
                        f"in pixels, {numbers.JITTER.describe()} (default 32)")
    parser.add_argument("--step-norm", choices=STEP_NORMS,
                        help="divide each step by the gradient's mean|g| (default), max|g|, "
                        "RMS, or not at all")
    parser.add_argument("--channel", type=numbers.CHANNEL,
                        help="amplify only this channel (0-based; default: all)")
    parser.add_argument("--objective", default="l2", choices=list(OBJECTIVE_HELP),
                        help="see objectives below (default: %(default)s)")
    parser.add_argument("--topk", type=numbers.TOPK, default=0.01,
                        help="fraction of activations kept by --objective topk, "
                        f"{numbers.TOPK.describe()} (default: %(default)s)")
    parser.add_argument("--guide", help="guide image: dream towards its features")
    parser.add_argument("--blur", type=numbers.BLUR, default=0.0,
                        help="smooth each gradient with a Gaussian of this sigma in pixels, "
                        f"{numbers.BLUR.describe()} (default: %(default)s, none)")
    parser.add_argument("--laplacian", type=numbers.LAPLACIAN, default=0,
                        help="normalise the gradient over this many Laplacian-pyramid "
                        f"levels, {numbers.LAPLACIAN.describe()} (default: %(default)s, none)")
    parser.add_argument("--tile", type=numbers.TILE, help="compute gradients in tiles of "
                        f"this size, {numbers.TILE.describe()} (bounded memory for large "
                        "images; seamless; default: no tiles)")
    parser.add_argument("--tile-margin", type=numbers.TILE_MARGIN, help="context around each "
                        f"tile, {numbers.TILE_MARGIN.describe()} (default: the target's "
                        "receptive field, which makes tiling exact)")
    parser.add_argument("--seed", type=numbers.SEED, default=0,
                        help=f"random seed (jitter), {numbers.SEED.describe()} "
                        "(default: %(default)s)")
    parser.add_argument("--device", default="auto", help="auto (default: a GPU if the "
                        "machine has one, else cpu), cpu, cuda, cuda:N, mps")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="the network's arithmetic: auto (default: bf16/fp16 only where "
                        "the hardware computes it natively and fast; fp32 for the google and "
                        "torch7 presets), fp32, bf16, fp16")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def dream_options(args: argparse.Namespace) -> dict:
    """The keyword options of `dreamer.dream()` (the fields of its Options) given on the
    command line."""
    return {field.name: getattr(args, field.name) for field in dataclasses.fields(Options)}


def build_parser() -> argparse.ArgumentParser:
    objectives = "\n".join(f"  {k:<8} {v}" for k, v in OBJECTIVE_HELP.items())
    objectives += "\n  (--guide IMG replaces the objective by the notebook's guided dream)"
    parser = argparse.ArgumentParser(
        prog="python -m dreamer", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=DESCRIPTION,
        epilog=EPILOG.format(objectives=objectives))
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
    return parser


def split_positionals(args: argparse.Namespace) -> tuple[str | None, int | None, float | None]:
    rest = list(args.positional)
    with_class = args.class_ is not None and len(rest) < 3  # then no LAYER positional
    layer = args.layer if args.layer or with_class else (rest.pop(0) if rest else None)
    if len(rest) > 2:
        raise ValueError(f"too many arguments: {' '.join(rest[2:])}")
    iterations = ITERATIONS.parse(rest[0], "ITERATIONS") if rest else None
    rate = RATE.parse(rest[1], "RATE") if len(rest) > 1 else None
    return layer, iterations, rate


def class_targets(network, args: argparse.Namespace) -> list:
    """The targets of `--class`, named with `--labels` or the model's own class list."""
    labels = labels_for(args.model, args.labels, classifier_of(network).classes)
    return targets_of(network, args.class_, labels)


def plan_from_args(network, args: argparse.Namespace, *, motion: bool = False,
                   octaves: int | None = None, iterations: int | None = None) -> DreamPlan:
    """The dream plan of the command line, with everything about it that can be refused
    refused now, before any output or progress bar. `motion`: RATE's default is the
    preset's for a video frame; `octaves`, `iterations`: the command's own defaults."""
    layer, given_iterations, rate = split_positionals(args)
    iterations = given_iterations or iterations
    targets = class_targets(network, args) if args.class_ is not None else []
    if layer or not targets:
        targets = parse_targets(network, layer or dream_layer_default(network),
                                "--layer" if args.layer else "LAYER") + targets
    options = dream_options(args)
    if octaves is not None and options["octaves"] is None:
        options["octaves"] = octaves
    if motion and rate is None:
        rate = preset_named(args.preset).motion_rate
    plan = make_plan(network, targets, iterations, rate, **options)
    if args.channel is not None:
        check_channel(network, targets, args.channel)
    if args.tile is not None:
        receptive_field(network, [t.layer for t in targets])
    return plan


def check_channel(network, targets: list, *channels: int) -> None:
    """Refuse the first of `channels` that one of the targets' layers does not have."""
    shapes = network.output_shapes()
    for channel in channels:
        for target in targets:
            count = shapes[target.layer][1] if len(shapes[target.layer]) > 1 else 0
            if not 0 <= channel < count:
                raise ValueError(f"--channel {channel} is out of range: layer "
                                 f"{target.layer!r} has {count} channels")


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
    network = open_network(args.model, args.weights)
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
    defaults = vars(build_parser().parse_args([]))
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
    replay = build_parser().parse_intermixed_args(argv)
    for name in PATH_OPTIONS:
        value = getattr(replay, name)
        if value and not Path(value).is_absolute() and os.path.lexists(folder / value):
            setattr(replay, name, str(folder / value))
    for name in OUTPUT_OPTIONS:
        setattr(replay, name, getattr(args, name))
    replay.from_png = None
    return replay, stored


# `python -m dreamer NAME ...`: NAME's module in dreamer/ and its entry point.
SUBCOMMANDS = {
    "gallery": ("gallery", "gallery_main"),
    "classify": ("classes", "classify_main"),
    "batch": ("batch", "batch_main"),
    "sweep": ("sweep", "sweep_main"),
    "zoom": ("motion.cli", "zoom_main"),
    "video": ("motion.cli", "video_main"),
}
# Those whose rerun continues where an interrupted run stopped (frames folder, batch record).
RESUMABLE = ("zoom", "video", "batch")


def main(argv: list[str] | None = None) -> int:
    keep_freed_memory()
    argv = list(sys.argv[1:] if argv is None else argv)
    with warnings.catch_warnings():  # restores the caller's warning display afterwards
        warnings.simplefilter("always")
        reminders: list[str] = []  # shown once the command is done: an error stays one line

        def show(message, category, *_, **__) -> None:
            if issubclass(category, UnofficialWeights):
                reminders.append(f"warning: {message}")
            else:  # tqdm.write: a warning during a dream gets its own line, above the bar
                tqdm.write(f"warning: {message}", file=sys.stderr)

        warnings.showwarning = shown_once(show)  # not once per frame of a zoom or video
        try:
            if argv and argv[0] in SUBCOMMANDS:
                module, function = SUBCOMMANDS[argv[0]]
                status = getattr(import_module(f"dreamer.{module}"), function)(argv[1:])
            else:
                status = run(build_parser().parse_intermixed_args(argv), argv)
            for reminder in reminders:
                print(reminder, file=sys.stderr)
            return flushed(status)
        except (DreamzooError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return interrupted(resumable=bool(argv) and argv[0] in RESUMABLE)
        except BrokenPipeError:
            return broken_pipe()


if __name__ == "__main__":
    sys.exit(main())
