"""`make demo` and the user's classic command on real GoogLeNet make dreams: the photo stays
recognisable with the network's patterns added, neither the photo itself nor noise; and the
dreamer warns when ITERATIONS × RATE can only give noise (dreamer/plan/plan.py).

The measures, against the source photo:
- PSNR: the change is visible (< 33 dB; re-saving the photo as JPEG q90 gives 36.7-38.3).
- the correlation of the two images blurred (Gaussian σ 4, grey): the photo is still there
  (≥ 0.5; noise replaces it).
- the high-frequency share of the change (energy above half Nyquist): the change is
  patterns, not pixel noise (≤ 0.5).

Measured (cat 256×192 / astronaut 512×512, GoogLeNet, default preset, 4 octaves),
as PSNR dB | blurred correlation | HF share of the change:
- dreams (4c 10 0.02, 10 0.03, 20 0.01; 4d 10 0.02; 3b, 5b 20 0.01; --preset google):
  22.2-28.6 | 0.996-0.999 | 0.14-0.20
- strong dreams (cat, 4c 10 0.1 / 10 0.2 / 10 0.3): 16.9 / 13.0 / 10.9 | 0.98 / 0.93 / 0.84 |
  0.23-0.27
- noise (4c `10 1.5`; NIN conv4 `10 1.5`, the old demo): 5.6-7.0 | -0.01-0.03 | 0.29-0.46
- uniform random pixels: 7.3-8.6 | 0.00-0.04 | 0.34-0.45
- the photo plus Gaussian pixel noise, σ 10 / 30: 28.2-28.6 / 18.9-19.4 | 1.00 | 0.72-0.74
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage as nd
from compare import high_frequency_share, psnr
from conftest import ROOT, shared_path
from PIL import Image

import dreamer

LAYER = "inception_4c/output"
NOISE_WARNING = "expect noise, not a dream"


def blurred_correlation(image: np.ndarray, source: np.ndarray) -> float:
    a, b = (nd.gaussian_filter(x.astype(np.float64).mean(axis=2), 4).ravel()
            for x in (image, source))
    return float(np.corrcoef(a, b)[0, 1])


def measures(image: np.ndarray, source: np.ndarray) -> tuple[float, float, float]:
    """(PSNR, blurred correlation, HF share of the change) of `image` against `source`."""
    change = (image.astype(np.float64) - source.astype(np.float64)).transpose(2, 0, 1)
    return psnr(image, source), blurred_correlation(image, source), high_frequency_share(change)


def assert_dream(path: Path, source_path: Path) -> None:
    image, source = (np.asarray(Image.open(p).convert("RGB")) for p in (path, source_path))
    assert image.shape == source.shape
    value, correlation, high = measures(image, source)
    print(f"{path.name}: PSNR {value:.2f} dB, blurred correlation {correlation:.3f}, "
          f"high-frequency share {high:.3f}")
    assert value < 33, "the photo came back unchanged"
    assert correlation >= 0.5, "the photo is gone: noise"
    assert high <= 0.5, "the change is pixel noise, not patterns"


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def zoo_env(tmp_path_factory) -> dict[str, str]:
    """GoogLeNet converted from the shared mirror into a temporary models folder."""
    root = tmp_path_factory.mktemp("zoo")
    env = {"DREAMZOO_MODELS": str(root / "models"), "DREAMZOO_CACHE": str(root / "cache")}
    converted = run([sys.executable, "-m", "models", "googlenet", "--from",
                     str(shared_path("models"))], root, env)
    assert converted.returncode == 0, converted.stderr
    return env


@pytest.fixture
def src(tmp_path) -> Path:
    """A 256×192 photograph (the BVLC cat, scaled down)."""
    path = tmp_path / "src.jpg"
    Image.open(shared_path("models", "_common", "cat.jpg")).convert("RGB").resize(
        (256, 192), Image.BILINEAR).save(path, quality=95)
    return path


def test_make_demo_dreams(tmp_path, zoo_env):
    """The demo's own command (`make demo FROM=...`; setup skipped with -o: the suite runs
    after `make setup`): a dream, and no noise warning."""
    demo = tmp_path / "demo"
    result = run(["make", "-s", "-o", "setup", "demo", f"FROM={shared_path('models')}",
                  f"DEMO_DIR={demo}"], ROOT, zoo_env)
    assert result.returncode == 0, result.stderr
    assert NOISE_WARNING not in result.stderr
    assert_dream(demo / "astronaut_dream.png", demo / "astronaut.png")


def test_the_classic_command_dreams(src, zoo_env):
    """The user's `python -m dreamer src.jpg LAYER 20 0.01`, with GoogLeNet."""
    result = run([sys.executable, "-m", "dreamer", "src.jpg", LAYER, "20", "0.01",
                  "--model", "googlenet"], src.parent, zoo_env)
    assert result.returncode == 0, result.stderr
    assert NOISE_WARNING not in result.stderr
    assert_dream(src.parent / "src_dream.png", src)


def test_the_old_demo_setting_is_noise_and_warned(src, zoo_env):
    """`10 1.5` (each step 1.5 standard deviations): one warning line, and the measures
    above call the result noise."""
    result = run([sys.executable, "-m", "dreamer", "src.jpg", LAYER, "10", "1.5",
                  "--model", "googlenet", "-o", "noise.png"], src.parent, zoo_env)
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if NOISE_WARNING in line]
    assert len(warned) == 1 and warned[0].startswith("warning: ")
    image, source = (np.asarray(Image.open(p).convert("RGB")) for p in
                     (src.parent / "noise.png", src))
    value, correlation, _ = measures(image, source)
    assert correlation < 0.5 and value < 10


def test_the_api_warns_for_noise_and_not_for_dreams(tiny):
    """dream() raises a UserWarning for `10 1.5`, none for the demo's settings (the tiny net:
    the warning depends on the settings, not on the net)."""
    rgb = np.asarray(Image.open(shared_path("models", "_common", "cat.jpg")).convert("RGB")
                     .resize((48, 40)))
    layer = "conv2"
    with pytest.warns(UserWarning, match=NOISE_WARNING):
        dreamer.dream(rgb, tiny, layer, 10, 1.5, octaves=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dreamer.dream(rgb, tiny, layer, 10, 0.03, octaves=1)
        dreamer.dream(rgb, tiny, layer, 20, 0.01, octaves=1)
    assert not [w for w in caught if NOISE_WARNING in str(w.message)]
