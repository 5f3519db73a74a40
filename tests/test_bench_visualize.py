"""The pieces of bench/visualize.py that need no lucent: the wrapper that gives the peer our
net behind its Caffe preprocessing, the names lucent reads our layers by, and the natural
crops the channel strength is measured against."""

from __future__ import annotations

import sys

import numpy as np
import torch
from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import _lucent_peer  # noqa: E402  (bench/ is no package)
import visualize as bench  # noqa: E402


def test_the_wrapper_feeds_the_net_what_its_own_preprocessing_gives(tiny):
    height, width = tiny.spec.input_shape[-2:]
    rgb = np.random.RandomState(2).randint(0, 256, (height, width, 3)).astype(np.uint8)
    layer = tiny.layer_names[-1]
    expected = tiny.forward_to(torch.from_numpy(
        tiny.spec.input_preprocessing().to_net(rgb))[None], [layer])[layer]
    wrapped = _lucent_peer.CaffeInput(tiny, layer)
    got = wrapped(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)


def test_lucent_names_our_layers_by_their_index(tiny):
    """lucent hooks every module under the name of its path joined by '_'."""
    wrapped = _lucent_peer.CaffeInput(tiny, tiny.layer_names[-1])
    modules = {name.replace(".", "_"): module for name, module in wrapped.named_modules()}
    for i, layer in enumerate(tiny.layer_names):
        assert modules[_lucent_peer.module_name(tiny, layer)] is tiny.stages[i]


def test_natural_crops_are_the_count_asked_at_the_size_asked_and_differ():
    crops = bench.natural_crops(32, 30)
    assert len(crops) == 30
    assert all(c.shape == (32, 32, 3) and c.dtype == np.uint8 for c in crops)
    assert len({c.tobytes() for c in crops}) == 30
