"""Tiling by output tiles (dreamer/loops/gradient.py): the tiles split the targets' units
between them, each window holds its units' receptive fields, and the summed gradient is
the untiled one for targets of different strides (the single-target cases are in
test_dream_options.py). Measured: GoogLeNet inception_3b + 4c at 420×420, tile 96 (2×2
tiles): 3.2e-7 of max|g|."""

from __future__ import annotations

import math

import pytest
import torch
from compare import assert_gradient_close
from test_dream_options import caffe_input, cat

from dreamer.loops.gradient import DreamGradient, Span, field_spans, output_tiles, units_in
from dreamer.plan.plan import objective_for
from dreamer.plan.targets import Target


@pytest.mark.parametrize("size, tile", [(4000, 512), (3000, 512), (300, 100), (40, 64)])
def test_tiles_split_the_field_starts_and_windows_hold_their_fields(size, tile):
    align, reach = 16, 298  # GoogLeNet's inception_4c/output: stride 16, field 299
    tiles = output_tiles(size, tile, align, reach)
    starts = [bounds for bounds, _ in tiles]
    assert starts[0][0] == -math.inf and starts[-1][1] == math.inf
    assert all(a[1] == b[0] for a, b in zip(starts, starts[1:]))  # no gap, no overlap
    for (lo, hi), window in tiles:
        assert window.start == max(0, lo) and window.start % align == 0
        # a unit starting before hi sees up to hi - 1 + reach: inside, or the image's end
        assert window.stop == size if hi == math.inf else window.stop == min(size, hi + reach)
        assert window.stop - window.start > min(reach, size - 1)  # never a sliver


def test_units_in_a_window_are_those_whose_fields_start_in_the_tile():
    span = Span(start=(-135, -135), end=(163, 163), jump=16)
    # window from 512: its unit j is the image's unit j + 32, whose field starts at
    # -135 + 16 (j + 32); those starting in [512, 1024) are j = 9 ... 40
    assert units_in((512, 1024), slice(512, 1322), span, 0) == slice(9, 41)
    assert units_in((-math.inf, 512), slice(0, 810), span, 1) == slice(0, 41)
    assert units_in((3584, math.inf), slice(3584, 4000), span, 1) == slice(9, None)


def test_field_spans_of_googlenet(googlenet):
    """conv1 7×7/2 pad 3, pool1 3×3/2 without padding: pixel rows -3..3, then -3..7."""
    spans = field_spans(googlenet, ["conv1/7x7_s2", "pool1/3x3_s2"])
    assert spans["conv1/7x7_s2"] == Span((-3, -3), (3, 3), 2)
    assert spans["pool1/3x3_s2"] == Span((-3, -3), (7, 7), 4)


@pytest.mark.numerical
def test_targets_of_two_strides_tiled_equal_whole(googlenet):
    targets = [Target("inception_3b/output"), Target("inception_4c/output", 0.5)]
    x = caffe_input(cat(420, 420))
    whole = DreamGradient(googlenet, objective_for(tuple(targets)))(x)[0]
    tiled = DreamGradient(googlenet, objective_for(tuple(targets)), tile=96)(x)[0]
    assert len(output_tiles(420, 96, 16, 298)) == 2  # 2×2 windows, not one
    assert isinstance(tiled, torch.Tensor) and tiled.shape == whole.shape
    assert_gradient_close(tiled.numpy(), whole.numpy(), "tiled vs whole")
