"""Every number of the command line is checked where it is parsed (dreamer/plan/numbers.py):
a NaN, an infinity, a negative or a huge value is refused before any work, with exit
status 2, a last line on stderr naming the option, and nothing written. `--help` states
the ranges and defaults. Octaves past where the image ends are capped with a warning.

Runs call `dreamer.__main__.main(argv)` in-process on the tiny net (argparse's refusals are
its SystemExit(2)).
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path
from motion_clips import texture, write_clip
from PIL import Image

from dreamer.__main__ import main
from dreamer.dream import dream
from dreamer.loops.google import octave_sizes
from dreamer.plan import numbers as numbers
from dreamer.plan.numbers import Bounds

STILL = ("photo.png", "conv2", "1", "0.05")  # SRC LAYER ITERATIONS RATE
ZOOM = ("zoom", *STILL, "--frames", "2", "-o", "z.gif")
VIDEO = ("video", *STILL, "-o", "v.mp4")

# (argv, what the error's last line names)
REFUSED = [
    # the still dreamer: the positionals
    (("photo.png", "conv2", "1", "inf"), "RATE"),
    (("photo.png", "conv2", "1", "nan"), "RATE"),
    (("photo.png", "conv2", "1", "-0.1"), "RATE"),
    (("photo.png", "conv2", "1", "1e999"), "RATE"),
    (("photo.png", "conv2", "0", "0.05"), "ITERATIONS"),
    (("photo.png", "conv2", "1000000000", "0.05"), "ITERATIONS"),
    (("photo.png", "conv2", "1e3", "0.05"), "ITERATIONS"),
    (("photo.png", "conv1:1e999", "1", "0.05"), "LAYER conv1:1e999"),
    (("photo.png", "conv1:nan,conv2", "1", "0.05"), "LAYER conv1:nan"),
    (("photo.png", "--layer", "conv1:-inf", "1", "0.05"), "--layer conv1:-inf"),
    # the options every dream takes
    ((*STILL, "--blur", "nan"), "--blur"),
    ((*STILL, "--blur", "-1"), "--blur"),
    ((*STILL, "--octave-scale", "inf"), "--octave-scale"),
    ((*STILL, "--octave-scale", "0.5"), "--octave-scale"),
    ((*STILL, "--octaves", "1000000000"), "--octaves"),
    ((*STILL, "--octaves", "0"), "--octaves"),
    ((*STILL, "--topk", "nan"), "--topk"),
    ((*STILL, "--topk", "0"), "--topk"),
    ((*STILL, "--topk", "1.5"), "--topk"),
    ((*STILL, "--jitter", "1e20"), "--jitter"),
    ((*STILL, "--jitter", "100000000000000000000"), "--jitter"),
    ((*STILL, "--jitter", "-1"), "--jitter"),
    ((*STILL, "--seed", "-1"), "--seed"),
    ((*STILL, "--seed", str(2**32)), "--seed"),
    ((*STILL, "--tile", "-1"), "--tile"),
    ((*STILL, "--tile", "0"), "--tile"),
    ((*STILL, "--tile-margin", "-3"), "--tile-margin"),
    ((*STILL, "--laplacian", "-1"), "--laplacian"),
    ((*STILL, "--laplacian", "1000000"), "--laplacian"),
    ((*STILL, "--channel", "-1"), "--channel"),
    ((*STILL, "--channel", "²"), "--channel"),
    (("photo.png", "1", "0.05", "--class", "²"), "--class"),
    (("photo.png", "1", "0.05", "--class", "0:nan"), "--class 0:nan"),
    # zoom and video
    ((*ZOOM, "--fps", "0.0001"), "--fps"),
    ((*ZOOM, "--fps", "inf"), "--fps"),
    ((*ZOOM, "--fps", "0"), "--fps"),
    ((*ZOOM, "--frames", "0"), "--frames"),
    ((*ZOOM, "--frames", "1e9"), "--frames"),
    ((*ZOOM, "--zoom", "nan"), "--zoom"),
    ((*ZOOM, "--zoom", "0"), "--zoom"),
    ((*ZOOM, "--rotate", "1e400"), "--rotate"),
    ((*ZOOM, "--pan", "1,inf"), "--pan"),
    ((*ZOOM, "--pan", "1"), "--pan"),
    ((*ZOOM, "--octaves", "-2"), "--octaves"),
    ((*VIDEO, "--blend", "1"), "--blend"),
    ((*VIDEO, "--blend", "nan"), "--blend"),
    ((*VIDEO, "--chunk", "0"), "--chunk"),
    # batch, sweep, gallery, classify
    (("batch", "photo.png", "conv2", "1", "inf", "-o", "out"), "RATE"),
    (("batch", "photo.png", "conv2", "1", "0.05", "-o", "out", "--seed", "-1"), "--seed"),
    (("batch", "photo.png", *STILL[1:], "-o", "out", "--ray", "auto", "--workers", "0"),
     "--workers"),
    (("batch", "photo.png", *STILL[1:], "-o", "out", "--ray", "auto", "--gpus-per-worker",
      "nan"), "--gpus-per-worker"),
    (("gallery", "photo.png", "--ray", "auto", "--cpus-per-worker", "0"), "--cpus-per-worker"),
    (("sweep", "photo.png", "--size", "0"), "--size"),
    (("sweep", "photo.png", "--channels", "9" * 30), "--channels"),
    (("sweep", "photo.png", "conv2", "1", "nan"), "RATE"),
    (("gallery", "photo.png", "--size", "100000"), "--size"),
    (("gallery", "photo.png", "--rate", "nan"), "--rate"),
    (("gallery", "photo.png", "--iterations", "0"), "--iterations"),
    (("gallery", "photo.png", "--columns", "0"), "--columns"),
    (("gallery", "photo.png", "--count", "-1"), "--count"),
    (("gallery", "photo.png", "--octaves", "inf"), "--octaves"),
    (("gallery", "photo.png", "--classes", "²"), "--classes"),
    (("classify", "photo.png", "--top", "0"), "--top"),
    (("classify", "photo.png", "--top", "nan"), "--top"),
]


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    """A fresh current directory holding `photo.png` (48×40)."""
    monkeypatch.chdir(tmp_path)
    Image.open(shared_path("models", "_common", "cat.jpg")).convert("RGB").resize(
        (48, 40), Image.BILINEAR).save(tmp_path / "photo.png")
    return tmp_path


def exit_code(argv: list[str]) -> int:
    """`main(argv)`'s status, also when argparse refuses the command line (SystemExit)."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def command(argv: tuple[str, ...], model: list[str]) -> list[str]:
    """`argv` on the tiny net (classify and gallery take no dream options, only --model)."""
    return [*argv, *model, "--quiet"] if argv[0] not in ("classify", "gallery") \
        else [*argv, *model]


