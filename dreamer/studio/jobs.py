"""Zoom and video in the studio, as `python -m dreamer zoom` and `video` make them: the
settings are those commands' own arguments (parsed by their parsers, so the page's command
is the same work), frames are dreamed one at a time under the dreams' lock, and a video is
a job in the studio's work folder that a closed page does not stop and that resumes from
its frames folder."""

from __future__ import annotations

import argparse
import json
import queue
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

from converters.atomic import write_bytes
from converters.images import MAX_PIXELS, load_rgb
from converters.network import Network
from dreamer.cli import video as video_command
from dreamer.cli import zoom as zoom_command
from dreamer.cli.options import plan_from_args
from dreamer.image_io import check_max_side, quantise, scaled_down
from dreamer.motion.animate import prepared
from dreamer.motion.frames import frame_name
from dreamer.motion.media import VideoError, check_gif_rate, probe, read_frames, write_mp4
from dreamer.motion.outputs import ANIMATION_FILES, frames_folder
from dreamer.motion.video import (
    ITERATIONS,
    OCTAVES,
    VideoJob,
    frame_times,
    video_frames,
    video_job,
    video_settings,
)
from dreamer.motion.zoom import Motion, check_zoom, zoom_frames, zoom_settings
from dreamer.plan.plan import DreamPlan

# A module, not names: dreaming imports dreamer.cli, whose studio imports this module.
from dreamer.studio import dreaming
from dreamer.studio.cache import ModelCache
from dreamer.studio.context import Stopped, message_of, stopper

# A video upload of more frames than this is refused before any work (the CLI has no
# bound; a page's job should end within the hour at a small size).
MAX_VIDEO_FRAMES = 600
JOB_ID = re.compile(r"[0-9a-f]{12}")
JOB_FILE = "job.json"
ACTIVE = ("queued", "running")  # the states of a job not yet ended
JOBS_FOLDER = "jobs"
UNSAFE = re.compile(r"[^\w.+-]", re.ASCII)


@dataclass(frozen=True)
class ZoomMotion:
    """The zoom command's own options beyond a still's."""

    frames: int
    zoom: float
    rotate: float
    fps: float
    max_side: int | None = None


def motion_argv(command: str, src: str, settings: dreaming.Settings, *more: str) -> list[str]:
    """`command`'s arguments (no output): the still's settings, then `more`."""
    return [command, *dreaming.command_line(src, settings), *more]


def zoom_argv(src: str, settings: dreaming.Settings, motion: ZoomMotion) -> list[str]:
    return motion_argv("zoom", src, settings, "--frames", str(motion.frames),
                       "--zoom", repr(float(motion.zoom)), "--rotate", repr(float(motion.rotate)),
                       "--fps", repr(float(motion.fps)), *max_side_argv(motion.max_side))


def video_argv(src: str, settings: dreaming.Settings, blend: float,
               max_side: int | None) -> list[str]:
    return motion_argv("video", src, settings, "--blend", repr(float(blend)),
                       *max_side_argv(max_side))


def max_side_argv(max_side: int | None) -> list[str]:
    return [] if max_side is None else ["--max-side", str(max_side)]


def parsed(argv: list[str], output: str) -> argparse.Namespace:
    """`python -m dreamer zoom|video` ARGV -o OUTPUT as that command reads it; a
    ValueError for what its parser refuses."""
    module = {"zoom": zoom_command, "video": video_command}[argv[0]]
    parser = argparse.ArgumentParser(**module.PARSER)
    module.add_arguments(parser)
    parser.error = dreaming.refuse
    args = parser.parse_intermixed_args([*argv[1:], "-o", dreaming.not_an_option(output)])
    check_max_side(args.max_side)
    return args


def locked(frames: Iterator, lock: threading.Lock) -> Iterator:
    """`frames`, each one made while holding `lock` (the dreams'): dreams and other jobs
    run between frames, never beside them."""
    while True:
        with lock:
            item = next(frames, None)
        if item is None:
            return
        yield item


# --- zoom -------------------------------------------------------------------------------

