"""What a dream amplifies: objectives that combine with `+` and `*`, as lucent's do.

DeepDream backpropagates an output gradient dy from each target layer to the input (the
input gradient is Jᵀ dy). An `Objective` maps the outputs of the layers it reads to its dy
terms; `a + b` sends both, `0.5 * a` scales a's. The leaves:

- `LayerObjective(layer, rule)`: dy = rule(y) on a layer's output (`RULES` below: l2, the
  classic dy = y, mean, sign, square, topk), optionally on one channel only;
- `ClassLogit(layer, index)`: raise one class score (dy = 1 on that channel);
- `Guided(layer, rgb)`: the notebook's guided dream towards a guide image's features;
- feature visualisation's (Lucid's): `ChannelMean`, `Neuron`, `Direction`, `Diversity`
  (read from a TARGET by dreamer/plan/visual_targets.py).

A new rule, with a parameter or not, is one class registered in `RULES`: its dataclass
field is its parameter (`--objective NAME:VALUE`, checked by the class's `bounds`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from converters.errors import UsageError
from converters.numbers import Bounds
from dreamer.plan import numbers

Rule = Callable[[Tensor], Tensor]
RULES: dict[str, type] = {}


def rule(name: str, help: str):
    """Register a rule class under `name`, with its --help line."""
    def register(cls: type) -> type:
        cls.name, cls.help = name, help
        RULES[name] = cls
        return cls
    return register


@rule("l2", "dy = y (DeepDream's ½‖y‖², the default)")
@dataclass(frozen=True)
class L2:
    def __call__(self, y: Tensor) -> Tensor:
        return y


@rule("mean", "dy = 1 (raise every activation of the layer)")
@dataclass(frozen=True)
class Mean:
    def __call__(self, y: Tensor) -> Tensor:
        return torch.ones_like(y)


@rule("sign", "dy = sign(y) (‖y‖₁: all active features alike)")
@dataclass(frozen=True)
class Sign:
    def __call__(self, y: Tensor) -> Tensor:
        return torch.sign(y)


@rule("square", "dy = y² (Σy³/3: the strongest features dominate)")
@dataclass(frozen=True)
class Square:
    def __call__(self, y: Tensor) -> Tensor:
        return y * y


@rule("topk", "dy = y on the largest fraction F of activations, 0 elsewhere (topk:F, or "
      "--topk F)")
@dataclass(frozen=True)
class TopK:
    fraction: float = 0.01
    bounds: ClassVar[dict[str, Bounds]] = {"fraction": numbers.TOPK}

    def __call__(self, y: Tensor) -> Tensor:
        flat = y.flatten()
        count = max(1, int(round(flat.numel() * self.fraction)))
        threshold = flat.topk(count).values[-1]
        return torch.where(y >= threshold, y, torch.zeros_like(y))


def rule_from_text(text: str, **parameters) -> Rule:
    """The rule `NAME` or `NAME:VALUE` (its one parameter), else with those of
    `parameters` it takes (by field name); a one-line UsageError naming --objective."""
    name, colon, value = text.partition(":")
    if name not in RULES:
        raise UsageError(f"--objective: unknown objective {name!r} (choose from "
                         f"{', '.join(RULES)})")
    cls = RULES[name]
    taken = {f.name: parameters[f.name] for f in fields(cls) if f.name in parameters}
    if colon:
        if not fields(cls):
            raise UsageError(f"--objective {text}: {name} takes no value")
        field = fields(cls)[0].name
        taken[field] = cls.bounds[field].parse(value, f"--objective {name}:{field}")
    return cls(**taken)


def only_channel(dy: Tensor, channel: int) -> Tensor:
    """`dy` kept on one channel, zero on every other."""
    if dy.dim() < 2 or not 0 <= channel < dy.shape[1]:
        raise UsageError(f"channel {channel} is out of range: the layer has "
                         f"{dy.shape[1] if dy.dim() > 1 else 0} channels")
    kept = torch.zeros_like(dy)
    kept[:, channel] = dy[:, channel]
    return kept


class Objective:
    """The output gradients of a dream: `terms(outputs)` -> [(layer, dy), ...] in order,
    `outputs` holding (float32, detached) the output of every layer in `layers`."""

    layers: tuple[str, ...] = ()

    def terms(self, outputs: dict[str, Tensor]) -> list[tuple[str, Tensor]]:
        raise NotImplementedError

    def bound(self, features: Callable[[np.ndarray, list[str]], dict[str, Tensor]]
              ) -> Objective:
        """This objective ready to run: `features(rgb, layers)` computes what a guide needs."""
        return self

    def classes_at(self, layer: str) -> Objective:
        """The objective with its class scores read at another layer (deepdraw's auxiliary
        classifiers)."""
        return self

    def __add__(self, other: Objective) -> Objective:
        return Sum((*parts(self), *parts(other)))

    def __mul__(self, weight: float) -> Objective:
        return Weighted(self, float(weight))

    __rmul__ = __mul__


def parts(objective: Objective) -> tuple[Objective, ...]:
    return objective.parts if isinstance(objective, Sum) else (objective,)


@dataclass(frozen=True)
class Sum(Objective):
    parts: tuple[Objective, ...]

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(layer for p in self.parts for layer in p.layers))

    def terms(self, outputs):
        return [term for p in self.parts for term in p.terms(outputs)]

    def bound(self, features):
        return Sum(tuple(p.bound(features) for p in self.parts))

    def classes_at(self, layer):
        return Sum(tuple(p.classes_at(layer) for p in self.parts))


@dataclass(frozen=True)
class Weighted(Objective):
    objective: Objective
    weight: float

    @property
    def layers(self) -> tuple[str, ...]:
        return self.objective.layers

    def terms(self, outputs):
        return [(layer, dy * self.weight) for layer, dy in self.objective.terms(outputs)]

    def bound(self, features):
        return Weighted(self.objective.bound(features), self.weight)

    def classes_at(self, layer):
        return Weighted(self.objective.classes_at(layer), self.weight)


@dataclass(frozen=True)
class LayerObjective(Objective):
    """dy = rule(y) at `layer` (on `channel` only, when given)."""

    layer: str
    rule: Rule = L2()
    channel: int | None = None

    @property
    def layers(self) -> tuple[str, ...]:
        return (self.layer,)

    def terms(self, outputs):
        dy = self.rule(outputs[self.layer])
        return [(self.layer, dy if self.channel is None else only_channel(dy, self.channel))]


@dataclass(frozen=True)
class ClassLogit(Objective):
    """Raise class `index`'s score at `layer` (the pre-softmax logits)."""

    layer: str
    index: int

    @property
    def layers(self) -> tuple[str, ...]:
        return (self.layer,)

    def terms(self, outputs):
        return [(self.layer, only_channel(torch.ones_like(outputs[self.layer]), self.index))]

    def classes_at(self, layer):
        return replace(self, layer=layer)


