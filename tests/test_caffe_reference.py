"""Every blob and DeepDream gradient of every Caffe reference, against real Caffe."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from caffe_refs import (
    CAFFE_REFERENCES,
    CaffeReference,
    dream_gradient,
    load_reference_net,
)
from compare import assert_gradient_close, relative_error
from conftest import shared_path

pytestmark = pytest.mark.numerical

_NETS: dict = {}


def reference_net(name: str, formula):
    """Nets are shared by references that use the same files (the CIFAR/LeNet inputs)."""
    key = CAFFE_REFERENCES[name]
    if key not in _NETS:
        _NETS.clear()
        _NETS[key] = load_reference_net(shared_path(), name, formula)
    return _NETS[key]


@pytest.mark.parametrize("name", list(CAFFE_REFERENCES))
def test_every_blob_matches_caffe(name, formula_weights):
    net = reference_net(name, formula_weights)
    ref = CaffeReference(shared_path(), name)
    with torch.no_grad():
        outs = net.forward_to(ref.input, blobs=ref.blob_names)
    for blob in ref.blob_names:
        assert list(outs[blob].shape) == list(ref.arrays[f"shape:{blob}"]), blob
        err = relative_error(*ref.sampled("blob", blob, outs[blob]))
        assert err <= 1e-4, f"{name}: blob {blob} differs by {err:.2e} relative"
        total = float(outs[blob].double().sum())
        abssum = float(ref.arrays[f"abssum:{blob}"])
        assert abs(total - float(ref.arrays[f"sum:{blob}"])) <= 1e-4 * max(abssum, 1.0), blob
    final = [k for k in ref.arrays.files if k.startswith("output:")][0]
    ours = outs[final.split(":", 1)[1]].numpy()
    assert relative_error(ours, ref.arrays[final]) <= 1e-4


@pytest.mark.parametrize("name", list(CAFFE_REFERENCES))
def test_dream_gradients_match_caffe(name, formula_weights):
    """d(½‖y‖²)/dx at the three stored ends, y being the end *layer*'s own output, by the
    gradient rule of tests/compare.py; the sum over the whole gradient to 1e-4 of Σ|g|.

    The formula-weight Places GoogLeNets need the rule's second branch at
    inception_4c/5b (and, with AVX2 kernels, 3b): a max-pool window in inception_4c/pool
    whose two largest inputs differ by one ulp, decided the other way by Caffe.
    """
    net = reference_net(name, formula_weights)
    ref = CaffeReference(shared_path(), name)
    for end in ref.grad_ends:
        grad = dream_gradient(net, ref.input, end)
        assert_gradient_close(*ref.sampled("grad", end, grad), f"{name}: gradient at {end}")
        abssum = float(ref.arrays[f"grad_abssum:{end}"])
        assert abs(float(grad.double().sum()) - float(ref.arrays[f"grad_sum:{end}"])) \
            <= 1e-4 * abssum, end


def test_googlenet_top5_on_cat(formula_weights):
    name = "bvlc_googlenet_cat224"
    net = reference_net(name, formula_weights)
    ref = CaffeReference(shared_path(), name)
    with torch.no_grad():
        prob = net(ref.input)[0].numpy()
    expected = np.argsort(-ref.arrays["output:prob"].ravel())[:5]
    assert list(np.argsort(-prob)[:5]) == list(expected)
    assert list(expected[:3]) == [282, 281, 285]  # tiger cat, tabby, Egyptian cat (README)
