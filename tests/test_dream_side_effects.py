"""A dream leaves the caller's network (device, memory format, dtype, requires_grad,
training mode) and the global random state (torch and NumPy) as they were, so that no
result depends on which test, or which dream, ran before."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import dreamer
from dreamer.loops.gradient import DreamGradient
from dreamer.loops.run import on_device
from dreamer.plan.plan import objective_for
from dreamer.plan.targets import Target


def network_state(net: torch.nn.Module) -> dict:
    tensors = [*net.named_parameters(), *net.named_buffers()]
    return {"tensors": {name: (t.device, t.dtype, t.stride(), t.requires_grad)
                        for name, t in tensors},
            "training": [m.training for m in net.modules()]}


def global_random_state() -> tuple:
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    return torch.get_rng_state().tolist(), kind, keys.tolist(), position, has_gauss, gauss


@pytest.fixture
def caller_net(tiny):
    """The tiny net as a caller might hold it: training mode, parameters requiring grad."""
    net = copy.deepcopy(tiny)
    net.train()
    net.requires_grad_(True)
    return net


def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (47, 53, 3), dtype=np.uint8)


@pytest.mark.parametrize("options", [
    {"octaves": 2},
    {"octaves": 1, "tile": 16, "blur": 1.0, "laplacian": 2},
    {"preset": "torch7", "octaves": 2},
], ids=["plain", "tiled", "torch7"])
def test_dream_leaves_network_and_random_state(caller_net, options):
    torch.manual_seed(123)
    np.random.seed(456)
    net_before, random_before = network_state(caller_net), global_random_state()
    assert any(p.dim() == 4 for p in caller_net.parameters())  # a memory format to lose
    dreamer.dream(image(), caller_net, "conv2", 2, 0.01, **options)
    assert network_state(caller_net) == net_before
    assert global_random_state() == random_before


def test_dream_gradient_leaves_the_network(caller_net):
    net_before = network_state(caller_net)
    x = torch.from_numpy(image().transpose(2, 0, 1).astype(np.float32))[None]
    for gradient in (DreamGradient(caller_net, objective_for(tuple([Target("conv2")]))),
                     DreamGradient(caller_net, objective_for(tuple([Target("norm1")])), tile=16)):
        assert gradient(x).shape == x.shape
        assert network_state(caller_net) == net_before


def test_the_same_dream_twice_is_the_same(tiny):
    """With the global seeds moved in between: the dream's randomness is its own."""
    first = dreamer.dream(image(), tiny, "conv2", 2, 0.01, octaves=2, jitter=3)
    torch.manual_seed(7)
    np.random.seed(7)
    torch.rand(5)
    np.random.rand(5)
    np.testing.assert_array_equal(dreamer.dream(image(), tiny, "conv2", 2, 0.01, octaves=2,
                                                jitter=3), first)


def test_another_device_gets_a_copy(caller_net):
    """`dream(..., device=...)` runs on `on_device`'s net; the meta device stands in for a
    GPU here."""
    net_before = network_state(caller_net)
    assert on_device(caller_net, "cpu") is caller_net
    moved = on_device(caller_net, "meta")
    assert moved is not caller_net
    assert {p.device.type for p in moved.parameters()} == {"meta"}
    assert network_state(caller_net) == net_before