@dataclass(frozen=True, eq=False)
class Guided(Objective):
    """The notebook's guided dream: at each position, dy is the guide image's feature
    vector at `layer` that best matches (largest dot product) the dreamed one."""

    layer: str
    guide: np.ndarray  # H×W×3 RGB
    channel: int | None = None
    features: Tensor | None = None  # the guide's output at `layer`, once bound
    kind: ClassVar[str] = "guide"

    @property
    def layers(self) -> tuple[str, ...]:
        return (self.layer,)

    def bound(self, features):
        return replace(self, features=features(self.guide, [self.layer])[self.layer])

    def terms(self, outputs):
        y = outputs[self.layer]
        channels = self.features.shape[1]
        guide_columns = self.features.reshape(channels, -1)
        best = (y.reshape(channels, -1).t() @ guide_columns).argmax(1)
        dy = guide_columns[:, best].reshape(y.shape)
        return [(self.layer, dy if self.channel is None else only_channel(dy, self.channel))]


# Feature visualisation's leaves (Lucid's objectives `channel`, `neuron`, `direction`,
# `diversity`), read by dreamer/plan/visual_targets.py. Means are per image: a batch's
# images each get the gradient one image alone would.


def positions(y: Tensor) -> int:
    """The spatial positions of each channel of `y` (1 for a fully connected output)."""
    return math.prod(y.shape[2:])


