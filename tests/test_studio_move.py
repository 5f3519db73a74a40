"""The studio's Zoom & video tab in a real browser (the harness of tests/studio_harness.py,
on the tiny net), and its video jobs in this process: resumed from their frames, their
ids checked, their uploads bounded."""

from __future__ import annotations

import os
import re
import shlex
import time
from pathlib import Path

import numpy as np
import pytest
from motion_clips import read_clip, write_clip
from PIL import Image, ImageSequence
from studio_harness import choose_layer, expect, fill

import converters
from dreamer.cli import main
from dreamer.motion.media import VideoError
from dreamer.studio import jobs
from dreamer.studio.cache import ModelCache
from dreamer.studio.dreaming import Settings

SETTINGS = Settings("tiny", "conv2", 2, 0.03, 2, 0)
FINISHED = re.compile("done|error|stopped")


def clip(path: Path, count: int = 6, side: int = 32) -> Path:
    """A tiny MP4 of `count` random frames."""
    random = np.random.RandomState(4)
    return write_clip(path, [(random.rand(side, side, 3) * 255).astype(np.uint8)
                             for _ in range(count)])


def open_move(page) -> None:
    page.get_by_role("tab", name="Zoom & video").click()


def watch(page) -> None:
    """Record, on every change of the page, whether a zoom frame and the GIF link are
    shown and the zoom's status line (window.seen)."""
    page.evaluate("""() => {
        window.seen = [];
        new MutationObserver(() => window.seen.push([
            !!document.querySelector('#zoom_frame img'),
            !!document.querySelector('#zoom_gif a'),
            document.querySelector('#zoom_status')?.innerText || ''])
        ).observe(document.body, {subtree: true, childList: true, characterData: true,
                                  attributes: true});
    }""")


def test_a_zoom_of_6_frames_streams_frames_and_downloads_a_6_frame_gif(page, studio, tmp_path,
                                                                     monkeypatch, one_thread):
    _, env, _ = studio
    image = tmp_path / "small.png"
    Image.fromarray((np.random.RandomState(3).rand(48, 56, 3) * 255).astype(np.uint8)).save(image)
    page.locator("#upload input[type=file]").set_input_files(str(image))
    choose_layer(page, "conv2")
    open_move(page)
    fill(page, zoom_frames=6, zoom_iterations=10, zoom_octaves=2)
    assert page.locator("#zoom_frame img").count() == 0
    watch(page)
    page.locator("#zoom_start").click()
    link = page.locator("#zoom_gif a").first
    link.wait_for()
    seen = page.evaluate("window.seen")
    assert any(frame and not gif and "frame" in status for frame, gif, status in seen), seen
    with page.expect_download() as download:
        link.click()
    got = tmp_path / "got.gif"
    download.value.save_as(got)
    expect(page.locator("#zoom_status")).to_contain_text("done: 6 frames")
    assert page.locator("#zoom_mp4 a").count() == 1

    gif_command = page.locator("#zoom_command textarea").input_value().splitlines()[0]
    argv = shlex.split(gif_command)
    assert argv[:5] == ["python", "-m", "dreamer", "zoom", "small.png"], gif_command
    assert argv[argv.index("--frames") + 1] == "6" and argv[-2:] == ["-o", "small_zoom.gif"]
    # The command, in this process (one thread, as the studio's): a new Python pays ~20 s
    # of imports on busy cores.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DREAMZOO_MODELS", env["DREAMZOO_MODELS"])
    assert main(argv[3:]) == 0
    with Image.open(got) as ours, Image.open(tmp_path / "small_zoom.gif") as cli:
        ours_frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(ours)]
        cli_frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(cli)]
    assert len(ours_frames) == 6
    assert all(np.array_equal(a, b) for a, b in zip(ours_frames, cli_frames, strict=True))


def test_stop_ends_a_zoom_with_no_files(page, tmp_path):
    image = tmp_path / "flat.png"
    Image.fromarray(np.full((48, 48, 3), 90, np.uint8)).save(image)
    page.locator("#upload input[type=file]").set_input_files(str(image))
    choose_layer(page, "conv2")
    open_move(page)
    fill(page, zoom_frames=1000, zoom_iterations=1000, zoom_octaves=1)
    page.locator("#zoom_start").click()
    page.locator("#zoom_status", has_text="zooming").wait_for()
    page.locator("#zoom_stop").click()
    page.locator("#zoom_status", has_text="stopped").wait_for()
    assert page.locator("#zoom_gif a").count() == 0 and page.locator("#zoom_mp4 a").count() == 0


