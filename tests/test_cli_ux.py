"""The command lines as a new user meets them: Ctrl-C, a closed pipe, --help, misspelt
names, --max-side, a still image given as a video, class names, stand-in weights, resuming,
the demo's second run, and an ONNX file refused in one line. Tiny nets only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, shared_path
from motion_clips import write_clip
from PIL import Image

import converters
from dreamer.__main__ import main
from models.convert import convert_zoo, up_to_date
from models.registry import Source, ZooModel


def dreamer_process(cwd: Path, *argv: str, stdout=subprocess.DEVNULL) -> subprocess.Popen:
    """`python -m dreamer ARGV` started in `cwd`, its stderr piped, with Ctrl-C's default
    handling: a shell that starts a job in the background (`make test &`, CI runners)
    ignores SIGINT, and every process below it would inherit that."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "dreamer", *map(str, argv)], cwd=cwd,
                            env=env, stdout=stdout, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def stderr_lines(text: bytes) -> list[str]:
    """The lines left on a terminal: a progress bar's redrawn line counts as its last draw."""
    return [line.rsplit("\r", 1)[-1] for line in text.decode().splitlines()
            if line.rsplit("\r", 1)[-1].strip()]


def interrupt(process: subprocess.Popen, ready) -> tuple[int, list[str]]:
    """SIGINT once `ready()` holds (polled; bounded), then the exit status and stderr lines."""
    deadline = time.monotonic() + 120
    while not ready() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the command ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    return process.returncode, stderr_lines(err)


