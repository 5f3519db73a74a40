"""The zoo feeding the dreamer: the user's own command sequence and a one-iteration dream on
every model the shared mirror holds (`make demo`: tests/test_demo.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, shared_path
from PIL import Image

IN_MIRROR = ["nin", "nin_cifar10", "googlenet", "squeezenet"]


def run(args: list[str], cwd, env: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def zoo_env(tmp_path):
    return {"DREAMZOO_MODELS": str(tmp_path / "models"),
            "DREAMZOO_CACHE": str(tmp_path / "cache")}


@pytest.fixture
def src(tmp_path):
    """A 256x192 photograph (the BVLC cat, scaled down)."""
    path = tmp_path / "src.jpg"
    Image.open(shared_path("models", "_common", "cat.jpg")).convert("RGB").resize(
        (256, 192), Image.BILINEAR).save(path, quality=95)
    return path


def assert_dreamed(source, result) -> None:
    before = np.asarray(Image.open(source).convert("RGB"), dtype=np.int16)
    after = np.asarray(Image.open(result).convert("RGB"), dtype=np.int16)
    assert after.shape == before.shape
    assert np.abs(after - before).mean() > 0.5, "the dream did not change the image"


def test_user_sequence_convert_then_dream_with_defaults(src, tmp_path, zoo_env):
    """`make convert MODEL=nin FROM=...`, then `python -m dreamer src.jpg conv4 20 0.01`."""
    mirror = shared_path("models")
    converted = run(["make", "-s", "convert", "MODEL=nin", f"FROM={mirror}"], ROOT, zoo_env)
    assert converted.returncode == 0, converted.stderr
    dreamed = run([sys.executable, "-m", "dreamer", "src.jpg", "conv4", "20", "0.01"],
                  tmp_path, zoo_env)
    assert dreamed.returncode == 0, dreamed.stderr
    assert_dreamed(src, tmp_path / "src_dream.png")


@pytest.mark.parametrize("name", IN_MIRROR)
def test_one_iteration_on_every_model_in_the_mirror(name, src, tmp_path, zoo_env):
    from models.registry import lookup

    mirror = shared_path("models")
    converted = run([sys.executable, "-m", "models", name, "--from", str(mirror)], ROOT,
                    zoo_env)
    assert converted.returncode == 0, converted.stderr
    out = tmp_path / f"{name}.png"
    dreamed = run([sys.executable, "-m", "dreamer", str(src), lookup(name).default_layer, "1",
                   "1.5", "--model", name, "-o", str(out)], tmp_path, zoo_env)
    assert dreamed.returncode == 0, dreamed.stderr
    assert_dreamed(src, out)

