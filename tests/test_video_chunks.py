"""A video dreamed in chunks (issue 13): on Ray, three chunks stitched into a video with
the source's frames, rate and sound, whose frames at the chunk boundaries change within
1.5× of those inside a chunk (motion_clips.motion_change, as in tests/test_motion.py); in
this process, chunks cut at a scene cut give the frames of the plain run, and a rerun
dreams only the chunks not finished. Clips made by the tests (PyAV)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from motion_clips import (
    H,
    W,
    incremental_motion,
    motion_change,
    moving_scene,
    read_clip,
    video_command,
    write_clip,
)
from PIL import Image

from dreamer.__main__ import main
from dreamer.motion.chunks import plan_chunks


def frame_pngs(folder) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("frame*.png"))]


def test_three_chunks_on_ray(tmp_path, googlenet_cli_args, ray_cluster):
    step = incremental_motion(0.8, (1.5, 0.7))
    fps = Fraction(25)
    clip = write_clip(tmp_path / "moving.mp4", moving_scene(24, 1, step), fps, tone_hz=440.0)
    out = tmp_path / "dreamed.mp4"
    done = ray_cluster.dreamer(*video_command(clip, out, googlenet_cli_args), "--workers", "2",
                               "--chunk", "8")
    assert done.returncode == 0, done.stderr
    frames, rate, sound = read_clip(out)
    assert len(frames) == 24 and rate == fps and frames[0].shape == (H, W, 3)
    assert sound is not None and abs(sound - 24 / fps) <= 1 / fps
    change = motion_change(frames, step)  # against the move the clip was made with
    # change[t-1] is frame t's; chunks start at 8 and 16, each after 4 cross-faded frames
    faded = {t for start in (8, 16) for t in range(start - 4, start + 1)}
    boundary = [change[t - 1] for t in sorted(faded)]
    within = [change[t - 1] for t in range(1, 24) if t not in faded]
    print(f"mean |out_t - move(out_t-1)|: boundaries {np.mean(boundary):.2f} "
          f"(worst {max(boundary):.2f}), inside {np.mean(within):.2f}")
    assert np.mean(boundary) <= 1.5 * np.mean(within)


def test_chunks_at_a_cut_equal_the_plain_run_and_resume(tmp_path, googlenet_cli_args, capsys):
    step = incremental_motion(0.5, (1.0, 0.5))
    clip = write_clip(tmp_path / "cut.mp4", moving_scene(3, 3, step) + moving_scene(3, 4, step))
    plain, chunked = tmp_path / "plain.mp4", tmp_path / "chunked.mp4"
    assert main(video_command(clip, plain, googlenet_cli_args)) == 0
    command = [*video_command(clip, chunked, googlenet_cli_args), "--chunk", "100"]
    assert main(command) == 0
    assert "2 chunks (1 cuts), 0 finished before" in capsys.readouterr().out
    # the second chunk starts at the cut: no warm-up, and nothing carried in the plain run
    expected = frame_pngs(tmp_path / "plain_frames")
    assert len(expected) == 6
    for a, b in zip(expected, frame_pngs(tmp_path / "chunked_frames"), strict=True):
        np.testing.assert_array_equal(a, b)
    (tmp_path / "chunked_frames" / "frame000006.png").unlink()  # the second chunk unfinished
    assert main(command) == 0
    assert "1 finished before, 1 to dream" in capsys.readouterr().out
    for a, b in zip(expected, frame_pngs(tmp_path / "chunked_frames"), strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(read_clip(chunked)[0]) == 6


def test_chunk_plan():
    # scenes 0-9 and 10-24, chunks of 4 frames, warm-up 4 (worked out by hand)
    assert plan_chunks([0, 10], 25, 4, 4) == [
        (0, 4, 0), (4, 8, 4), (8, 10, 4), (10, 14, 0), (14, 18, 4), (18, 22, 4), (22, 25, 4)]
    assert plan_chunks([3], 10, 5, 2) == [(3, 8, 0), (8, 10, 2)]


def test_ray_or_a_bad_chunk_refused(tmp_path, googlenet_cli_args, capsys):
    clip = write_clip(tmp_path / "clip.mp4", moving_scene(2, 1, incremental_motion(0, (1, 0))))
    out = tmp_path / "out.mp4"
    for extra, message in ((["--ray", "auto"], "--ray goes with --chunk N"),
                           (["--chunk", "0"], "argument --chunk: must be an integer, at least 1")):
        try:
            code = main([*video_command(clip, out, googlenet_cli_args), *extra])
        except SystemExit as e:  # argparse refused it
            code = e.code
        assert code == 2
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert message in error and "\n" not in error
    assert not out.exists() and not (tmp_path / "out_frames").exists()
