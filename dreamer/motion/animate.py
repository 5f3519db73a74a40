"""What zoom and video share: one frame's dream, the settings that decide the frames, and
the loop that continues a frames folder where it stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from converters.network import Network
from dreamer.dream import dream, on_device, parse_targets
from dreamer.loops.gradient import Target
from dreamer.motion.frames import FramesFolder
from dreamer.networks import open_network
from dreamer.plan import record as settings

FORMAT = 1  # of settings.json; a change of how frames are made raises it


def dream_step(start: np.ndarray, network: Network, targets: list[Target],
               iterations: int | None, rate: float | None, index: int, options: dict,
               on_step: Callable[[], None] | None = None) -> np.ndarray:
    """Frame `index`'s dream from its float32 start image: float32 RGB clipped to 0..255
    (not rounded). Its random seed is the --seed plus the frame index, so any frame can
    be dreamed again alone and come out the same."""
    opts = {**options, "seed": options.get("seed", 0) + index}
    result = dream(np.asarray(start, np.float32), network, targets, iterations, rate,
                   raw=True, on_step=on_step, **opts)
    return np.clip(result, 0, 255).astype(np.float32)


def prepared(network: Network | str, layer, options: dict) -> tuple[Network, list[Target]]:
    """The network on the options' device (moved once, not per frame) and its targets."""
    net = network if isinstance(network, Network) else open_network(network)
    net = on_device(net, options.get("device") or "auto")
    if options.get("preset") in ("torch7", "deepdraw"):
        raise ValueError(f"--preset {options['preset']} does not animate (it changes the "
                         "image size or starts from noise); use none or google")
    return net, parse_targets(net, layer)


def dream_settings(kind: str, source, net: Network, targets: list[Target],
                   iterations: int | None, rate: float | None, options: dict,
                   **motion) -> dict:
    """Everything that decides the frames of a `kind` ("zoom"/"video") animation."""
    return {"format": FORMAT, **settings.dream_settings(
        kind, net, targets, iterations, rate, options, source=source, **motion)}


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
