"""Every dream option does what it says, checked against numbers computed here, apart from
the code under test: output gradients built by hand and pushed back with autograd (or
finite differences), blur against scipy.ndimage.gaussian_filter, the Laplacian pyramid
re-implemented with scipy.ndimage, tiling against the untiled gradient, and the octave
guard against the sizes at which the net itself fails.

Nets: the tiny Caffe net (35×35 declared, runs from 7×7), NIN with the stand-in formula
weights, and the real GoogLeNet. Measured (this machine): --channel, objectives and guide
equal the hand-built Jᵀ·dy to float32 rounding (0 to 2e-7 of max|g|), several layers 2e-7;
blur vs gaussian_filter 1.3e-7; Laplacian vs the scipy pyramid ≤ 5e-7; tiled vs whole
GoogLeNet inception_3b at 300×400, tile 128: 3.7e-7 of max|g| (NIN cccp6 7e-7); margin 16:
1.4e-7 far from the tile borders, 0.32 at them.
"""

from __future__ import annotations

import copy
import functools
import warnings

import numpy as np
import pytest
import scipy.ndimage as nd
import torch
from compare import assert_gradient_close, high_frequency_share, relative_error
from conftest import shared_path
from PIL import Image

import dreamer
from converters.spec import ConversionError
from dreamer.loops.google import guide_features
from dreamer.loops.gradient import DreamGradient
from dreamer.plan.plan import Options, objective_for
from dreamer.plan.stages import gaussian_blur, gradient_stages, laplacian_normalise
from dreamer.plan.targets import Target, parse_targets

pytestmark = pytest.mark.numerical
CAFFE_MEAN_BGR = np.array([104.0, 117.0, 123.0], np.float32).reshape(3, 1, 1)


def cat(width: int, height: int) -> np.ndarray:
    """cat.jpg resized, H×W×3 uint8 RGB."""
    image = Image.open(shared_path("models", "_common", "cat.jpg")).convert("RGB")
    return np.asarray(image.resize((width, height), Image.BILINEAR), np.uint8).copy()


def caffe_input(rgb: np.ndarray) -> torch.Tensor:
    """Caffe's ImageNet preprocessing written out: BGR, minus (104, 117, 123); 1×3×H×W."""
    bgr = rgb[:, :, ::-1].transpose(2, 0, 1).astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(bgr - CAFFE_MEAN_BGR))[None]


def vjp(net, x: torch.Tensor, layer_dy: dict) -> torch.Tensor:
    """Σ over layers of Jᵀ·dy, dy = layer_dy[layer](y) (a constant), by autograd."""
    x = x.detach().clone().requires_grad_(True)
    outs = net.forward_to(x, list(layer_dy))
    loss = sum((layer_dy[name](outs[name].detach()) * outs[name]).sum() for name in layer_dy)
    (grad,) = torch.autograd.grad(loss, x)
    return grad


rel = functools.partial(relative_error, floor=0)  # max|ours − theirs| relative to max|theirs|


def first_gradient(net, rgb: np.ndarray, layer, **options) -> tuple[np.ndarray, np.ndarray]:
    """(input, gradient) of the first step of `dreamer.dream` with one octave, no jitter,
    in fp32."""
    trace: dict = {}
    dreamer.dream(rgb, net, layer, 1, 0.01, octaves=1, jitter=0, trace=trace,
                  precision="fp32", **options)
    return trace["first_input"], trace["first_grad"]


# --- --channel ---------------------------------------------------------------------------


def test_channel_backpropagates_only_that_channel(tiny):
    rgb = cat(45, 41)
    data, grad = first_gradient(tiny, rgb, "conv2", channel=5)
    np.testing.assert_array_equal(data, caffe_input(rgb)[0].numpy())

    def masked(y):
        dy = torch.zeros_like(y)
        dy[:, 5] = y[:, 5]
        return dy

    expected = vjp(tiny, torch.from_numpy(data)[None], {"conv2": masked})[0]
    everything = vjp(tiny, torch.from_numpy(data)[None], {"conv2": lambda y: y})[0]
    assert rel(grad, expected) <= 1e-5
    assert rel(everything, expected) > 0.1  # really a different gradient
    # The sum over all channels of the single-channel gradients is the all-channel one.
    total = sum(first_gradient(tiny, rgb, "conv2", channel=c)[1] for c in range(12))
    assert rel(total, everything) <= 1e-4


