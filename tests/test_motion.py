"""Dreams that move (issue 12): video that follows the motion and keeps its sound, the
endless zoom, and runs that resume exactly. The clips are made here with PyAV; the motion
each test checks is the one it made, never one the code under test estimated. Real
GoogLeNet, 1 octave, small frames."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
import time
from fractions import Fraction

import numpy as np
import pytest
from conftest import ROOT
from motion_clips import (
    ITERATIONS,
    LAYER,
    RATE,
    H,
    W,
    incremental_motion,
    motion_change,
    moving_scene,
    read_clip,
    texture,
    video_command,
    write_clip,
)
from PIL import Image

import dreamer
from converters.ownership import RECORD_FILE
from dreamer.__main__ import main
from dreamer.motion.media import VideoInfo
from dreamer.motion.video import frame_at

SETTINGS = {"octaves": 1}


def test_dreamed_detail_follows_the_motion(tmp_path, googlenet):
    step = incremental_motion(0.8, (1.5, 0.7))
    clip = write_clip(tmp_path / "moving.mp4", moving_scene(24, 1, step))
    runs = {blend: list(dreamer.dream_video(clip, googlenet, LAYER, ITERATIONS, RATE,
                                            blend=blend, **SETTINGS)) for blend in (0.8, 0.0)}
    # measured against the move the clip was made with
    change = {blend: float(np.mean(motion_change(frames, step))) for blend, frames in runs.items()}
    print(f"mean |out_t - move(out_t-1)|: blend 0.8 {change[0.8]:.2f}, blend 0 {change[0.0]:.2f}")
    assert change[0.8] <= 0.5 * change[0.0]


def test_a_static_scene_does_not_drift(tmp_path, googlenet):
    clip = write_clip(tmp_path / "still.mp4", [texture(H, W, 2)] * 30)
    frames = list(dreamer.dream_video(clip, googlenet, LAYER, ITERATIONS, RATE, **SETTINGS))
    assert len(frames) == 30
    first, last = frames[0].mean(axis=2), frames[-1].mean(axis=2)
    assert abs(last.mean() / first.mean() - 1) < 0.02  # brightness
    assert abs(last.std() / first.std() - 1) < 0.02  # contrast


def test_nothing_crosses_a_cut(tmp_path, googlenet):
    step = incremental_motion(0.5, (1.0, 0.5))
    scenes = moving_scene(3, 3, step) + moving_scene(3, 4, step)
    clip = write_clip(tmp_path / "cut.mp4", scenes)
    carried = list(dreamer.dream_video(clip, googlenet, LAYER, ITERATIONS, RATE, end=4,
                                       **SETTINGS))
    # frames 2 and 3 dreamed on their own (the seed follows the frame number)
    alone = list(dreamer.dream_video(clip, googlenet, LAYER, ITERATIONS, RATE, blend=0,
                                     start=2, end=4, **SETTINGS))
    assert np.abs(carried[2] - alone[0]).mean() > 2.0  # before the cut: detail carried
    np.testing.assert_allclose(carried[3], alone[1], atol=1e-3)  # after: none


def test_sound_rate_and_frame_count_are_kept(tmp_path, googlenet_cli_args):
    fps = Fraction(30000, 1001)
    clip = write_clip(tmp_path / "tone.mp4", [texture(48, 64, s) for s in range(10)], fps,
                      tone_hz=440.0)
    out = tmp_path / "dreamed.mp4"
    assert main(video_command(clip, out, googlenet_cli_args)) == 0
    frames, rate, sound = read_clip(out)
    assert len(frames) == 10 and rate == fps and frames[0].shape == (48, 64, 3)
    assert sound is not None and abs(sound - 10 / fps) <= 1 / fps


def test_a_killed_run_resumes_to_the_same_output(tmp_path, googlenet_cli_args):
    step = incremental_motion(0.5, (1.0, 0.5))
    clip = write_clip(tmp_path / "clip.mp4", moving_scene(12, 5, step))
    killed = tmp_path / "killed.mp4"
    command = [sys.executable, "-m", "dreamer", *video_command(clip, killed, googlenet_cli_args)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    frames = tmp_path / "killed_frames"
    deadline = time.monotonic() + 60
    while not (frames / "frame000003.png").exists() and process.poll() is None:
        assert time.monotonic() < deadline, "no frame within 60 s"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = sorted(p.name for p in frames.glob("frame*.png"))
    assert 3 <= len(done) < 12 and not killed.exists()
    # The reruns run in processes of their own too, as the killed one did: a process's thread
    # count and allocator state are the same then, whatever tests ran before in this one.
    assert subprocess.run(command, cwd=ROOT).returncode == 0  # the same command again
    whole = tmp_path / "whole.mp4"
    whole_command = [sys.executable, "-m", "dreamer", *video_command(clip, whole,
                                                                     googlenet_cli_args)]
    assert subprocess.run(whole_command, cwd=ROOT).returncode == 0
    names = sorted(p.name for p in frames.glob("frame*.png"))
    assert len(names) == 12
    for name in names:
        assert (frames / name).read_bytes() == (tmp_path / "whole_frames" / name).read_bytes()
    assert killed.read_bytes() == whole.read_bytes()


def unzoom(rgb: np.ndarray, factor: float) -> np.ndarray:
    """`rgb` shrunk by `factor` (PIL's bicubic): the view before a zoom by `factor`."""
    h, w = rgb.shape[:2]
    size = (round(w / factor), round(h / factor))
    return np.asarray(Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).resize(
        size, Image.BICUBIC)).astype(float)


