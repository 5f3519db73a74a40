"""The pieces of bench/studio.py (its timings and `make studio-screenshot`) on the tiny
net's studio: a dream set up and pressed by element ids, timed in the page, and the
page's picture made small."""

from __future__ import annotations

import io
import sys

import numpy as np
from conftest import ROOT
from PIL import Image
from studio_harness import WAIT_MS

sys.path.insert(0, str(ROOT / "bench"))
import _studio  # noqa: E402  (bench/ is no package)


def test_a_dream_is_timed_in_the_page_and_its_picture_is_small(page, tmp_path):
    image = tmp_path / "small.png"
    Image.fromarray((np.random.RandomState(4).rand(48, 56, 3) * 255).astype(np.uint8)).save(image)
    page.set_viewport_size(_studio.VIEWPORT)
    _studio.set_up_dream(page, image, "conv2", iterations=2, octaves=2)
    assert page.locator("#layer input").input_value().startswith("conv2  ·")
    first = _studio.dream(page, WAIT_MS)
    assert 0 < first["preview"] <= first["final"]
    assert page.locator("#status").inner_text().startswith("done:")
    again = _studio.dream(page, WAIT_MS)  # the previous dream's image and link do not count
    assert 0 < again["preview"] <= again["final"]

    shot = page.screenshot(full_page=True)
    png = _studio.quantised_png(shot)
    with Image.open(io.BytesIO(png)) as small, Image.open(io.BytesIO(shot)) as full:
        assert small.format == "PNG" and small.mode == "P" and small.size == full.size
        assert small.width == _studio.VIEWPORT["width"]
    assert len(png) < len(shot)