@pytest.mark.parametrize("channel", [12, 99])  # -1: tests/test_cli_numbers.py
def test_channel_out_of_range_is_a_clear_error(tiny, channel):
    with pytest.raises(ValueError, match=rf"channel {channel} is out of range: the layer has "
                                         r"12 channels"):
        dreamer.dream(cat(40, 40), tiny, "conv2", 1, 0.01, channel=channel, octaves=1)


# --- several layers, weights ------------------------------------------------------------


def test_several_layers_sum_their_gradients(tiny):
    rgb = cat(43, 47)
    x = caffe_input(rgb)
    norm1 = vjp(tiny, x, {"norm1": lambda y: y})[0]  # each computed on its own
    conv2 = vjp(tiny, x, {"conv2": lambda y: y})[0]
    _, both = first_gradient(tiny, rgb, "norm1,conv2")
    assert rel(both, norm1 + conv2) <= 1e-5
    _, weighted = first_gradient(tiny, rgb, "norm1:1,conv2:0.5")
    assert rel(weighted, norm1 + 0.5 * conv2) <= 1e-5
    _, weighted = first_gradient(tiny, rgb, "conv2:-2,norm1:0.25")
    assert rel(weighted, 0.25 * norm1 - 2 * conv2) <= 1e-5
    assert rel(norm1 + conv2, norm1 + 0.5 * conv2) > 0.05  # the weight matters


def test_layer_lists_parse_to_weighted_targets(tiny, nin):
    assert parse_targets(tiny, "norm1,conv2") == [Target("norm1"), Target("conv2")]
    assert parse_targets(tiny, "norm1:1,conv2:0.5") == [Target("norm1", 1.0),
                                                        Target("conv2", 0.5)]
    assert parse_targets(nin, "conv4:2,cccp6") == [Target("conv4-1024", 2.0),
                                                   Target("cccp6", 1.0)]
    assert parse_targets(tiny, 4) == [Target("norm1")]


# --- --objective -------------------------------------------------------------------------


def topk_dy(fraction: float):
    def dy(y: torch.Tensor) -> torch.Tensor:
        values = y.numpy().astype(np.float64)
        count = max(1, int(round(values.size * fraction)))
        keep = np.zeros(values.size, bool)
        keep[np.argsort(-values.ravel(), kind="stable")[:count]] = True
        return torch.from_numpy(np.where(keep.reshape(values.shape), values, 0).astype(np.float32))
    return dy


DOCUMENTED_DY = {
    "l2": lambda y: y,
    "mean": lambda y: torch.ones_like(y),
    "sign": lambda y: torch.from_numpy(np.sign(y.numpy())),
    "square": lambda y: y ** 2,
}


@pytest.mark.parametrize("objective", [*DOCUMENTED_DY, "topk"])
def test_objective_gradient_is_jacobian_transpose_dy(tiny, objective):
    rgb = cat(41, 39)
    options = {"objective": objective}
    dy = DOCUMENTED_DY.get(objective)
    if objective == "topk":
        options["topk"] = 0.05
        dy = topk_dy(0.05)
    data, grad = first_gradient(tiny, rgb, "conv2", **options)
    expected = vjp(tiny, torch.from_numpy(data)[None], {"conv2": dy})[0]
    assert rel(grad, expected) <= 1e-5
    if objective != "l2":
        classic = vjp(tiny, torch.from_numpy(data)[None], {"conv2": lambda y: y})[0]
        assert rel(classic, expected) > 0.05  # the objective changes the gradient


def test_topk_keeps_the_requested_fraction(tiny):
    x = caffe_input(cat(41, 39))
    y = tiny.forward_to(x, ["conv2"])["conv2"]
    for fraction in (0.01, 0.05, 0.3):
        gradient = objective_for((Target("conv2"),), Options(objective="topk", topk=fraction))
        dy = gradient.terms({"conv2": y})[0][1]  # the first target's
        kept = int((dy != 0).sum())
        assert kept == max(1, round(y.numel() * fraction))
        assert float(y[dy == 0].max()) <= float(y[dy != 0].min())  # the largest ones


