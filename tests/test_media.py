"""MP4 and GIF output of any length and from any source time base (issue 19, items 3 and
5): 120-frame MP4s and GIFs read back whole and on time; videos from MKV, WebM and MOV
sources keep their frame times and sound; a GIF is written as its frames come, so a
kill leaves the old file and a hidden partial temporary. Small frames, the tiny net."""

from __future__ import annotations

import subprocess
import sys
import weakref
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import ROOT
from motion_clips import read_clip, texture, write_clip
from PIL import Image

from converters.atomic import PREFIX
from dreamer.__main__ import main
from dreamer.motion.media import AUDIO_FRAME, write_gif, write_mp4

H, W, COUNT = 48, 64, 120


def numbered_frames(count: int = COUNT) -> list[np.ndarray]:
    """A texture panned by 2 pixels a frame, so that each frame tells its number."""
    canvas = texture(H, W + 2 * COUNT, 3)
    return [canvas[:, 2 * k:2 * k + W] for k in range(count)]


def frame_numbers(frames: list[np.ndarray]) -> list[int]:
    """Each frame's number: that of the nearest of `numbered_frames`."""
    sources = np.stack(numbered_frames()).astype(np.float32)
    return [int(np.abs(sources - f[:H, :W]).mean(axis=(1, 2, 3)).argmin()) for f in frames]


def test_an_mp4_of_120_frames_is_whole_and_on_time(tmp_path):
    out = tmp_path / "z.mp4"  # failed past about 45 frames: "Invalid argument"
    write_mp4(out, iter(numbered_frames()), Fraction(24))
    frames, rate, _ = read_clip(out)
    assert len(frames) == COUNT and frames[0].shape == (H, W, 3)
    assert rate == 24
    assert frame_numbers(frames) == list(range(COUNT))
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        times = [float(f.pts * f.time_base) for f in container.decode(stream)]
    assert times == pytest.approx([k / 24 for k in range(COUNT)], abs=1e-4)


def test_an_mp4_keeps_frame_times_of_another_time_base(tmp_path):
    """Matroska's millisecond clock: 25 fps as 0, 40, 80 ... ms."""
    out = tmp_path / "v.mp4"
    times = [40 * k for k in range(COUNT)]
    write_mp4(out, iter(numbered_frames()), Fraction(25), (times, Fraction(1, 1000)))
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        read = [float(f.pts * f.time_base) for f in container.decode(stream)]
    assert read == pytest.approx([t / 1000 for t in times], abs=1e-4)


def test_a_gif_of_120_frames_is_whole_and_on_time(tmp_path):
    out = tmp_path / "z.gif"
    write_gif(out, iter(numbered_frames()), Fraction(24))
    with Image.open(out) as gif:
        assert gif.n_frames == COUNT and gif.size == (W, H) and gif.info["loop"] == 0
        frames, delays = [], []
        for k in range(COUNT):
            gif.seek(k)
            frames.append(np.asarray(gif.convert("RGB")))
            delays.append(gif.info["duration"])
    assert frame_numbers(frames) == list(range(COUNT))
    # 24 fps in hundredths of a second: 4 or 5 each, frame k starting at k / 24 s
    assert set(delays) == {40, 50} and sum(delays) == 5000
    assert all(abs(sum(delays[:k]) - 1000 * k / 24) <= 5 for k in range(COUNT))


def test_a_gif_takes_its_frames_as_it_writes_them(tmp_path):
    """Each frame is on disk soon after it is made and then let go: memory does not grow
    with the frame count (before, every frame was held until the file was written)."""
    out = tmp_path / "z.gif"
    made: list[weakref.ref] = []
    written, most_alive = [], 0

    def frames():
        nonlocal most_alive
        rng = np.random.default_rng(0)
        for _ in range(COUNT):  # noise: every frame adds kilobytes to the file
            temporaries = list(tmp_path.glob(f"{PREFIX}tmp-*"))
            written.append(temporaries[0].stat().st_size if temporaries else 0)
            frame = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
            made.append(weakref.ref(frame))
            most_alive = max(most_alive, sum(ref() is not None for ref in made))
            yield frame

    write_gif(out, frames(), Fraction(24))
    size = out.stat().st_size
    # the file's buffer holds a frame or two; before, nothing was written until the last
    assert written[-1] > 0.9 * size
    assert all(a < b for a, b in zip(written[10::10], written[20::10]))
    assert most_alive <= 2


KILL_MIDWAY = """
import os, signal, sys
from fractions import Fraction
import numpy as np
from dreamer.motion.media import write_gif

def frames():
    for k in range(120):
        if k == 60:
            os.kill(os.getpid(), signal.SIGKILL)
        yield np.full((48, 64, 3), 2 * k, np.uint8)

write_gif(sys.argv[1], frames(), Fraction(24))
"""


