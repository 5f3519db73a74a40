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
import sys
import warnings
from importlib import import_module
from pathlib import Path

from converters.spec import ConversionError

from .allocator import keep_freed_memory
from .cli_numbers import ITERATIONS, RATE
from .image_io import ImageError

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
    from . import cli_numbers as numbers
    from .google_loop import STEP_NORMS
    from .objectives import OBJECTIVE_HELP
    from .precision import PRECISIONS

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
    parser.add_argument("--preset", choices=("google", "torch7", "deepdraw"),
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
    from .dream import Options

    return {field.name: getattr(args, field.name) for field in dataclasses.fields(Options)}


def build_parser() -> argparse.ArgumentParser:
    from .objectives import OBJECTIVE_HELP

    objectives = "\n".join(f"  {k:<8} {v}" for k, v in OBJECTIVE_HELP.items())
    objectives += "\n  (--guide IMG replaces the objective by the notebook's guided dream)"
    parser = argparse.ArgumentParser(
        prog="python -m dreamer", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="DeepDream on classic Caffe/Torch7 nets.",
        epilog=EPILOG.format(objectives=objectives))
    parser.add_argument("src", nargs="?", help="source image (PNG, JPEG, ...)")
    parser.add_argument("positional", nargs="*", metavar="LAYER ITERATIONS RATE",
                        help="target layer(s), iterations per octave, update rate")
    add_dream_options(parser)
    parser.add_argument("-o", "--output", help="output PNG/JPEG (default <src stem>_dream.png)")
    parser.add_argument("--save-raw", help="also save the float RGB result as .npy")
    parser.add_argument("--save-octaves", help="also save each octave's result in this folder")
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
    from .classes import class_targets as targets_of
    from .classes import classifier_of, labels_for

    labels = labels_for(args.model, args.labels, classifier_of(network).classes)
    return targets_of(network, args.class_, labels)


def prepare_dream(network, args: argparse.Namespace) -> tuple[list, int | None, float | None]:
    """(targets, ITERATIONS, RATE) of the command line, with everything about them that can
    be refused refused now, before any output or progress bar."""
    from .dream import Options, parse_targets, validate
    from .gradient import receptive_field
    from .layers import dream_layer_default

    layer, iterations, rate = split_positionals(args)
    targets = class_targets(network, args) if args.class_ is not None else []
    if layer or not targets:
        targets = parse_targets(network, layer or dream_layer_default(network),
                                "--layer" if args.layer else "LAYER") + targets
    validate(10 if iterations is None else iterations, 1.0 if rate is None else rate,
             Options(**dream_options(args)))
    if args.channel is not None:
        check_channel(network, targets, args.channel)
    if args.tile is not None:
        receptive_field(network, [t.layer for t in targets])
    return targets, iterations, rate


def check_channel(network, targets: list, *channels: int) -> None:
    """Refuse the first of `channels` that one of the targets' layers does not have."""
    shapes = network.output_shapes()
    for channel in channels:
        for target in targets:
            count = shapes[target.layer][1] if len(shapes[target.layer]) > 1 else 0
            if not 0 <= channel < count:
                raise ValueError(f"--channel {channel} is out of range: layer "
                                 f"{target.layer!r} has {count} channels")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from converters.images import load_rgb

    from .deepdraw import noise_canvas, schedule
    from .dream import Options, check_size, dream, quantise_result
    from .image_io import (
        check_npy,
        check_octave_folder,
        check_writable,
        save_array,
        save_octave,
        save_rgb,
    )
    from .networks import open_network

    network = open_network(args.model, args.weights)
    if args.list_layers:
        print(network.layer_table())
        return 0
    if args.src is None and args.preset != "deepdraw":  # deepdraw: a noise canvas
        raise ValueError("give a source image (see --help)")
    targets, iterations, rate = prepare_dream(network, args)
    options = dream_options(args)
    noise = args.preset == "deepdraw" and (args.src or "noise") == "noise" \
        and not Path("noise").exists()
    out = check_writable(args.output or f"{Path(args.src or 'noise').stem}_dream.png")
    if args.save_raw:
        check_npy(args.save_raw)
    octave_dir = check_octave_folder(args.save_octaves) if args.save_octaves else None
    rgb = noise_canvas(*network.spec.input_shape[-2:], args.seed) if noise \
        else load_rgb(args.src)
    check_size(network, targets, rgb, Options(**options))

    def on_octave(k: int, octave_rgb: np.ndarray) -> None:
        save_octave(octave_dir, k + 1, quantise_result(octave_rgb, None))

    octaves = args.octaves or {"torch7": 8}.get(args.preset or "", 4)
    steps = octaves * (10 if iterations is None else iterations)
    if args.preset == "deepdraw":
        steps = sum(o.iterations for o in schedule(iterations, args.octaves))
    with tqdm(total=steps, disable=args.quiet, unit="step", leave=False) as bar:
        result = dream(rgb, network, targets, iterations, rate, raw=True, on_step=bar.update,
                       on_octave=on_octave if octave_dir else None, **options)
    save_rgb(out, quantise_result(result, args.preset))
    if args.save_raw:
        save_array(args.save_raw, result)
    print(f"dream written to {out}")
    return 0


# `python -m dreamer NAME ...`: NAME's module in dreamer/ and its entry point.
SUBCOMMANDS = {
    "gallery": ("gallery", "gallery_main"),
    "classify": ("classes", "classify_main"),
    "batch": ("batch", "batch_main"),
    "sweep": ("sweep", "sweep_main"),
    "zoom": ("motion.cli", "zoom_main"),
    "video": ("motion.cli", "video_main"),
}


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    keep_freed_memory()
    argv = list(sys.argv[1:] if argv is None else argv)
    with warnings.catch_warnings():  # restores the caller's warning display afterwards
        warnings.simplefilter("always")
        # tqdm.write: a warning during a dream gets its own line, above the progress bar
        warnings.showwarning = lambda message, *_, **__: tqdm.write(f"warning: {message}",
                                                                    file=sys.stderr)
        try:
            if argv and argv[0] in SUBCOMMANDS:
                module, function = SUBCOMMANDS[argv[0]]
                return getattr(import_module(f"dreamer.{module}"), function)(argv[1:])
            return run(build_parser().parse_intermixed_args(argv))
        except (ConversionError, ImageError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
