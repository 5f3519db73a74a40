"""What the writing commands may replace: only their own output. A non-empty folder that is
not a converted network (or, for --save-octaves, not only octave images) is refused with
one line and exit status 2, and every file in it is left as it was. Also the temporaries'
clean-up (converters/atomic.py); the kill tests are in test_kill_writes.py.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import converters
from converters import atomic
from converters.__main__ import main as convert_main
from converters.atomic import OutputError, remove_stale, temporary_path
from converters.caffe.proto import LayerParameter, NetParameter
from converters.store import read_directory
from dreamer.__main__ import main as dream_main
from models import sample
from models.convert import convert_zoo
from models.convert import main as zoo_main
from models.registry import lookup

PROTOTXT = """name: "{name}"
input: "data"
input_dim: 1 input_dim: 3 input_dim: 32 input_dim: 32
layer {{ name: "pool" type: "Pooling" bottom: "data" top: "pool"
  pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}
layer {{ name: "relu" type: "ReLU" bottom: "pool" top: "pool" }}
"""


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file's bytes and every folder (None) under `folder`, by relative path."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes()
            for p in sorted(folder.rglob("*"))}


def user_files(folder: Path) -> dict[str, bytes | None]:
    """A folder of someone's work, as a user would have it."""
    (folder / "data").mkdir(parents=True)
    (folder / "thesis.tex").write_text("\\chapter{Dreams}\n")
    (folder / "data" / "results.csv").write_text("layer,score\nconv4,0.9\n")
    (folder / ".git").write_text("gitdir: elsewhere\n")
    return snapshot(folder)


def prototxt(folder: Path, name: str = "plain") -> Path:
    path = folder / f"{name}.prototxt"
    path.write_text(PROTOTXT.format(name=name))
    return path


def refused(capsys, code: int, folder: Path | str) -> str:
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and str(folder) in err, err
    return err


def no_temporaries(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.startswith(atomic.PREFIX)]


# --- python -m converters ... -o DIR ---------------------------------------------------------

def test_convert_refuses_a_folder_of_other_files(tmp_path, capsys):
    model, target = prototxt(tmp_path), tmp_path / "thesis"
    before = user_files(target)
    err = refused(capsys, convert_main([str(model), "-o", str(target)]), target)
    assert "not a converted network" in err
    assert snapshot(target) == before


def test_convert_refuses_the_current_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    prototxt(tmp_path)
    before = user_files(tmp_path)
    assert "not a converted network" in refused(
        capsys, convert_main(["plain.prototxt", "-o", "."]), ".")
    assert snapshot(tmp_path) == before


def test_convert_refuses_a_network_folder_with_a_file_of_the_user(tmp_path, capsys):
    target = tmp_path / "net"
    converters.save(converters.load_caffe(prototxt(tmp_path), None), target)
    (target / "notes.txt").write_text("keep me")
    before = snapshot(target)
    err = refused(capsys, convert_main([str(prototxt(tmp_path, "other")), "-o", str(target)]),
                  target)
    assert "'notes.txt'" in err
    assert snapshot(target) == before


def test_convert_refuses_a_network_json_that_is_not_ours_and_a_file(tmp_path, capsys):
    model = prototxt(tmp_path)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "network.json").write_text(json.dumps({"format": "someone-else/3"}))
    before = snapshot(foreign)
    refused(capsys, convert_main([str(model), "-o", str(foreign)]), foreign)
    assert snapshot(foreign) == before
    (tmp_path / "a_file").write_text("mine")
    refused(capsys, convert_main([str(model), "-o", str(tmp_path / "a_file")]), "a_file")
    assert (tmp_path / "a_file").read_text() == "mine"


def test_convert_replaces_a_converted_network_and_fills_an_empty_folder(tmp_path, capsys):
    target, empty = tmp_path / "out" / "net", tmp_path / "empty"
    empty.mkdir()
    assert convert_main([str(prototxt(tmp_path, "first")), "-o", str(target)]) == 0
    assert convert_main([str(prototxt(tmp_path, "second")), "-o", str(target)]) == 0
    assert read_directory(target).name == "second"
    assert convert_main([str(prototxt(tmp_path, "third")), "-o", str(empty)]) == 0
    assert read_directory(empty).name == "third"
    assert sorted(os.listdir(empty)) == ["network.json", "weights.safetensors"]
    assert no_temporaries(tmp_path)


def test_export_refuses_a_folder(tmp_path, capsys):
    target = tmp_path / "thesis"
    before = user_files(target)
    err = refused(capsys, convert_main(["export", str(prototxt(tmp_path)), "-o", str(target)]),
                  target)
    assert "is a folder" in err
    assert snapshot(target) == before


# --- the zoo: models/<name>/ ----------------------------------------------------------------

