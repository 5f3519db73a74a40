"""dreamer.loops.torch7_image against real Torch7: every `image.scale` case of
shared/reference/torch7/image (README §8), the seed normalisation of cat.jpg and the
seed's first bilinear scale of it (README §1, §3), and the PNG byte rule (§1, §2).

Everything here is bit-exact against the references.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torchfile
from conftest import SHARED, shared_path
from PIL import Image

from dreamer.loops.torch7_image import (
    scale,
    torch7_normalise,
    torch7_png_bytes,
    torch7_postprocess,
    torch7_stats,
)

IMAGE = ("reference", "torch7", "image")
DREAM = ("reference", "torch7", "dream", "tiny_cat_l4_i10_r0.01")
_CASES_FILE = SHARED.joinpath(*IMAGE, "cases.json")
# Without the file, one case that reports it missing (a skip, or a failure under
# DREAMZOO_REQUIRE_SHARED), never an empty parametrization that passes unseen.
CASES = json.loads(_CASES_FILE.read_text()) if _CASES_FILE.exists() else [{"file": "missing"}]


def _cat() -> np.ndarray:
    return np.asarray(Image.open(shared_path("models", "_common", "cat.jpg")).convert("RGB"))


def test_all_cases_present() -> None:
    cases = json.loads(shared_path(*IMAGE, "cases.json").read_text())
    assert len(cases) == 27
    assert {c["mode"] for c in cases} == {"bilinear", "bicubic"}


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_scale_bit_exact(case: dict) -> None:
    shared_path(*IMAGE, "cases.json")
    src = torchfile.load(str(shared_path(*IMAGE, case["input"])))
    ref = torchfile.load(str(shared_path(*IMAGE, case["file"])))
    assert list(src.shape) == case["input_shape"]
    out = scale(src, case["width"], case["height"], case["mode"])
    assert out.dtype == np.float32
    assert list(out.shape) == case["output_shape"] == list(ref.shape)
    np.testing.assert_array_equal(out, ref)
    assert out.sum(dtype=np.float64) == pytest.approx(case["sum"], rel=1e-12, abs=1e-12)


def test_scale_two_dimensional_and_bad_mode() -> None:
    src = torchfile.load(str(shared_path(*IMAGE, "seed_input32.t7")))
    ref = torchfile.load(str(shared_path(*IMAGE, "seed_bilinear_up_32_to_224.t7")))
    np.testing.assert_array_equal(scale(src[0], 224, 224), ref[0])
    with pytest.raises(ValueError, match="simple"):
        scale(src, 4, 4, "simple")


def test_normalisation_of_cat() -> None:
    trace = json.loads(shared_path(*DREAM, "trace.json").read_text())["normalization"]
    rgb = _cat()
    mean, std = torch7_stats(rgb)
    assert mean == trace["mean"] == 0.454142103909465
    assert std == trace["std"] == 0.2336112117947374
    x, mean32, std32 = torch7_normalise(rgb)
    assert mean32.dtype == std32.dtype == np.float32
    assert float(mean32) == trace["mean_float32"]
    assert float(std32) == trace["std_float32"]
    assert x.dtype == np.float32 and x.shape == (3, 360, 480)


def test_seed_input_of_cat_is_bit_exact() -> None:
    """cat.jpg -> normalise -> bilinear 224 is `full:input` of the NIN module dump."""
    ref = np.load(shared_path("reference", "torch7", "nin_imagenet_formula_modules.npz"))
    x, _, _ = torch7_normalise(_cat())
    np.testing.assert_array_equal(scale(x, 224, 224), ref["full:input"].reshape(3, 224, 224))


def test_postprocess_and_png_rule() -> None:
    """Torch7's final image -> result.f32 -> result.png, each bit-exact."""
    norm = json.loads(shared_path(*DREAM, "trace.json").read_text())["normalization"]
    final = np.fromfile(shared_path(*DREAM, "oct8_end.f32"), "<f4").reshape(3, 224, 224)
    result = np.fromfile(shared_path(*DREAM, "result.f32"), "<f4").reshape(3, 224, 224)
    out = torch7_postprocess(final, norm["mean_float32"], norm["std_float32"])
    np.testing.assert_array_equal(out, result)
    png = np.asarray(Image.open(shared_path(*DREAM, "result.png")).convert("RGB"))
    np.testing.assert_array_equal(torch7_png_bytes(result), png)
