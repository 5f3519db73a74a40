"""The studio's Layers & classes tab on real GoogLeNet (its layer table, a class search), its
layer gallery (streamed, stoppable, cached in the work folder) and the Zoo tab (converting
a zoo model from the mirror the studio was started with), in a real browser. One server
offers GoogLeNet and the tiny net."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path
from PIL import Image
from studio_harness import CLASS_NAMES, choose_layer, expect, fill, running_studio, table_rows

import converters
import models
from converters.errors import UsageError
from dreamer.jobs.sheets import default_layers
from dreamer.studio import gallery, zoo
from dreamer.studio.tabs.gallery import PER_CHANNEL
from models.convert import mirror_folder
from models.labels import read_labels, search
from models.registry import lookup

GOOGLENET = "googlenet"
CONVERTED = "nin_cifar10"  # the smallest zoo model in shared/models


@pytest.fixture(scope="module")
def studio(tiny, googlenet_zoo, tmp_path_factory):
    """(URL, environment, root) of a studio offering GoogLeNet and the tiny net (its
    labels `CLASS_NAMES`), converting from shared/models; this module's `page` opens it."""
    root = tmp_path_factory.mktemp("explore")
    (root / "zoo").mkdir()
    (root / "zoo" / GOOGLENET).symlink_to(googlenet_zoo / GOOGLENET)
    converters.save(tiny, root / "zoo" / "tiny")
    (root / "zoo" / "tiny" / "labels.txt").write_text("".join(f"{n}\n" for n in CLASS_NAMES))
    with running_studio(root, "--from", str(shared_path("models"))) as running:
        yield running


@pytest.fixture(scope="module")
def googlenet(googlenet_zoo):
    return models.open(googlenet_zoo / GOOGLENET)


# The rows a Dataframe has drawn (it draws those in view): (data-index, cell texts).
DRAWN_ROWS = """grid => [...grid.querySelectorAll('[role=row][data-index]')].map(row =>
    [Number(row.dataset.index),
     [...row.querySelectorAll('[role=gridcell]')].map(cell => cell.innerText.trim())])"""


def every_row(page, table: str, count: int) -> list[list[str]]:
    """The cell texts of all `count` rows of a Dataframe, scrolled through (it draws only
    the rows in view)."""
    grid = page.locator(f"#{table} [role=grid]")
    expect(grid).to_have_attribute("aria-rowcount", str(count + 1))  # and the header
    viewport = grid.locator(".virtual-table-viewport")
    seen: dict[int, list[str]] = {}
    for _ in range(4 * count):  # a bound, not a wait: each turn draws new rows
        seen.update(grid.evaluate(DRAWN_ROWS))
        if len(seen) == count:
            break
        viewport.evaluate("view => view.scrollBy(0, view.clientHeight * 0.8)")
        page.wait_for_timeout(50)
    return [seen[i] for i in sorted(seen)]


def open_explore(page) -> None:
    page.get_by_role("tab", name="Layers & classes").click()


def choose_model(page, name: str) -> None:
    field = page.locator("#model input")
    field.click()
    field.fill(name)
    page.get_by_role("option", name=name, exact=True).click()
    choose_layer(page, "conv2")  # the tiny net's layers are offered


