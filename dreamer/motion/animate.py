"""What zoom and video share: one frame's dream, the settings that decide the frames, and
the loop that continues a frames folder where it stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

import models
from converters.errors import UsageError
from converters.network import Network
from dreamer.loops.run import dream_with_plan, on_device
from dreamer.motion.frames import FramesFolder
from dreamer.plan.plan import DreamPlan

FORMAT = 1  # of settings.json; a change of how frames are made raises it


def dream_step(start: np.ndarray, network: Network, plan: DreamPlan, index: int,
               on_step: Callable[[], None] | None = None) -> np.ndarray:
    """Frame `index`'s dream from its float32 start image: float32 RGB clipped to 0..255
    (not rounded). Its random seed is the plan's plus the frame index, so any frame can
    be dreamed again alone and come out the same."""
    result = dream_with_plan(np.asarray(start, np.float32), network, plan.for_frame(index),
                             raw=True, on_step=on_step)
    return np.clip(result, 0, 255).astype(np.float32)


def prepared(network: Network | str, plan: DreamPlan) -> Network:
    """The network on the plan's device (moved once, not per frame); a preset that does
    not animate refused."""
    net = network if isinstance(network, Network) else models.open(network)
    if not plan.preset.animates:
        raise UsageError(f"--preset {plan.preset.name} does not animate (it changes the "
                         "image size or starts from noise); use none or google")
    return on_device(net, plan.device)


def dream_settings(kind: str, source, net: Network, plan: DreamPlan, **motion) -> dict:
    """Everything that decides the frames of a `kind` ("zoom"/"video") animation."""
    return {"format": FORMAT, **plan.record(kind, net, source=source, **motion)}


def continue_frames(folder: FramesFolder | None, count: int | None,
                    next_frame: Callable[[int, np.ndarray | None], np.ndarray | None]
                    ) -> Iterator[tuple[int, np.ndarray]]:
    """Frames done+1..count: `next_frame(k, frame k−1 or None)` (None: no more frames),
    each saved to `folder` (when given) as it is made; yields (k, frame)."""
    done = folder.complete() if folder is not None else 0
    previous = folder.carry(done) if done else None
    k = done + 1
    while count is None or k <= count:
        previous = next_frame(k, previous)
        if previous is None:
            return
        if folder is not None:
            folder.save(k, previous)
        yield k, previous
        k += 1


def all_frames(folder: FramesFolder | None, new_frames: Iterator[tuple[int, np.ndarray]],
               count: int | None = None) -> Iterator[np.ndarray]:
    """Frames 1..count (all with None) as float32 RGB: those a folder already held read
    back from it (8-bit as saved), then the new ones."""
    done = folder.complete() if folder is not None else 0
    for k in range(1, min(done, count or done) + 1):
        yield folder.frame(k).astype(np.float32)
    for _, frame in new_frames:
        yield frame