def image(path: Path, width: int = 48, height: int = 40, seed: int = 0) -> Path:
    rgb = (np.random.RandomState(seed).rand(height, width, 3) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(path)
    return path


# --- Ctrl-C ----------------------------------------------------------------------------------


def test_ctrl_c_during_a_still_dream_is_one_line_130_and_no_output(tmp_path, tiny_cli_args):
    src = image(tmp_path / "in.png")
    # 100000 × 0.00001 stays under the noise warning: stderr holds the progress bar only
    process = dreamer_process(tmp_path, src, "conv2", "100000", "0.00001", *tiny_cli_args,
                              "-o", tmp_path / "out.png")
    status, lines = interrupt(process, lambda: process.stderr.peek(1))  # the progress bar
    assert status == 130
    assert lines == ["interrupted"]  # the still dreamer does not resume
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_ctrl_c_during_a_zoom_resumes_and_says_so(tmp_path, tiny_cli_args):
    src = image(tmp_path / "in.png")
    command = ["zoom", src, "conv2", "3", "0.01", *tiny_cli_args, "--octaves", "1",
               "--frames", "30", "--quiet", "-o", tmp_path / "z.gif"]
    frames = tmp_path / "z_frames"
    status, lines = interrupt(dreamer_process(tmp_path, *command),
                              lambda: (frames / "frame000001.png").exists())
    assert status == 130
    assert lines == ["interrupted; run the same command to resume"]
    assert not (tmp_path / "z.gif").exists()
    names = sorted(p.name for p in frames.iterdir())
    done = sum(name.startswith("frame") for name in names)
    assert 1 <= done < 30
    # Complete frames only: each PNG whole, the last one's carry beside it, no temporaries;
    # the next frame's carry too if the interrupt came between it and its PNG (the rerun
    # replaces it).
    carries = [f"carry{done:06d}.npy"]
    if f"carry{done + 1:06d}.npy" in names:
        carries.append(f"carry{done + 1:06d}.npy")
    assert names == [*carries, *(f"frame{k:06d}.png" for k in range(1, done + 1)),
                     "settings.json"]
    for k in range(1, done + 1):
        Image.open(frames / f"frame{k:06d}.png").load()
    rerun = dreamer_process(tmp_path, *command, stdout=subprocess.PIPE)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert stderr_lines(err) == [f"resuming at frame {done + 1} of 30 (frames 1-{done} are in "
                                 f"{frames} from an earlier run)"]
    assert Image.open(tmp_path / "z.gif").n_frames == 30


# --- a reader that stops reading -------------------------------------------------------------


@pytest.mark.parametrize("command", [["converters", "NET"],
                                     ["dreamer", "--list-layers", "--model", "NET"]])
def test_a_closed_stdout_pipe_ends_quietly(tmp_path, tiny, command):
    converters.save(tiny, tmp_path / "net")
    argv = [str(tmp_path / "net") if a == "NET" else a for a in command]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DREAMZOO_MODELS": str(tmp_path)}
    process = subprocess.Popen([sys.executable, "-m", *argv], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdout.close()  # as `| head` does once it has read enough
    _, err = process.communicate(timeout=120)
    assert err.decode() == ""
    assert process.returncode == 141


# --- help and names --------------------------------------------------------------------------


def test_top_level_help_lists_the_subcommands_the_noise_source_and_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for name in ("zoom", "video", "batch", "gallery", "sweep", "classify"):
        assert f"\n  {name} " in text
    assert "`noise` with --preset deepdraw" in text
    assert "10 and 0.01" in text and "--max-side" in text


def test_video_help_states_its_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["video", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "ITERATIONS 10, RATE 0.03" in text and "--octaves 2, --blend 0.8" in text


def test_a_misspelt_zoo_name_suggests_the_name(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DREAMZOO_MODELS", str(tmp_path))
    assert main([str(image(tmp_path / "in.png")), "--model", "googlnet"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line == "error: no model 'googlnet': did you mean googlenet? (`make convert` lists " \
                   "the zoo)"
    from models.convert import main as models_main

    assert models_main(["googlnet"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "did you mean googlenet?" in line and "nin_cifar10" not in line


# --- inputs ----------------------------------------------------------------------------------


def test_max_side_scales_a_still_down(tmp_path, tiny_cli_args, capsys):
    src = image(tmp_path / "in.png", 120, 90)
    out = tmp_path / "out.png"
    assert main([str(src), "conv2", "1", "0.01", *tiny_cli_args, "--max-side", "40", "--quiet",
                 "-o", str(out)]) == 0
    assert Image.open(out).size == (40, 30)
    assert main([str(src), "conv2", "1", "0.01", *tiny_cli_args, "--max-side", "0", "--quiet",
                 "-o", str(tmp_path / "zero.png")]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == \
        "error: --max-side must be at least 1 pixel (got 0)"
    assert not (tmp_path / "zero.png").exists()


def test_max_side_scales_a_video_down(tmp_path, tiny_cli_args):
    rng = np.random.RandomState(0)
    clip = write_clip(tmp_path / "in.mp4", [(rng.rand(48, 64, 3) * 255).astype(np.uint8)
                                            for _ in range(3)])
    out = tmp_path / "out.mp4"
    assert main(["video", str(clip), "conv2", "2", "0.01", *tiny_cli_args, "--octaves", "1",
                 "--max-side", "32", "--quiet", "-o", str(out)]) == 0
    from motion_clips import read_clip

    frames, _, _ = read_clip(out)
    assert len(frames) == 3 and frames[0].shape == (24, 32, 3)
    settings = json.loads((tmp_path / "out_frames" / "settings.json").read_text())
    assert settings["max_side"] == 32  # a rerun at another size is refused, not mixed


def test_a_still_image_is_refused_as_a_video(tmp_path, tiny_cli_args, capsys):
    src = image(tmp_path / "cat.jpg")
    assert main(["video", str(src), "conv2", *tiny_cli_args, "-o", str(tmp_path / "v.mp4")]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line == f"error: {src}: a still image, not a video; to animate a still, use " \
                   "`python -m dreamer zoom`"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.jpg"]


# --- class names and stand-in weights --------------------------------------------------------


def test_list_classes_prints_the_names_that_hold_a_query(tmp_path, tiny_cli_args, capsys):
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"{name}\n" for name in (
        "tabby, tabby cat", "tiger cat", "dog", "catamaran", "cow", "bee", "ant", "owl", "elk",
        "yak")))
    argv = ["classify", *tiny_cli_args, "--labels", str(labels), "--list-classes"]
    assert main([*argv, "Cat"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "    0  tabby, tabby cat", "    1  tiger cat", "    3  catamaran"]
    assert main(argv) == 0
    assert len(capsys.readouterr().out.splitlines()) == 10
    assert main([*argv, "tigercat"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: no class name holds 'tigercat'") and "'tiger cat' (1)" in line


def test_weights_that_failed_their_checksum_warn_when_used(tmp_path, tiny, capsys):
    tiny.spec.source["zoo"] = {"model": "tiny_test", "files": [
        {"kind": "prototxt", "official_name": "deploy.prototxt", "file": "deploy.prototxt",
         "checksum": "verified"},
        {"kind": "weights", "official_name": "tiny.caffemodel", "file": "tiny_formula.caffemodel",
         "checksum": "doubtful"}]}
    try:
        converters.save(tiny, tmp_path / "net")
    finally:
        del tiny.spec.source["zoo"]
    src = image(tmp_path / "in.png", 35, 35)
    assert main(["classify", str(src), "--model", str(tmp_path / "net")]) == 0
    out, err = capsys.readouterr()
    [line] = err.splitlines()  # once, after the command's output
    assert line.startswith("warning: ") and "tiny_formula.caffemodel" in line
    assert "not the official weights" in line and len(out.splitlines()) == 5
    # An error stays one line: the reminder is for a command that did its work.
    assert main(["classify", str(tmp_path / "none.png"), "--model", str(tmp_path / "net")]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ") and "none.png" in line


# --- the demo's second run -------------------------------------------------------------------


def test_a_zoo_model_converted_from_the_same_files_is_not_converted_again(tmp_path):
    tiny = shared_path("models", "tiny")
    mirror = tmp_path / "mirror"
    (mirror / "tiny").mkdir(parents=True)
    for name in ("deploy.prototxt", "tiny.caffemodel"):
        (mirror / "tiny" / name).write_bytes((tiny / name).read_bytes())
    model = ZooModel(name="tiny_test", aliases=(), description="test net", folder="tiny",
                     licence="test", input_size=(35, 35), default_layer="conv1",
                     mean=(104.0, 117.0, 123.0),
                     sources=(Source("prototxt", "deploy.prototxt", "https://example.invalid/p"),
                              Source("weights", "tiny.caffemodel", "https://example.invalid/w")))
    root = tmp_path / "models"
    assert up_to_date(model, mirror, root) is None  # not converted yet
    convert_zoo(model, mirror, root=root, quiet=True)
    assert up_to_date(model, mirror, root) == root / "tiny_test"
    later = (root / "tiny_test" / "network.json").stat().st_mtime + 10
    os.utime(mirror / "tiny" / "tiny.caffemodel", (later, later))  # new weights in the mirror
    assert up_to_date(model, mirror, root) is None


def test_make_setup_is_a_stamp_renewed_by_pyproject(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    stamp = venv / ".dreamzoo-setup"
    stamp.touch()

    def planned() -> str:
        return subprocess.run(["make", "-n", "setup", f"VENV={venv}"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout

    assert "pip" not in planned()
    os.utime(stamp, (0, 0))  # older than pyproject.toml
    assert "pip install" in planned()


# --- ONNX ------------------------------------------------------------------------------------


def resize_model(path: Path, scale: float) -> Path:
    """One nearest Resize by `scale` (onnx2torch warns about its modes; it reads its scales
    as data, which the meta device that sizes ONNX layers does not hold)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    side = int(8 * scale)
    scales = numpy_helper.from_array(np.array([1, 1, scale, scale], np.float32), "scales")
    roi = numpy_helper.from_array(np.array([], np.float32), "roi")
    graph = helper.make_graph(
        [helper.make_node("Resize", ["x", "roi", "scales"], ["y"], mode="nearest")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, side, side])],
        initializer=[roi, scales])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def test_an_onnx_file_refused_is_one_line_without_onnx2torch_warnings(tmp_path, capsys):
    from converters.__main__ import main as converters_main

    bad = resize_model(tmp_path / "bad.onnx", 0.01)  # to 0×0: cannot run
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert converters_main([str(bad)]) == 2
    assert caught == []
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ") and "cannot run" in line


def test_held_warnings_are_shown_once_after_success_and_never_after_an_error():
    from converters.cli import warnings_held

    with pytest.warns(UserWarning) as shown:
        with warnings_held():
            for _ in range(3):
                warnings.warn("about a layer", UserWarning, stacklevel=1)
    assert [str(w.message) for w in shown] == ["about a layer"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError), warnings_held():
            warnings.warn("about a layer", UserWarning, stacklevel=1)
            raise ValueError("refused")
    assert caught == []
