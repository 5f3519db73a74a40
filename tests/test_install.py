"""Installing: where converted models go (checkout, installed elsewhere, DREAMZOO_MODELS),
a real non-editable install, and the message for the optional onnxruntime (`check`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, shared_path

import models
import models.converted

MODEL_ENV = ("DREAMZOO_MODELS", "XDG_DATA_HOME")


@pytest.fixture
def clean_env(monkeypatch):
    for key in MODEL_ENV:
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def test_a_checkout_keeps_models_in_its_models_folder(clean_env):
    assert models.models_root() == ROOT / "models"


def test_an_installed_package_uses_the_per_user_data_folder(clean_env, tmp_path):
    installed = tmp_path / "site-packages" / "models" / "converted.py"
    clean_env.setattr(models.converted, "__file__", str(installed))
    clean_env.setenv("HOME", str(tmp_path / "home"))
    assert models.models_root() == tmp_path / "home" / ".local" / "share" / "dreamzoo" / "models"
    clean_env.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert models.models_root() == tmp_path / "data" / "dreamzoo" / "models"


def test_dreamzoo_models_overrides_everything(clean_env, tmp_path):
    clean_env.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    clean_env.setenv("DREAMZOO_MODELS", str(tmp_path / "mine"))
    assert models.models_root() == tmp_path / "mine"


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in MODEL_ENV}
    return subprocess.run(args, cwd=cwd, env={**clean, **env}, capture_output=True, text=True,
                          timeout=300)


def convert_and_list(python_path: Path, cwd: Path, env: dict[str, str]) -> str:
    """Convert the tiny Caffe net as NAME=tiny_net, then list its layers through the dreamer."""
    tiny = shared_path("models", "tiny")
    env = {"PYTHONPATH": str(python_path), **env}
    converted = run([sys.executable, "-m", "models", "--prototxt", str(tiny / "deploy.prototxt"),
                     "--caffemodel", str(tiny / "tiny.caffemodel"), "--name", "tiny_net"],
                    cwd, env)
    assert converted.returncode == 0, converted.stderr
    listed = run([sys.executable, "-m", "dreamer", "--list-layers", "--model", "tiny_net"],
                 cwd, env)
    assert listed.returncode == 0, listed.stderr
    return listed.stdout


def test_convert_and_dreamer_agree_on_dreamzoo_models(tmp_path):
    listing = convert_and_list(ROOT, tmp_path, {"DREAMZOO_MODELS": str(tmp_path / "mine")})
    assert (tmp_path / "mine" / "tiny_net" / "network.json").is_file()
    assert not (ROOT / "models" / "tiny_net").exists()
    assert listing.strip()


def installable_copy(destination: Path) -> Path:
    """The package's sources only (a checkout's models/ may also hold converted models)."""
    destination.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, destination / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("converters", "dreamer"):
        shutil.copytree(ROOT / package, destination / package, ignore=skip)
    (destination / "models").mkdir()
    for source in (ROOT / "models").glob("*.py"):
        shutil.copy2(source, destination / "models" / source.name)
    return destination


def test_a_real_install_writes_models_to_the_user_data_folder(tmp_path):
    """`pip install .` (not editable; no downloads: --no-deps, this environment's setuptools),
    then convert and dream from another folder: nothing lands in the installed package."""
    source = installable_copy(tmp_path / "src")
    site = tmp_path / "site"
    installed = run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                     "--no-build-isolation", "--no-index", "--target", str(site), str(source)],
                    tmp_path, {})
    assert installed.returncode == 0, installed.stderr
    assert "deprecat" not in installed.stderr.lower(), installed.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    data = tmp_path / "data"
    listing = convert_and_list(site, elsewhere, {"XDG_DATA_HOME": str(data)})
    assert (data / "dreamzoo" / "models" / "tiny_net" / "network.json").is_file()
    assert not (site / "models" / "tiny_net").exists()
    assert listing.strip()


def test_check_without_onnxruntime_says_how_to_install_it(tmp_path):
    """onnxruntime is the `check` extra: without it, one line naming the extra, exit 2."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    # Imported at start-up: makes `import onnxruntime` fail as if it were not installed.
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['onnxruntime'] = None\n")
    result = run([sys.executable, "-m", "converters", "check", str(tmp_path / "any.onnx")],
                 tmp_path, {"PYTHONPATH": os.pathsep.join([str(blocker), str(ROOT)])})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "onnxruntime" in lines[0] and "pip install 'dreamzoo[check]'" in lines[0]
