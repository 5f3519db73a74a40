"""Output-gradient choices: what the dream amplifies at the target layer.

DeepDream backpropagates an output gradient dy from the target layer to the input.
Each objective below maps the layer's output y (N×C×H×W, or N×F) to dy; the input
gradient is then Jᵀ dy. `OBJECTIVES` is the table the command line offers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Objective = Callable[[Tensor], Tensor]


def l2(y: Tensor) -> Tensor:
    """dy = y: the gradient of ½‖y‖², amplify whatever the layer already sees (classic)."""
    return y


def mean(y: Tensor) -> Tensor:
    """dy = 1: raise every activation alike (the gradient of Σy)."""
    return torch.ones_like(y)


def sign(y: Tensor) -> Tensor:
    """dy = sign(y): the gradient of ‖y‖₁; strong and weak features count the same."""
    return torch.sign(y)


def square(y: Tensor) -> Tensor:
    """dy = y²: the gradient of Σy³/3; favours the strongest activations even more than y."""
    return y * y


def top_k(fraction: float) -> Objective:
    """dy = y on the `fraction` largest activations, 0 elsewhere: only the dominant features."""
    def objective(y: Tensor) -> Tensor:
        flat = y.flatten()
        count = max(1, int(round(flat.numel() * fraction)))
        threshold = flat.topk(count).values[-1]
        return torch.where(y >= threshold, y, torch.zeros_like(y))
    return objective


def guide(features: Tensor) -> Objective:
    """The notebook's guided dream: at each position, dy is the guide image's feature
    vector that best matches (largest dot product) the dreamed one."""
    channels = features.shape[1]
    guide_columns = features.reshape(channels, -1)

    def objective(y: Tensor) -> Tensor:
        columns = y.reshape(channels, -1)
        best = (columns.t() @ guide_columns).argmax(1)
        return guide_columns[:, best].reshape(y.shape)
    return objective


OBJECTIVES: dict[str, Objective] = {"l2": l2, "mean": mean, "sign": sign, "square": square}
# The ones that take an argument, for --help.
OBJECTIVE_HELP = {
    "l2": "dy = y (DeepDream's ½‖y‖², the default)",
    "mean": "dy = 1 (raise every activation of the layer)",
    "sign": "dy = sign(y) (‖y‖₁: all active features alike)",
    "square": "dy = y² (Σy³/3: the strongest features dominate)",
    "topk": "dy = y on the largest --topk fraction of activations, 0 elsewhere",
}


def only_channel(objective: Objective, channel: int) -> Objective:
    """The objective restricted to one channel: dy is zero on every other channel."""
    def restricted(y: Tensor) -> Tensor:
        if y.dim() < 2 or not 0 <= channel < y.shape[1]:
            raise ValueError(f"channel {channel} is out of range: the layer has "
                             f"{y.shape[1] if y.dim() > 1 else 0} channels")
        dy = torch.zeros_like(y)
        dy[:, channel] = objective(y)[:, channel]
        return dy
    return restricted
