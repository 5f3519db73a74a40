"""Dreamed video that follows the motion: each frame starts from its raw frame plus the
previous frame's dreamed detail, moved by optical flow, faded by `blend` and masked where
the flow is not trusted (dreamer/motion/flow.py); see `dream_frame`."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

import models
from converters.errors import UsageError
from converters.network import Network
from dreamer.image_io import scaled_down, scaled_size
from dreamer.loops.run import check_image
from dreamer.motion.animate import all_frames, continue_frames, dream_settings, dream_step, prepared
from dreamer.motion.flow import start_image
from dreamer.motion.frames import FramesFolder
from dreamer.motion.media import Sound, VideoInfo, probe, read_frames
from dreamer.plan.plan import DreamPlan, make_plan
from dreamer.plan.presets import preset_named

# Per-frame defaults (measured: see README "Dreams that move").
BLEND = 0.8
ITERATIONS = 10
OCTAVES = 2
RATE = 0.03  # without a preset (the google preset keeps its own)
TIME = re.compile(r"(?:(\d+):)?(\d+(?:\.\d*)?|\.\d+)s?", re.ASCII)


def dream_frame(raw: np.ndarray, previous_raw: np.ndarray | None,
                previous_dream: np.ndarray | None, network: Network, plan: DreamPlan,
                blend: float, index: int,
                on_step: Callable[[], None] | None = None) -> np.ndarray:
    """One video frame's dream (float32 RGB) from its raw frame and the previous frame's
    raw and dream (None for the first frame): the step a worker can run on its own.
    `index` is the frame's number in the source, from which its random seed derives."""
    start, carried = start_image(previous_raw, previous_dream, raw, blend)
    if carried:
        plan = replace(plan, iterations=top_up(plan.iterations, blend))
    return dream_step(start, network, plan, index, on_step)


def top_up(iterations: int, blend: float) -> int:
    """Iterations for a frame that carries the previous one's detail: that detail stands
    for `blend` of a frame's ITERATIONS, so only the rest are run (at least one). A frame
    that carries nothing (the first, after a cut, or with blend 0) runs all ITERATIONS."""
    return max(1, round(iterations * (1 - blend)))


def video_plan(net: Network, layer, iterations: int | None, rate: float | None,
               **options) -> DreamPlan:
    """The plan of every frame: the per-frame defaults ITERATIONS, the preset's frame
    RATE and OCTAVES where none is given."""
    if rate is None:
        rate = preset_named(options.get("preset")).motion_rate
    return make_plan(net, layer, iterations or ITERATIONS, rate,
                     **{**options, "octaves": options.get("octaves") or OCTAVES})


def frame_at(position: str | int | None, info: VideoInfo, name: str) -> int | None:
    """A --start/--end as a frame index: an integer is a frame (from 0); a time is
    `SECONDS`, `SECONDSs` or `M:SS`, counted at the video's average frame rate."""
    if position is None or isinstance(position, int):
        return position
    text = position.strip()
    if len(text) > 32:  # past any video; int() refuses 4300 digits
        text = ""
    if text.isascii() and text.isdigit():  # not "²", which int() refuses
        return int(text)
    match = TIME.fullmatch(text)
    if match is None:
        raise ValueError(f"--{name} {position!r}: give a frame number (12), seconds (1.5s) "
                         "or minutes:seconds (1:02.5)")
    seconds = Fraction(match[2]) + 60 * int(match[1] or 0)
    return math.ceil(seconds * info.rate)


def video_settings(path: Path, net: Network, plan: DreamPlan, blend: float, first: int,
                   max_side: int | None = None) -> dict:
    size = {"max_side": max_side} if max_side is not None else {}  # earlier folders match
    return dream_settings("video", Path(path), net, plan, blend=blend, start=first, **size)


