"""dreamer.loops.torch7 against one real seed-script run: tiny net, cat.jpg, layer_max 4
(the LRN output), 10 iterations, rate 0.01 (shared/reference/torch7/dream/, README §2).

Measured: the octave-1 input is bit-exact; first gradient 1.6e-7 L2-relative (checked
by the gradient rule of tests/compare.py); (step k - input) ≤ 7e-7 for k = 1..3; every
octave end ≤ 1.3e-7 L2-relative (max |Δ| 2.4e-6); mean|g| of all 80 steps ≤ 1e-8
relative; result.png ~100 dB PSNR (one byte off by one). The bounds below leave about
10x margin over those figures.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from compare import assert_gradient_close, l2_relative, psnr
from conftest import shared_path
from PIL import Image

import converters
from dreamer.loops.torch7 import ascent_step, dream_torch7, octave_sizes
from dreamer.loops.torch7_image import torch7_normalise, torch7_png_bytes, torch7_postprocess

pytestmark = pytest.mark.numerical
DREAM = ("reference", "torch7", "dream", "tiny_cat_l4_i10_r0.01")


def _ref(name: str) -> np.ndarray:
    return np.fromfile(shared_path(*DREAM, f"{name}.f32"), "<f4").reshape(3, 224, 224)


@pytest.fixture(scope="module")
def run() -> tuple[dict, np.ndarray, dict]:
    net = converters.load_caffe(str(shared_path("models", "tiny", "deploy.prototxt")),
                                str(shared_path("models", "tiny", "tiny.caffemodel")))

    def gradient(x: torch.Tensor) -> torch.Tensor:
        x = x.clone().requires_grad_(True)
        y = net.forward_to(x, ["norm1"])["norm1"]
        y.backward(y.detach())
        return x.grad

    rgb = np.asarray(Image.open(shared_path("models", "_common", "cat.jpg")).convert("RGB"))
    trace: dict = {}
    calls = []
    final = dream_torch7(rgb, gradient, iterations=10, rate=0.01, trace=trace,
                         on_step=lambda: calls.append(1))
    _, mean, std = torch7_normalise(rgb)
    png = torch7_png_bytes(torch7_postprocess(final, mean, std))
    reference = json.loads(shared_path(*DREAM, "trace.json").read_text())
    return trace, png, reference | {"calls": len(calls), "final": final}


def test_octave_sizes(run) -> None:
    trace, _, ref = run
    assert octave_sizes() == [101, 113, 127, 142, 159, 178, 200, 224]
    assert [list(s) for s in trace["octave_sizes"]] == ref["octave_sizes_CHW"]


def test_first_input_bit_exact(run) -> None:
    np.testing.assert_array_equal(run[0]["oct1_input"], _ref("oct1_input"))


def test_first_gradient(run) -> None:
    assert_gradient_close(run[0]["oct1_grad1"], _ref("oct1_grad1"), "first gradient")


def test_first_steps(run) -> None:
    trace, x0 = run[0], _ref("oct1_input")
    for k in (1, 2, 3):
        assert l2_relative(trace[f"oct1_step{k}"] - x0, _ref(f"oct1_step{k}") - x0) <= 1e-5, k


def test_step_rule_on_reference_arrays() -> None:
    """Torch's own gradient through the step rule gives Torch's step 1 exactly."""
    steps = json.loads(shared_path(*DREAM, "trace.json").read_text())["steps"]
    x, mean_abs, factor = ascent_step(_ref("oct1_input"), _ref("oct1_grad1"), 0.01)
    np.testing.assert_array_equal(x, _ref("oct1_step1"))
    assert mean_abs == pytest.approx(steps[0]["mean_abs_g"], rel=1e-15)
    assert factor == pytest.approx(steps[0]["scale"], rel=1e-15)


def test_every_step_and_octave(run) -> None:
    trace, _, ref = run
    assert ref["calls"] == len(trace["steps"]) == len(ref["steps"]) == 80
    for mine, theirs in zip(trace["steps"], ref["steps"]):
        assert (mine["oct"], mine["it"]) == (theirs["oct"], theirs["it"])
        assert mine["mean_abs_g"] == pytest.approx(theirs["mean_abs_g"], rel=1e-6)
        assert mine["x_sum"] == pytest.approx(theirs["x_sum"], rel=1e-5)
    for k in range(1, 9):
        assert l2_relative(trace[f"oct{k}_end"], _ref(f"oct{k}_end")) <= 2e-6, k


def test_returned_image_is_torch7s_final_image(run) -> None:
    """What dream_torch7 returns against Torch7's final_img (oct8_end, README §2) and its
    post-processed result.f32."""
    final = run[2]["final"]
    assert l2_relative(final, _ref("oct8_end")) <= 2e-6
    _, mean, std = torch7_normalise(
        np.asarray(Image.open(shared_path("models", "_common", "cat.jpg")).convert("RGB")))
    assert l2_relative(torch7_postprocess(final, mean, std), _ref("result")) <= 2e-6


def test_result_png_psnr(run) -> None:
    png = np.asarray(Image.open(shared_path(*DREAM, "result.png")).convert("RGB"))
    assert psnr(run[1], png) >= 80
