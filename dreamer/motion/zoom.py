"""The endless zoom of Google's notebook: each frame is dreamed from the previous one
zoomed, rotated and panned, in float (no 8-bit rounding between frames)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import models
from converters.errors import UsageError
from converters.images import load_rgb
from converters.network import Network
from dreamer.loops.run import check_image
from dreamer.motion.animate import all_frames, continue_frames, dream_settings, dream_step, prepared
from dreamer.motion.frames import FramesFolder
from dreamer.plan.plan import DreamPlan, make_plan


@dataclass(frozen=True)
class Motion:
    """The camera's move per frame: zoom factor about the centre (> 1: closer), the
    picture's rotation in degrees (counter-clockwise), and the view's pan in pixels
    (dx, dy; the picture moves the other way)."""

    zoom: float = 1.05
    rotate: float = 0.0
    pan: tuple[float, float] = (0.0, 0.0)

    def check(self) -> None:
        if not (self.zoom > 0 and np.isfinite(self.zoom)):
            raise UsageError(f"--zoom must be a positive factor (got {self.zoom})")
        if not all(np.isfinite([self.rotate, *self.pan])):
            raise UsageError("--rotate and --pan must be finite numbers")


def moved(rgb: np.ndarray, motion: Motion) -> np.ndarray:
    """Float RGB after one frame's move (bicubic, in float32, edges mirrored), clipped to
    0..255 (bicubic overshoots), not rounded."""
    import cv2  # optional: heavy, loaded only by zoom and video

    h, w = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), motion.rotate, motion.zoom)
    matrix[:, 2] -= motion.pan
    out = cv2.warpAffine(np.asarray(rgb, np.float32), matrix, (w, h), flags=cv2.INTER_CUBIC,
                         borderMode=cv2.BORDER_REFLECT)
    return np.clip(out, 0, 255)


def zoom_frames(rgb: np.ndarray, net: Network, plan: DreamPlan, motion: Motion, count: int,
                folder: FramesFolder | None = None,
                on_step: Callable[[], None] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(k, frame k) for the frames not yet in `folder`: frame 1 is the source dreamed,
    frame k+1 the dream of frame k moved."""
    def next_frame(k: int, previous: np.ndarray | None) -> np.ndarray:
        start = rgb.astype(np.float32) if previous is None else moved(previous, motion)
        return dream_step(start, net, plan, k, on_step)

    return continue_frames(folder, count, next_frame)


def zoom_settings(rgb: np.ndarray, net: Network, plan: DreamPlan, motion: Motion) -> dict:
    return dream_settings("zoom", rgb, net, plan, zoom=motion.zoom, rotate=motion.rotate,
                          pan=list(motion.pan))


def check_zoom(rgb: np.ndarray, net: Network, plan: DreamPlan, motion: Motion,
               count: int) -> None:
    """Refuse, before any dream, what cannot be animated."""
    if count < 1:
        raise UsageError(f"--frames must be at least 1 (got {count})")
    motion.check()
    check_image(net, plan, rgb)


def dream_zoom(image: str | Path | np.ndarray, network: Network | str, layer,
               iterations: int | None = None, rate: float | None = None, *, frames: int,
               zoom: float = 1.05, rotate: float = 0.0, pan: tuple[float, float] = (0, 0),
               folder: str | Path | None = None, force: bool = False,
               on_step: Callable[[], None] | None = None, **options) -> Iterator[np.ndarray]:
    """Yield `frames` zoom frames (H×W×3 float32 RGB, 0..255) dreamed from `image` (a path
    or H×W×3 RGB). Arguments as `dreamer.dream()`; with `folder`, every frame is saved
    there as it is made and a rerun continues where the last one stopped (frames already
    there are read back as saved, 8-bit)."""
    rgb = load_rgb(image) if isinstance(image, (str, Path)) else np.asarray(image)
    net = network if isinstance(network, Network) else models.open(network)
    plan = make_plan(net, layer, iterations, rate, **options)
    net = prepared(net, plan)
    motion = Motion(zoom, rotate, (float(pan[0]), float(pan[1])))
    check_zoom(rgb, net, plan, motion, frames)
    store = None
    if folder is not None:
        store = FramesFolder(folder, zoom_settings(rgb, net, plan, motion), force)
    return all_frames(store, zoom_frames(rgb, net, plan, motion, frames, store, on_step), frames)
