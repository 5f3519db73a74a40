"""`python -m dreamer zoom SRC LAYER ITERATIONS RATE --frames N -o OUT`: Google's endless
zoom (dreamer/motion/zoom.py), into an MP4, a GIF or a folder of PNGs."""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import models
from converters.images import load_rgb
from dreamer.cli.options import (
    add_motion_arguments,
    inputs_of,
    plan_from_args,
    progress,
    wrapped,
)
from dreamer.image_io import check_max_side, scaled_down
from dreamer.motion.animate import prepared
from dreamer.motion.outputs import (
    ANIMATION_FILES,
    check_output,
    copy_frames,
    frames_folder,
    note_resume,
)
from dreamer.motion.zoom import Motion, check_zoom, zoom_frames, zoom_settings
from dreamer.plan import numbers

PARSER = {"prog": "python -m dreamer zoom",
          "description": wrapped("Google's endless zoom: each frame dreamed from the previous "
                                 "one, zoomed, rotated and panned (in float). Defaults as for "
                                 "a still: LAYER the zoo model's default layer, ITERATIONS "
                                 "10, RATE 0.01 (--preset google: 1.5)."),
          "formatter_class": argparse.RawDescriptionHelpFormatter}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_motion_arguments(parser, "SRC",
                         "an .mp4 (H.264), a looping .gif, or a folder of PNGs")
    parser.add_argument("--frames", type=numbers.FRAMES, required=True,
                        help=f"frames to make, {numbers.FRAMES.describe()}")
    parser.add_argument("--zoom", type=numbers.ZOOM, default=1.05, help="zoom per frame, "
                        f"{numbers.ZOOM.describe()} (default: %(default)s; below 1 zooms out)")
    parser.add_argument("--rotate", type=numbers.ROTATE, default=0.0, help="degrees per frame, "
                        f"counter-clockwise, {numbers.ROTATE.describe()} "
                        "(default: %(default)s)")
    parser.add_argument("--pan", type=parse_pan, default=(0.0, 0.0), metavar="DX,DY",
                        help="the view's move per frame in pixels, each "
                        f"{numbers.PAN.describe()} (default: 0,0)")
    parser.add_argument("--fps", type=numbers.FPS, default=24.0, help="of the MP4 or GIF, "
                        f"{numbers.FPS.describe()} (default: %(default)s)")


def parse_pan(text: str) -> tuple[float, float]:
    """`--pan DX,DY` (argparse's type: it names the option in the error)."""
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"give DX,DY in pixels, e.g. 2,0 (got {text!r})")
    return numbers.PAN(parts[0]), numbers.PAN(parts[1])


def run(args: argparse.Namespace) -> int:
    check_max_side(args.max_side)
    out = check_output(Path(args.output), True, inputs_of(args), args.overwrite)
    motion = Motion(args.zoom, args.rotate, args.pan)
    network = models.open(args.model, args.weights)
    plan = plan_from_args(network, args)
    network = prepared(network, plan)
    rgb = scaled_down(load_rgb(args.src), args.max_side)
    check_zoom(rgb, network, plan, motion, args.frames)
    file = ANIMATION_FILES.get(out.suffix.lower())  # None: a folder of frames
    if file is not None:
        file.check_rate(args.fps)
    folder = frames_folder(args.frames_dir, out, zoom_settings(rgb, network, plan, motion),
                           args.force, args.overwrite)
    done = min(folder.complete(), args.frames)
    note_resume(folder, done, args.frames)
    with progress(args, args.frames, done) as bar:
        for _ in zoom_frames(rgb, network, plan, motion, args.frames, folder):
            bar.update()
    if file is not None:
        file.write(out, folder.frames(args.frames), Fraction(args.fps).limit_denominator(1001),
                   (rgb.shape[1], rgb.shape[0]))
    else:
        copy_frames(folder, args.frames, out)
    print(f"{args.frames} frames written to {out} (frames in {folder.folder})")
    return 0
