"""Short test videos written with PyAV directly (not with dreamer's own encoder), readers
that count what a video holds, scenes that move by a known step, and the `video` command
the motion tests dream them with."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

LAYER, ITERATIONS, RATE = "inception_3b/output", 10, 0.03
H, W = 64, 96  # frames; scenes are cut from larger canvases
TOP, LEFT = 48, 52  # where a moving scene's frames are cut from its canvas


def write_clip(path: Path, frames: list[np.ndarray], fps: Fraction = Fraction(24),
               tone_hz: float | None = None, codec: str = "libx264", audio_codec: str = "aac",
               sample_rate: int = 44100, options: dict[str, str] | None = None) -> Path:
    """`frames` (uint8 RGB) as lossless H.264 4:4:4 (or `codec`) at `fps`; with `tone_hz`,
    a mono sine tone (`audio_codec` at `sample_rate`) as long as the video. `options`: the
    muxer's (e.g. its time base)."""
    with av.open(str(path), "w", options=options or {}) as container:
        video = container.add_stream(codec, rate=fps)
        video.height, video.width = frames[0].shape[:2] if frames else (48, 64)
        if codec == "libx264":  # lossless: the test sees the motion it made, not the codec's
            video.pix_fmt, video.options = "yuv444p", {"qp": "0"}
        audio = None
        if tone_hz is not None:
            audio = container.add_stream(audio_codec, rate=sample_rate)
            audio.layout = "mono"
            audio.format = next(f for f in audio.codec.audio_formats if f.name in ("flt", "fltp"))
        container.start_encoding()  # a header even without frames
        for rgb in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(video.encode())
        if audio is not None:
            total, step = round(len(frames) / fps * sample_rate), audio.codec_context.frame_size
            t = np.arange(total) / sample_rate
            wave = (0.3 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)
            for k in range(0, total, step):
                frame = av.AudioFrame.from_ndarray(wave[None, k:k + step],
                                                   format=audio.format.name, layout="mono")
                frame.sample_rate, frame.pts = sample_rate, k
                container.mux(audio.encode(frame))
            container.mux(audio.encode())
    return path


def read_clip(path: Path) -> tuple[list[np.ndarray], Fraction, float | None]:
    """(RGB frames, average fps, audio duration in seconds or None)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = Fraction(stream.average_rate)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return frames, rate, None
        samples, sample_rate = 0, container.streams.audio[0].rate
        for f in container.decode(container.streams.audio[0]):
            samples += f.samples
    return frames, rate, samples / sample_rate


def texture(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth random colour texture (uint8 RGB), detailed at several scales."""
    rng = np.random.RandomState(seed)
    out = np.zeros((h, w, 3))
    for cells in (4, 8, 16):
        coarse = rng.rand(cells + 1, cells + 1, 3)
        ys = np.linspace(0, cells, h)
        xs = np.linspace(0, cells, w)
        y0, x0 = np.minimum(ys.astype(int), cells - 1), np.minimum(xs.astype(int), cells - 1)
        fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
        c00, c01 = coarse[y0][:, x0], coarse[y0][:, x0 + 1]
        c10, c11 = coarse[y0 + 1][:, x0], coarse[y0 + 1][:, x0 + 1]
        out += (c00 * (1 - fx) + c01 * fx) * (1 - fy) + (c10 * (1 - fx) + c11 * fx) * fy
    return (out / 3 * 255).clip(0, 255).astype(np.uint8)


def incremental_motion(angle: float, shift: tuple[float, float]) -> np.ndarray:
    """3×3 affine of one frame's move: a rotation about the canvas centre, then a shift."""
    m = np.eye(3)
    m[:2] = cv2.getRotationMatrix2D((100.0, 80.0), angle, 1.0)
    m[:2, 2] += shift
    return m


def moving_scene(count: int, seed: int, step: np.ndarray) -> list[np.ndarray]:
    """`count` H×W crops of a 200×160 texture moved by `step` once more every frame."""
    canvas, frames, total = texture(160, 200, seed), [], np.eye(3)
    for _ in range(count):
        moved = cv2.warpAffine(canvas, total[:2], (200, 160), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)
        frames.append(moved[TOP:TOP + H, LEFT:LEFT + W])
        total = step @ total
    return frames


def motion_change(frames: list[np.ndarray], step: np.ndarray) -> list[float]:
    """For each frame after the first of a `moving_scene(..., step)` clip (or its dream):
    the mean |frame - the frame before moved by `step`| over the pixels that move keeps
    inside the frame (less a 2-pixel margin)."""
    crop = np.array([[1, 0, -LEFT], [0, 1, -TOP], [0, 0, 1]], float)
    between = (crop @ step @ np.linalg.inv(crop))[:2]  # the move in the frame's coordinates
    inside = cv2.warpAffine(np.ones((H, W), np.float32), between, (W, H)) > 0.999
    inside = cv2.erode(inside.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    frames = [f.astype(np.float32) for f in frames]
    return [float(np.abs(b - cv2.warpAffine(a, between, (W, H), flags=cv2.INTER_CUBIC))[inside]
                  .mean()) for a, b in zip(frames, frames[1:])]


def video_command(clip: Path, out: Path, model_args: list[str]) -> list[str]:
    """`python -m dreamer video` of `clip` to `out` at LAYER, 1 octave, with `model_args`."""
    return ["video", str(clip), LAYER, str(ITERATIONS), str(RATE), *model_args, "--octaves", "1",
            "--quiet", "-o", str(out)]