LOSSES = {  # the functions whose gradients the documented dy are
    "l2": lambda y: 0.5 * (y ** 2).sum(),
    "mean": lambda y: y.sum(),
    "sign": lambda y: y.abs().sum(),
    "square": lambda y: (y ** 3).sum() / 3,
}


@pytest.mark.parametrize("objective", list(LOSSES))
def test_objective_matches_finite_differences_of_its_loss(tiny, objective):
    """No autograd on our side: a float64 copy of the net, central differences of the
    documented loss along random directions."""
    net = copy.deepcopy(tiny).double()
    x = caffe_input(cat(23, 21)).double()
    grad = DreamGradient(net, objective_for((Target("norm1"),), Options(objective=objective)))(x)
    rng = np.random.RandomState(1)

    def loss(z):
        with torch.no_grad():
            return float(LOSSES[objective](net.forward_to(z, ["norm1"])["norm1"]))

    for _ in range(3):
        v = torch.from_numpy(rng.randn(*x.shape))
        eps = 1e-4
        numeric = (loss(x + eps * v) - loss(x - eps * v)) / (2 * eps)
        analytic = float((grad * v).sum())
        assert abs(numeric - analytic) <= 1e-5 * abs(analytic) + 1e-6


# --- --guide -----------------------------------------------------------------------------


def test_guide_dy_is_the_best_matching_guide_feature(tiny):
    rgb, guide_rgb = cat(29, 31), cat(60, 52)[::-1, ::-1]  # a different picture
    x, g = caffe_input(rgb), caffe_input(np.ascontiguousarray(guide_rgb))
    pre = tiny.spec.input_preprocessing()
    gradient = DreamGradient(tiny, objective_for((Target("norm1"),), Options(guide=guide_rgb))
                             .bound(guide_features(tiny, pre, "cpu")))
    grad = gradient(x)

    with torch.no_grad():
        features = tiny.forward_to(g, ["norm1"])["norm1"][0].numpy().astype(np.float64)
    guide_columns = features.reshape(features.shape[0], -1)  # C × positions

    def best_match(y):
        values = y[0].numpy().astype(np.float64)
        dy = np.empty_like(values)
        for i in range(values.shape[1]):
            for j in range(values.shape[2]):
                scores = [float(values[:, i, j] @ guide_columns[:, k])
                          for k in range(guide_columns.shape[1])]
                dy[:, i, j] = guide_columns[:, int(np.argmax(scores))]
        return torch.from_numpy(dy.astype(np.float32))[None]

    expected = vjp(tiny, x, {"norm1": best_match})
    assert rel(grad, expected) <= 1e-5
    plain = vjp(tiny, x, {"norm1": lambda y: y})
    assert rel(plain, expected) > 0.05
    # Through dream(): the same gradient at the first step.
    _, first = first_gradient(tiny, rgb, "norm1", guide=guide_rgb)
    assert rel(first, expected[0]) <= 1e-5


# --- --blur, --laplacian -----------------------------------------------------------------


@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_blur_is_a_gaussian_filter_of_the_gradient(tiny, sigma):
    x = caffe_input(cat(64, 56))
    plain = vjp(tiny, x, {"conv2": lambda y: y})[0].numpy().astype(np.float64)
    blurred = DreamGradient(tiny, objective_for((Target("conv2"),)),
                            gradient_stages(sigma, 0))(x)[0].numpy()
    reference = nd.gaussian_filter(plain, (0, sigma, sigma), truncate=3.0)
    r = int(3 * sigma + 0.5)
    inner = (slice(None), slice(r, -r), slice(r, -r))
    assert rel(blurred[inner], reference[inner]) <= 1e-5
    # At the borders: reflection without repeating the edge pixel (scipy's "mirror").
    mirror = nd.gaussian_filter(plain, (0, sigma, sigma), truncate=3.0, mode="mirror")
    assert rel(blurred, mirror) <= 1e-5
    assert high_frequency_share(blurred) < 0.25 * high_frequency_share(plain)


def test_blur_smooths_the_dream(tiny):
    rgb = cat(64, 56)
    base = rgb.astype(np.float64)
    common = {"octaves": 1, "jitter": 0}
    sharp = dreamer.dream(rgb, tiny, "conv2", 3, 0.05, raw=True, **common) - base
    smooth = dreamer.dream(rgb, tiny, "conv2", 3, 0.05, raw=True, blur=2.0, **common) - base
    sharp, smooth = sharp.transpose(2, 0, 1), smooth.transpose(2, 0, 1)
    assert np.abs(smooth).max() > 1  # it did dream
    assert high_frequency_share(smooth) < 0.5 * high_frequency_share(sharp)