def centre(rgb: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    top, left = (rgb.shape[0] - shape[0]) // 2, (rgb.shape[1] - shape[1]) // 2
    return rgb[top:top + shape[0], left:left + shape[1]].astype(float)


def test_zoom_frames_follow_the_zoom_and_encode(tmp_path, googlenet, googlenet_cli_args):
    source = tmp_path / "src.png"
    Image.fromarray(texture(73, 97, 6)).save(source)  # odd sides: the MP4 pads them
    folder = tmp_path / "frames"
    frames = list(dreamer.dream_zoom(source, googlenet, LAYER, ITERATIONS, RATE, frames=6,
                                     zoom=1.1, folder=folder, **SETTINGS))
    assert len(frames) == 6
    for k in range(5):
        back = unzoom(frames[k + 1], 1.1)
        same = np.abs(back - centre(frames[k], back.shape[:2]))[4:-4, 4:-4].mean()
        other = np.abs(back - centre(frames[k][::-1, ::-1], back.shape[:2]))[4:-4, 4:-4].mean()
        assert same < 0.5 * other, (k, same, other)
    common = ["zoom", str(source), LAYER, str(ITERATIONS), str(RATE), *googlenet_cli_args,
              "--octaves", "1", "--frames", "6", "--zoom", "1.1", "--frames-dir", str(folder),
              "--quiet"]
    for name in ("zoom.gif", "zoom.mp4"):  # the frames are there: these only encode
        assert main([*common, "-o", str(tmp_path / name)]) == 0
    with Image.open(tmp_path / "zoom.gif") as gif:
        assert gif.n_frames == 6 and gif.size == (97, 73)
    video, _, _ = read_clip(tmp_path / "zoom.mp4")
    assert len(video) == 6 and video[0].shape == (74, 98, 3)
    assert main([*common, "-o", str(tmp_path / "pngs")]) == 0
    pngs = sorted((tmp_path / "pngs").glob("frame*.png"))
    assert [p.read_bytes() for p in pngs] == [(folder / p.name).read_bytes() for p in pngs]
    assert len(pngs) == 6 and (tmp_path / "pngs" / RECORD_FILE).is_file()


def bad_run(args: list[str], capsys) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    return err


def test_bad_videos_and_frames_of_other_settings_are_refused(tmp_path, googlenet_cli_args, capsys):
    out = tmp_path / "out.mp4"
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    assert "notes.mp4" in bad_run(video_command(text, out, googlenet_cli_args), capsys)
    empty = write_clip(tmp_path / "empty.mkv", [])  # MP4 drops a track without frames
    assert "empty.mkv: the video has no frames" in bad_run(
        video_command(empty, out, googlenet_cli_args), capsys)
    assert not out.exists()
    clip = write_clip(tmp_path / "one.mp4", [texture(48, 64, 0)])
    assert main(video_command(clip, out, googlenet_cli_args)) == 0
    out.unlink()
    frame = (tmp_path / "out_frames" / "frame000001.png").read_bytes()
    err = bad_run([*video_command(clip, out, googlenet_cli_args), "--blend", "0.3"], capsys)
    assert "other settings (blend)" in err and not out.exists()
    assert (tmp_path / "out_frames" / "frame000001.png").read_bytes() == frame
    # --force replaces that folder's frames and settings; the same command then resumes
    assert main([*video_command(clip, out, googlenet_cli_args), "--blend", "0.3", "--force"]) == 0
    assert main([*video_command(clip, out, googlenet_cli_args), "--blend", "0.3"]) == 0


def test_start_and_end_take_frames_and_times():
    info = VideoInfo(64, 48, Fraction(30000, 1001), Fraction(1, 30000), 100, False,
                     Fraction(0))
    assert frame_at("12", info, "start") == 12
    assert frame_at("1s", info, "start") == 30  # 29.97 frames a second: frame 30 at 1.001 s
    assert frame_at("1:00", info, "end") == 1799
    with pytest.raises(ValueError, match="--end 'soon'"):
        frame_at("soon", info, "end")


def small_file_limit() -> None:
    """In the child: files may not grow beyond 30 kB, as on a full disk (EFBIG, not a kill)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (30_000, 30_000))


def test_a_full_disk_is_one_line_and_no_output(tmp_path, googlenet_cli_args):
    source = tmp_path / "src.png"
    Image.fromarray(texture(48, 64, 7)).save(source)
    out = tmp_path / "zoom.gif"
    command = [sys.executable, "-m", "dreamer", "zoom", str(source), LAYER, "2", str(RATE),
               *googlenet_cli_args, "--octaves", "1", "--frames", "2", "--quiet", "-o", str(out)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                            preexec_fn=small_file_limit)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1  # numpy names the cause: "... requested and ... written"
    assert lines[0].startswith(f"error: cannot write {tmp_path / 'zoom_frames'}/carry000001.npy: ")
    assert not out.exists()
    assert sorted(p.name for p in (tmp_path / "zoom_frames").iterdir()) == ["settings.json"]
