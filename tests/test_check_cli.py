"""Refusals the CLI fuzz (tests/cli_fuzz.py) found: `python -m converters check` checks
--input-shape, --seed and an empty MODEL where they are parsed (one line naming them, exit
2), and onnxruntime's own log lines do not add to our one; `batch` makes OUTDIR only once
every check that can refuse the whole command has passed.

The tiny Caffe net (35×35 input, 3 channels), exported to ONNX once per module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from converters.__main__ import main as converters_main
from converters.onnx.cli import compare
from converters.onnx.export import to_onnx
from converters.spec import ConversionError
from dreamer.__main__ import main as dreamer_main


@pytest.fixture(scope="module")
def tiny_onnx(tiny, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("check") / "tiny.onnx"
    path.write_bytes(to_onnx(tiny).SerializeToString())
    return path


def check(*argv: str) -> int:
    """`python -m converters check ARGV...`'s exit status (argparse's errors exit)."""
    try:
        return converters_main(["check", *argv])
    except SystemExit as e:
        return e.code


def error_line(capfd) -> str:
    """The one error line on stderr (argparse's usage lines before it allowed); stdout
    empty."""
    out, err = capfd.readouterr()
    lines = err.splitlines()
    assert out == "" and "Traceback" not in err, err
    usage = [line for line in lines[:-1] if not line.startswith(("usage:", " "))]
    assert lines and not usage, err  # nothing but argparse's usage before the error line
    return lines[-1]


@pytest.mark.parametrize("shape, message", [
    ("0 0 0 0", "argument --input-shape: must be an integer of at least 1 (got '0')"),
    ("-1 3 35 35", "argument --input-shape: must be an integer of at least 1 (got '-1')"),
    ("1 3 35 ١", "argument --input-shape: must be an integer of at least 1 (got '١')"),
    ("1000000 3 35 35", "error: --input-shape 1000000 3 35 35: N is 1000000, more than the 64"),
    ("64 3 2000 2000", "error: --input-shape 64 3 2000 2000: input shape [64, 3, 2000, 2000] "
                       "has 768,000,000 elements, more than the 67,108,864"),
    ("1 4 35 35", "error: --input-shape 1 4 35 35: C is 4, the net's input has 3 channels"),
    ("1 3 1 1", "error: --input-shape 1 3 1 1: layer 'conv1'"),
    ("1 3 40 48", "error: --input-shape 1 3 40 48: layer 'fc3'"),
])
def test_check_refuses_input_shape_by_name(shape, message, tiny_onnx, capfd):
    assert check(str(tiny_onnx), "--input-shape", *shape.split()) == 2
    assert message in error_line(capfd)


@pytest.mark.parametrize("seed", ["-7", "2147483648", "x"])
def test_check_refuses_seed_by_name(seed, tiny_onnx, capfd):
    assert check(str(tiny_onnx), "--seed", seed) == 2
    assert error_line(capfd).endswith(
        f"argument --seed: must be an integer from 0 to 2147483647 (got {seed!r})")


def test_check_and_export_name_an_empty_model(capfd):
    assert check("") == 2
    assert error_line(capfd).endswith("argument model: is empty; give the path of the file")
    with pytest.raises(SystemExit, match="2"):
        converters_main(["export", "", "-o", "net.onnx"])
    assert error_line(capfd).endswith("argument model: is empty; give the path of the file")


def test_check_takes_a_good_input_shape_and_seed(tiny_onnx, capfd):
    assert check(str(tiny_onnx), "--input-shape", "2", "3", "35", "35",
                 "--seed", "2147483647") == 0
    out, err = capfd.readouterr()
    assert "on 2×3×35×35 random input" in out and out.rstrip().splitlines()[-1].startswith(
        "OK: largest relative difference") and err == ""


def test_onnxruntime_logs_nothing_of_its_own(tiny_onnx, capfd):
    """An input onnxruntime cannot run: our error says why; its own logger, which writes
    to the process's stderr from C++, stays silent."""
    x = np.zeros((1, 3, 1, 1), np.float32)
    with pytest.raises(ConversionError, match="onnxruntime cannot run it .*Invalid input shape"):
        compare(tiny_onnx, x)
    assert capfd.readouterr().err == ""


def test_batch_refused_leaves_no_outdir(tiny_cli_args, tmp_path, capfd):
    """A bad --guide is refused (exit 2) before OUTDIR or its record is made."""
    from PIL import Image

    Image.new("RGB", (40, 40), (90, 120, 150)).save(tmp_path / "a.png")
    (tmp_path / "list.txt").write_text("a.png\nnothere.png\n")
    outdir = tmp_path / "outdir"
    argv = ["batch", str(tmp_path / "list.txt"), "conv2", "1", "0.05", *tiny_cli_args,
            "--quiet", "--guide", "/dev/null", "-o", str(outdir)]
    assert dreamer_main(argv) == 2
    assert "/dev/null" in error_line(capfd)
    assert not outdir.exists()