def start_video(page, video: Path, iterations: int = 2) -> str:
    """Upload `video`, start its job on conv2 with `iterations`; the page's message."""
    choose_layer(page, "conv2")
    open_move(page)
    page.locator("#video_upload input[type=file]").set_input_files(str(video))
    fill(page, video_iterations=iterations)
    page.locator("#video_start").click()
    message = page.locator("#video_message", has_text=re.compile("queued|error"))
    message.wait_for()
    return message.inner_text()


def test_a_video_job_outlives_its_page_and_downloads_its_mp4(browser, page, studio, tmp_path):
    video = clip(tmp_path / "clip.mp4")
    text = start_video(page, video)
    assert re.fullmatch(r"job [0-9a-f]{12} queued", text.strip()), text
    job_id = text.split()[1]
    page.close()

    again = browser.new_page(accept_downloads=True)
    again.set_default_timeout(30_000)
    try:
        again.goto(studio[0])
        open_move(again)
        row = again.locator("#video_jobs [role=row]", has_text=job_id)
        expect(row).to_contain_text("clip.mp4")
        status = again.locator("#video_status", has_text=FINISHED)
        status.wait_for()
        assert f"job {job_id}: frame 6 of 6, done" in status.inner_text()
        link = again.locator("#video_download a").first
        with again.expect_download() as download:
            link.click()
        got = tmp_path / "got.mp4"
        download.value.save_as(got)
        command = again.locator("#video_command textarea").input_value()
    finally:
        again.close()
    frames, _, _ = read_clip(got)
    assert len(frames) == 6 and frames[0].shape == (32, 32, 3)
    assert shlex.split(command)[3:5] == ["video", "clip.mp4"], command


