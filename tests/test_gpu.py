"""Dreams on a GPU (tests marked `gpu`: they skip without CUDA; bench/gpu.sh runs them),
and the Google loop's promise that a step waits for nothing on the host (runs anywhere).

On a GPU every mode is checked against the same dream on the CPU in fp32: the converted
net, each preset, octaves, jitter, tiling, objectives, guide and a class target.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from compare import psnr
from test_dream_options import cat

import dreamer
from dreamer.plan.targets import Target
from dreamer.runtime.devices import resolve_device

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
# Each host-synchronising Tensor method: on a GPU each waits for the queued work.
SYNCS = ("item", "tolist", "__float__", "__int__", "__bool__", "cpu", "numpy")


def count_syncs(monkeypatch, run) -> int:
    """How many times `run()` calls a host-synchronising Tensor method."""
    calls = []
    for name in SYNCS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, name, counted)
    run()
    monkeypatch.undo()
    return len(calls)


@pytest.mark.parametrize("options", [{}, {"tile": 16, "objective": "topk"},
                                     {"preset": "google", "jitter": 4}])
def test_google_loop_has_no_host_sync_per_step(tiny, monkeypatch, options):
    """The step size stays a tensor and the jitter is drawn up front: 1 or 5 iterations
    per octave make the same number of synchronising calls (one copy back per octave)."""
    def dream(iterations: int) -> None:
        dreamer.dream(cat(48, 40), tiny, "conv2", iterations, 0.05, octaves=2, device="cpu",
                      precision="fp32", **options)
    assert count_syncs(monkeypatch, lambda: dream(1)) == count_syncs(monkeypatch,
                                                                      lambda: dream(5))


@pytest.mark.gpu
@needs_cuda
def test_auto_device_is_the_gpu():
    assert resolve_device("auto") == "cuda:0"


GPU_CASES = {
    "plain": ("conv2", {"octaves": 3}),
    "google": ("conv2", {"preset": "google", "jitter": 4, "octaves": 2}),
    "torch7": ("conv2", {"preset": "torch7", "octaves": 2}),
    "tiled": ("conv2", {"tile": 16, "octaves": 1}),
    "objectives": ("norm1:1,conv2:0.5", {"objective": "square", "channel": 3, "blur": 1.0,
                                         "laplacian": 2, "octaves": 2}),
    "guide": ("conv2", {"guide": "guide", "octaves": 1}),
}


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("case", list(GPU_CASES))
def test_cuda_dream_matches_the_cpu_one(tiny, case):
    layer, options = GPU_CASES[case]
    if options.get("guide") == "guide":
        options = {**options, "guide": cat(60, 52)[::-1, ::-1].copy()}
    rgb = cat(48, 40)
    ours = dreamer.dream(rgb, tiny, layer, 3, 0.05, device="cuda", precision="fp32", **options)
    cpu = dreamer.dream(rgb, tiny, layer, 3, 0.05, device="cpu", precision="fp32", **options)
    assert ours.shape == cpu.shape and psnr(ours, cpu) >= 40


@pytest.mark.gpu
@needs_cuda
def test_cuda_class_dream_on_googlenet(googlenet):
    """deepdraw with a class target (GoogLeNet's classifier, fully connected: random crops),
    a short schedule, fp32 on the GPU against fp32 on the CPU."""
    rgb = cat(256, 256)
    target = [Target("loss3/classifier", channel=1)]  # goldfish
    ours = dreamer.dream(rgb, googlenet, target, 8, 1.0, preset="deepdraw", device="cuda",
                         precision="fp32")
    cpu = dreamer.dream(rgb, googlenet, target, 8, 1.0, preset="deepdraw", device="cpu",
                        precision="fp32")
    assert psnr(ours, cpu) >= 30


@pytest.mark.gpu
@needs_cuda
def test_cuda_bf16_dream_is_within_30_db_of_fp32(googlenet):
    rgb = cat(320, 240)
    settings = {"octaves": 1, "seed": 0, "device": "cuda"}
    fp32 = dreamer.dream(rgb, googlenet, "inception_4c/output", 4, 0.03, precision="fp32",
                         **settings)
    auto = dreamer.dream(rgb, googlenet, "inception_4c/output", 4, 0.03, **settings)
    assert 30 <= psnr(auto, fp32) < float("inf")


@pytest.mark.gpu
@needs_cuda
def test_cuda_google_loop_does_not_synchronise_per_step(tiny):
    """CUDA's own count: synchronising calls warned by the sync debug mode do not grow with
    the number of iterations."""
    def warned(iterations: int) -> int:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                dreamer.dream(cat(48, 40), tiny, "conv2", iterations, 0.05, octaves=2,
                              device="cuda", precision="fp32")
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(w.message) for w in caught)
    assert warned(1) == warned(5)
