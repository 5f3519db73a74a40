"""The studio's serving (issue 21, item 5) in a real browser: one queue (a second page waits
with its position shown), Stop frees the worker, `--workers N` dreams at once, and the
serving line (models held, memory within the budget, models opened, workers busy, dreams
waiting); and its parts without a browser (the slots, the budget, the options)."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from studio_harness import choose_layer, expect, fill, running_studio

import converters
from dreamer.cli import main
from dreamer.studio.cache import ModelCache, Slots
from dreamer.studio.dreaming import Settings, dream_file
from dreamer.studio.tabs.status import REFRESH_S

LONG = 100_000  # iterations of a dream that runs until stopped
IDLE_MS = 2000  # Stop frees the worker within this (the bound)


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("serving") / "grey.png"
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(path)
    return path


def start_dream(page, image: Path, iterations: int) -> None:
    """Upload `image` and press Dream on conv2, one octave of `iterations`."""
    page.locator("#upload input[type=file]").set_input_files(str(image))
    choose_layer(page, "conv2")
    fill(page, iterations=iterations, octaves=1)
    page.locator("#dream").click()


def finished(page) -> str:
    """The Dream tab's status once the dream ended."""
    status = page.locator("#status", has_text=re.compile(r"done:|error|stopped"))
    status.wait_for()
    return status.inner_text().strip()


def serving(page):
    return page.locator("#serving")


def work_pngs(root: Path) -> list[Path]:
    """The PNGs in the studio's work folder (in its TMPDIR, root/temp)."""
    return sorted((root / "temp").glob("dreamzoo-studio-*/**/*.png"))


def test_a_second_page_waits_with_its_position_shown_then_finishes(browser, studio, image):
    first, second = browser.new_page(), browser.new_page()
    try:
        for page in (first, second):
            page.goto(studio[0])
        start_dream(first, image, LONG)
        expect(serving(first)).to_contain_text("workers: 1 of 1 busy")
        start_dream(second, image, 1)
        expect(second.locator("#preview")).to_contain_text("queue: 1/1")
        expect(serving(first)).to_contain_text("waiting: 1")
        first.locator("#stop").click()
        assert finished(first) == "stopped"
        assert finished(second).startswith("done")
        assert second.locator("#download a").count() == 1
        expect(serving(second)).to_contain_text("workers: 0 of 1 busy · waiting: 0")
    finally:
        first.close()
        second.close()


def test_stop_frees_the_worker_within_2_s_and_writes_nothing(page, studio, image):
    before = work_pngs(studio[2])
    start_dream(page, image, LONG)
    expect(serving(page)).to_contain_text("workers: 1 of 1 busy")
    page.locator("#stop").click()
    # the line is refreshed every REFRESH_S: it shows the idle worker by then at the latest
    expect(serving(page)).to_contain_text("workers: 0 of 1 busy",
                                          timeout=IDLE_MS + REFRESH_S * 1000)
    assert finished(page) == "stopped"
    assert page.locator("#download a").count() == 0
    assert work_pngs(studio[2]) == before


def test_a_second_dream_on_the_same_model_opens_nothing(page, studio, image):
    link = page.locator("#download a").first
    start_dream(page, image, 1)
    text = finished(page)
    assert text.startswith("done"), text
    first = link.get_attribute("href")
    fill(page, seed=1)
    page.locator("#dream").click()
    expect(link).not_to_have_attribute("href", first)  # the second dream's PNG
    text = finished(page)
    assert text.startswith("done"), text
    expect(serving(page)).to_contain_text("models held: tiny · ")
    expect(serving(page)).to_contain_text("models opened: 1 ·")  # at page load, once