def test_a_text_file_named_mp4_is_a_line_not_a_traceback(page, tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video at all\n")
    text = start_video(page, fake)
    assert text.startswith("error: notes.mp4: cannot read the video"), text
    assert "\n" not in text.strip() and "/" not in text  # no server path
    assert "Traceback" not in page.content()
    assert page.locator("#video_jobs [role=row]", has_text="notes.mp4").count() == 0


def test_the_page_stops_and_resumes_a_video_job(page, tmp_path):
    text = start_video(page, clip(tmp_path / "slow.mp4"), iterations=100_000)
    job_id = text.split()[1]
    status = page.locator("#video_status")
    expect(status).to_contain_text(f"job {job_id}: frame 0 of 6, running")
    page.locator("#video_stop").click()
    expect(status).to_contain_text(f"job {job_id}: frame 0 of 6, stopped")
    page.locator("#video_resume").click()
    expect(status).to_contain_text(re.compile(f"job {job_id}: .*(queued|running)"))
    page.locator("#video_stop").click()
    expect(status).to_contain_text(f"job {job_id}: frame 0 of 6, stopped")
    row = page.locator("#video_jobs [role=row]", has_text=job_id)
    expect(row).to_contain_text("stopped")


# --- the jobs in this process -------------------------------------------------------------

@pytest.fixture
def cache(tiny, tmp_path) -> ModelCache:
    converters.save(tiny, tmp_path / "zoo" / "tiny")
    return ModelCache(tmp_path / "zoo")


class StoppedAfter(jobs.Jobs):
    """Jobs whose next job is stopped once `frames` of its frames are done."""

    frames: int | None = None

    def _set(self, job_id: str, **changes) -> None:
        super()._set(job_id, **changes)
        if self.frames is not None and changes.get("done") == self.frames:
            self.stop(job_id)


def finished(work: jobs.Jobs, job_id: str) -> jobs.Progress:
    """The job's progress once it is no longer queued or running."""
    deadline = time.monotonic() + 60
    while (progress := work.progress(job_id)).state in jobs.ACTIVE:
        assert time.monotonic() < deadline, progress
        time.sleep(0.05)
    return progress


def test_a_stopped_job_resumes_from_its_frames_as_if_never_stopped(cache, tmp_path):
    video = clip(tmp_path / "clip.mp4")
    work = StoppedAfter(cache, tmp_path / "work")
    work.frames = 2
    stopped = work.submit(video, SETTINGS, 0.8, None)
    assert finished(work, stopped) == jobs.Progress("stopped", 2, 6)
    frames = work.folder_of(stopped) / "clip_dream_frames"
    first = (frames / "frame000001.png").stat().st_mtime_ns
    restarted = jobs.Jobs(cache, tmp_path / "work")  # a studio started again (--work)
    assert restarted.progress(stopped) == jobs.Progress("stopped", 2, 6)
    work.frames = None
    work.resume(stopped)
    straight = work.submit(video, SETTINGS, 0.8, None)
    assert finished(work, stopped) == jobs.Progress("done", 6, 6)
    assert finished(work, straight) == jobs.Progress("done", 6, 6)
    assert (frames / "frame000001.png").stat().st_mtime_ns == first  # not dreamed again
    resumed, _, _ = read_clip(work.output(stopped))
    whole, _, _ = read_clip(work.output(straight))
    assert len(resumed) == 6 and all(np.array_equal(a, b) for a, b in zip(resumed, whole))
    assert [row.id for row in work.rows()] == [straight, stopped]
    with pytest.raises(ValueError, match="the job is done"):
        work.resume(stopped)


def test_a_job_is_named_only_by_an_id_the_studio_made(cache, tmp_path):
    work = jobs.Jobs(cache, tmp_path / "work")
    job_id = work.submit(clip(tmp_path / "clip.mp4", count=1), SETTINGS, 0.8, None)
    assert work.folder_of(job_id) == tmp_path / "work" / "jobs" / job_id
    (tmp_path / "work" / "jobs" / ("0" * 12)).mkdir()
    for name in ("..", "../jobs", str(tmp_path), job_id.upper(), "0" * 12, "", None):
        with pytest.raises(ValueError, match="choose a job"):
            work.folder_of(name)
    finished(work, job_id)


def test_a_video_over_the_frame_bound_is_refused_before_any_work(cache, tmp_path):
    video = clip(tmp_path / "long.mp4", count=4)
    argv = jobs.video_argv("long.mp4", SETTINGS, 0.8, None)
    with pytest.raises(VideoError, match=r"^long.mp4: over 3 frames, more than the studio"):
        jobs.checked_video(cache, video, argv, "long_dream.mp4", max_frames=3)
    assert jobs.checked_video(cache, video, argv, "long_dream.mp4", max_frames=4).count == 4
    too_small = jobs.video_argv("tiny.mp4", Settings("tiny", "fc3", 2, 0.03, 1, 0), 0.8, None)
    with pytest.raises(ValueError, match="too small"):
        jobs.checked_video(cache, clip(tmp_path / "tiny.mp4", count=1, side=16), too_small,
                           "tiny_dream.mp4")
    assert not (tmp_path / "work").exists()


def test_the_pages_commands_parse_back_to_their_settings():
    argv = jobs.zoom_argv("-a.png", SETTINGS, jobs.ZoomMotion(6, 1.1, -2.5, 12.0, 64))
    args = jobs.parsed(argv, "-a_zoom.gif")
    assert (args.src, args.positional, args.frames, args.zoom, args.rotate, args.fps,
            args.max_side, args.output) == ("./-a.png", ["conv2", "2", "0.03"], 6, 1.1, -2.5,
                                            12.0, 64, "./-a_zoom.gif")
    video = jobs.parsed(jobs.video_argv("c.mp4", SETTINGS, 0.5, None), "c_dream.mp4")
    assert (video.blend, video.octaves, video.max_side) == (0.5, 2, None)
    with pytest.raises(ValueError, match="frames"):
        jobs.parsed(jobs.zoom_argv("a.png", SETTINGS, jobs.ZoomMotion(0, 1.1, 0, 12)), "a.gif")
    assert jobs.safe_name("../.x y.mp4") == "x_y.mp4" and os.sep not in jobs.safe_name("a/b")
