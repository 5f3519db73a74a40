"""`python -m dreamer gallery`: one labelled cell per layer, each a dream at that layer."""

from __future__ import annotations

import numpy as np
import torch
from conftest import shared_path
from PIL import Image

import converters
from dreamer.__main__ import main
from dreamer.jobs.sheets import LABEL_HEIGHT, default_layers


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


def gallery_args(tmp_path, name: str, *more: str) -> list[str]:
    """A small gallery of the tiny net's conv1 and conv2 into tmp_path/NAME."""
    tiny = shared_path("models", "tiny")
    return ["gallery", str(shared_path("models", "_common", "cat.jpg")), *more,
            "--model", str(tiny / "deploy.prototxt"), "--weights", str(tiny / "tiny.caffemodel"),
            "--layers", "conv1,conv2", "--size", "32", "--octaves", "1", "--quiet",
            "-o", str(tmp_path / name)]


def test_gallery_takes_iterations_and_rate_after_src_as_the_other_commands(tmp_path, capsys):
    assert main(gallery_args(tmp_path, "new.png", "2", "0.05")) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(gallery_args(tmp_path, "old.png", "--iterations", "2", "--rate", "0.05")) == 0
    assert capsys.readouterr().err.strip().splitlines() == [
        "warning: --iterations and --rate are deprecated: give ITERATIONS RATE after SRC"]
    assert (tmp_path / "new.png").read_bytes() == (tmp_path / "old.png").read_bytes()
    assert main(gallery_args(tmp_path, "default.png")) == 0
    assert (tmp_path / "default.png").read_bytes() != (tmp_path / "new.png").read_bytes()


def test_gallery_refuses_iterations_given_twice_and_a_bad_device(tmp_path, capsys):
    assert main(gallery_args(tmp_path, "g.png", "--iterations", "2", "--device", "nope")) == 2
    err = capsys.readouterr().err.strip().splitlines()  # an error stays one line
    assert len(err) == 1 and err[0].startswith("error: ") and "nope" in err[0]
    assert main(gallery_args(tmp_path, "g.png", "2", "--iterations", "3")) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: give ITERATIONS once: after SRC, not also as --iterations"]
    assert main(gallery_args(tmp_path, "g.png", "2", "0.05", "--device", "toaster")) == 2
    assert "toaster" in capsys.readouterr().err
    assert main(gallery_args(tmp_path, "g.png", "0", "0.05")) == 2
    assert "ITERATIONS" in capsys.readouterr().err
    assert not (tmp_path / "g.png").exists()


def test_gallery_dreams_on_the_device_and_precision_given(tmp_path, capsys):
    """Not always on the CPU: --device and --precision as for the other commands."""
    assert main(gallery_args(tmp_path, "a.png", "2", "0.05", "--device", "cpu",
                             "--precision", "fp32")) == 0
    if not torch.cuda.is_available():
        assert main(gallery_args(tmp_path, "b.png", "2", "0.05", "--device", "cuda")) == 2
        assert "cuda" in capsys.readouterr().err
        assert not (tmp_path / "b.png").exists()
