"""`--preset google` against Google's notebook run through real Caffe on the tiny net
(shared/reference/caffe/dream: jitter 0 and jitter 4, seed 0, end conv2)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from compare import assert_gradient_close, l2_relative, psnr
from conftest import shared_path
from PIL import Image

import dreamer
from dreamer.loops.run import LOOPS

pytestmark = pytest.mark.numerical


@pytest.mark.parametrize("jitter", [0, 4])
def test_google_preset_reproduces_the_caffe_notebook(tiny, jitter):
    run = shared_path("reference", "caffe", "dream", f"tiny_sky128_j{jitter}")
    ref = np.load(run / "arrays.npz")
    settings = json.loads((run / "settings.json").read_text())
    assert settings["end"] == "conv2" and settings["seed"] == 0
    trace: dict = {}
    result = dreamer.dream(ref["image"].astype(np.uint8), tiny, "conv2", raw=True,
                           preset="google", jitter=jitter, trace=trace, precision="fp32")
    # The notebook's mean (104, 116, 122): the first input is exact.
    np.testing.assert_array_equal(trace["first_input"], ref["first_input"])
    assert_gradient_close(trace["first_grad"], ref["first_grad"], "first gradient")
    # The jitter shifts are the notebook's np.random.randint draws, in order.
    np.testing.assert_array_equal(np.array(trace["shifts"]), ref["shifts"][:10])
    for i in range(10):  # 0..255 scale: ~1e-5 relative / 1e-3 absolute (reference README)
        assert np.abs(trace["steps"][i] - ref[f"step{i:02d}_data"]).max() <= 1e-3, i
    steps3 = trace["steps"][2] - ref["first_input"]
    assert l2_relative(steps3, ref["step02_data"] - ref["first_input"]) <= 1e-3
    assert result.shape == ref["result"].shape == (72, 128, 3)
    assert psnr(result, ref["result"]) >= 60  # measured: 149 dB
    png = np.asarray(Image.open(run / "result.png"))
    assert psnr(LOOPS["google"].quantise(result), png) >= 45
