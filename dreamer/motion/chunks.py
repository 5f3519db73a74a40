"""A video dreamed in chunks (`--chunk N`), in parallel on the engine's workers. The video
is cut at its scene cuts and every N frames; each chunk is one work item that dreams its
frames in order with `video_frames`, starting WARMUP frames early (never across a cut).
A dream carried from frame to frame keeps its patterns for long (each frame's iterations
amplify what was carried), so a warm-up alone does not meet the previous chunk's dream:
the warm-up frames are cross-faded into the previous chunk's last frames instead (weights
1/(K+1) .. K/(K+1)), and the change from one frame to the next stays as small as inside a
chunk. Measured (README "A video in chunks")."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from converters.network import Network
from dreamer.image_io import quantise
from dreamer.jobs.engine import Task, Workers, open_pool, run_job, work_plan
from dreamer.motion.flow import CUT_FRACTION, consistent, flow, gray
from dreamer.motion.frames import FramesFolder, frame_name, warm_name
from dreamer.motion.media import read_frames
from dreamer.motion.video import VideoJob, video_frames
from dreamer.plan.plan import DreamPlan

# Warm-up frames of a chunk, the cross-fade's length (measured: README "A video in chunks").
WARMUP = 4
CUT_SIDE = 160  # the cut finder's frames are downscaled to this longer side
Chunk = tuple[int, int, int]  # source frames [start, end), warm-up frames before start


@dataclass(frozen=True)
class VideoChunk:
    """Source frames [start, end) dreamed from `start - warmup` on (`job`'s frames): uint8
    RGB of every frame dreamed, warm-up first (PNG-ready: the frames folder keeps 8 bits; no
    float carry is needed, as the next chunk warms up on its own)."""

    job: VideoJob  # with a path every worker can read (a shared folder on a cluster)
    warmup: int
    plan: DreamPlan
    blend: float

    @property
    def start(self) -> int:
        return self.job.first + self.warmup

    @property
    def end(self) -> int:
        return self.job.end

    def run(self, network: Network) -> list[np.ndarray]:
        frames = [quantise(frame) for _, frame in video_frames(
            self.job, network, self.plan, self.blend)]
        if len(frames) != self.end - self.start + self.warmup:
            raise ValueError(f"{self.job.path}: frames {self.start} to {self.end} are not all "
                             "there (the video changed?)")
        return frames


def small_gray(rgb: np.ndarray) -> np.ndarray:
    import cv2  # optional: heavy, loaded only by zoom and video

    h, w = rgb.shape[:2]
    scale = min(1.0, CUT_SIDE / max(h, w))
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    return gray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))


def chunk_warmup(blend: float) -> int:
    """WARMUP, or none with --blend 0 (frames that carry nothing need no warm-up)."""
    return WARMUP if blend > 0 else 0


def scan_cuts(job: VideoJob) -> tuple[list[int], int]:
    """(the source frames that start a scene, the job's first included; the job's end):
    a frame is a cut when under CUT_FRACTION of its pixels pass the dream's own flow
    consistency check, here on frames downscaled to CUT_SIDE (one fast pass, no dream)."""
    cuts, before, end = [job.first], None, job.first
    for raw in read_frames(job.path, job.first):
        if job.end is not None and raw.index >= job.end:
            break
        now = small_gray(raw.rgb)
        if before is not None and consistent(flow(now, before), flow(before, now)).mean() \
                < CUT_FRACTION:
            cuts.append(raw.index)
        before, end = now, raw.index + 1
    return cuts, end


def plan_chunks(cuts: list[int], end: int, size: int, warmup: int) -> list[Chunk]:
    """(start, end, warm-up) of every chunk: each scene cut every `size` frames; a chunk
    that starts a scene has no warm-up, another min(`warmup`, `size`): its warm-up lies
    within the chunk before."""
    chunks = []
    for scene, scene_end in zip(cuts, [*cuts[1:], end]):
        for start in range(scene, scene_end, size):
            chunks.append((start, min(start + size, scene_end),
                           min(warmup, size) if start > scene else 0))
    return chunks


def chunk_names(chunk: Chunk, first: int) -> list[str]:
    """A chunk's PNGs in the frames folder, in the order it returns and saves them."""
    start, end, warmup = chunk
    return [warm_name(s - first + 1) for s in range(start - warmup, start)] + \
        [frame_name(s - first + 1) for s in range(start, end)]


def stitched(folder: FramesFolder, chunks: list[Chunk], first: int) -> Iterator[np.ndarray]:
    """The video's frames in order (uint8 RGB): a frame that a later chunk's warm-up also
    dreamed is cross-faded into that dream, more of it the nearer that chunk's start."""
    fades = {s: (s - start + warmup + 1) / (warmup + 1)
             for start, _, warmup in chunks for s in range(start - warmup, start)}
    for s in range(chunks[0][0], chunks[-1][1]):
        k = s - first + 1
        rgb = folder.png(frame_name(k))
        if s in fades:
            fade = fades[s]
            mixed = (1 - fade) * rgb + fade * folder.png(warm_name(k)).astype(np.float32)
            rgb = np.rint(mixed).astype(np.uint8)
        yield rgb


def chunk_items(job: VideoJob, chunks: list[Chunk], plan: DreamPlan, blend: float
                ) -> Iterator[VideoChunk]:
    path = job.path.resolve()  # workers do not share this process's working folder
    for start, end, warmup in chunks:
        part = replace(job, path=path, first=start - warmup, end=end)
        yield VideoChunk(part, warmup, plan, blend)


def dream_in_chunks(workers: Workers, job: VideoJob, network: Network, plan: DreamPlan,
                    folder: FramesFolder, *, chunk: int, blend: float, device: str,
                    quiet: bool) -> list[Chunk] | None:
    """Every chunk (of `chunk` frames at most) not finished in `folder` dreamed by
    `workers` on `device`, its PNGs saved as it comes back; the chunks, or None when one
    failed (reported)."""

    cuts, end = scan_cuts(job)
    chunks = plan_chunks(cuts, end, chunk, chunk_warmup(blend))
    todo = [c for c in chunks if not all(map(folder.has, chunk_names(c, job.first)))]

    def task(item: VideoChunk) -> Task:
        def finish(frames: list[np.ndarray]) -> None:
            for name, rgb in zip(chunk_names((item.start, item.end, item.warmup), job.first),
                                 frames):
                folder.save_png(name, rgb)

        return Task(f"frames {item.start}-{item.end - 1}", lambda: item, finish)

    with open_pool(workers, network, device) as pool:
        print(f"video: {len(chunks)} chunks ({len(cuts) - 1} cuts), {len(chunks) - len(todo)} "
              f"finished before, {len(todo)} to dream {pool.describe()}", flush=True)
        items = chunk_items(job, todo, work_plan(pool, plan), blend)
        report = run_job([task(item) for item in items], pool, quiet=quiet, unit="chunk")
    for label, reason in report.failed:
        print(f"failed: {label}: {reason}", file=sys.stderr)
    return None if report.failed else chunks