def zoom_files(cache: ModelCache, upload: Path, argv: list[str], output: str, folder: Path,
               stop: threading.Event, put: Callable[[tuple], None]) -> tuple[Path, Path]:
    """The zoom of `argv` on the uploaded image, as the zoom command makes it, in a new
    folder of `folder`: ("frame", k, count, uint8 RGB) put per frame; (GIF, MP4)."""
    args = parsed(argv, output)
    loaded = cache.get(args.model)
    plan = plan_from_args(loaded.network, args)
    network = prepared(loaded.network, plan)
    rgb = scaled_down(load_rgb(upload), args.max_side)
    motion = Motion(args.zoom, args.rotate, args.pan)
    check_zoom(rgb, network, plan, motion, args.frames)
    check_gif_rate(args.fps)
    out = Path(tempfile.mkdtemp(dir=folder)) / output
    frames = frames_folder(None, out, zoom_settings(rgb, network, plan, motion), False, False)
    made = zoom_frames(rgb, network, plan, motion, args.frames, frames, stopper(stop))
    for k, frame in locked(made, cache.dreaming):
        put(("frame", k, args.frames, quantise(frame)))
    fps, size = Fraction(args.fps).limit_denominator(1001), (rgb.shape[1], rgb.shape[0])
    files = out.with_suffix(".gif"), out.with_suffix(".mp4")
    for file in files:
        ANIMATION_FILES[file.suffix].write(file, frames.frames(args.frames), fps, size)
    return files


# --- video jobs ---------------------------------------------------------------------------

def frame_count(path: Path, declared: int, limit: int) -> int:
    """The video's frames as its container declares them, else counted (up to limit + 1)."""
    if declared:
        return declared
    count = 0
    for count, _ in enumerate(read_frames(path, rgb=False), 1):
        if count > limit:
            break
    return count


@dataclass(frozen=True)
class VideoWork:
    """A video checked and ready to dream as the video command would."""

    args: argparse.Namespace
    network: Network
    plan: DreamPlan
    job: VideoJob
    count: int  # frames


def checked_video(cache: ModelCache, upload: Path, argv: list[str], output: str,
                  max_frames: int = MAX_VIDEO_FRAMES) -> VideoWork:
    """The video command's work on the uploaded video, refused before any work (with the
    video command's messages, naming the upload by its name): unreadable, over
    `max_frames` frames or MAX_PIXELS a frame, too small for the layer."""
    args = parsed(argv, output)
    loaded = cache.get(args.model)
    plan = plan_from_args(loaded.network, args, motion=True, octaves=OCTAVES,
                          iterations=ITERATIONS)
    network = prepared(loaded.network, plan)
    try:
        info = probe(upload)
        if info.width * info.height > MAX_PIXELS:  # before a frame is decoded whole
            raise VideoError(f"{upload.name}: frames of {info.width}×{info.height} pixels "
                             f"are too large (at most {MAX_PIXELS} pixels)")
        job = video_job(upload, network, plan, args.blend, None, None, args.max_side)
        count = frame_count(upload, info.frames, max_frames)
    except VideoError as e:
        raise VideoError(str(e).replace(str(upload), upload.name)) from None
    if count > max_frames:
        raise VideoError(f"{upload.name}: over {max_frames} frames, more than the studio "
                         "dreams in one job (cut it shorter, or use `python -m dreamer video "
                         "--start/--end`)")
    return VideoWork(args, network, plan, job, count)


def safe_name(name: str) -> str:
    """An upload's name as a file name of ours: no folders, no leading dot, plain
    characters."""
    return UNSAFE.sub("_", Path(name).name).lstrip(".") or "video.mp4"


def dream_output(src: str) -> str:
    """The MP4 a job writes for the video `src`."""
    return f"{Path(src).stem}_dream.mp4"


@dataclass(frozen=True)
class Progress:
    """Where a job stands: its state ("queued", "running", "done", "stopped" or an
    "error: ..." line) and frames done of all."""

    state: str
    done: int
    total: int


@dataclass(frozen=True)
class JobRow:
    id: str
    name: str
    progress: Progress
    created: float