def test_zoo_refuses_a_model_folder_of_other_files(tmp_path, monkeypatch, capsys):
    root = tmp_path / "models"
    monkeypatch.setenv("DREAMZOO_MODELS", str(root))
    caffemodel = tmp_path / "plain.caffemodel"  # the layers have no weights
    caffemodel.write_bytes(NetParameter(name="plain", layer=[
        LayerParameter(name="pool", type="Pooling")]).SerializeToString())
    argv = ["--prototxt", str(prototxt(tmp_path)), "--caffemodel", str(caffemodel),
            "--name", "mynet"]
    before = user_files(root / "mynet")
    refused(capsys, zoo_main(argv), root / "mynet")
    assert snapshot(root / "mynet") == before
    nin = user_files(root / "nin")
    with pytest.raises(OutputError, match=r"models/nin: not a converted network"):
        convert_zoo(lookup("nin"), mirror=tmp_path / "no_such_mirror", root=root,
                    cache=tmp_path / "cache")
    assert snapshot(root / "nin") == nin
    for path in sorted((root / "mynet").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    assert zoo_main(argv) == 0, "the same command converts into the emptied folder"
    assert sorted(os.listdir(root / "mynet")) == ["layers.txt", "network.json",
                                                  "weights.safetensors"]


# --- the dreamer ----------------------------------------------------------------------------

@pytest.fixture
def dream_args(tmp_path, monkeypatch) -> list[str]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)
    rgb = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    return ["photo.png", "pool", "1", "0.01", "--model", str(prototxt(tmp_path)),
            "--octaves", "2", "--quiet"]


def test_dream_refuses_an_octave_folder_of_other_files(tmp_path, dream_args, capsys):
    before = user_files(tmp_path / "frames")
    err = refused(capsys, dream_main([*dream_args, "--save-octaves", "frames"]), "frames")
    assert "'.git'" in err
    assert snapshot(tmp_path / "frames") == before
    assert not (tmp_path / "photo_dream.png").exists()


def test_dream_replaces_the_octave_images_of_an_earlier_run(tmp_path, dream_args, capsys):
    assert dream_main([*dream_args, "--save-octaves", "oct"]) == 0
    first = snapshot(tmp_path / "oct")
    assert sorted(first) == ["octave1.png", "octave2.png"]
    assert dream_main([*dream_args, "--save-octaves", "oct", "--seed", "3"]) == 0
    assert sorted(snapshot(tmp_path / "oct")) == ["octave1.png", "octave2.png"]
    assert no_temporaries(tmp_path)


def test_dream_refuses_an_output_that_is_a_folder(tmp_path, dream_args, capsys):
    before = user_files(tmp_path / "out.png")
    refused(capsys, dream_main([*dream_args, "-o", "out.png"]), "out.png")
    refused(capsys, dream_main([*dream_args, "--save-raw", "out.png/../out.png"]), "out.png")
    assert snapshot(tmp_path / "out.png") == before


def test_sample_refuses_a_folder(tmp_path, capsys):
    pytest.importorskip("skimage", reason="the sample image comes from scikit-image (dev)")
    before = user_files(tmp_path / "astronaut.png")
    refused(capsys, sample.main([str(tmp_path / "astronaut.png")]), "astronaut.png")
    assert snapshot(tmp_path / "astronaut.png") == before


# --- temporaries ------------------------------------------------------------------------------

def exited_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_stale_temporaries_of_exited_processes_go_and_nothing_else(tmp_path):
    dead = exited_pid()
    stale_file = tmp_path / f".dreamzoo-tmp-{dead}-0123abcd-out.png"
    stale_dir = tmp_path / f".dreamzoo-tmp-{dead}-89abcdef-net"
    stale_file.write_bytes(b"half")
    (stale_dir / "sub").mkdir(parents=True)
    (stale_dir / "sub" / "weights.safetensors").write_bytes(b"half")
    kept = [temporary_path(tmp_path / "live.png"),  # this process is alive
            tmp_path / ".dreamzoo-part-w.caffemodel",  # a download to resume
            tmp_path / f".dreamzoo-tmp-{dead}-xyz-out.png",  # not our pattern
            tmp_path / f".dreamzoo-notes-{dead}", tmp_path / f"dreamzoo-tmp-{dead}-0123abcd-x",
            tmp_path / ".hidden", tmp_path / "out.png.part"]
    for path in kept:
        path.write_bytes(b"keep")
    remove_stale(tmp_path)
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in kept)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_folder_moved_aside_is_put_back_when_its_replacement_never_came(tmp_path):
    """Without an atomic exchange, a kill between the two renames leaves the old folder
    `-old-` and no target: the next write puts it back."""
    dead = exited_pid()
    net = converters.load_caffe(prototxt(tmp_path), None)
    converters.save(net, tmp_path / "net")
    os.rename(tmp_path / "net", tmp_path / f".dreamzoo-old-{dead}-0123abcd-net")
    remove_stale(tmp_path)
    assert read_directory(tmp_path / "net").name == "plain"
    assert no_temporaries(tmp_path)


def test_without_an_atomic_exchange_a_network_is_still_replaced(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    for name in ("first", "second"):
        converters.save(converters.load_caffe(prototxt(tmp_path, name), None), tmp_path / "net")
    assert read_directory(tmp_path / "net").name == "second"
    assert no_temporaries(tmp_path)
