"""The studio (`python -m dreamer studio`) in a real browser: Debian's chromium driven by
Playwright. The server runs in a subprocess on a free port, on a models folder holding
only the tiny net, with a temp folder of its own; it is always stopped afterwards."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image
from studio_harness import CLASS_NAMES, MAX_UPLOAD, choose_layer, fill, table_rows

import converters
from converters.errors import UsageError
from converters.ownership import MARKER_KEY, read_marker
from dreamer.studio.cache import ModelCache, default_layer
from dreamer.studio.dreaming import Settings, command_line, command_text, parsed


def test_a_dream_streams_octaves_and_downloads_the_cli_png(page, studio, tmp_path):
    _, env, _ = studio
    image = tmp_path / "small.png"
    Image.fromarray((np.random.RandomState(3).rand(48, 56, 3) * 255).astype(np.uint8)).save(image)
    page.locator("#upload input[type=file]").set_input_files(str(image))
    choose_layer(page, "conv2")
    fill(page, iterations=2, octaves=2, rate=0.02, seed=5)
    page.locator("#dream").click()
    page.locator("#preview img").wait_for()
    link = page.locator("#download a").first
    link.wait_for()
    with page.expect_download() as download:
        link.click()
    got = tmp_path / "got.png"
    download.value.save_as(got)
    command = page.locator("#command textarea").input_value()
    assert "done" in page.locator("#status").inner_text()

    argv = shlex.split(command)
    assert argv[:4] == ["python", "-m", "dreamer", "small.png"], command
    assert argv[4:8] == ["conv2", "2", "0.02", "--model"], command
    subprocess.run([sys.executable, *argv[1:]], cwd=tmp_path, env=env, check=True,
                   capture_output=True, timeout=60)
    made = tmp_path / argv[-1]
    with Image.open(got) as ours, Image.open(made) as cli:
        assert np.array_equal(np.asarray(ours), np.asarray(cli))
        stored, expected = read_marker(ours.info[MARKER_KEY]), read_marker(cli.info[MARKER_KEY])
    assert stored["argv"] == expected["argv"] and stored["network"] == expected["network"]


def test_a_text_file_named_png_is_a_message_not_a_traceback(page, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("not an image at all\n")
    page.locator("#upload input[type=file]").set_input_files(str(fake))
    choose_layer(page, "conv2")
    page.locator("#dream").click()
    status = page.locator("#status")
    status.filter(has_text="error").wait_for()
    text = status.inner_text()
    assert "notes.png" in text and "Traceback" not in page.content(), text
    assert text.startswith("error: notes.png: ") and "/" not in text, text  # no server folder
    assert page.locator("#download a").count() == 0


def test_stop_ends_the_dream_and_frees_the_worker_for_the_next(page, tmp_path):
    """A dream of 100000 steps is stopped: no PNG, and the next dream (which waits for the
    worker, one dream at a time) finishes."""
    image = tmp_path / "wide.png"
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(image)
    page.locator("#upload input[type=file]").set_input_files(str(image))
    choose_layer(page, "conv2")
    fill(page, iterations=100_000, octaves=1)
    page.locator("#dream").click()
    page.locator("#status", has_text="dreaming").wait_for()
    page.locator("#stop").click()
    page.locator("#status", has_text="stopped").wait_for()
    assert page.locator("#download a").count() == 0
    fill(page, iterations=1)
    page.locator("#dream").click()
    status = page.locator("#status", has_text=re.compile("done|error"))
    status.wait_for()
    assert "done" in status.inner_text() and page.locator("#download a").count() == 1


def dream_status(page, image: Path) -> str:
    """The status line after uploading `image` and pressing Dream on conv2."""
    page.locator("#upload input[type=file]").set_input_files(str(image))
    choose_layer(page, "conv2")
    page.locator("#dream").click()
    status = page.locator("#status", has_text=re.compile("done|error"))
    status.wait_for()
    return status.inner_text()


def test_a_1x1_image_is_refused_with_the_plans_message(page, tmp_path):
    image = tmp_path / "dot.png"
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(image)
    text = dream_status(page, image)
    assert "error: the image (1×1) is too small for the target" in text, text
    assert "Traceback" not in page.content() and page.locator("#download a").count() == 0


def test_an_upload_over_the_byte_limit_is_refused_with_the_clis_message(page, tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(bytes(MAX_UPLOAD + 1))
    text = dream_status(page, big)
    assert text == "error: big.png: too large for an image (over 100000 bytes)", text
    assert page.locator("#download a").count() == 0


def open_explore(page) -> None:
    page.get_by_role("tab", name="Layers & classes").click()


def test_the_layer_table_lists_every_layer_with_its_smallest_input(page, tiny):
    open_explore(page)
    rows = table_rows(page, "layer-table", len(tiny.layer_names))
    assert rows == [list(row) for row in tiny.layer_rows()]


def test_a_class_search_lists_the_matching_names_in_order(page):
    open_explore(page)
    page.locator("#class-query textarea, #class-query input").first.fill("tiger")
    page.locator("#class-search").click()
    page.locator("#class-status", has_text="classes").wait_for()
    assert table_rows(page, "class-table", 3) == [["0", "tiger cat"], ["2", "tiger"],
                                               ["4", "tiger shark"]]


def test_a_class_search_without_a_match_names_the_closest(page):
    open_explore(page)
    page.locator("#class-query textarea, #class-query input").first.fill("tigre")
    page.locator("#class-search").click()
    status = page.locator("#class-status", has_text="error")
    status.wait_for()
    assert "no class name holds 'tigre'" in status.inner_text()
    assert page.locator("#class-table [role=gridcell]").count() == 0


def test_classify_shows_the_top_5_classes_with_names(page, tmp_path):
    image = tmp_path / "noise.png"
    Image.fromarray((np.random.RandomState(1).rand(40, 40, 3) * 255).astype(np.uint8)).save(image)
    page.locator("#upload input[type=file]").set_input_files(str(image))
    open_explore(page)
    page.locator("#classify").click()
    page.locator("#top-status", has_text="noise.png").wait_for()
    rows = table_rows(page, "top-table", 5)
    assert all(row[2] in CLASS_NAMES for row in rows), rows
    probabilities = [float(row[0]) for row in rows]
    assert probabilities == sorted(probabilities, reverse=True)


def test_the_cache_opens_only_offered_names_and_drops_the_least_recent(tiny, tmp_path):
    for name in ("a", "b"):
        converters.save(tiny, tmp_path / name)
    (tmp_path / "empty").mkdir()
    cache = ModelCache(tmp_path, max_models=1)
    assert cache.names() == ["a", "b"]
    first = cache.get("a")
    assert cache.get("a") is first  # opened once
    cache.get("b")
    assert cache.held() == ["b"] and cache.used() == first.nbytes
    for name in ("empty", "../a", str(tmp_path / "a")):
        with pytest.raises(UsageError, match="no converted model"):
            cache.get(name)
    assert default_layer(first.network) == "conv1"  # no zoo record: the first layer


def test_without_gradio_the_studio_is_one_line(tmp_path):
    script = ("import sys; sys.modules['gradio'] = None; from dreamer.cli import main; "
              "sys.exit(main(['studio']))")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["error: the studio needs Gradio: pip install "
                                        "'dreamzoo[studio]' (`make setup` installs it)"]


def test_the_command_line_parses_back_to_the_settings_whatever_the_file_name():
    settings = Settings("tiny", "conv2", 3, 0.025, 2, 7)
    argv = command_line("-x y.png", settings)
    args = parsed(argv)
    assert (args.src, args.positional, args.model, args.octaves, args.seed) == \
        ("./-x y.png", ["conv2", "3", "0.025"], "tiny", 2, 7)
    command = shlex.split(command_text(argv, "-x y_dream.png", Path("/m d")))
    assert command[0] == "DREAMZOO_MODELS=/m d" and command[-2:] == ["-o", "./-x y_dream.png"]
    with pytest.raises(ValueError, match="octaves"):
        parsed(command_line("a.png", Settings("tiny", "conv2", 3, 0.025, 0, 7)))


def test_the_upload_bound_comes_from_the_environment(monkeypatch):
    from dreamer.studio.app import MAX_UPLOAD_BYTES, MAX_UPLOAD_VARIABLE, max_upload_bytes
    monkeypatch.delenv(MAX_UPLOAD_VARIABLE, raising=False)
    assert max_upload_bytes() == MAX_UPLOAD_BYTES
    monkeypatch.setenv(MAX_UPLOAD_VARIABLE, "1234")
    assert max_upload_bytes() == 1234
    monkeypatch.setenv(MAX_UPLOAD_VARIABLE, "50MB")
    with pytest.raises(UsageError, match="DREAMZOO_STUDIO_MAX_UPLOAD='50MB'"):
        max_upload_bytes()


def test_the_work_folder_is_new_empty_or_a_studios_and_nothing_else(tmp_path):
    from dreamer.studio.app import work_folder
    made = work_folder(tmp_path / "new" / "work")
    (made / "jobs").mkdir()
    assert work_folder(made) == made and (made / "jobs").is_dir()  # a studio's: kept as is
    empty = tmp_path / "empty"
    empty.mkdir()
    assert work_folder(empty) == empty
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine\n")
    with pytest.raises(UsageError, match="notes: a folder the studio did not make"):
        work_folder(notes)
    assert sorted(p.name for p in notes.iterdir()) == ["todo.txt"]
    with pytest.raises(UsageError, match="todo.txt: not a folder"):
        work_folder(notes / "todo.txt")
