"""`python -m dreamer zoom SRC LAYER ITERATIONS RATE --frames N -o OUT` and
`python -m dreamer video IN LAYER ITERATIONS RATE -o OUT.mp4`."""

from __future__ import annotations

import argparse
import shutil
import sys
import textwrap
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

from converters import ownership
from converters.atomic import OutputError, is_temporary, replacing_folder
from dreamer.image_io import MAX_SIDE_HELP, check_max_side, scaled_down
from dreamer.motion.frames import FRAME, FramesFolder, frame_name
from dreamer.plan import numbers as numbers

OUTPUTS = (".mp4", ".gif")


def motion_parser(prog: str, source: str, description: str,
                  outputs: str) -> argparse.ArgumentParser:
    from dreamer.__main__ import add_dream_options

    wrapped = "\n".join(textwrap.fill(line, 88) for line in description.splitlines())
    parser = argparse.ArgumentParser(prog=f"python -m dreamer {prog}", description=wrapped,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
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
    return parser


def check_output(out: Path, folder_allowed: bool, inputs: Iterable = (),
                 overwrite: bool = False) -> Path:
    """Refuse, before any work, an OUT that cannot be written or is not ours to replace
    (the output policy of converters/ownership.py)."""
    if not out.parent.is_dir():
        raise OutputError(f"{out}: the folder {out.parent} does not exist")
    if out.suffix.lower() in OUTPUTS and (folder_allowed or out.suffix.lower() == ".mp4"):
        return ownership.check_output(out, inputs, overwrite)
    if not folder_allowed:
        raise OutputError(f"{out}: the output must end in .mp4")
    if out.suffix or (out.exists() and not out.is_dir()):
        raise OutputError(f"{out}: the output must end in .mp4 or .gif, or be a folder")
    ownership.check_not_input(out, inputs)
    names = sorted(p.name for p in out.iterdir() if not is_temporary(p.name)) \
        if out.is_dir() else []
    if names and not overwrite:
        foreign = [n for n in names if not FRAME.fullmatch(n) and n != ownership.RECORD_FILE]
        if foreign or not ownership.has_record(out):
            what = repr(foreign[0]) if foreign else f"no {ownership.RECORD_FILE} of ours"
            raise OutputError(f"{out}: holds {what}: not a frames folder dreamzoo wrote; give "
                              "a new or empty folder (or --overwrite)")
    ownership.check_writable_folder(out)  # its new version is made beside it
    return out


def frames_folder(args: argparse.Namespace, out: Path, settings: dict) -> FramesFolder:
    folder = Path(args.frames_dir) if args.frames_dir else out.parent / f"{out.stem}_frames"
    ownership.check_writable_folder(folder / "settings.json")
    return FramesFolder(folder, settings, args.force, args.overwrite)


def copy_frames(folder: FramesFolder, count: int, out: Path) -> None:
    """OUT as a folder: the frames' PNGs and our record, all appearing at once."""
    with replacing_folder(out) as staging:
        for k in range(1, count + 1):
            shutil.copyfile(folder.folder / frame_name(k), staging / frame_name(k))
        ownership.write_record(staging, frames=count)


def inputs_of(args: argparse.Namespace) -> list:
    """The files a dream command reads, which no output may replace."""
    return [args.src, args.model, args.weights, args.guide, args.labels]


def note_odd_size(width: int, height: int) -> None:
    if width % 2 or height % 2:
        print(f"note: H.264 yuv420p needs even sides: the {width}×{height} frames are padded "
              "to even by repeating their last column/row", file=sys.stderr)


def note_resume(folder: FramesFolder, done: int, total: int | None) -> None:
    """Say so when `folder` already holds `done` frames of an earlier run."""
    if not done:
        return
    if total is not None and done >= total:
        print(f"all {total} frames are in {folder.folder} from an earlier run: encoding only",
              file=sys.stderr)
        return
    of = f" of {total}" if total is not None else ""
    print(f"resuming at frame {done + 1}{of} (frames 1-{done} are in {folder.folder} from "
          "an earlier run)", file=sys.stderr)


def progress(args: argparse.Namespace, total: int | None, initial: int):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=args.quiet, unit="frame", leave=False)


def zoom_main(argv: list[str]) -> int:
    from converters.images import load_rgb
    from dreamer.__main__ import plan_from_args
    from dreamer.motion.animate import prepared
    from dreamer.motion.media import check_gif_rate, write_gif, write_mp4
    from dreamer.motion.zoom import Motion, check_zoom, zoom_frames, zoom_settings
    from dreamer.networks import open_network

    parser = motion_parser("zoom", "SRC", "Google's endless zoom: each frame dreamed from the "
                           "previous one, zoomed, rotated and panned (in float). Defaults as "
                           "for a still: LAYER the zoo model's default layer, ITERATIONS 10, "
                           "RATE 0.01 (--preset google: 1.5).",
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
    args = parser.parse_intermixed_args(argv)
    check_max_side(args.max_side)
    out = check_output(Path(args.output), True, inputs_of(args), args.overwrite)
    motion = Motion(args.zoom, args.rotate, args.pan)
    network = open_network(args.model, args.weights)
    plan = plan_from_args(network, args)
    network = prepared(network, plan)
    rgb = scaled_down(load_rgb(args.src), args.max_side)
    check_zoom(rgb, network, plan, motion, args.frames)
    if out.suffix.lower() == ".gif":
        check_gif_rate(args.fps)
    folder = frames_folder(args, out, zoom_settings(rgb, network, plan, motion))
    done = min(folder.complete(), args.frames)
    note_resume(folder, done, args.frames)
    with progress(args, args.frames, done) as bar:
        for _ in zoom_frames(rgb, network, plan, motion, args.frames, folder):
            bar.update()
    fps = Fraction(args.fps).limit_denominator(1001)
    if out.suffix.lower() == ".mp4":
        note_odd_size(rgb.shape[1], rgb.shape[0])
        write_mp4(out, folder.frames(args.frames), fps)
    elif out.suffix.lower() == ".gif":
        write_gif(out, folder.frames(args.frames), fps)
    else:
        copy_frames(folder, args.frames, out)
    print(f"{args.frames} frames written to {out} (frames in {folder.folder})")
    return 0


def parse_pan(text: str) -> tuple[float, float]:
    """`--pan DX,DY` (argparse's type: it names the option in the error)."""
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"give DX,DY in pixels, e.g. 2,0 (got {text!r})")
    return numbers.PAN(parts[0]), numbers.PAN(parts[1])


