"""`--precision`: what auto chooses, and that a reduced-precision dream stays close to the
fp32 one with LRN, the objective and the step in float32.

Measured on real GoogLeNet (inception_4c/output, the cat at 320×240) on a CPU with AMX,
PSNR of the bf16 dream against the fp32 one (of the fp32 dream against the photo; of fp32
on 2 threads against 1): 1 octave × 4 iterations at 0.03: 35.0 dB (32.3; 72.0), 2 × 3 at
0.03: 32.2 (31.0; 40.6), 2 × 4 at 0.03: 30.7 (30.0; 34.6), 2 × 2 at 0.05: 30.6 (29.1;
46.6), 2 × 4 at 0.1: 21.1 (21.7). A bf16 dream departs from the fp32 one about as far as
the dream departs from the photo: one bf16 gradient at inception_4c/output is 15 % off
the fp32 one (cosine 0.989; fp16 5 %), mostly max pooling and ReLU routing the gradient
differently where rounding changes which input wins; keeping conv1 in fp32 changes nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import warnings

import pytest
import torch
from compare import psnr
from conftest import ROOT
from test_dream_options import cat

import dreamer
from dreamer.loops.gradient import DreamGradient
from dreamer.plan.plan import objective_for
from dreamer.plan.targets import Target
from dreamer.runtime.precision import cpu_native, reduced_precision, resolve_precision

AVX2_ONLY = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
CPU = torch.device("cpu")


def test_auto_is_fp32_on_avx2_kernels():
    """With the kernels limited to AVX2 (as `make test-avx2` runs) no CPU computes bf16
    natively: auto must be fp32, whatever the CPU has."""
    code = ("import torch; from dreamer.runtime.precision import auto_precision, cpu_native; "
            "print(auto_precision(torch.device('cpu')), cpu_native('bf16'))")
    env = {**os.environ, **AVX2_ONLY, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True)
    assert done.stdout.split() == ["fp32", "False"]


def test_explicit_bf16_without_native_kernels_warns_once(monkeypatch):
    for name, value in AVX2_ONLY.items():
        monkeypatch.setenv(name, value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert resolve_precision("bf16", CPU) is torch.bfloat16
        assert resolve_precision("auto", CPU) is None
        assert resolve_precision("fp32", CPU) is None
    assert [str(w.message) for w in caught] == [
        "bf16 is not native on this cpu (it is emulated): expect it to be slower than fp32"]


def test_unknown_precision_is_refused(tiny):
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        dreamer.dream(cat(40, 40), tiny, "conv2", 1, 0.01, precision="fp8")


@pytest.mark.parametrize("preset", ["google", "torch7"])
def test_auto_keeps_the_reproducing_presets_in_fp32(tiny, preset):
    """The presets reproduce their frameworks' numbers: auto is fp32 for them even where
    the hardware has bf16 (the two dreams are identical; a bf16 one is not, see below)."""
    def run(precision: str):
        return dreamer.dream(cat(48, 48), tiny, "conv2", 2, None, preset=preset, octaves=1,
                             jitter=0 if preset == "google" else None, precision=precision,
                             raw=True)
    assert (run("auto") == run("fp32")).all()


def test_lrn_and_the_gradient_stay_float32_under_bf16(tiny):
    """The convolutions run in bf16, LRN sees and gives float32, the hooks go afterwards."""
    seen: dict[str, torch.dtype] = {}

    def record(name):
        def hook(module, inputs, output):
            seen[f"{name} in"], seen[f"{name} out"] = inputs[0].dtype, output.dtype
        return hook

    modules = dict(tiny.named_modules())
    lrn = next(n for n, m in modules.items() if type(m).__name__ == "LRN")
    conv = next(n for n, m in modules.items() if isinstance(m, torch.nn.Conv2d))
    handles = [modules[n].register_forward_hook(record(n)) for n in (lrn, conv)]
    x = torch.randn(1, 3, 40, 40) * 50
    try:
        grad = DreamGradient(tiny, objective_for(tuple([Target("conv2")])), dtype=torch.bfloat16)(x)
    finally:
        for handle in handles:
            handle.remove()
    assert seen[f"{conv} out"] == torch.bfloat16
    assert (seen[f"{lrn} in"], seen[f"{lrn} out"]) == (torch.float32, torch.float32)
    assert grad.dtype == torch.float32 and grad.shape == x.shape
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in modules.values())
    with reduced_precision(tiny, "cpu", None):  # fp32: no autocast at all
        assert not torch.is_autocast_enabled("cpu")



def test_the_lrn_hooks_of_one_thread_leave_another_threads_run_alone(tiny):
    """The studio's workers run one network in two threads at once: the float32 hooks a
    bf16 dream puts on LRN act only in its own thread (autocast's state is per thread)."""
    lrn = next(m for m in tiny.modules() if type(m).__name__ == "LRN")
    x = torch.rand(1, 8, 6, 6, dtype=torch.float64)
    seen = []
    with reduced_precision(tiny, "cpu", torch.bfloat16):
        other = threading.Thread(target=lambda: seen.append(lrn(x).dtype))
        other.start()
        other.join()
        assert lrn(x).dtype == torch.float32  # this thread's hooks act here
    assert seen == [torch.float64]  # not there: the input was not made float32

@pytest.mark.numerical
def test_bf16_dream_is_within_30_db_of_fp32(googlenet):
    if not cpu_native("bf16"):
        pytest.skip("this CPU (or ONEDNN_MAX_CPU_ISA/ATEN_CPU_CAPABILITY) has no native bf16")
    rgb = cat(320, 240)
    settings = {"octaves": 1, "seed": 0, "device": "cpu"}
    fp32 = dreamer.dream(rgb, googlenet, "inception_4c/output", 4, 0.03, precision="fp32",
                         **settings)
    bf16 = dreamer.dream(rgb, googlenet, "inception_4c/output", 4, 0.03, precision="bf16",
                         **settings)
    assert psnr(fp32, rgb) < 35  # a dream, not the photo
    score = psnr(bf16, fp32)
    assert 30 <= score < float("inf"), f"bf16 vs fp32: {score:.1f} dB"