def upload(page, tmp_path: Path, seed: int = 0) -> Path:
    image = tmp_path / f"small{seed}.png"
    rgb = (np.random.RandomState(seed).rand(40, 48, 3) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(image)
    page.locator("#upload input[type=file]").set_input_files(str(image))
    return image


def gallery_status(page, pattern: str) -> str:
    status = page.locator("#gallery-status", has_text=re.compile(pattern))
    status.wait_for()
    return status.inner_text()


def captions(page) -> list[str]:
    return [text.strip() for text in
            page.locator("#gallery .caption-label").all_inner_texts()]


def work_galleries(root: Path) -> list[Path]:
    """The finished galleries in the server's work folder."""
    return sorted(p for p in root.glob("temp/dreamzoo-studio-*/gallery/*")
                  if not p.name.startswith("."))


# --- GoogLeNet: the layer table and the class search -------------------------------------

def test_the_layer_table_lists_every_googlenet_layer_with_its_minimum_size(page, googlenet):
    open_explore(page)
    rows = every_row(page, "layer-table", len(googlenet.layer_names))
    assert rows == [list(row) for row in googlenet.layer_rows()]
    assert ["inception_4c/output", "Concat"] in [row[1:3] for row in rows]


def test_a_class_search_for_tiger_shows_googlenets_tigers_in_order(page, googlenet_zoo):
    labels = read_labels(googlenet_zoo / GOOGLENET / "labels.txt")
    expected = [[str(i), ", ".join(labels.names[i])] for i in search("tiger", labels)]
    open_explore(page)
    page.locator("#class-query textarea, #class-query input").first.fill("tiger")
    page.locator("#class-search").click()
    page.locator("#class-status", has_text=f"{len(expected)} classes").wait_for()
    rows = table_rows(page, "class-table", len(expected))
    assert rows == expected
    names = [row[1].split(", ")[0] for row in rows]
    assert {"tiger cat", "tiger", "tiger shark"} <= set(names), names


# --- the layer gallery on the tiny net ---------------------------------------------------

def test_a_layer_gallery_streams_labelled_cells_then_comes_from_the_cache(page, studio, tiny,
                                                                         tmp_path):
    upload(page, tmp_path)
    choose_model(page, "tiny")
    open_explore(page)
    fill(page, **{"gallery-iterations": 2, "gallery-octaves": 1, "gallery-size": 32})
    page.locator("#gallery-start").click()
    assert "done: 4 cells" in gallery_status(page, "done|error")
    assert captions(page) == default_layers(tiny, 8)
    assert page.locator("#gallery-sheet a").count() == 1
    finished = work_galleries(studio[2])
    assert len(finished) == 1 and (finished[0] / gallery.SHEET_FILE).is_file()

    page.reload()  # a new page asks for the same gallery: shown, nothing dreamt
    upload(page, tmp_path)
    choose_model(page, "tiny")
    open_explore(page)
    fill(page, **{"gallery-iterations": 2, "gallery-octaves": 1, "gallery-size": 32})
    page.locator("#gallery-start").click()
    assert "4 cells, from the cache" in gallery_status(page, "cache|done|error")
    assert captions(page) == default_layers(tiny, 8)
    assert work_galleries(studio[2]) == finished


def test_a_channel_gallery_of_the_chosen_layer_and_a_channel_it_lacks(page, tmp_path):
    upload(page, tmp_path, seed=1)
    choose_model(page, "tiny")
    open_explore(page)
    page.get_by_label(PER_CHANNEL).check()
    page.locator("#gallery-channels textarea, #gallery-channels input").first.fill("0-2")
    fill(page, **{"gallery-iterations": 1, "gallery-octaves": 1, "gallery-size": 32})
    page.locator("#gallery-start").click()
    assert "done: 3 cells" in gallery_status(page, "done|error")
    assert captions(page) == ["conv2 #0", "conv2 #1", "conv2 #2"]
    page.locator("#gallery-channels textarea, #gallery-channels input").first.fill("11-12")
    page.locator("#gallery-start").click()
    text = gallery_status(page, "error")
    assert "--channel 12 is out of range: layer 'conv2' has 12 channels" in text, text


def test_stop_ends_a_gallery_and_keeps_nothing(page, studio, tmp_path):
    before = work_galleries(studio[2])
    upload(page, tmp_path, seed=2)
    choose_model(page, "tiny")
    open_explore(page)
    fill(page, **{"gallery-iterations": 100_000, "gallery-octaves": 1, "gallery-size": 32})
    page.locator("#gallery-start").click()
    gallery_status(page, "dreaming")
    page.locator("#gallery-stop").click()
    assert gallery_status(page, "stopped|done|error") == "stopped"
    assert work_galleries(studio[2]) == before
    assert not list(studio[2].glob("temp/dreamzoo-studio-*/gallery/.part-*"))


# --- the Zoo tab ---------------------------------------------------------------------------

def test_converting_a_zoo_model_from_the_mirror_offers_it_on_the_dream_tab(page, studio):
    root = studio[2]
    page.get_by_role("tab", name="Zoo", exact=True).click()
    field = page.locator("#zoo-model input")
    field.click()
    field.fill(CONVERTED)
    page.get_by_role("option", name=CONVERTED, exact=True).click()
    # Every progress bar shown, however briefly (a quick conversion shows it for a moment).
    page.evaluate("""() => {
        window.bars = [];
        new MutationObserver(() => document.querySelectorAll(
            '#zoo-status [role=progressbar]').forEach(
                bar => window.bars.push(bar.getAttribute('aria-label')))
        ).observe(document.body, {subtree: true, childList: true, attributes: true,
                                  characterData: true});
    }""")
    page.locator("#zoo-convert").click()
    status = page.locator("#zoo-status", has_text=re.compile("converted|error"))
    status.wait_for()
    bars = page.evaluate("window.bars")
    start = f"converting {CONVERTED} from the mirror {shared_path('models')}: "
    assert bars and all(bar.startswith(start) for bar in bars), bars
    assert status.inner_text().startswith(f"{CONVERTED}: converted"), status.inner_text()
    assert (root / "zoo" / CONVERTED / "network.json").is_file()
    page.get_by_role("tab", name="Dream").click()
    assert page.locator("#model input").input_value() == CONVERTED
    layer = page.locator("#layer input")
    assert layer.input_value().startswith(f"{lookup(CONVERTED).default_layer}  ·")


def test_the_page_names_only_zoo_models_not_converted_yet(tmp_path, tiny):
    converters.save(tiny, tmp_path / GOOGLENET)  # stands for a converted GoogLeNet
    assert GOOGLENET not in zoo.convertible(tmp_path) and CONVERTED in zoo.convertible(tmp_path)
    for name, message in [("../nin", "not a model of the zoo"),
                          (str(tmp_path / "x"), "not a model of the zoo"),
                          ("bvlc_googlenet", "not a model of the zoo"),  # an alias: no
                          (GOOGLENET, "converted already"), (None, "choose a zoo model")]:
        with pytest.raises(ValueError, match=message):
            zoo.zoo_model(name, tmp_path)
    rows = {row[0]: row[1] for row in zoo.zoo_rows(tmp_path, shared_path("models"))}
    assert rows[GOOGLENET] == "converted" and rows[CONVERTED] == "convert from the mirror"
    assert rows["alexnet"] == "convert (download)"  # shared/models has no AlexNet weights


def test_the_mirror_is_the_option_else_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMZOO_MIRROR", str(tmp_path))
    assert mirror_folder(None) == tmp_path
    assert mirror_folder(tmp_path / "..") == tmp_path / ".."
    with pytest.raises(UsageError, match="nowhere: the mirror folder does not exist"):
        mirror_folder(tmp_path / "nowhere")
    monkeypatch.delenv("DREAMZOO_MIRROR")
    assert mirror_folder(None) is None


def test_gallery_cells_are_bounded_and_the_cache_key_follows_image_and_settings(tiny,
                                                                                tmp_path):
    settings = gallery.GallerySettings(None, "", 8, 2, 0.03, 1, 32, 0)
    assert [c.layer for c in gallery.cells_of(tiny, settings)] == default_layers(tiny, 8)
    wide = gallery.GallerySettings("conv2", f"0-{gallery.MAX_CELLS}", 8, 2, 0.03, 1, 32, 0)
    with pytest.raises(ValueError, match=f"at most {gallery.MAX_CELLS}"):
        gallery.cells_of(tiny, wide)
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    first.write_bytes(b"one")
    second.write_bytes(b"two")
    key = gallery.gallery_key("net", first, settings)
    assert key == gallery.gallery_key("net", first, settings)
    others = {gallery.gallery_key("net", second, settings),
              gallery.gallery_key("other", first, settings),
              gallery.gallery_key("net", first, gallery.GallerySettings(None, "", 8, 3, 0.03,
                                                                        1, 32, 0))}
    assert key not in others and len(others) == 3


def test_a_studio_from_a_missing_mirror_is_one_line(tmp_path, capsys):
    from dreamer.cli import main
    assert main(["studio", "--from", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {tmp_path / 'nowhere'}: the mirror folder does not exist"]


def test_without_a_mirror_the_zoo_tab_downloads_from_the_zoos_urls(tmp_path, monkeypatch):
    """A zoo entry served by a local HTTP server stands for the zoo's URLs."""
    from test_zoo_download import FileServer, tiny_model
    folder = shared_path("models", "tiny")
    prototxt, caffemodel = (folder / "deploy.prototxt").read_bytes(), \
        (folder / "tiny.caffemodel").read_bytes()
    server = FileServer()
    server.files.update({"/deploy.prototxt": prototxt, "/tiny.caffemodel": caffemodel})
    server.start()
    try:
        model = tiny_model(server.url, prototxt, caffemodel)
        monkeypatch.setattr(zoo, "lookup", {model.name: model}.get)
        monkeypatch.setenv("DREAMZOO_CACHE", str(tmp_path / "cache"))
        steps: list[int] = []
        converted = zoo.convert(model.name, tmp_path / "models", None, steps.append)
    finally:
        server.stop()
    assert steps == [0, 1, 2]  # each of models.convert.CONVERSION_STEPS, in order
    assert [path for path, _ in server.requests] == ["/deploy.prototxt", "/tiny.caffemodel"]
    assert converted.directory == tmp_path / "models" / model.name
    assert (tmp_path / "cache" / "tiny" / "tiny.caffemodel").read_bytes() == caffemodel


def test_the_gallerys_settings_hold_only_what_its_cells_depend_on():
    from dreamer.studio.tabs.gallery import PER_LAYER, settings_of
    numbers = (2, 0.03, 1, 32, 0)
    assert settings_of(PER_CHANNEL, "conv2", "0-2", 4, *numbers) == \
        settings_of(PER_CHANNEL, "conv2", "0-2", 9, *numbers)  # the layer count: no matter
    assert settings_of(PER_LAYER, "conv2", "0-2", 4, *numbers) == \
        settings_of(PER_LAYER, "conv1", "5", 4, *numbers)  # nor the layer and channels
    with pytest.raises(ValueError, match="choose or type a value for layer"):
        settings_of(PER_CHANNEL, None, "0-2", 4, *numbers)
