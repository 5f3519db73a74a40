"""The studio's Dream tab in a real browser (tests/studio_harness.py): every option of the
still dreamer, the preview and the progress bar while dreaming, the History tab, and real
GoogLeNet on cat.jpg equal to `python -m dreamer` byte for byte; and, without a browser,
the page's command line read back by the still dreamer's parser."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import studio_harness
from conftest import shared_path
from PIL import Image
from studio_harness import WAIT_MS, choose_layer, expect, fill, running_studio

from converters.ownership import MARKER_KEY, read_marker
from dreamer.studio.dreaming import Settings, command_line, parsed, progress_html
from dreamer.studio.tabs.dream import check_names, page_settings, preset_numbers
from models import sample

CLI_SECONDS = 120
PHOTO_UPLOAD = 2_000_000  # bytes: the GoogLeNet studio's upload bound

# --- the command line, without a browser ---------------------------------------------


def test_every_option_reads_back_as_the_page_gave_it():
    settings = Settings("tiny", "conv2", 3, 0.025, 2, 7, preset="google", objective="topk:0.05",
                        guide="-g.png", octave_scale=1.5, jitter=3, channel=1, max_side=40)
    argv = command_line("cat.jpg", settings)
    args = parsed(argv)
    assert (args.src, args.positional, args.model, args.preset, args.objective, args.guide) == \
        ("cat.jpg", ["conv2", "3", "0.025"], "tiny", "google", "topk:0.05", "./-g.png")
    assert (args.octaves, args.octave_scale, args.jitter, args.channel, args.seed,
            args.max_side, args.class_, args.layer) == (2, 1.5, 3, 1, 7, 40, None, None)


def test_options_at_their_default_are_left_out():
    assert command_line("a.png", Settings("tiny", "conv2")) == ["a.png", "conv2", "--model",
                                                                "tiny"]
    assert command_line("a.png", Settings("tiny", "conv2", 5)) == ["a.png", "conv2", "5",
                                                                   "--model", "tiny"]


def test_a_class_replaces_the_layer_and_the_numbers_stay_iterations_and_rate():
    argv = command_line("a.png", Settings("tiny", None, 4, 0.5, class_="4"))
    args = parsed(argv)
    assert argv[:3] == ["a.png", "4", "0.5"]
    assert (args.class_, args.positional, args.layer) == ("4", ["4", "0.5"], None)
    both = parsed(command_line("a.png", Settings("tiny", "conv2", 4, class_="4")))
    assert (both.layer, both.positional, both.class_) == ("conv2", ["4"], "4")


def test_a_rate_needs_the_iterations_and_a_dream_a_target():
    with pytest.raises(ValueError, match="iterations with the rate"):
        command_line("a.png", Settings("tiny", "conv2", rate=0.5))
    with pytest.raises(ValueError, match="a layer or a class"):
        command_line("a.png", Settings("tiny", None))


def test_the_pages_fields_become_settings_empty_ones_the_default():
    settings = page_settings("tiny", "conv2", "", "", "topk", " 0.05 ", "3", "0.02", "",
                           "1.5", "", "", 7, "256", guide=Path("/up/load/g.png"))
    assert settings == Settings("tiny", "conv2", 3, 0.02, None, 7, objective="topk:0.05",
                                guide="g.png", octave_scale=1.5, max_side=256)
    assert page_settings("tiny", "conv2", "4", "", "l2", "", "", "", "", "", "", "", 0,
                       "").class_ == "4"
    with pytest.raises(ValueError, match="--jitter"):
        page_settings("tiny", "conv2", "", "", "l2", "", "3", "", "", "", "-1", "", 0, "")
    with pytest.raises(ValueError, match="--max-side"):
        page_settings("tiny", "conv2", "", "", "l2", "", "3", "", "", "", "", "", 0, "0")


def test_an_image_and_a_guide_of_one_name_must_be_one_file(tmp_path):
    image, guide = noise_image(tmp_path / "a.png", 8, 8, 1), tmp_path / "g" / "a.png"
    guide.parent.mkdir()
    guide.write_bytes(image.read_bytes())
    check_names(image, guide)  # the same picture: the command names it once
    noise_image(guide, 8, 8, 2)
    with pytest.raises(ValueError, match="two files named a.png"):
        check_names(image, guide)


def test_a_preset_fills_its_own_numbers():
    assert preset_numbers("google") == ("10", "1.5", "4")
    assert preset_numbers("torch7") == ("10", "0.01", "8")
    assert preset_numbers("deepdraw") == ("", "", "")  # its own schedule
    assert preset_numbers("") == ("10", "0.01", "4")


def test_the_progress_bar_counts_iterations_and_the_time_left():
    text = progress_html(5, 20, 10.0)
    assert '<progress value="5" max="20">' in text
    assert "iteration 5 of 20" in text and "ETA 30 s" in text
    assert "ETA –" in progress_html(0, 20, 0.0)


# --- the page --------------------------------------------------------------------------


def noise_image(path: Path, height: int, width: int, seed: int) -> Path:
    rgb = (np.random.RandomState(seed).rand(height, width, 3) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def upload(page, image: Path, field: str = "upload") -> None:
    page.locator(f"#{field} input[type=file]").set_input_files(str(image))


def choose(page, field: str, typed: str, option: str) -> None:
    """Type `typed` in the dropdown `field` and pick the option whose label starts with
    `option`."""
    box = page.locator(f"#{field} input")
    box.click()
    box.fill(typed)
    page.get_by_role("option", name=option, exact=False).first.click()


def dream_and_download(page, folder: Path) -> tuple[Path, list[str]]:
    """Press Dream, wait for the result and download it into `folder`: (PNG, the page's
    command as arguments)."""
    page.locator("#dream").click()
    status = page.locator("#status", has_text=re.compile("done|error"))
    status.wait_for()
    assert "done" in status.inner_text(), status.inner_text()
    folder.mkdir(exist_ok=True)
    with page.expect_download() as download:
        page.locator("#download a").first.click()
    got = folder / "got.png"
    download.value.save_as(got)
    return got, shlex.split(page.locator("#command textarea").input_value())


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def assert_the_cli_makes_it(got: Path, argv: list[str], env: dict, folder: Path) -> None:
    """`python -m dreamer` with the page's command, in `folder`, makes the same pixels and
    stores the same command and model."""
    assert argv[:3] == ["python", "-m", "dreamer"], argv
    subprocess.run([sys.executable, *argv[1:]], cwd=folder, env=env, check=True,
                   capture_output=True, timeout=CLI_SECONDS)
    made = folder / argv[-1]
    assert np.array_equal(pixels(got), pixels(made))
    with Image.open(got) as ours, Image.open(made) as cli:
        stored, expected = read_marker(ours.info[MARKER_KEY]), read_marker(cli.info[MARKER_KEY])
    assert stored["argv"] == expected["argv"] and stored["network"] == expected["network"]


def test_preset_objective_jitter_channel_scale_and_guide_equal_the_cli(page, studio, tmp_path):
    _, env, _ = studio
    folder = tmp_path / "cli"
    folder.mkdir()
    upload(page, noise_image(folder / "photo.png", 60, 72, 1))
    upload(page, noise_image(folder / "-guide.png", 40, 40, 2), "guide")
    choose_layer(page, "conv2")
    choose(page, "preset", "google", "google")
    expect(page.locator("#rate input")).to_have_value("1.5")  # the preset's own rate
    choose(page, "objective", "topk", "topk:")
    page.locator("#parameter input").fill("0.05")
    fill(page, iterations=2, octaves=2, octave_scale=1.5, jitter=3, channel=1, max_side=48,
         seed=4)
    got, argv = dream_and_download(page, tmp_path / "page")
    for option in ("--preset google", "--objective topk:0.05", "--octave-scale 1.5",
                   "--jitter 3", "--channel 1", "--guide ./-guide.png", "--max-side 48",
                   "--seed 4", "--octaves 2"):
        assert option in shlex.join(argv), argv
    assert pixels(got).shape == (40, 48, 3)  # --max-side 48 of 60×72
    assert_the_cli_makes_it(got, argv, env, folder)


def test_a_class_found_by_search_equals_the_cli(page, studio, tmp_path):
    _, env, _ = studio
    folder = tmp_path / "cli"
    folder.mkdir()
    upload(page, noise_image(folder / "photo.png", 48, 40, 6))
    box = page.locator("#class input")
    box.click()
    box.fill("")
    box.press_sequentially("tiger")  # typed: the list filters on each key
    options = page.get_by_role("option")
    expect(options).to_have_count(3)
    assert [" ".join(text.split()) for text in options.all_inner_texts()] == [
        "0 · tiger cat", "2 · tiger", "4 · tiger shark"]
    options.nth(2).click()
    fill(page, iterations=2, rate=0.05, octaves=1)
    got, argv = dream_and_download(page, tmp_path / "page")
    assert argv[3:6] == ["photo.png", "2", "0.05"], argv  # the class, not the layer
    assert argv[argv.index("--class") + 1] == "4"
    assert_the_cli_makes_it(got, argv, env, folder)


def long_dream(page, tmp_path: Path, iterations: int, octaves: int) -> None:
    """Start a dream of conv2 that lasts (stopped by `stop_dream`)."""
    upload(page, noise_image(tmp_path / "long.png", 64, 64, 3))
    choose_layer(page, "conv2")
    fill(page, iterations=iterations, octaves=octaves)
    page.locator("#dream").click()


def stop_dream(page) -> None:
    page.locator("#stop").click()
    page.locator("#status", has_text="stopped").wait_for()
    assert page.locator("#download a").count() == 0


def test_the_first_octaves_preview_shows_while_dreaming(page, tmp_path):
    long_dream(page, tmp_path, 600, 3)
    page.locator("#preview img").wait_for()
    assert "dreaming" in page.locator("#status").inner_text()
    assert page.locator("#download a").count() == 0
    stop_dream(page)


def test_the_progress_bar_shows_the_iterations_and_the_time_left(page, tmp_path):
    long_dream(page, tmp_path, 5000, 2)
    progress = page.locator("#progress", has_text=re.compile(r"iteration \d+ of 10000"))
    progress.wait_for()
    assert "ETA" in progress.inner_text()
    bar = page.locator("#progress progress")
    assert bar.get_attribute("max") == "10000" and 0 < int(bar.get_attribute("value")) < 10000
    stop_dream(page)


def test_history_lists_each_dream_and_a_click_restores_its_settings(page, tmp_path):
    upload(page, noise_image(tmp_path / "small.png", 40, 40, 5))
    choose_layer(page, "conv1")
    fill(page, iterations=1, octaves=1, jitter=3, seed=11)
    page.locator("#dream").click()
    page.locator("#status", has_text="done").wait_for()
    choose_layer(page, "conv2")
    fill(page, iterations=2, octaves=2, jitter="", seed=12)
    page.locator("#dream").click()
    page.get_by_role("tab", name="History").click()
    expect(page.locator("#history .thumbnail-item")).to_have_count(2, timeout=WAIT_MS)
    page.locator("#history .thumbnail-item").first.click()
    page.locator("#history-status", has_text="dream 1 restored").wait_for()
    page.get_by_role("tab", name="Dream").click()
    for field, value in (("iterations", "1"), ("octaves", "1"), ("jitter", "3"),
                         ("seed", "11")):
        expect(page.locator(f"#{field} input")).to_have_value(value)
    assert page.locator("#layer input").input_value().startswith("conv1  ·")


# --- real GoogLeNet --------------------------------------------------------------------


@pytest.fixture(scope="module")
def googlenet_studio(googlenet_zoo, tmp_path_factory):
    """(URL, environment, root) of a studio offering the converted GoogLeNet, whose
    uploads may be photographs (cat.jpg, the sample photo: over the harness's bound)."""
    root = tmp_path_factory.mktemp("googlenet-studio")
    (root / "zoo").symlink_to(googlenet_zoo, target_is_directory=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(studio_harness, "MAX_UPLOAD", PHOTO_UPLOAD)
        with running_studio(root) as running:
            yield running


@pytest.fixture
def google_page(browser, googlenet_studio):
    opened = browser.new_page(accept_downloads=True)
    opened.set_default_timeout(WAIT_MS * 2)
    opened.goto(googlenet_studio[0])
    yield opened
    opened.close()


def test_googlenet_4c_on_the_cat_equals_the_cli_and_its_png_dreams_it_again(
        google_page, googlenet_studio, tmp_path):
    page, (_, env, _) = google_page, googlenet_studio
    folder = tmp_path / "cli"
    folder.mkdir()
    cat = folder / "cat.jpg"
    cat.write_bytes(shared_path("models", "_common", "cat.jpg").read_bytes())
    upload(page, cat)
    choose_layer(page, "inception_4c/output")
    fill(page, iterations=2, octaves=2, max_side=256)
    got, argv = dream_and_download(page, tmp_path / "page")
    assert argv[3:5] == ["cat.jpg", "inception_4c/output"] and "--max-side" in argv, argv
    assert max(pixels(got).shape[:2]) == 256
    assert_the_cli_makes_it(got, argv, env, folder)
    subprocess.run([sys.executable, "-m", "dreamer", "--from-png", str(got), "-o", "again.png"],
                   cwd=folder, env=env, check=True, capture_output=True, timeout=CLI_SECONDS)
    assert np.array_equal(pixels(got), pixels(folder / "again.png"))


def test_the_sample_photo_is_the_one_models_sample_writes(google_page, tmp_path):
    page = google_page
    page.locator("#sample").click()
    page.locator("#sample-note", has_text="python -m models.sample astronaut.png").wait_for()
    choose_layer(page, "conv1/7x7_s2")
    fill(page, iterations=1, octaves=1, max_side=64)
    got, argv = dream_and_download(page, tmp_path / "page")
    assert argv[3:5] == ["astronaut.png", "conv1/7x7_s2"], argv
    assert pixels(got).shape == (64, 64, 3)
    with page.expect_download() as download:
        page.locator("#upload a").first.click()
    assert download.value.suggested_filename == "astronaut.png"
    offered, written = tmp_path / "offered.png", tmp_path / "astronaut.png"
    download.value.save_as(offered)
    assert sample.main([str(written)]) == 0
    assert np.array_equal(pixels(offered), pixels(written))
