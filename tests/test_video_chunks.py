"""A video dreamed in chunks (issue 13): on Ray, three chunks stitched into a video with
the source's frames, rate and sound, whose chunk boundaries move no more than the frames
inside a chunk; in this process, chunks cut at a scene cut give the frames of the plain
run, and a rerun dreams only the chunks not finished. Clips made by the tests (PyAV)."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
from motion_clips import read_clip, write_clip
from PIL import Image
from test_motion import H, W, incremental_motion, model_args, moving_scene, video_command

from dreamer.__main__ import main

assert model_args  # the module fixture, shared


def frame_pngs(folder) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("frame*.png"))]


def test_three_chunks_on_ray(tmp_path, model_args, ray_cluster):
    step = incremental_motion(0.8, (1.5, 0.7))
    fps = Fraction(25)
    clip = write_clip(tmp_path / "moving.mp4", moving_scene(24, 1, step), fps, tone_hz=440.0)
    out = tmp_path / "dreamed.mp4"
    assert main([*video_command(clip, out, model_args), "--ray", "auto", "--workers", "2",
                 "--chunk", "8"]) == 0
    frames, rate, sound = read_clip(out)
    assert len(frames) == 24 and rate == fps and frames[0].shape == (H, W, 3)
    assert sound is not None and abs(sound - 24 / fps) <= 1 / fps
    # the move the clip was made with, in the crop's coordinates (as tests/test_motion.py)
    crop = np.array([[1, 0, -52], [0, 1, -48], [0, 0, 1]], float)
    between = (crop @ step @ np.linalg.inv(crop))[:2]
    inside = cv2.warpAffine(np.ones((H, W), np.float32), between, (W, H)) > 0.999
    inside = cv2.erode(inside.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    frames = [f.astype(np.float32) for f in frames]
    change = [np.abs(b - cv2.warpAffine(a, between, (W, H), flags=cv2.INTER_CUBIC))[inside]
              .mean() for a, b in zip(frames, frames[1:])]
    # change[t-1] is frame t's; chunks start at 8 and 16, each after 4 cross-faded frames
    faded = {t for start in (8, 16) for t in range(start - 4, start + 1)}
    boundary = [change[t - 1] for t in sorted(faded)]
    within = [change[t - 1] for t in range(1, 24) if t not in faded]
    print(f"mean |out_t - move(out_t-1)|: boundaries {np.mean(boundary):.2f} "
          f"(worst {max(boundary):.2f}), inside {np.mean(within):.2f}")
    assert np.mean(boundary) <= 1.5 * np.mean(within)
