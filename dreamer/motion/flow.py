"""Optical flow between raw frames and the start image it gives the next dream.

The start image of frame t is `raw_t + blend · mask · warp(dream_{t−1} − raw_{t−1})`
(Ruder et al., "Artistic style transfer for videos", 2016): the previous frame's dreamed
detail follows the motion, decays by `blend` < 1 each frame, and is dropped where the flow
is not trusted (`consistent`). Flow is OpenCV's DIS, in both directions.
"""

from __future__ import annotations

import functools
import threading

import numpy as np

# Below this fraction of consistent pixels, frame t is not a continuation of frame t−1
# (a cut): nothing is carried over.
CUT_FRACTION = 0.5
_this_thread = threading.local()  # its DIS flow object, made once


def gray(rgb: np.ndarray) -> np.ndarray:
    """H×W×3 RGB (any range 0..255) -> H×W uint8 luma, DIS flow's input."""
    import cv2  # optional: heavy, loaded only by zoom and video

    return cv2.cvtColor(np.clip(rgb, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)


def flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """H×W×2 float32 flow (dx, dy) from gray `source` to gray `target`: source pixel x
    moves to x + flow(x)."""
    import cv2  # optional: heavy, loaded only by zoom and video

    if not hasattr(_this_thread, "dis"):  # one per thread: calc works in its buffers
        _this_thread.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return _this_thread.dis.calc(source, target, None)


@functools.lru_cache(maxsize=4)
def pixel_grid(h: int, w: int) -> np.ndarray:
    """2×H×W float32 (y, x) of every pixel, read-only: made once per frame size."""
    grid = np.mgrid[0:h, 0:w].astype(np.float32)
    grid.setflags(write=False)
    return grid


def warp(image: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """`image` resampled (bilinear, in float) at x + backward(x): with `backward` the flow
    from frame t to frame t−1, a frame t−1 image moved to frame t."""
    import cv2  # optional: heavy, loaded only by zoom and video

    grid = pixel_grid(*backward.shape[:2])
    map_x, map_y = grid[1] + backward[..., 0], grid[0] + backward[..., 1]
    return cv2.remap(np.asarray(image, np.float32), map_x, map_y, cv2.INTER_CUBIC,
                     borderMode=cv2.BORDER_REPLICATE)


def consistent(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """H×W bool: frame t's pixels whose flow to t−1 (`backward`) is trusted. Ruder et al.'s
    checks: the flow back and forth returns (|w + ŵ|² ≤ 0.01(|w|² + |ŵ|²) + 0.5, with ŵ
    the forward flow at x + w), x + w lies inside frame t−1, and x is not on a motion
    boundary (|∇u|² + |∇v|² ≤ 0.01|w|² + 0.002)."""
    h, w = backward.shape[:2]
    there = warp(forward, backward)  # ŵ(x + w(x))
    round_trip = ((backward + there) ** 2).sum(axis=2)
    length = (backward ** 2).sum(axis=2)
    ok = round_trip <= 0.01 * (length + (there ** 2).sum(axis=2)) + 0.5
    grid = pixel_grid(h, w)  # in float64 for the sum, as integer pixel indices would be
    x1 = np.add(grid[1], backward[..., 0], dtype=np.float64)
    y1 = np.add(grid[0], backward[..., 1], dtype=np.float64)
    ok &= (x1 >= 0) & (x1 <= w - 1) & (y1 >= 0) & (y1 <= h - 1)
    du = np.gradient(backward[..., 0])
    dv = np.gradient(backward[..., 1])
    edges = du[0] ** 2 + du[1] ** 2 + dv[0] ** 2 + dv[1] ** 2
    return ok & (edges <= 0.01 * length + 0.002)


def carried_detail(previous_raw: np.ndarray, previous_dream: np.ndarray,
                   raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mask · warp(dream_{t−1} − raw_{t−1}), mask): the previous frame's dreamed detail
    moved onto frame t where the flow is trusted; all zeros at a cut."""
    before, now = gray(previous_raw), gray(raw)
    backward, forward = flow(now, before), flow(before, now)
    mask = consistent(backward, forward)
    if mask.mean() < CUT_FRACTION:
        mask[:] = False
    detail = warp(np.asarray(previous_dream, np.float32) - previous_raw, backward)
    return detail * mask[..., None], mask


def start_image(previous_raw: np.ndarray | None, previous_dream: np.ndarray | None,
                raw: np.ndarray, blend: float) -> tuple[np.ndarray, bool]:
    """(the image frame t's dream starts from, float32 RGB; whether it carries anything):
    `raw` plus `blend` times the carried detail; `raw` alone for the first frame, after a
    cut, or with `blend` 0."""
    start = np.asarray(raw, np.float32)
    if previous_raw is None or previous_dream is None or blend == 0:
        return start.copy(), False
    detail, mask = carried_detail(np.asarray(previous_raw, np.float32), previous_dream, start)
    return start + np.float32(blend) * detail, bool(mask.any())
