"""`python -m dreamer video IN LAYER ITERATIONS RATE -o OUT.mp4`: a dreamed video whose
detail follows the motion (dreamer/motion/video.py), in order or in chunks on the engine's
workers (dreamer/motion/chunks.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

import models
from dreamer.cli.options import (
    add_engine_options,
    add_motion_arguments,
    check_engine_options,
    inputs_of,
    plan_from_args,
    progress,
    workers_of,
    wrapped,
)
from dreamer.image_io import check_max_side
from dreamer.motion.animate import prepared
from dreamer.motion.chunks import WARMUP, chunk_warmup, dream_in_chunks, stitched
from dreamer.motion.frames import FramesFolder
from dreamer.motion.media import write_mp4
from dreamer.motion.outputs import check_output, frames_folder, note_odd_size, note_resume
from dreamer.motion.video import (
    BLEND,
    ITERATIONS,
    OCTAVES,
    RATE,
    frame_times,
    video_frames,
    video_job,
    video_settings,
)
from dreamer.plan import numbers

PARSER = {"prog": "python -m dreamer video",
          "description": wrapped(
              "Dream a video: each frame starts from its raw frame plus the previous frame's "
              "dreamed detail, moved by optical flow (DIS, both directions), masked where the "
              "flow fails its consistency check and faded by --blend. A frame that carries "
              "nothing (the first, after a cut, or with --blend 0) runs ITERATIONS; one that "
              "carries runs ITERATIONS × (1 − blend), at least 1.\nPer-frame defaults: LAYER "
              f"the zoo model's default layer, ITERATIONS {ITERATIONS}, RATE {RATE} (--preset "
              f"google: 1.5), --octaves {OCTAVES}, --blend {BLEND} (measured; README)."),
          "formatter_class": argparse.RawDescriptionHelpFormatter}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_motion_arguments(parser, "IN", "an .mp4 (H.264 yuv420p; the source's frame times, "
                         "size and sound)")
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


def run(args: argparse.Namespace) -> int:
    if args.ray is not None and args.chunk is None:
        raise ValueError("--ray goes with --chunk N: a video's frames are dreamed one from "
                         "the other, only chunks can run in parallel")
    check_engine_options(args)
    check_max_side(args.max_side)
    out = check_output(Path(args.output), False, inputs_of(args), args.overwrite)
    network = models.open(args.model, args.weights)
    plan = plan_from_args(network, args, motion=True, octaves=OCTAVES,
                          iterations=ITERATIONS)
    network = prepared(network, plan)
    job = video_job(args.src, network, plan, args.blend, args.start, args.end, args.max_side)
    settings = video_settings(job.path, network, plan, args.blend, job.first, job.max_side)
    if args.chunk is not None:
        settings.update(chunk=args.chunk, warmup=chunk_warmup(args.blend))
    folder = frames_folder(args.frames_dir, out, settings, args.force, args.overwrite)
    if args.chunk is not None:
        chunks = dream_in_chunks(workers_of(args), job, network, plan, folder,
                                 chunk=args.chunk, blend=args.blend, device=args.device,
                                 quiet=args.quiet)
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
    total = job.count or (job.info.frames - job.first if job.info.frames else None)
    note_resume(folder, folder.complete(), total)
    with progress(args, total, folder.complete()) as bar:
        for _ in video_frames(job, network, plan, args.blend, folder):
            bar.update()
    return min(folder.complete(), job.count or folder.complete())