def test_blur_on_an_image_smaller_than_the_kernel():
    x = torch.from_numpy(np.random.RandomState(0).randn(1, 3, 4, 5))
    out = gaussian_blur(x, 2.0)[0].numpy()
    reference = nd.gaussian_filter(x[0].numpy(), (0, 2.0, 2.0), truncate=3.0, mode="nearest")
    assert out.shape == (3, 4, 5) and rel(out, reference) <= 1e-6


BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16


def _down(x: np.ndarray) -> np.ndarray:
    low = nd.convolve1d(nd.convolve1d(x, BINOMIAL, axis=-2, mode="nearest"), BINOMIAL,
                        axis=-1, mode="nearest")
    return low[:, ::2, ::2]


def _up(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    zoom = (1, shape[0] / x.shape[1], shape[1] / x.shape[2])
    return nd.zoom(x, zoom, order=1, grid_mode=True, mode="nearest")


def laplacian_reference(grad: np.ndarray, levels: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """scipy re-implementation: binomial 5×5 pyramid, each level / its std, merged back."""
    bands, current = [], grad
    for _ in range(levels - 1):
        if min(current.shape[1:]) < 4:
            break
        low = _down(current)
        bands.append(current - _up(low, current.shape[1:]))
        current = low
    levels_out = [b / (b.std(ddof=1) + 1e-8) for b in [*bands, current]]
    out = levels_out[-1]
    for band in reversed(levels_out[:-1]):
        out = _up(out, band.shape[1:]) + band
    return out, levels_out


@pytest.mark.parametrize("levels", [1, 3, 4, 12])
def test_laplacian_normalises_each_pyramid_level(tiny, levels):
    x = caffe_input(cat(61, 50))
    plain = vjp(tiny, x, {"conv2": lambda y: y})[0].numpy().astype(np.float64)
    ours = DreamGradient(tiny, objective_for((Target("conv2"),)),
                         gradient_stages(0.0, levels))(x)[0].numpy()
    reference, _ = laplacian_reference(plain, levels)
    assert rel(ours, reference) <= 1e-4
    if levels == 1:
        np.testing.assert_allclose(ours, plain / plain.std(ddof=1), rtol=1e-4, atol=1e-6)
    # Normalised per level: the gradient's overall scale, and that of a single level, no
    # longer matters.
    scaled = laplacian_normalise(torch.from_numpy(plain * 1e3)[None], levels)[0].numpy()
    assert rel(scaled, ours) <= 1e-4


def test_laplacian_balances_low_and_high_frequencies():
    """A gradient that is almost all low frequency: normalised per level, the fine detail
    weighs as much as the coarse shape."""
    rng = np.random.RandomState(0)
    rows = np.arange(64)[None, :, None] * np.ones((3, 1, 64))
    grad = 1000 * np.sin(2 * np.pi * rows / 64) + rng.randn(3, 64, 64)
    out = laplacian_normalise(torch.from_numpy(grad)[None], 4)[0].numpy()
    assert high_frequency_share(out) > 1000 * high_frequency_share(grad)
    assert rel(out, laplacian_reference(grad, 4)[0]) <= 1e-6


def test_blur_then_laplacian(tiny):
    x = caffe_input(cat(50, 47))
    plain = vjp(tiny, x, {"norm1": lambda y: y})[0].numpy().astype(np.float64)
    ours = DreamGradient(tiny, objective_for((Target("norm1"),)),
                         gradient_stages(1.5, 3))(x)[0].numpy()
    blurred = nd.gaussian_filter(plain, (0, 1.5, 1.5), truncate=3.0, mode="mirror")
    assert rel(ours, laplacian_reference(blurred, 3)[0]) <= 1e-4


# --- --tile ------------------------------------------------------------------------------

TILE_CASES = {
    "googlenet": ("inception_3b/output", (300, 400), 128),
    "nin": ("cccp6", (150, 190), 64),
}


@pytest.mark.parametrize("case", list(TILE_CASES))
def test_tiled_gradient_equals_the_whole_one(request, case):
    net = request.getfixturevalue(case)
    layer, (height, width), tile = TILE_CASES[case]
    x = caffe_input(cat(width, height))
    whole = DreamGradient(net, objective_for(tuple([Target(layer)])))(x)[0]
    tiled = DreamGradient(net, objective_for(tuple([Target(layer)])), tile=tile)(x)[0]
    assert tiled.shape == whole.shape
    assert_gradient_close(tiled, whole, "tiled vs whole")
    # ...and the untiled one is Jᵀ·y (up to a ReLU kink or two: float32 rounding in a
    # different memory layout can flip the sign of a pre-activation within ~1e-5 of 0).
    expected = vjp(net, x, {layer: lambda y: y})[0]
    assert_gradient_close(whole, expected, "whole vs Jᵀ·y")


def test_tiled_with_a_small_margin_equals_away_from_tile_borders(googlenet):
    layer, field = "inception_3b/output", 91  # 7 + 2·2 + 2·4 + 2·4 + 4·8 + 4·8 (5×5 paths)
    x = caffe_input(cat(400, 300))
    whole = DreamGradient(googlenet, objective_for(tuple([Target(layer)])))(x)[0].numpy()
    tile, margin = 200, 16
    tiled = DreamGradient(googlenet, objective_for(tuple([Target(layer)])), tile=tile,
                          tile_margin=margin)(x)[0]
    tiled = tiled.numpy()
    rows, cols = np.arange(300)[:, None], np.arange(400)[None, :]
    far = (np.abs(rows - tile) >= field) & (np.abs(cols - tile) >= field)
    near = (np.abs(rows - tile) < 4) | (np.abs(cols - tile) < 4)
    assert far.sum() > 20000
    assert_gradient_close(tiled[:, far], whole[:, far], "far from the tile borders")
    scale = np.abs(whole).max()
    assert np.abs(tiled - whole)[:, near].max() >= 1e-3 * scale  # the margin was too small


def test_tiling_behind_a_fully_connected_layer_is_a_clear_error(tiny):
    with pytest.raises(ConversionError, match=r"cannot tile .*'fc3' \(InnerProduct\)"):
        DreamGradient(tiny, objective_for(tuple([Target("fc3")])), tile=16)
    with pytest.raises(ConversionError, match="cannot tile"):
        dreamer.dream(cat(40, 40), tiny, "fc3", 1, 0.01, tile=16, octaves=1)


# --- the too-small-octave guard ----------------------------------------------------------


def octave_sizes(height: int, width: int, count: int, scale: float) -> list[tuple[int, int]]:
    sizes = [(height, width)]
    for _ in range(count - 1):
        h, w = sizes[-1]
        sizes.append((int(round(h / scale)), int(round(w / scale))))
    return sizes


def runs_at(net, layer: str, size: tuple[int, int]) -> bool:
    try:
        with torch.no_grad():
            net.forward_to(torch.zeros(1, 3, *size), [layer])
    except RuntimeError:
        return False
    return True


@pytest.mark.parametrize("case", ["nin", "googlenet"])
def test_too_small_octaves_are_skipped_with_a_warning(request, case):
    net = request.getfixturevalue(case)
    layer, (height, width), octaves = {
        "nin": ("conv4-1024", (64, 80), 5),
        "googlenet": ("inception_4c/output", (90, 120), 8),
    }[case]
    sizes = octave_sizes(height, width, octaves, 1.4)
    too_small = [s for s in sizes if not runs_at(net, layer, s)]
    assert 0 < len(too_small) < octaves  # some run, some cannot
    rgb = cat(width, height)
    seen = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = dreamer.dream(rgb, net, layer, 2, 0.05, raw=True, jitter=4,
                               octaves=octaves,
                               on_octave=lambda k, data: seen.append(data.shape[:2]))
    skipped = [str(w.message) for w in caught if "skipped" in str(w.message)]
    assert len(skipped) == len(too_small)
    for (h, w), message in zip(reversed(too_small), skipped):
        assert f"({w}×{h}) skipped" in message
    assert seen == list(reversed(sizes))
    assert result.shape == rgb.shape and np.isfinite(result).all()
    assert np.abs(result - rgb).max() > 1  # the octaves that fit did dream