def test_two_workers_dream_at_once_within_the_memory_budget(browser, tiny, tmp_path, image):
    converters.save(tiny, tmp_path / "zoo" / "tiny")
    with running_studio(tmp_path, "--workers", "2", "--memory", "3M") as (url, _, _):
        pages = [browser.new_page() for _ in range(2)]
        try:
            for page in pages:
                page.goto(url)
                start_dream(page, image, LONG)
                page.locator("#status", has_text="dreaming").wait_for()
            line = serving(pages[0])
            expect(line).to_contain_text("workers: 2 of 2 busy · waiting: 0")
            expect(line).to_contain_text(re.compile(r"models held: tiny · memory: [\d.]+ KiB "
                                                    r"of 3 MiB · models opened: 1 ·"))
            for page in pages:
                page.locator("#stop").click()
                assert finished(page) == "stopped"
            expect(line).to_contain_text("workers: 0 of 2 busy")
        finally:
            for page in pages:
                page.close()
    log = (tmp_path / "server.log").read_text()
    assert "studio: 2 dreams at once" in log


def test_slots_hold_at_most_their_count_and_number_them():
    slots = Slots(2)
    got: list[int] = []

    def third() -> None:
        with slots.slot() as number:
            got.append(number)

    with slots.slot() as a, slots as b:
        assert {a, b} == {0, 1} and slots.busy() == 2
        worker = threading.Thread(target=third)
        worker.start()
        worker.join(0.2)
        assert worker.is_alive() and not got  # no free slot: it waits
    worker.join(5)
    assert got[0] in (0, 1) and slots.busy() == 0


def test_two_workers_dream_at_once_each_as_it_dreams_alone(tiny, tmp_path, one_thread):
    """Two dreams meet at their first octave (so both run at once: one worker would hold
    the second back, and the barrier break), and each makes the pixels it makes alone."""
    converters.save(tiny, tmp_path / "zoo" / "tiny")
    upload = tmp_path / "noise.png"
    Image.fromarray((np.random.RandomState(2).rand(40, 48, 3) * 255).astype(np.uint8)).save(upload)
    cache = ModelCache(tmp_path / "zoo", workers=2)
    meeting = threading.Barrier(2, timeout=30)

    def dreamt(seed: int, meet: bool) -> np.ndarray:
        def on_octave(k: int, _) -> None:
            if meet and k == 0:
                meeting.wait()

        png = dream_file(cache, upload, Settings("tiny", "conv2", 2, 0.02, 2, seed), tmp_path,
                         threading.Event(), on_octave)
        with Image.open(png) as image:
            return np.asarray(image)

    alone = {seed: dreamt(seed, False) for seed in (1, 2)}
    together: dict[int, np.ndarray] = {}
    workers = [threading.Thread(target=lambda s=seed: together.update({s: dreamt(s, True)}))
               for seed in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert not meeting.broken and sorted(together) == [1, 2]
    assert all(np.array_equal(together[seed], alone[seed]) for seed in (1, 2))
    assert not np.array_equal(alone[1], alone[2])


def test_the_memory_budget_keeps_the_last_opened_and_counts_openings(tiny, tmp_path):
    for name in ("a", "b"):
        converters.save(tiny, tmp_path / name)
    probe = ModelCache(tmp_path).get("a")
    cache = ModelCache(tmp_path, max_models=5, max_bytes=probe.nbytes + 1)
    cache.get("a")
    cache.get("a")
    assert cache.opened == 1
    cache.get("b")
    assert cache.held() == ["b"] and cache.used() == probe.nbytes
    cache.get("a")  # closed for b: opened again
    assert cache.opened == 3


@pytest.mark.parametrize(("flags", "message"), [
    (["--memory", "0"], "--memory: '0' is not a size (e.g. 512M, 2G)"),
    (["--memory", "lots"], "--memory: 'lots' is not a size"),
    (["--workers", "0"], "--workers"),
])
def test_bad_serving_options_are_refused(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["studio", *flags])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_ray_options_without_ray_are_refused(capsys):
    assert main(["studio", "--cpus-per-worker", "2"]) == 2
    assert "error: --cpus-per-worker goes with --ray" in capsys.readouterr().err


def test_the_help_states_the_serving_options_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["studio", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--memory SIZE memory budget of the models" in text and "default: 4 GiB)" in text
    assert "--workers WORKERS dreams at once, an integer from 1 to 10000 (default: 1," in text
