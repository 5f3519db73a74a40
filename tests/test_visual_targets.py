"""Feature visualisation's objectives (ChannelMean, Neuron, Direction, Diversity in
dreamer/plan/objectives.py) and the TARGET parser (dreamer/plan/visual_targets.py), on
small known tensors and the tiny net."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from converters.errors import UsageError
from dreamer.plan.objectives import (
    ChannelMean,
    ClassLogit,
    Direction,
    Diversity,
    Neuron,
    Sum,
    Weighted,
)
from dreamer.plan.visual_targets import visual_objective
from models.labels import parse_labels

# the tiny net: conv1 8×16×16, conv2 12×8×8, fc3 10 classes (the logits, before prob)


def known(shape: tuple[int, ...], dtype=torch.float32) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(1).standard_normal(shape)).to(dtype)


def dy_of(objective, y: torch.Tensor) -> torch.Tensor:
    ((layer, dy),) = objective.terms({objective.layer: y})
    assert layer == objective.layer
    return dy


def autograd_dy(function, y: torch.Tensor) -> torch.Tensor:
    """d function(y) / dy, by autograd (the objective's value written here)."""
    y = y.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(function(y), y)
    return grad


def test_channel_mean_dy_is_one_over_the_positions_on_its_channel():
    y = known((2, 3, 2, 4))
    dy = dy_of(ChannelMean("a", 1), y)
    expected = torch.zeros_like(y)
    expected[:, 1] = 1 / 8
    assert torch.equal(dy, expected)
    assert torch.allclose(dy, autograd_dy(lambda t: t[:, 1].mean(dim=(1, 2)).sum(), y))


def test_channel_mean_of_a_fully_connected_output_is_its_score():
    dy = dy_of(ChannelMean("fc", 2), known((1, 5)))
    assert torch.equal(dy, torch.tensor([[0.0, 0, 1, 0, 0]]))


def test_neuron_dy_is_one_at_its_position():
    y = known((2, 3, 4, 5))
    dy = dy_of(Neuron("a", 2, 1, 3), y)
    assert torch.equal(dy, autograd_dy(lambda t: t[:, 2, 1, 3].sum(), y))
    assert dy.sum() == 2 and (dy[:, 2, 1, 3] == 1).all()


def test_a_neuron_outside_the_output_seen_is_a_usage_error():
    with pytest.raises(UsageError, match=r"a:0@4,0 is out of range: the layer's output is "
                                         r"4×5 \(H×W\)"):
        Neuron("a", 0, 4, 0).terms({"a": known((1, 3, 4, 5))})


def test_direction_dy_is_the_vector_over_the_positions_everywhere():
    y = known((2, 3, 2, 2))
    vector = np.array([1.0, -2.0, 0.5], np.float32)
    dy = dy_of(Direction("a", vector), y)
    v = torch.from_numpy(vector)
    assert torch.allclose(dy, autograd_dy(
        lambda t: torch.einsum("c,bchw->bhw", v, t).mean(dim=(1, 2)).sum(), y))
    assert torch.allclose(dy[1, :, 1, 0], v / 4)


def test_direction_of_another_length_is_a_usage_error():
    with pytest.raises(UsageError, match="has 2 numbers, but layer 'a' has 3 channels"):
        Direction("a", np.ones(2, np.float32)).terms({"a": known((1, 3, 2, 2))})


def numpy_diversity(y: np.ndarray) -> float:
    """Minus the mean over pairs of images of the cosine of their Gram matrices."""
    grams = [f @ f.T for f in y.reshape(y.shape[0], y.shape[1], -1)]
    cosines = [np.sum(a * b) / (np.linalg.norm(a) * np.linalg.norm(b))
               for i, a in enumerate(grams) for b in grams[i + 1:]]
    return -float(np.mean(cosines))


def test_diversity_is_minus_the_mean_pairwise_gram_cosine():
    y = known((3, 4, 3, 3), torch.float64)
    assert Diversity.value(y).item() == pytest.approx(numpy_diversity(y.numpy()), rel=1e-12)
    same = y[:1].repeat(2, 1, 1, 1)
    assert Diversity.value(same).item() == pytest.approx(-1)


def test_diversity_dy_matches_finite_differences():
    y = known((3, 4, 3, 3), torch.float64)
    dy = dy_of(Diversity("a"), y)
    step = 1e-6
    for index in [(0, 0, 0, 0), (1, 2, 1, 0), (2, 3, 2, 2), (0, 1, 2, 1)]:
        up, down = y.clone(), y.clone()
        up[index] += step
        down[index] -= step
        slope = (numpy_diversity(up.numpy()) - numpy_diversity(down.numpy())) / (2 * step)
        assert dy[index].item() == pytest.approx(slope, rel=1e-5, abs=1e-9)


def test_diversity_of_one_image_is_nothing_to_raise():
    assert torch.equal(dy_of(Diversity("a"), known((1, 4, 3, 3))), torch.zeros(1, 4, 3, 3))


def test_diversity_works_inside_no_grad():
    with torch.no_grad():
        dy = dy_of(Diversity("a"), known((2, 4, 3, 3)))
    assert dy.abs().sum() > 0


# -- the TARGET parser on the tiny net

@pytest.fixture(scope="module")
def labels():
    return parse_labels("".join(f"thing {i}, synonym {i}\n" for i in range(10)), "labels.txt")


def test_a_channel(tiny, labels):
    assert visual_objective("conv2:11", tiny, labels) == ChannelMean("conv2", 11)
    assert visual_objective(" fc3:0 ", tiny, labels) == ChannelMean("fc3", 0)


def test_a_layer_by_its_unique_prefix(tiny):
    assert visual_objective("relu2:0", tiny, None) == ChannelMean("relu2", 0)
    assert visual_objective("norm:7", tiny, None) == ChannelMean("norm1", 7)


def test_a_neuron(tiny):
    assert visual_objective("conv2:3@7,0", tiny, None) == Neuron("conv2", 3, 7, 0)


def test_a_neuron_is_checked_at_the_size_given(tiny):
    # conv1 (kernel 5, stride 2) is 16×16 at the declared 35×35, 33×33 at 70×70
    assert visual_objective("conv1:0@20,32", tiny, None, size=(70, 70)) == \
        Neuron("conv1", 0, 20, 32)
    with pytest.raises(UsageError, match="outside the output of layer 'conv1', 16×16"):
        visual_objective("conv1:0@20,32", tiny, None)


def test_a_class_by_name_synonym_or_index(tiny, labels):
    assert visual_objective("class:thing 3", tiny, labels) == ClassLogit("fc3", 3)
    assert visual_objective("class:Synonym 4", tiny, labels) == ClassLogit("fc3", 4)
    assert visual_objective("class:9", tiny, None) == ClassLogit("fc3", 9)


def test_a_direction_from_a_npy_file(tiny, tmp_path):
    vector = np.linspace(-1, 1, 12)
    np.save(tmp_path / "v.npy", vector)
    objective = visual_objective(f"conv2:@{tmp_path / 'v.npy'}", tiny, None)
    assert isinstance(objective, Direction) and objective.layer == "conv2"
    np.testing.assert_allclose(objective.vector, vector, rtol=1e-6)


def test_a_weighted_sum(tiny, labels, tmp_path):
    np.save(tmp_path / "v.npy", np.ones(8))
    objective = visual_objective(f"0.5*class:thing 2 + conv2:1@0,0 + -2 * conv1:@{tmp_path}"
                                 f"/v.npy+conv2:4", tiny, labels)
    assert isinstance(objective, Sum) and len(objective.parts) == 4
    first, neuron, direction, channel = objective.parts
    assert first == Weighted(ClassLogit("fc3", 2), 0.5)
    assert neuron == Neuron("conv2", 1, 0, 0) and channel == ChannelMean("conv2", 4)
    assert isinstance(direction, Weighted) and direction.weight == -2
    assert objective.layers == ("fc3", "conv2", "conv1")
    outputs = {"fc3": torch.ones(1, 10), "conv2": torch.ones(1, 12, 8, 8),
               "conv1": torch.ones(1, 8, 16, 16)}
    terms = objective.terms(outputs)
    assert [layer for layer, _ in terms] == ["fc3", "conv2", "conv1", "conv2"]
    assert terms[0][1][0, 2] == 0.5 and terms[0][1].sum() == 0.5
    assert torch.allclose(terms[2][1], torch.full((1, 8, 16, 16), -2 / 256))
    assert terms[3][1][0, 4].sum() == pytest.approx(1)


@pytest.mark.parametrize("target, message", [
    ("conv2:12", "TARGET conv2:12: channel 12 is out of range: layer 'conv2' has 12 channels "
                 "(0-11)"),
    ("fc3:10", "layer 'fc3' has 10 channels"),
    ("conv2:3@8,0", "neuron 8,0 (y,x) is outside the output of layer 'conv2', 8×8 (H×W)"),
    ("conv2:3@0,8", "x 0-7"),
    ("fc3:3@0,0", "layer 'fc3' has no positions"),
    ("conv2:1@1", "give the neuron's position as layer:channel@y,x"),
    ("conv2:1@1,-2", "TARGET conv2:1@1,-2: x must be an integer, at least 0"),
    ("conv2:x", "the channel must be an integer, at least 0 (got 'x')"),
    ("conv2", "give one of layer:channel, layer:channel@y,x, class:NAME|INDEX"),
    ("conx2:1", "has no layer 'conx2'; closest: conv2"),
    ("relu:1", "layer 'relu' is ambiguous"),
    ("class:10", "class 10 is out of range: the net has 10 classes"),
    ("class:thing 12", "no class is named 'thing 12'"),
    ("", "an empty term"),
    ("conv2:1 + ", "an empty term"),
    ("nan*conv2:1", "TARGET nan*conv2:1: the weight must be a finite number"),
    ("2*", "nothing after the weight"),
    ("conv2:@missing.npy", "TARGET conv2:@missing.npy: missing.npy: no such file"),
])
def test_a_bad_target_is_a_one_line_usage_error(tiny, labels, target, message):
    with pytest.raises(UsageError) as error:
        visual_objective(target, tiny, labels)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert str(error.value).startswith("TARGET")


def test_a_class_name_without_labels_asks_for_them(tiny):
    with pytest.raises(UsageError, match="no class names; give --labels FILE"):
        visual_objective("class:goldfish", tiny, None)


@pytest.mark.parametrize("content, message", [
    (np.ones(11), r"expected one vector of 12 numbers \(one per channel\), got shape \(11,\)"),
    (np.ones((1, 12)), r"got shape \(1, 12\)"),
    (np.zeros(12), "finite and not all zero"),
    (np.full(12, np.nan), "finite and not all zero"),
    (np.array(["a"] * 12), "expected a .npy array of numbers"),
    (np.array([{"a": 1}] * 12, dtype=object), "not a .npy array"),
    (b"not a numpy file", "not a .npy array"),
])
def test_a_bad_direction_file_is_a_one_line_usage_error(tiny, tmp_path, content, message):
    path = tmp_path / "v.npy"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        np.save(path, content, allow_pickle=True)
    with pytest.raises(UsageError, match=message) as error:
        visual_objective(f"conv2:@{path}", tiny, None)
    assert str(error.value).startswith(f"TARGET conv2:@{path}: {path}:")
    assert "\n" not in str(error.value)


def test_a_pickle_is_never_loaded(tiny, tmp_path):
    path = tmp_path / "v.npy"
    path.write_bytes(pickle.dumps(np.ones(12)))
    with pytest.raises(UsageError, match="not a .npy array"):
        visual_objective(f"conv2:@{path}", tiny, None)