@pytest.mark.parametrize("argv, named", REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_a_bad_number_is_one_line_naming_the_option_and_nothing_is_written(
        work, tiny_cli_args, capsys, argv, named):
    assert exit_code(command(argv, tiny_cli_args)) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "error:" in last and named in last
    assert "Traceback" not in last
    assert sorted(p.name for p in work.iterdir()) == ["photo.png"]


@pytest.mark.parametrize("option, value", [("--start", "²"), ("--end", "9" * 5000),
                                           ("--start", "٣s")])
def test_a_bad_frame_position_is_refused_naming_the_option(work, tiny_cli_args, capsys,
                                                           option, value):
    write_clip(work / "clip.mp4", [texture(32, 32, 1)] * 2)
    argv = ["video", "clip.mp4", "conv2", "1", "0.05", "-o", "v.mp4", option, value]
    assert exit_code([*argv, *tiny_cli_args, "--quiet"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"error: {option} ") and "give a frame number" in last
    assert sorted(p.name for p in work.iterdir()) == ["clip.mp4", "photo.png"]


def test_the_range_is_stated_in_the_error(work, tiny_cli_args, capsys):
    assert exit_code([*STILL, "--topk", "nan", *tiny_cli_args]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        "error: argument --topk: must be a finite number, above 0 and at most 1 (got 'nan')")
    assert exit_code(["photo.png", "conv2", "1", "inf", *tiny_cli_args]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: RATE must be a finite number, above 0 and at most 1000 (got 'inf')")


HELPED = {"": ["--octaves", "--octave-scale", "--jitter", "--topk", "--blur", "--laplacian",
                "--seed", "--tile", "--channel", "--objective"],
          "zoom": ["--zoom", "--rotate", "--pan", "--fps", "--octaves"],
          "video": ["--blend", "--seed", "--cpus-per-worker", "--gpus-per-worker"],
          "batch": ["--blur", "--workers"], "sweep": ["--size"],
          "gallery": ["--count", "--iterations", "--rate", "--size", "--columns", "--seed"],
          "classify": ["--top"], "studio": ["--port", "--host"]}


@pytest.mark.parametrize("subcommand", list(HELPED))
def test_help_states_the_default_of_every_checked_number(subcommand, capsys):
    with pytest.raises(SystemExit) as stop:
        main([subcommand, "--help"] if subcommand else ["--help"])
    assert stop.value.code == 0
    entries = {block.split()[0]: " ".join(block.split())  # each option's entry, unwrapped
               for block in re.split(r"\n(?=  -)", capsys.readouterr().out)}
    for option in HELPED[subcommand]:
        assert "default" in entries[option], entries[option]
    if not subcommand:
        assert "an integer from 1 to 100 (default 4;" in entries["--octaves"]
        assert "a finite number, above 0 and at most 1 (default: 0.01)" in entries["--topk"]
        assert "an integer from 0 to 2147483647 (default: 0)" in entries["--seed"]


def test_bounds_parse_describe_and_check():
    assert numbers.OCTAVES.parse(" 7 ") == 7
    assert numbers.RATE.parse("1e-3") == 0.001
    for text in ("nan", "inf", "-inf", "0", "1e999", "", "x", "٣"):
        with pytest.raises(ValueError, match="^RATE must be a finite number, above 0 and "
                           "at most 1000"):
            numbers.RATE.parse(text, "RATE")
    for text in ("1.0", "1e3", "²", "9" * 5000):
        with pytest.raises(ValueError, match="an integer from 1 to 100"):
            numbers.OCTAVES.parse(text)
    assert Bounds(0, integer=True).describe() == "an integer, at least 0"
    assert Bounds(0, 1, high_open=True).describe() == "a finite number, at least 0 and below 1"
    with pytest.raises(ValueError, match="--octaves must be an integer from 1 to 100 "):
        numbers.OCTAVES.check(10**400, "--octaves")  # no float overflow
    with pytest.raises(ValueError, match="--octaves"):
        numbers.OCTAVES.check(2.0, "--octaves")
    with pytest.raises(ValueError, match="--blur"):
        numbers.BLUR.check(True, "--blur")
    assert numbers.BLUR.check(np.float32(0.5), "--blur") == 0.5


@pytest.mark.parametrize("options, named", [
    ({"octaves": 10**9}, "--octaves"), ({"blur": math.nan}, "--blur"),
    ({"octave_scale": math.inf}, "--octave-scale"), ({"seed": -1}, "--seed"),
    ({"jitter": 10**20}, "--jitter"), ({"topk": math.nan}, "--topk"),
    ({"tile_margin": -1}, "--tile-margin"), ({"channel": -1}, "--channel")])
def test_the_library_refuses_the_same_ranges_before_any_work(tiny, options, named):
    rgb = np.zeros((40, 48, 3), np.uint8)
    with pytest.raises(ValueError, match=f"^{named} must be"):
        dream(rgb, tiny, "conv2", 1, 0.05, **options)
    with pytest.raises(ValueError, match="^RATE must be"):
        dream(rgb, tiny, "conv2", 1, math.inf)
    with pytest.raises(ValueError, match="^LAYER conv2:1e999: the weight must be"):
        dream(rgb, tiny, "conv2:1e999", 1, 0.05)


def test_octaves_stop_where_the_image_is_one_pixel():
    sizes = octave_sizes(40, 48, 100, 1.4)
    assert sizes[0] == (1, 1) and min(sizes[1]) > 1 and len(sizes) == 11
    assert octave_sizes(40, 48, 20, 5.0) == [(2, 2), (8, 10), (40, 48)]  # not 0×0 next
    assert len(octave_sizes(40, 48, 100, 1.0)) == 100  # scale 1: every octave full size
    assert octave_sizes(40, 48, 3, 1.4) == [(21, 24), (29, 34), (40, 48)]


def test_more_octaves_than_the_image_holds_are_capped_with_a_warning(work, tiny_cli_args,
                                                                     capsys):
    assert main([*STILL, "--octaves", "60", "-o", "out.png", *tiny_cli_args, "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "warning: --octaves 60: a 48×40 image holds only 11 octaves of scale 1.4 " \
           "(the smallest 1×1); dreaming 11" in err
    assert (work / "out.png").is_file()


def test_torch7_octaves_are_capped_where_its_octaves_end(tiny):
    rgb = np.asarray(Image.open(shared_path("models", "_common", "cat.jpg")).convert("RGB")
                     .resize((48, 40), Image.BILINEAR))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = dream(rgb, tiny, "conv2", 1, 0.01, preset="torch7", octaves=60)
    assert out.shape == (224, 224, 3)
    assert any("--preset torch7 holds only 48 octaves" in str(w.message) for w in caught)
