"""The options more than one command takes, each defined once: the model, the dream
(`add_dream_options`, read back into a plan by `plan_from_args`), the device, the engine's
workers, and the animations' outputs."""

from __future__ import annotations

import argparse
import dataclasses
import textwrap

from tqdm import tqdm

from converters import ownership
from converters.errors import UsageError
from dreamer.image_io import MAX_SIDE_HELP
from dreamer.jobs.engine import Workers
from dreamer.jobs.ray_pool import host_port, import_ray
from dreamer.loops.gradient import receptive_field
from dreamer.plan import numbers
from dreamer.plan.numbers import ITERATIONS, RATE
from dreamer.plan.objectives import RULES, rule_from_text
from dreamer.plan.plan import DreamPlan, Options, make_plan
from dreamer.plan.presets import PRESET_NAMES, STEP_NORMS, preset_named
from dreamer.plan.targets import class_targets as targets_of
from dreamer.plan.targets import (
    classifier_of,
    dream_layer_default,
    labels_for,
    parse_targets,
)
from dreamer.runtime.precision import PRECISIONS

OBJECTIVE_HELP = {name: rule.help for name, rule in RULES.items()}


class DeprecatedForm(UserWarning):
    """A command line in an older form, still accepted (shown once the command is done,
    so that an error stays one line)."""


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """--model and --weights: the network."""
    parser.add_argument("--model", help="zoo name (default nin), converted directory, .t7, "
                        ".onnx, or prototxt (with --weights)")
    parser.add_argument("--weights", help="the caffemodel of a prototxt --model")


def add_device_options(parser: argparse.ArgumentParser) -> None:
    """--device and --precision: where and in which arithmetic the network runs."""
    parser.add_argument("--device", default="auto", help="auto (default: a GPU if the "
                        "machine has one, else cpu), cpu, cuda, cuda:N, mps")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="the network's arithmetic: auto (default: bf16/fp16 only where "
                        "the hardware computes it natively and fast; fp32 for the google and "
                        "torch7 presets), fp32, bf16, fp16")


def objective_text(text: str) -> str:
    """--objective NAME[:VALUE], checked here (argparse's type) and kept as given."""
    try:
        rule_from_text(text)
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--objective").lstrip(": ")) from None
    return text