def video_main(argv: list[str]) -> int:
    from dreamer.__main__ import plan_from_args
    from dreamer.jobs.engine import add_engine_options, check_engine_options
    from dreamer.motion.animate import prepared
    from dreamer.motion.chunks import WARMUP, chunk_warmup, dream_in_chunks, stitched
    from dreamer.motion.media import write_mp4
    from dreamer.motion.video import (
        BLEND,
        ITERATIONS,
        OCTAVES,
        RATE,
        frame_times,
        video_job,
        video_settings,
    )
    from dreamer.networks import open_network

    parser = motion_parser(
        "video", "IN", "Dream a video: each frame starts from its raw frame plus the previous "
        "frame's dreamed detail, moved by optical flow (DIS, both directions), masked where "
        "the flow fails its consistency check and faded by --blend. A frame that carries "
        "nothing (the first, after a cut, or with --blend 0) runs ITERATIONS; one that "
        "carries runs ITERATIONS × (1 − blend), at least 1.\nPer-frame defaults: LAYER the "
        f"zoo model's default layer, ITERATIONS {ITERATIONS}, RATE {RATE} (--preset google: "
        f"1.5), --octaves {OCTAVES}, --blend {BLEND} (measured; README).",
        "an .mp4 (H.264 yuv420p; the source's frame times, size and sound)")
    parser.add_argument("--blend", type=numbers.BLEND, default=BLEND, help="share of the "
                        f"previous frame's detail carried, {numbers.BLEND.describe()} "
                        "(default: %(default)s); 0 dreams every frame on its own")
    parser.add_argument("--start", help="first frame: a frame number (from 0), seconds "
                        "(1.5s) or M:SS; default the first")
    parser.add_argument("--end", help="end (excluded), as --start; default the last frame")
    parser.add_argument("--chunk", type=numbers.CHUNK, metavar="N",
                        help="dream in chunks, in parallel with --ray: cut at scene cuts "
                        "and every N frames; a chunk that "
                        f"does not start a scene dreams {WARMUP} frames early, cross-faded "
                        "into the chunk before (measured: the change from frame to frame "
                        "there is 0.99-1.03x the change inside a chunk, 2.4-2.9x with no "
                        "fade; README)")
    add_engine_options(parser)
    args = parser.parse_intermixed_args(argv)
    if args.ray is not None and args.chunk is None:
        raise ValueError("--ray goes with --chunk N: a video's frames are dreamed one from "
                         "the other, only chunks can run in parallel")
    check_engine_options(args)
    check_max_side(args.max_side)
    out = check_output(Path(args.output), False, inputs_of(args), args.overwrite)
    network = open_network(args.model, args.weights)
    plan = plan_from_args(network, args, motion=True, octaves=OCTAVES,
                          iterations=ITERATIONS)
    network = prepared(network, plan)
    job = video_job(args.src, network, plan, args.blend, args.start, args.end, args.max_side)
    settings = video_settings(job.path, network, plan, args.blend, job.first, job.max_side)
    if args.chunk is not None:
        settings.update(chunk=args.chunk, warmup=chunk_warmup(args.blend))
    folder = frames_folder(args, out, settings)
    if args.chunk is not None:
        chunks = dream_in_chunks(args, job, network, plan, folder)
        if chunks is None:
            return 1
        count = chunks[-1][1] - job.first if chunks else 0
        frames = stitched(folder, chunks, job.first)
    else:
        count = dream_in_order(args, job, network, plan, folder)
        frames = folder.frames(count)
    if count == 0:
        raise ValueError(f"{args.src}: no frames from --start {args.start}")
    times, sound = frame_times(job, count)
    note_odd_size(job.info.width, job.info.height)
    write_mp4(out, frames, job.info.rate, (times, job.info.time_base),
              sound if job.info.audio else None)
    print(f"{count} frames written to {out} (frames in {folder.folder})")
    return 0


def dream_in_order(args: argparse.Namespace, job, network, plan, folder: FramesFolder) -> int:
    """The frames not yet in `folder`, each from the one before; the frame count."""
    from dreamer.motion.video import video_frames

    total = job.count or (job.info.frames - job.first if job.info.frames else None)
    note_resume(folder, folder.complete(), total)
    with progress(args, total, folder.complete()) as bar:
        for _ in video_frames(job, network, plan, args.blend, folder):
            bar.update()
    return min(folder.complete(), job.count or folder.complete())