@dataclass(frozen=True)
class VideoJob:
    """A video checked and ready to dream: frames [first, end) of `path`."""

    path: Path
    info: VideoInfo
    first: int
    end: int | None
    max_side: int | None = None  # frames scaled down to this longer side (--max-side)

    @property
    def count(self) -> int | None:
        """Frames asked for (None: to the end of the video)."""
        return None if self.end is None else self.end - self.first


def video_job(path: str | Path, net: Network, plan: DreamPlan, blend: float, start, end,
              max_side: int | None = None) -> VideoJob:
    """Refuse, before any dream, what cannot be done. With `max_side`, the frames are
    scaled down (`info` gives the size dreamed)."""
    info = probe(path)
    width, height = scaled_size(info.width, info.height, max_side)
    info = replace(info, width=width, height=height)
    if not 0 <= blend < 1:
        raise UsageError(f"--blend must be at least 0 and below 1 (got {blend}): the carried "
                         "detail must fade")
    first, last = frame_at(start, info, "start") or 0, frame_at(end, info, "end")
    if first < 0 or (last is not None and last <= first):
        raise ValueError(f"--start/--end select no frames ({first} to {last})")
    if info.frames and first >= info.frames:
        raise ValueError(f"{path}: --start {start} is past the last frame ({info.frames})")
    check_image(net, plan, np.zeros((info.height, info.width, 3), np.uint8))
    return VideoJob(Path(path), info, first, last, max_side)


def video_frames(job: VideoJob, net: Network, plan: DreamPlan, blend: float,
                 folder: FramesFolder | None = None,
                 on_step: Callable[[], None] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(k, frame k) for the frames not yet in `folder` (frame 1 is source frame `first`)."""
    done = folder.complete() if folder is not None else 0
    raws = read_frames(job.path, job.first + max(done - 1, 0))
    previous_raw = scaled_down(next(raws).rgb, job.max_side) if done and \
        (job.count is None or done < job.count) else None

    def next_frame(k: int, previous: np.ndarray | None) -> np.ndarray | None:
        nonlocal previous_raw
        raw = next(raws, None)
        if raw is None:
            return None
        rgb = scaled_down(raw.rgb, job.max_side)
        dreamed = dream_frame(rgb, previous_raw, previous, net, plan, blend, raw.index,
                              on_step)
        previous_raw = rgb
        return dreamed

    return continue_frames(folder, job.count, next_frame)


def frame_times(job: VideoJob, count: int) -> tuple[list[int], Sound]:
    """The time stamps of the `count` frames from `first` (from 0) and the span of sound
    they cover."""
    pts = []
    for frame in read_frames(job.path, job.first, rgb=False):
        pts.append(frame.pts)
        if len(pts) == count:
            break
    times = [p - pts[0] for p in pts]
    tb = job.info.time_base
    duration = times[-1] * tb + 1 / job.info.rate
    return times, Sound(job.path, job.info.origin, pts[0] * tb, duration)


def dream_video(video: str | Path, network: Network | str, layer,
                iterations: int | None = None, rate: float | None = None, *,
                blend: float = BLEND, start: str | int | None = None,
                end: str | int | None = None, folder: str | Path | None = None,
                force: bool = False, on_step: Callable[[], None] | None = None,
                **options) -> Iterator[np.ndarray]:
    """Yield the dreamed frames (H×W×3 float32 RGB, 0..255) of `video`'s frames from
    `start` to `end` (frame numbers or times, as --start/--end). Arguments as
    `dreamer.dream()`, with per-frame defaults ITERATIONS, RATE and OCTAVES; with `folder`, each
    frame is saved there and a rerun continues where the last one stopped."""
    net = network if isinstance(network, Network) else models.open(network)
    plan = video_plan(net, layer, iterations, rate, **options)
    net = prepared(net, plan)
    job = video_job(video, net, plan, blend, start, end)
    store = None
    if folder is not None:
        store = FramesFolder(folder, video_settings(job.path, net, plan, blend, job.first),
                             force)
    return all_frames(store, video_frames(job, net, plan, blend, store, on_step), job.count)
