"""`python -m dreamer sweep`: a contact sheet of layers × channels, each cell the still
dreamer's dream of that channel alone; on Ray workers the same sheet (1 thread each), and
the gallery likewise. The tiny Caffe net (real Caffe weights), 64×48 cells."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_path
from PIL import Image

from dreamer.__main__ import main
from dreamer.cli.sweep import parse_channels
from dreamer.jobs.sheets import LABEL_HEIGHT

DREAM = ("conv1,conv2", "2", "0.05", "--octaves", "1", "--channels", "0-2", "--size", "64")


@pytest.fixture
def cat():
    """The shared cat photo (480×360)."""
    return shared_path("models", "_common", "cat.jpg")


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_each_cell_is_the_still_dream_of_its_layer_and_channel(cat, tiny_cli_args, tmp_path):
    assert main(["sweep", str(cat), *DREAM, *tiny_cli_args, "--quiet",
                 "-o", str(tmp_path / "s.png")]) == 0
    sheet = pixels(tmp_path / "s.png")
    cell_h = 48 + LABEL_HEIGHT  # cat.jpg is 480×360: 64×48 cells
    assert sheet.shape == (2 * cell_h, 3 * 64, 3)  # rows conv1, conv2; columns channels 0-2
    cells = {(r, c): sheet[r * cell_h:r * cell_h + 48, c * 64:(c + 1) * 64]
             for r in range(2) for c in range(3)}
    # The source as each cell saw it (the cat scaled to 64 wide), dreamed by the dreamer.
    Image.open(cat).convert("RGB").resize((64, 48), Image.BICUBIC).save(tmp_path / "src.png")
    for (r, c), cell in cells.items():
        out = tmp_path / f"{r}{c}.png"
        assert main([str(tmp_path / "src.png"), ("conv1", "conv2")[r], "2", "0.05", "--octaves",
                     "1", "--channel", str(c), *tiny_cli_args, "--quiet", "-o", str(out)]) == 0
        assert np.array_equal(cell, pixels(out)), (r, c)
    assert not np.array_equal(cells[1, 0], cells[1, 1])  # channels differ
    labels = sheet[48:cell_h, :64]
    assert (labels.min(axis=2) < 128).sum() > 20  # text under the cell


def test_sweep_and_gallery_on_ray_workers_equal_them_in_this_process(
        cat, tiny_cli_args, tmp_path, ray_cluster, one_thread):
    for command, options in (("sweep", DREAM),
                             ("gallery", ("--layers", "conv1,conv2", "--iterations", "2",
                                          "--octaves", "1", "--size", "64"))):
        here, there = tmp_path / f"{command}_here.png", tmp_path / f"{command}_ray.png"
        assert main([command, str(cat), *options, *tiny_cli_args, "--quiet", "-o", str(here)]) == 0
        done = ray_cluster.dreamer(command, str(cat), *options, *tiny_cli_args, "--quiet",
                                   "-o", str(there))
        assert done.returncode == 0, done.stderr
        assert here.read_bytes() == there.read_bytes(), command


def test_channels_are_parsed_and_refused_in_one_line(cat, tiny_cli_args, tmp_path, capsys):
    assert parse_channels("0-3,7") == [0, 1, 2, 3, 7]
    code = main(["sweep", str(cat), "conv1", "2", "0.05", "--channels", "6-9", *tiny_cli_args,
                 "-o", str(tmp_path / "s.png")])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().splitlines() == [
        "error: --channel 8 is out of range: layer 'conv1' has 8 channels"]
    assert not (tmp_path / "s.png").exists()
    for bad in ("3-1", "a", "1-", ""):
        with pytest.raises(ValueError, match="--channels"):
            parse_channels(bad)
