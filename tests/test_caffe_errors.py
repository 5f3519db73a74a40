"""Bad input: one line on stderr, exit status 2, no output directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, shared_path


def convert(*args: str | Path, out: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "converters", *map(str, args), "-o", str(out)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}*")), "staging directory left behind"
    return result


@pytest.fixture
def tiny_dir():
    """The folder of the tiny Caffe net's files (conftest's `tiny` is the net itself)."""
    return shared_path("models", "tiny")


def test_truncated_caffemodel(tiny_dir, tmp_path):
    data = (tiny_dir / "tiny.caffemodel").read_bytes()
    bad = tmp_path / "truncated.caffemodel"
    bad.write_bytes(data[: len(data) // 2])
    result = convert(tiny_dir / "deploy.prototxt", bad, out=tmp_path / "out")
    assert "truncated.caffemodel" in result.stderr


def test_random_bytes_caffemodel(tiny_dir, tmp_path):
    bad = tmp_path / "random.caffemodel"
    bad.write_bytes(bytes(range(256)) * 40)
    result = convert(tiny_dir / "deploy.prototxt", bad, out=tmp_path / "out")
    assert "random.caffemodel" in result.stderr


def test_prototxt_syntax_error_names_the_line(tiny_dir, tmp_path):
    lines = (tiny_dir / "deploy.prototxt").read_text().splitlines()
    lines[6] = lines[6].replace("{", "{ {")
    bad = tmp_path / "broken.prototxt"
    bad.write_text("\n".join(lines))
    result = convert(bad, tiny_dir / "tiny.caffemodel", out=tmp_path / "out")
    assert "broken.prototxt:7" in result.stderr


def convert_edited(tiny_dir: Path, tmp_path: Path, name: str, old: str, new: str):
    """Convert the tiny net with `old` replaced by `new` in its prototxt, saved as `name`."""
    bad = tmp_path / name
    bad.write_text((tiny_dir / "deploy.prototxt").read_text().replace(old, new))
    return convert(bad, tiny_dir / "tiny.caffemodel", out=tmp_path / "out")


def test_shape_disagreement_names_layer_and_shapes(tiny_dir, tmp_path):
    result = convert_edited(tiny_dir, tmp_path, "wider.prototxt", "num_output: 8",
                            "num_output: 9")
    assert "conv1" in result.stderr and "[9, 3, 5, 5]" in result.stderr \
        and "[8, 3, 5, 5]" in result.stderr


def test_unknown_layer_type(tiny_dir, tmp_path):
    result = convert_edited(tiny_dir, tmp_path, "unknown.prototxt", 'type: "LRN"',
                            'type: "Frobnicate"')
    assert "norm1" in result.stderr and "Frobnicate" in result.stderr


def test_missing_file(tiny_dir, tmp_path):
    result = convert(tiny_dir / "deploy.prototxt", tmp_path / "nope.caffemodel",
                     out=tmp_path / "out")
    assert "nope.caffemodel" in result.stderr


def test_good_conversion_prints_the_table(tiny_dir, tmp_path):
    out = tmp_path / "tiny"
    result = subprocess.run([sys.executable, "-m", "converters", str(tiny_dir / "deploy.prototxt"),
                             str(tiny_dir / "tiny.caffemodel"), "-o", str(out)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "pool1" in result.stdout and "8×8×8" in result.stdout
    assert (out / "network.json").exists() and (out / "weights.safetensors").exists()