class Jobs:
    """The studio's video jobs, each a folder of `root` named by an id made here: the
    uploaded video, job.json (its command), the frames folder and, when done, the MP4.
    One worker thread runs them in order, each frame under the dreams' lock."""

    def __init__(self, cache: ModelCache, folder: Path) -> None:
        self.cache, self.root = cache, folder / JOBS_FOLDER
        self._progress: dict[str, Progress] = {}
        self._stops: dict[str, threading.Event] = {}
        self._queue: queue.Queue[str] = queue.Queue()
        self._guard = threading.Lock()
        self._worker: threading.Thread | None = None

    def submit(self, upload: Path, settings: dreaming.Settings, blend: float,
               max_side: int | None) -> str:
        """A new job for the uploaded video (checked first: nothing is written for a
        video refused), queued; its id."""
        name = safe_name(upload.name)
        argv = video_argv(name, settings, blend, max_side)
        count = checked_video(self.cache, upload, argv, dream_output(name)).count
        job_id = secrets.token_hex(6)
        folder = self.root / job_id
        folder.mkdir(parents=True)
        shutil.copyfile(upload, folder / name)
        record = {"name": name, "argv": argv, "output": dream_output(name), "frames": count,
                  "created": time.time()}
        write_bytes(folder / JOB_FILE, json.dumps(record, indent=1).encode())  # whole or none
        self._enqueue(job_id, Progress("queued", 0, count))
        return job_id

    def folder_of(self, job_id: str | None) -> Path:
        """The folder of the job `job_id` (as the page sends it: checked to be one of ours)."""
        if not job_id or not JOB_ID.fullmatch(job_id) or \
                not (self.root / job_id / JOB_FILE).is_file():
            raise ValueError("choose a job from the list")
        return self.root / job_id

    def record(self, job_id: str) -> dict:
        return json.loads((self.folder_of(job_id) / JOB_FILE).read_text())

    def output(self, job_id: str) -> Path | None:
        """The job's MP4, once written."""
        out = self.folder_of(job_id) / self.record(job_id)["output"]
        return out if out.is_file() else None

    def progress(self, job_id: str) -> Progress:
        """The job's state: this studio's if it ran here, else read from its folder."""
        with self._guard:
            known = self._progress.get(job_id)
        if known is not None:
            return known
        record = self.record(job_id)
        if self.output(job_id) is not None:
            return Progress("done", record["frames"], record["frames"])
        return Progress("stopped", self.frames_on_disk(job_id), record["frames"])

    def frames_on_disk(self, job_id: str) -> int:
        record = self.record(job_id)
        frames = self.folder_of(job_id) / f"{Path(record['output']).stem}_frames"
        done = 0
        while (frames / frame_name(done + 1)).is_file():
            done += 1
        return done

    def rows(self) -> list[JobRow]:
        """Every job of the work folder, the newest first."""
        ids = [p.name for p in self.root.iterdir() if JOB_ID.fullmatch(p.name)
               and (p / JOB_FILE).is_file()] if self.root.is_dir() else []
        rows = []
        for job_id in ids:
            record = self.record(job_id)
            rows.append(JobRow(job_id, record["name"], self.progress(job_id), record["created"]))
        return sorted(rows, key=lambda row: row.created, reverse=True)

    def stop(self, job_id: str) -> None:
        """Stop the job at its next step (a queued one does not start)."""
        self.folder_of(job_id)
        with self._guard:
            stop = self._stops.get(job_id)
        if stop is not None:
            stop.set()

    def resume(self, job_id: str) -> None:
        """Queue a stopped or failed job again: it continues from its frames folder."""
        progress = self.progress(job_id)
        if progress.state in (*ACTIVE, "done"):
            raise ValueError(f"the job is {progress.state}")
        self._enqueue(job_id, replace(progress, state="queued"))

    def _enqueue(self, job_id: str, progress: Progress) -> None:
        with self._guard:
            self._progress[job_id] = progress
            self._stops[job_id] = threading.Event()
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="studio-jobs",
                                                daemon=True)
                self._worker.start()
        self._queue.put(job_id)

    def _set(self, job_id: str, **changes) -> None:
        with self._guard:
            self._progress[job_id] = replace(self._progress[job_id], **changes)

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            with self._guard:
                stop = self._stops[job_id]
            try:
                if stop.is_set():
                    raise Stopped
                self._set(job_id, state="running")
                self._run(job_id, stop)
                self._set(job_id, state="done")
            except Exception as e:  # shown in the page as the job's state
                self._set(job_id, state=message_of(e))

    def _run(self, job_id: str, stop: threading.Event) -> None:
        """The video command's work (in order, no chunks) on the job's folder."""
        folder, record = self.folder_of(job_id), self.record(job_id)
        source, out = folder / record["name"], folder / record["output"]
        work = checked_video(self.cache, source, record["argv"], record["output"])
        args, network, plan, job = work.args, work.network, work.plan, work.job
        settings = video_settings(job.path, network, plan, args.blend, job.first, job.max_side)
        frames = frames_folder(None, out, settings, False, False)
        self._set(job_id, done=frames.complete())
        made = video_frames(job, network, plan, args.blend, frames, stopper(stop))
        for k, _ in locked(made, self.cache.dreaming):
            self._set(job_id, done=k)
        count = frames.complete()
        times, sound = frame_times(job, count)
        write_mp4(out, frames.frames(count), job.info.rate, (times, job.info.time_base),
                  sound if job.info.audio else None)