def test_a_gif_writer_killed_midway_leaves_the_old_file(tmp_path):
    out = tmp_path / "z.gif"
    write_gif(out, iter(numbered_frames(3)), Fraction(24))
    old = out.read_bytes()
    result = subprocess.run([sys.executable, "-c", KILL_MIDWAY, str(out)], cwd=ROOT)
    assert result.returncode == -9
    assert out.read_bytes() == old
    temporaries = list(tmp_path.glob(f"{PREFIX}tmp-*"))
    assert len(temporaries) == 1 and temporaries[0].stat().st_size > 0  # streamed, hidden
    write_gif(out, iter(numbered_frames(4)), Fraction(24))  # and the next write cleans up
    assert list(tmp_path.glob(f"{PREFIX}*")) == []
    with Image.open(out) as gif:
        assert gif.n_frames == 4


def test_gif_rates_out_of_range_are_refused_before_writing(tmp_path):
    out = tmp_path / "z.gif"
    for fps in (Fraction(60), Fraction(1, 1000)):
        with pytest.raises(ValueError, match="a GIF shows 0.01 to 50 frames a second"):
            write_gif(out, iter(numbered_frames(2)), fps)
    assert list(tmp_path.iterdir()) == []


# Sources of other containers and time bases: (suffix, video codec, audio codec, sample
# rate, fps, muxer options, the time base they give).
SOURCES = {
    "mkv": ("libx264", "aac", 44100, Fraction(25), {}, Fraction(1, 1000)),
    "webm": ("libvpx-vp9", "libopus", 48000, Fraction(30), {}, Fraction(1, 1000)),
    "mov": ("libx264", "aac", 22050, Fraction(24), {"video_track_timescale": "600"},
            Fraction(1, 600)),
}
SOURCE_FRAMES, TONE_HZ = 60, 440.0


def source_frames() -> list[np.ndarray]:
    """A texture panned by 1 pixel a frame."""
    canvas = texture(H, W + SOURCE_FRAMES, 4)
    return [canvas[:, k:k + W] for k in range(SOURCE_FRAMES)]


def frame_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [float(f.pts * f.time_base) for f in container.decode(stream)]


def tone_of(path: Path) -> float:
    """The output's loudest frequency, in Hz."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = np.concatenate([f.to_ndarray()[0] for f in container.decode(stream)])
        rate = stream.rate
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.argmax(spectrum) * rate / len(samples))


@pytest.mark.parametrize("suffix", SOURCES)
def test_videos_from_other_containers_keep_frame_times_and_sound(tmp_path, suffix,
                                                                 tiny_cli_args):
    codec, audio, sample_rate, fps, options, time_base = SOURCES[suffix]
    source = write_clip(tmp_path / f"src.{suffix}", source_frames(), fps, TONE_HZ, codec,
                        audio, sample_rate, options)
    with av.open(str(source)) as container:
        assert container.streams.video[0].time_base == time_base  # not MP4's own
    out = tmp_path / "out.mp4"
    assert main(["video", str(source), "conv1", "1", "0.03", *tiny_cli_args, "--octaves", "1",
                 "--quiet", "-o", str(out)]) == 0
    frames, rate, sound = read_clip(out)
    assert len(frames) == SOURCE_FRAMES and frames[0].shape == (H, W, 3)
    assert rate == pytest.approx(float(fps), rel=1e-3)
    assert frame_times(out) == pytest.approx(frame_times(source), abs=1e-3)
    # as long as the video, but for the last AAC frame's padding (measured: 5-8 ms)
    assert sound == pytest.approx(SOURCE_FRAMES / fps, abs=AUDIO_FRAME / sample_rate)
    assert tone_of(out) == pytest.approx(TONE_HZ, abs=2)


def test_zoom_of_120_frames_to_mp4_and_gif(tmp_path, tiny_cli_args, capsys):
    source = tmp_path / "src.png"
    Image.fromarray(texture(H, W, 5)).save(source)
    common = ["zoom", str(source), "conv1", "1", "0.03", *tiny_cli_args, "--octaves", "1",
              "--frames", str(COUNT), "--frames-dir", str(tmp_path / "frames"), "--quiet"]
    assert main([*common, "--fps", "60", "-o", str(tmp_path / "fast.gif")]) == 2
    assert "--fps 60: a GIF shows" in capsys.readouterr().err
    assert not (tmp_path / "frames").exists()  # refused before any dream
    for name in ("zoom.mp4", "zoom.gif"):  # the second only encodes the frames made
        assert main([*common, "-o", str(tmp_path / name)]) == 0
    frames, rate, _ = read_clip(tmp_path / "zoom.mp4")
    assert len(frames) == COUNT and rate == 24
    with Image.open(tmp_path / "zoom.gif") as gif:
        assert gif.n_frames == COUNT and gif.size == (W, H)