def add_dream_options(parser: argparse.ArgumentParser) -> None:
    """The options of a dream, shared by the still dreamer and every subcommand that
    dreams (each then reads them with `plan_from_args`)."""
    add_model_options(parser)
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
    parser.add_argument("--objective", default="l2", type=objective_text,
                        metavar="NAME[:VALUE]",
                        help=f"{', '.join(RULES)}: see objectives below (default: %(default)s)")
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
    parser.add_argument("--param", default="pixels", metavar="pixels|fft|maco",
                        help="ascend as if in this parameterisation: pixels (default); fft "
                        "(Lucid's Fourier image: each gradient through the colour covariance "
                        "and a 1/f² filter: smooth, large shapes); maco (only the phase of "
                        "the image's spectrum moves: mostly its largest, lowest frequencies, "
                        "large areas of colour)")
    parser.add_argument("--tile", type=numbers.TILE, help="compute gradients in tiles of "
                        f"this size, {numbers.TILE.describe()} (bounded memory for large "
                        "images; seamless; default: no tiles)")
    parser.add_argument("--tile-margin", type=numbers.TILE_MARGIN, help="context around each "
                        f"tile, {numbers.TILE_MARGIN.describe()} (default: the target's "
                        "receptive field, which makes tiling exact)")
    parser.add_argument("--seed", type=numbers.SEED, default=0,
                        help=f"random seed (jitter), {numbers.SEED.describe()} "
                        "(default: %(default)s)")
    add_device_options(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def dream_options(args: argparse.Namespace) -> dict:
    """The keyword options of `dreamer.dream()` (the fields of its Options) given on the
    command line."""
    return {field.name: getattr(args, field.name) for field in dataclasses.fields(Options)}


def split_positionals(args: argparse.Namespace) -> tuple[str | None, int | None, float | None]:
    """LAYER, ITERATIONS and RATE of the positionals (None where not given)."""
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


def add_engine_options(parser: argparse.ArgumentParser, workers_help: str | None = None
                       ) -> None:
    """Where the job runs: this process (default) or Ray workers. The values are checked
    here, where they are parsed, so that a bad one is refused before Ray starts.
    `workers_help`: --workers' help where it also means workers in this process."""
    parser.add_argument("--ray", metavar="auto|ADDRESS", type=ray_address,
                        help="run on Ray workers: `auto` (the cluster `ray start` made on this "
                        "machine, else a new local one) or a cluster's address")
    parser.add_argument("--workers", type=numbers.WORKERS, help=workers_help or "Ray workers, "
                        f"{numbers.WORKERS.describe()} (default: as many as the cluster's "
                        "CPUs, and GPUs, allow)")
    parser.add_argument("--cpus-per-worker", type=numbers.CPUS, default=1,
                        help="CPUs (= torch threads) of each Ray worker, "
                        f"{numbers.CPUS.describe()} (default: %(default)s)")
    parser.add_argument("--gpus-per-worker", type=numbers.GPUS, default=0,
                        help="GPUs of each Ray worker (fractions share one), "
                        f"{numbers.GPUS.describe()} (default: %(default)s); workers then "
                        "dream on cuda")


def ray_address(text: str) -> str:
    """--ray: `auto` or HOST:PORT (optionally ray://HOST:PORT)."""
    if text != "auto":
        try:
            host_port(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return text


def check_engine_options(args: argparse.Namespace, local_workers: bool = False) -> None:
    """Refuse, before any work, Ray options without --ray (`local_workers`: but --workers,
    which then counts workers in this process), and --ray without Ray."""
    if args.ray is not None:
        import_ray()
        return
    given = [flag for flag, value in (("--workers", args.workers is not None
                                       and not local_workers),
                                      ("--cpus-per-worker", args.cpus_per_worker != 1),
                                      ("--gpus-per-worker", args.gpus_per_worker != 0)) if value]
    if given:
        raise ValueError(f"{given[0]} goes with --ray")


def workers_of(args: argparse.Namespace) -> Workers:
    """The workers the engine options ask for, checked."""
    check_engine_options(args)
    return Workers(args.ray, args.workers, args.cpus_per_worker, args.gpus_per_worker)


def add_motion_arguments(parser: argparse.ArgumentParser, source: str, outputs: str) -> None:
    """The arguments of zoom and video: the source, a dream's, and the outputs."""
    parser.add_argument("src", metavar=source)
    parser.add_argument("positional", nargs="*", metavar="LAYER ITERATIONS RATE",
                        help="as for a still dream")
    add_dream_options(parser)
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help=outputs)
    parser.add_argument("--frames-dir", help="lossless frames, kept to resume an interrupted "
                        "run (default: <OUT stem>_frames beside OUT)")
    parser.add_argument("--force", action="store_true", help="replace the frames of a frames "
                        "folder made with other settings")
    parser.add_argument("--overwrite", action="store_true", help=ownership.OVERWRITE_HELP)
    parser.add_argument("--max-side", type=int, metavar="N", help=MAX_SIDE_HELP)


def wrapped(description: str) -> str:
    """A description whose lines are each filled to 88 columns (for a parser with
    RawDescriptionHelpFormatter: its line breaks kept)."""
    return "\n".join(textwrap.fill(line, 88) for line in description.splitlines())


def inputs_of(args: argparse.Namespace) -> list:
    """The files a dream command reads, which no output may replace."""
    return [args.src, args.model, args.weights, args.guide, args.labels]


def progress(args: argparse.Namespace, total: int | None, initial: int) -> tqdm:
    """The progress bar of an animation's frames (none with --quiet)."""
    return tqdm(total=total, initial=initial, disable=args.quiet, unit="frame", leave=False)
