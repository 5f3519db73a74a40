"""`python -m dreamer` as users run it: where the outputs go and what they hold, seeds,
the progress bar, --list-layers, LAYER resolution, one-line errors that leave no file, and
the torch7 preset against the real seed-script run on the tiny net.

Most runs call `dreamer.__main__.main(argv)` in-process (cheap); the default output name,
--quiet and the guard's warnings are checked in a real subprocess. Figures measured here:
torch7 preset vs the real deepdream.lua result.png ≈ 99.9 dB PSNR.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from compare import psnr
from conftest import ROOT, shared_path
from PIL import Image

import converters
import dreamer
from converters.spec import ConversionError
from dreamer.__main__ import main
from dreamer.plan.targets import resolve_layer


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    """A fresh current directory holding `photo.png` (48×40, the cat scaled down)."""
    monkeypatch.chdir(tmp_path)
    # main() installs its own warning format; keep it from leaking into other tests.
    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)
    Image.open(shared_path("models", "_common", "cat.jpg")).convert("RGB").resize(
        (48, 40), Image.BILINEAR).save(tmp_path / "photo.png")
    return tmp_path


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def subprocess_cli(cwd: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "dreamer", *map(str, argv)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


DREAM = ("conv2", "2", "0.05", "--octaves", "3")  # LAYER ITERATIONS RATE, small and quick


# --- outputs -----------------------------------------------------------------------------


def test_default_output_is_src_stem_dream_png_in_the_current_directory(tmp_path, tiny_cli_args,
                                                                       tiny):
    images, cwd = tmp_path / "images", tmp_path / "elsewhere"
    images.mkdir()
    cwd.mkdir()
    rgb = np.asarray(Image.open(shared_path("models", "_common", "cat.jpg")).convert("RGB")
                     .resize((48, 40), Image.BILINEAR))
    Image.fromarray(rgb).save(images / "my.photo.png")
    result = subprocess_cli(cwd, images / "my.photo.png", *DREAM, *tiny_cli_args, "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # --quiet: no progress bar
    assert files(cwd) == {"my.photo_dream.png"}
    assert "my.photo_dream.png" in result.stdout
    assert files(images) == {"my.photo.png"}
    # What the API computes for the same arguments.
    expected = dreamer.dream(rgb, tiny, "conv2", 2, 0.05, octaves=3)
    np.testing.assert_array_equal(pixels(cwd / "my.photo_dream.png"), expected)


def test_progress_bar_on_stderr_unless_quiet(work, capsys, tiny_cli_args):
    code, _, err = cli(capsys, "photo.png", *DREAM, *tiny_cli_args)
    assert code == 0 and "step" in err and "|" in err  # tqdm's bar
    code, out, err = cli(capsys, "photo.png", *DREAM, *tiny_cli_args, "--quiet")
    assert code == 0 and err == "" and "photo_dream.png" in out


def test_output_jpeg(work, capsys, tiny_cli_args):
    assert cli(capsys, "photo.png", *DREAM, *tiny_cli_args, "-o", "x.jpg")[0] == 0
    assert cli(capsys, "photo.png", *DREAM, *tiny_cli_args, "-o", "x.png")[0] == 0
    data = (work / "x.jpg").read_bytes()
    assert data[:3] == b"\xff\xd8\xff"  # JPEG SOI marker
    with Image.open(work / "x.jpg") as image:
        assert image.format == "JPEG" and image.size == (48, 40)
    png = pixels(work / "x.png").astype(np.float64)
    mse = np.mean((pixels(work / "x.jpg") - png) ** 2)
    assert 10 * np.log10(255 ** 2 / mse) >= 30  # the same dream, JPEG-compressed


def test_save_raw_is_the_float_result_that_quantises_to_the_png(work, capsys, tiny_cli_args):
    code, _, _ = cli(capsys, "photo.png", *DREAM, *tiny_cli_args, "--save-raw", "f.npy", "--quiet")
    assert code == 0
    raw = np.load(work / "f.npy", allow_pickle=False)
    assert raw.shape == (40, 48, 3) and raw.dtype.kind == "f"
    assert np.any(raw != np.round(raw))  # not the quantised image
    np.testing.assert_array_equal(np.clip(raw, 0, 255).astype(np.uint8),
                                  pixels(work / "photo_dream.png"))


def test_save_octaves_one_png_per_octave_at_its_size(work, capsys, tiny_cli_args):
    code, _, _ = cli(capsys, "photo.png", "conv2", "2", "0.05", "--octaves", "4",
                     "--save-octaves", "oct", *tiny_cli_args, "--quiet")
    assert code == 0
    sizes = [(40, 48)]  # order-1 zoom by 1/1.4 from the full size, rounded
    for _ in range(3):
        sizes.append(tuple(int(round(n / 1.4)) for n in sizes[-1]))
    assert files(work / "oct") == {f"octave{k}.png" for k in (1, 2, 3, 4)}
    for k, (h, w) in enumerate(reversed(sizes), 1):  # smallest first
        assert pixels(work / "oct" / f"octave{k}.png").shape == (h, w, 3)
    np.testing.assert_array_equal(pixels(work / "oct" / "octave4.png"),
                                  pixels(work / "photo_dream.png"))


def test_seed_makes_runs_identical_and_drives_the_jitter(work, capsys, tiny_cli_args):
    def run(name: str, *extra: str) -> bytes:
        assert cli(capsys, "photo.png", *DREAM, *tiny_cli_args, "-o", name, *extra)[0] == 0
        return (work / name).read_bytes()

    first, again = run("a.png", "--seed", "5"), run("b.png", "--seed", "5")
    assert first == again
    other = run("c.png", "--seed", "6")
    assert other != first
    assert np.abs(pixels(work / "c.png").astype(int) - pixels(work / "a.png")).max() > 0
    # Without jitter the seed has nothing to draw: the same result (the files differ only
    # in the command line they store).
    run("d.png", "--seed", "5", "--jitter", "0"), run("e.png", "--seed", "6", "--jitter", "0")
    assert np.array_equal(pixels(work / "d.png"), pixels(work / "e.png"))


def test_list_layers_prints_index_name_type_and_shape(work, capsys, tiny_cli_args):
    code, out, _ = cli(capsys, "--list-layers", *tiny_cli_args)
    assert code == 0
    rows = [line.split() for line in out.strip().splitlines()[1:]]
    # From the prototxt at 35×35: conv k5 s2 -> 16; MAX k3 s2 ceil -> 8; conv k3 pad 1 -> 8.
    # Smallest input (last column): conv1 needs 5 (one 5-wide window); pool1 needs conv1 to
    # give 2 (Caffe's ceil: ceil((1-3)/2)+1 = 0 on 1), so 7; fc3 needs pool1 = 8 (its
    # weights hold 12·8·8 inputs): conv1 = 16, so 35.
    assert rows == [
        ["1", "conv1", "Convolution", "8×16×16", "5×5"],
        ["2", "relu1", "ReLU", "8×16×16", "5×5"],
        ["3", "pool1", "Pooling", "8×8×8", "7×7"],
        ["4", "norm1", "LRN", "8×8×8", "7×7"],
        ["5", "conv2", "Convolution", "12×8×8", "7×7"],
        ["6", "relu2", "ReLU", "12×8×8", "7×7"],
        ["7", "fc3", "InnerProduct", "10", "35×35"],
        ["8", "prob", "Softmax", "10", "35×35"],
    ]


def test_too_small_octaves_warn_and_keep_the_size(tmp_path, tiny_cli_args):
    Image.open(shared_path("models", "_common", "cat.jpg")).convert("RGB").resize(
        (24, 20), Image.BILINEAR).save(tmp_path / "small.png")
    # 20×24 -> 14×17 -> 10×12 -> 7×9 -> 5×6 -> 4×4: the tiny net needs 7×7 for conv2.
    result = subprocess_cli(tmp_path, "small.png", "conv2", "2", "0.05", "--octaves", "6",
                            *tiny_cli_args, "--quiet")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and all(line.startswith("warning: ") for line in lines)
    assert "(4×4) skipped" in lines[0] and "(6×5) skipped" in lines[1]
    assert pixels(tmp_path / "small_dream.png").shape == (20, 24, 3)


# --- LAYER resolution --------------------------------------------------------------------


def test_layer_exact_and_unique_prefix(nin):
    assert resolve_layer(nin, "conv4-1024") == "conv4-1024"
    assert resolve_layer(nin, "conv4") == "conv4-1024"
    assert resolve_layer(nin, "cccp7") == "cccp7-1024"
    assert resolve_layer(nin, "cccp1") == "cccp1"


def test_ambiguous_prefix_lists_the_candidates(nin):
    with pytest.raises(ConversionError, match="ambiguous") as error:
        resolve_layer(nin, "cccp")
    for name in ("cccp1", "cccp2", "cccp3"):
        assert name in str(error.value)
    with pytest.raises(ConversionError, match=r"no layer 'conv9'; closest: .*conv"):
        resolve_layer(nin, "conv9")


def test_integer_layer_max():
    google = shared_path("models", "bvlc_googlenet")
    net = converters.load_caffe(google / "deploy.prototxt", google / "bvlc_googlenet.caffemodel")
    assert resolve_layer(net, "10") == "pool2/3x3_s2"
    cifar = shared_path("models", "cifar10_quick_v1")
    net = converters.load_caffe(cifar / "deploy_v1.prototxt",
                                cifar / "cifar10_quick_iter_5000.caffemodel")
    assert resolve_layer(net, "8") == "relu3"
    for bad in ("0", "99"):
        with pytest.raises(ConversionError, match=rf"layer_max {bad} is out of range"):
            resolve_layer(net, bad)


def test_cli_integer_layer_is_that_module(work, capsys, tiny_cli_args, tiny):
    assert cli(capsys, "photo.png", "4", "2", "0.05", "--octaves", "2", *tiny_cli_args)[0] == 0
    expected = dreamer.dream(pixels(work / "photo.png"), tiny, "norm1", 2, 0.05, octaves=2)
    np.testing.assert_array_equal(pixels(work / "photo_dream.png"), expected)


@pytest.mark.parametrize(("layer", "expected"), [
    ("cccp", r"'cccp' is ambiguous .*cccp1, cccp2"),
    ("conv9", r"no layer 'conv9'; closest: "),
])
def test_cli_bad_layer_lists_candidates(work, capsys, layer, expected):
    models = shared_path("models", "nin_imagenet")
    code, _, err = cli(capsys, "photo.png", layer, "1", "0.01", "--model",
                       models / "deploy.prototxt", "--weights",
                       models / "nin_imagenet_formula.caffemodel", "--quiet")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert re.search(expected, err)
    assert files(work) == {"photo.png"}


# --- errors: one line, exit 2, no output -------------------------------------------------


def _truncate(work: Path, name: str) -> str:
    image = Image.open(work / "photo.png")
    image.save(work / name, quality=95)
    data = (work / name).read_bytes()
    (work / name).write_bytes(data[:len(data) // 2])
    return name


ERRORS = {  # case: (command-line change, what the message says)
    "unknown layer": (["photo.png", "conv9", "2", "0.05"], "no layer 'conv9'; closest: conv"),
    "not an image": (["notes.png", "conv2", "2", "0.05"], "notes.png: not an image"),
    "missing image": (["nope.png", "conv2", "2", "0.05"], "nope.png: no such file"),
    "truncated png": (["cut.png", "conv2", "2", "0.05"], "cut.png: cannot read the image"),
    "truncated jpeg": (["cut.jpg", "conv2", "2", "0.05"], "cut.jpg: cannot read the image"),
    "0 iterations": (["photo.png", "conv2", "0", "0.05"], "ITERATIONS must be an integer from 1"),
    "negative rate": (["photo.png", "conv2", "2", "-0.05"], "RATE must be a finite number, above"),
    "bad output extension": (["photo.png", "conv2", "2", "0.05", "-o", "x.gif"],
                             "x.gif: the output must end in .png, .jpg or .jpeg"),
    "channel out of range": (["photo.png", "conv2", "2", "0.05", "--channel", "12"],
                             "channel 12 is out of range"),
    "tile behind fc": (["photo.png", "fc3", "2", "0.05", "--tile", "16"],
                       "cannot tile a dream whose target depends on layer 'fc3'"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_error_is_one_line_exit_2_and_no_output(work, capsys, tiny_cli_args, case):
    (work / "notes.png").write_text("not a picture\n")
    _truncate(work, "cut.png")
    _truncate(work, "cut.jpg")
    before = files(work)
    argv, message = ERRORS[case]
    code, out, err = cli(capsys, *argv, *tiny_cli_args, "--save-raw", "r.npy", "--save-octaves",
                         "octaves")
    assert code == 2
    assert files(work) == before  # no image, no .npy, no octave folder
    assert err.count("\n") == 1 and err.endswith("\n") and out == ""
    # What a terminal shows once the bar has been erased, for the late errors too.
    visible = err.split("\r")[-1]
    assert visible.startswith("error: ") and message in visible, err
    assert err.startswith("error: "), err  # nothing before it: no progress bar


@pytest.mark.parametrize("model", ["missing.prototxt", "no/such/dir"])
def test_missing_model_file(work, capsys, model):
    weights = shared_path("models", "tiny", "tiny.caffemodel")
    extra = ["--weights", weights] if model.endswith(".prototxt") else []
    code, out, err = cli(capsys, "photo.png", "conv2", "2", "0.05", "--model", model, *extra)
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"error: {model}")
    assert files(work) == {"photo.png"}


def test_missing_weights_file(work, capsys):
    prototxt = shared_path("models", "tiny", "deploy.prototxt")
    code, _, err = cli(capsys, "photo.png", "conv2", "2", "0.05", "--model", prototxt,
                       "--weights", "missing.caffemodel")
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: missing.caffemodel")
    assert files(work) == {"photo.png"}


def test_bad_save_raw_extension_leaves_no_output(work, capsys, tiny_cli_args):
    code, _, err = cli(capsys, "photo.png", *DREAM, *tiny_cli_args, "--save-raw", "r.txt")
    assert code == 2 and err == "error: r.txt: the raw result is written as .npy\n"
    assert files(work) == {"photo.png"}


# --- --preset torch7 against the real seed script ----------------------------------------


def test_torch7_preset_matches_the_real_deepdream_lua(work, capsys, tiny_cli_args):
    reference = shared_path("reference", "torch7", "dream", "tiny_cat_l4_i10_r0.01",
                            "result.png")
    cat = shared_path("models", "_common", "cat.jpg")
    code, _, err = cli(capsys, cat, "4", "10", "0.01", "--preset", "torch7", *tiny_cli_args,
                       "-o", "t7.png", "--quiet", "--precision", "fp32")
    assert code == 0, err
    ours, theirs = pixels(work / "t7.png").astype(np.float64), pixels(reference)
    assert ours.shape == theirs.shape == (224, 224, 3)
    assert psnr(ours, theirs) >= 80  # measured 99.9 dB: one byte off by one
