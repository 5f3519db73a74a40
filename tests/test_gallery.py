"""`python -m dreamer gallery`: one labelled cell per layer, each a dream at that layer."""

from __future__ import annotations

import numpy as np
from conftest import shared_path
from PIL import Image

import converters
from dreamer.__main__ import main
from dreamer.gallery import LABEL_HEIGHT, default_layers


def test_gallery_has_one_labelled_dream_per_layer(tmp_path):
    tiny = shared_path("models", "tiny")
    out = tmp_path / "grid.png"
    code = main(["gallery", str(shared_path("models", "_common", "cat.jpg")), "--model",
                 str(tiny / "deploy.prototxt"), "--weights", str(tiny / "tiny.caffemodel"),
                 "--layers", "conv1,norm1,conv2", "--size", "64", "--columns", "2",
                 "--octaves", "1", "--quiet", "-o", str(out)])
    assert code == 0
    sheet = np.asarray(Image.open(out).convert("RGB")).astype(int)
    cell_h, cell_w = 48 + LABEL_HEIGHT, 64  # cat.jpg is 480×360: 64×48 cells
    assert sheet.shape == (2 * cell_h, 2 * cell_w, 3)  # source + 3 layers, 2 columns
    cells = [sheet[r * cell_h:r * cell_h + 48, c * cell_w:(c + 1) * cell_w]
             for r in range(2) for c in range(2)]
    labels = [sheet[r * cell_h + 48:(r + 1) * cell_h, c * cell_w:(c + 1) * cell_w]
              for r in range(2) for c in range(2)]
    for cell in cells[1:]:  # every layer's cell is a dream, not the source
        assert np.abs(cell - cells[0]).mean() > 1.0
    assert np.abs(cells[1] - cells[2]).mean() > 1.0  # and the layers differ
    for label in labels:  # each has text: dark pixels on the white strip
        assert (label.min(axis=2) < 128).sum() > 20


def test_default_layers_are_spread_through_the_spatial_part_of_the_net():
    models = shared_path("models", "bvlc_googlenet")
    net = converters.load_caffe(models / "deploy.prototxt",
                                models / "bvlc_googlenet.caffemodel")
    layers = default_layers(net, 6)
    assert len(layers) == 6 and layers[0] == "conv1/7x7_s2"
    order = [net.layer_index[name] for name in layers]
    assert order == sorted(order)
    shapes = net.output_shapes()
    assert all(shapes[name][2] > 1 for name in layers)  # not the 1×1 pool5 or classifier
