"""The dream plan: built and checked once, frozen; presets are records of one table (a new
one dreams without a line of code); objectives compose with + and *, and the sum's gradient
is the weighted sum of each part's, computed here by autograd on the net."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import pytest
import torch
from test_dream_options import caffe_input, cat, rel, vjp

import dreamer
from converters.errors import UsageError
from converters.numbers import Bounds
from dreamer.loops.gradient import DreamGradient
from dreamer.loops.run import LOOPS
from dreamer.plan import objectives, presets
from dreamer.plan.objectives import ClassLogit, LayerObjective, Square
from dreamer.plan.plan import make_plan
from dreamer.plan.presets import PRESETS, Preset


def test_a_plan_is_frozen_and_resolved_once(tiny):
    plan = make_plan(tiny, "norm", 3, 0.02, octaves=2)  # a unique prefix of norm1
    assert (plan.layers, plan.iterations, plan.rate, plan.octaves) == (["norm1"], 3, 0.02, 2)
    assert (plan.octave_scale, plan.jitter, plan.step_norm, plan.device) == (1.4, 32, "mean", "cpu")
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.rate = 1.0
    assert plan.for_frame(4).seed == plan.seed + 4 and plan.for_frame(4).rate == plan.rate


def test_every_preset_names_a_loop_and_defaults_its_stages():
    assert set(PRESETS) == {None, "google", "torch7", "deepdraw"}
    assert all(p.loop in LOOPS for p in PRESETS.values())
    google, torch7 = PRESETS["google"], PRESETS["torch7"]
    assert (google.rate, google.rate_in_std, google.reproduces) == (1.5, False, True)
    assert (torch7.octaves, torch7.eight_bit_input, torch7.animates) == (8, True, False)


def test_a_new_preset_is_one_record(tiny, monkeypatch):
    """A preset added to the table dreams as the options it stands for, with no code."""
    monkeypatch.setitem(PRESETS, "still", Preset("still", "google", jitter=0, octaves=1))
    rgb = cat(40, 36)
    ours = dreamer.dream(rgb, tiny, "conv2", 2, 0.02, preset="still")
    same = dreamer.dream(rgb, tiny, "conv2", 2, 0.02, jitter=0, octaves=1)
    assert np.array_equal(ours, same)
    assert not np.array_equal(ours, dreamer.dream(rgb, tiny, "conv2", 2, 0.02))
    with pytest.raises(UsageError, match="unknown preset 'nope'"):
        presets.preset_named("nope")


def test_a_composed_objective_is_the_weighted_sum_of_its_parts(tiny):
    x = caffe_input(cat(43, 47))
    objective = LayerObjective("norm1") + 0.5 * LayerObjective("conv2", Square())
    ours = DreamGradient(tiny, objective)(x)
    expected = vjp(tiny, x, {"norm1": lambda y: y}) + 0.5 * vjp(tiny, x, {"conv2": lambda y: y * y})
    assert objective.layers == ("norm1", "conv2")
    assert rel(ours, expected) <= 1e-5


def test_a_class_logit_raises_that_score_only(tiny):
    x = caffe_input(cat(35, 35))  # the classifier's declared size
    ours = DreamGradient(tiny, 2.0 * ClassLogit("fc3", 1))(x)

    def one_hot(y: torch.Tensor) -> torch.Tensor:
        dy = torch.zeros_like(y)
        dy[:, 1] = 2.0
        return dy

    assert rel(ours, vjp(tiny, x, {"fc3": one_hot})) <= 1e-5


def test_dream_takes_a_composed_objective_as_its_layer(tiny):
    rgb = cat(40, 36)
    composed = dreamer.dream(rgb, tiny, LayerObjective("norm1") + 0.5 * LayerObjective("conv2"),
                             2, 0.02, octaves=1)
    assert np.array_equal(composed, dreamer.dream(rgb, tiny, "norm1:1,conv2:0.5", 2, 0.02,
                                                  octaves=1))
    with pytest.raises(UsageError, match="no layer 'conv'"):
        make_plan(tiny, LayerObjective("conv"))  # exact names only
    with pytest.raises(UsageError, match="--channel makes an objective"):
        make_plan(tiny, LayerObjective("conv2"), channel=1)


def test_a_new_rule_with_a_parameter_is_one_class(tiny, monkeypatch):
    """Registered, a rule is an --objective NAME:VALUE with its range checked."""
    monkeypatch.setattr(objectives, "RULES", dict(objectives.RULES))

    @objectives.rule("scaled", "dy = FACTOR · y")
    @dataclasses.dataclass(frozen=True)
    class Scaled:
        factor: float = 1.0
        bounds: ClassVar[dict[str, Bounds]] = {"factor": Bounds(0, 10)}

        def __call__(self, y: torch.Tensor) -> torch.Tensor:
            return self.factor * y

    x = caffe_input(cat(31, 33))
    plan = make_plan(tiny, "norm1", objective="scaled:3")
    assert plan.objective == LayerObjective("norm1", Scaled(3.0)) * 1.0
    ours = DreamGradient(tiny, plan.objective)(x)
    assert rel(ours, vjp(tiny, x, {"norm1": lambda y: 3 * y})) <= 1e-5
    with pytest.raises(UsageError, match=r"--objective scaled:factor must be .* to 10 .got .11"):
        make_plan(tiny, "norm1", objective="scaled:11")
    with pytest.raises(UsageError, match="l2 takes no value"):
        make_plan(tiny, "norm1", objective="l2:1")


def test_topk_value_in_the_objective_is_the_topk_option(tiny):
    rgb = cat(40, 36)
    assert np.array_equal(dreamer.dream(rgb, tiny, "conv2", 1, 0.02, objective="topk:0.2"),
                          dreamer.dream(rgb, tiny, "conv2", 1, 0.02, objective="topk", topk=0.2))


def test_an_option_added_later_is_in_the_record_only_away_from_its_old_behaviour(tiny):
    """A batch or frames folder made before `param` existed still resumes."""
    assert "param" not in make_plan(tiny, "conv2", 2, 0.02).record("still", tiny)["options"]
    fft = make_plan(tiny, "conv2", 2, 0.02, param="fft").record("still", tiny)["options"]
    assert fft["param"] == "fft"
