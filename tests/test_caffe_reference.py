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
    relative_error,
)
from conftest import shared_path

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


# Ends whose gradient crosses a float32 near-tie that Caffe decided the other way: the
# formula-weight Places GoogLeNets (identical up to the classifier) have a max-pool window
# in inception_4c/pool whose two largest inputs differ by 1e-7 relative (one ulp), far
# below the ~5e-7 by which any two float32 summation orders differ. Our float32 and
# float64 runs agree with each other there, and a 1e-7 perturbation of the input moves
# our gradient by only 5e-8, so the remaining difference is that one switch. Its
# receptive field covers a third of the image, so the error is spread thin: measured
# max 5.7e-4 (4c) and 2.4e-3 (5b) of the gradient's largest magnitude, L2 4e-4 / 2e-3.
SWITCH_FLIPS = {(net, end) for net in ("googlenet_places205", "googlenet_places365")
                for end in ("inception_4c/output", "inception_5b/output")}


@pytest.mark.parametrize("name", list(CAFFE_REFERENCES))
def test_dream_gradients_match_caffe(name, formula_weights):
    """d(½‖y‖²)/dx at the three stored ends, y being the end *layer*'s own output.

    Every element agrees to 1e-4 of the gradient's largest magnitude, except at the
    ends listed in SWITCH_FLIPS, which must still agree to 5e-3 (max and L2).
    """
    net = reference_net(name, formula_weights)
    ref = CaffeReference(shared_path(), name)
    for end in ref.grad_ends:
        grad = dream_gradient(net, ref.input, end)
        ours, theirs = ref.sampled("grad", end, grad)
        diff = ours.astype(np.float64) - theirs
        err = float(np.abs(diff).max() / np.abs(theirs).max())
        l2 = float(np.linalg.norm(diff) / np.linalg.norm(theirs))
        limit = 5e-3 if (name, end) in SWITCH_FLIPS else 1e-4
        assert err <= limit and l2 <= limit, \
            f"{name}: gradient at {end}: max {err:.2e}, L2 {l2:.2e} (limit {limit:.0e})"
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
