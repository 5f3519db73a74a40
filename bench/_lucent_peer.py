"""The lucent peer of bench/visualize.py: torch-lucent 0.1.8 (the PyTorch port of Lucid)
run with its own defaults on our converted network.

lucent is no dependency of dreamzoo: `make bench-visualize` installs it in its own folder,

    pip install --target build/bench-peers/lucent decorator ipython
    pip install --target build/bench-peers/lucent --no-deps torch-lucent==0.1.8 kornia==0.5.11

(lucent 0.1.8 asks for kornia<=0.4.1, which has no wheel for this Python, and for its own
torch; it runs with kornia 0.5.11 and the venv's torch; it imports IPython), and this
module puts that folder at the END of sys.path, so that the venv's own packages win over
the copies pip put beside lucent.
"""

from __future__ import annotations

import random
import sys

import numpy as np
import torch
from _common import ROOT
from torch import nn

PEER_FOLDER = ROOT / "build/bench-peers/lucent"
INSTALL = (f"pip install --target {PEER_FOLDER.relative_to(ROOT)} decorator ipython && "
           f"pip install --target {PEER_FOLDER.relative_to(ROOT)} --no-deps "
           "torch-lucent==0.1.8 kornia==0.5.11")


def import_lucent():
    """lucent's optvis package from the peer folder; SystemExit saying how to install it."""
    if str(PEER_FOLDER) not in sys.path:
        sys.path.append(str(PEER_FOLDER))
    try:
        from lucent import optvis
        from lucent.optvis import objectives, param, render, transform  # noqa: F401
    except ImportError as e:
        raise SystemExit(f"the lucent peer is not installed ({e}); run `make bench-visualize` "
                         f"or `{INSTALL}`") from None
    return optvis


class CaffeInput(nn.Module):
    """Our network behind the input lucent gives (B×3×H×W RGB in 0..1): the net's own
    preprocessing (Caffe: BGR, 0..255, minus the mean) in torch, then the layers up to
    `until` (lucent reads the outputs by forward hooks, so nothing after it is needed).
    lucent names our layers `net_stages_<index>` (network.layer_index)."""

    def __init__(self, network, until: str) -> None:
        super().__init__()
        self.net = network
        self.until = until
        pre = network.spec.input_preprocessing()
        order = [("RGB".index(c)) for c in pre.channel_order]
        self.order = order
        self.register_buffer("mean", torch.tensor(pre.mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(pre.std).view(1, -1, 1, 1))
        self.scale = pre.scale

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        x = (rgb[:, self.order] * self.scale - self.mean) / self.std
        return self.net.forward_to(x, [self.until])[self.until]


def module_name(network, layer: str) -> str:
    """The name lucent's objectives use for our `layer` inside CaffeInput."""
    return f"net_stages_{network.layer_index[layer]}"


def render(network, layer: str, channel: int, steps: int, size: int, seed: int,
           device: str, fixed_size: bool = False) -> np.ndarray:
    """lucent's render_vis with its defaults (Fourier parameterisation, decorrelated colour,
    standard transforms, Adam lr 0.05) for the mean of `channel` of `layer` (a class: the
    logit layer and the class index); H×W×3 uint8. `fixed_size`: the transformed image is
    resized back to `size` (lucent's own `fixed_image_size`), as a fully connected
    classifier needs (else lucent swallows the forward's error and reuses stale features)."""
    optvis = import_lucent()
    for seeder in (torch.manual_seed, np.random.seed, random.seed):  # lucent takes no seed
        seeder(seed)
    model = CaffeInput(network, layer).to(device).eval()
    objective = optvis.objectives.channel(module_name(network, layer), channel)
    images = optvis.render.render_vis(
        model, objective, lambda: optvis.param.image(size), thresholds=(steps,),
        preprocess=False, progress=False, show_image=False,
        fixed_image_size=size if fixed_size else None)
    return np.clip(np.round(images[-1][0] * 255), 0, 255).astype(np.uint8)