@dataclass(frozen=True)
class ChannelMean(Objective):
    """Raise one channel's mean over positions: dy = 1/(H·W) on `channel`."""

    layer: str
    channel: int

    @property
    def layers(self) -> tuple[str, ...]:
        return (self.layer,)

    def terms(self, outputs):
        y = outputs[self.layer]
        return [(self.layer, only_channel(torch.full_like(y, 1 / positions(y)), self.channel))]


@dataclass(frozen=True)
class Neuron(Objective):
    """Raise one unit: dy = 1 at (`channel`, `y`, `x`) of `layer`'s output."""

    layer: str
    channel: int
    y: int
    x: int

    @property
    def layers(self) -> tuple[str, ...]:
        return (self.layer,)

    def terms(self, outputs):
        out = outputs[self.layer]
        height, width = out.shape[2:] if out.dim() == 4 else (0, 0)
        if not (0 <= self.y < height and 0 <= self.x < width):
            raise UsageError(f"neuron {self.layer}:{self.channel}@{self.y},{self.x} is out "
                             f"of range: the layer's output is {height}×{width} (H×W) here")
        dy = torch.zeros_like(out)
        dy[:, :, self.y, self.x] = 1
        return [(self.layer, only_channel(dy, self.channel))]


@dataclass(frozen=True, eq=False)
class Direction(Objective):
    """Raise the mean over positions of the dot product of the features with `vector`
    (one number per channel): dy = vector/(H·W) at every position."""

    layer: str
    vector: np.ndarray  # C numbers

    @property
    def layers(self) -> tuple[str, ...]:
        return (self.layer,)

    def terms(self, outputs):
        y = outputs[self.layer]
        if y.dim() < 2 or y.shape[1] != self.vector.size:
            raise UsageError(f"the direction has {self.vector.size} numbers, but layer "
                             f"{self.layer!r} has {y.shape[1] if y.dim() > 1 else 0} channels")
        v = torch.as_tensor(self.vector, dtype=y.dtype, device=y.device)
        v = v.reshape(1, -1, *([1] * (y.dim() - 2)))
        return [(self.layer, (v / positions(y)).expand_as(y).contiguous())]


@dataclass(frozen=True)
class Diversity(Objective):
    """Lucid's diversity: minus the mean pairwise cosine similarity of the batch images'
    Gram matrices at `layer` (0 for one image); dy by autograd."""

    layer: str

    @property
    def layers(self) -> tuple[str, ...]:
        return (self.layer,)

    @staticmethod
    def value(y: Tensor) -> Tensor:
        """The objective's value on a batch of outputs B×C×..."""
        batch = y.shape[0]
        if batch < 2:
            return y.sum() * 0
        features = y.reshape(batch, y.shape[1], -1)
        grams = features @ features.transpose(1, 2)
        grams = grams.reshape(batch, -1)
        grams = grams / grams.norm(dim=1, keepdim=True).clamp_min(1e-10)
        cosines = grams @ grams.t()
        pairs = batch * (batch - 1)
        return -(cosines.sum() - cosines.diagonal().sum()) / pairs

    def terms(self, outputs):
        y = outputs[self.layer].detach().requires_grad_(True)
        with torch.enable_grad():
            (dy,) = torch.autograd.grad(self.value(y), y)
        return [(self.layer, dy)]
