"""The one output policy (converters/ownership.py), command by command: an existing output is
replaced only if we wrote it (our marker: PNG text chunk, JPEG/GIF comment, MP4 comment,
ONNX producer, our record in a folder) or with --overwrite; never an input (resolved: `..`,
symlinks, hard links); batch outputs stay inside OUTDIR; a dream PNG re-runs with
--from-png. Issue 19, items 1 and 2. All on the tiny net, in this process.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from converters.__main__ import main as convert_main
from converters.ownership import RECORD_FILE, is_ours
from dreamer.__main__ import main

DREAM = ["conv1", "1", "0.01", "--octaves", "1", "--quiet"]


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    rgb = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    return tmp_path


@pytest.fixture
def still(tiny_cli_args) -> list[str]:
    return ["photo.png", *DREAM, *tiny_cli_args]


def refused(capsys, code: int, *words: str) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    for word in words:
        assert word in err, err
    return err


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


# --- the still dreamer ---------------------------------------------------------------------

def test_still_refuses_a_users_file_and_the_source(work, still, capsys):
    (work / "notes.png").write_text("my notes")
    refused(capsys, main([*still, "-o", "notes.png"]), "notes.png", "--overwrite")
    assert (work / "notes.png").read_text() == "my notes"
    source = (work / "photo.png").read_bytes()
    os.link(work / "photo.png", work / "hard.png")
    (work / "sub").mkdir()
    os.symlink(work / "photo.png", work / "sub" / "link.png")
    for out in ("photo.png", str(work / "sub" / ".." / "photo.png"), "hard.png",
                "sub/link.png"):
        refused(capsys, main([*still, "-o", out, "--overwrite"]), "is the input photo.png")
    assert (work / "photo.png").read_bytes() == source
    guide = work / "guide.png"
    guide.write_bytes(source)
    refused(capsys, main([*still, "-o", "guide.png", "--guide", "guide.png", "--overwrite"]),
            "is the input guide.png")


def test_still_replaces_its_own_output_and_a_users_with_overwrite(work, still, capsys):
    assert main([*still, "-o", "d.png"]) == 0
    assert main([*still, "-o", "d.png", "--seed", "3"]) == 0  # ours: no --overwrite needed
    assert main([*still, "-o", "d.jpg"]) == 0
    assert main([*still, "-o", "d.jpg"]) == 0  # JPEG: our comment
    assert is_ours(work / "d.png") and is_ours(work / "d.jpg")
    (work / "mine.png").write_text("mine")
    assert main([*still, "-o", "mine.png", "--overwrite"]) == 0
    assert pixels(work / "mine.png").shape == (40, 48, 3)


def test_save_raw_and_octaves_replace_only_with_overwrite(work, still, capsys):
    (work / "raw.npy").write_bytes(b"my array")
    refused(capsys, main([*still, "-o", "d.png", "--save-raw", "raw.npy"]), "raw.npy")
    assert (work / "raw.npy").read_bytes() == b"my array" and not (work / "d.png").exists()
    os.link(work / "photo.png", work / "linked.npy")
    refused(capsys, main([*still, "-o", "d.png", "--save-raw", "linked.npy", "--overwrite"]),
            "is the input photo.png")
    assert main([*still, "-o", "d.png", "--save-raw", "raw.npy", "--overwrite"]) == 0
    assert np.load(work / "raw.npy").shape == (40, 48, 3)
    (work / "oct").mkdir()
    (work / "oct" / "octave1.png").write_text("my own octave")  # not ours: no marker
    refused(capsys, main([*still, "--save-octaves", "oct"]), "octave1.png")
    assert (work / "oct" / "octave1.png").read_text() == "my own octave"
    assert main([*still, "--save-octaves", "oct", "--overwrite"]) == 0
    assert main([*still, "--save-octaves", "oct"]) == 0  # now ours


@pytest.fixture
def no_dream(monkeypatch) -> None:
    """A dream fails the test: what is refused is refused before any."""
    def dream(*args, **kwargs):
        raise AssertionError("dreamed before refusing")

    monkeypatch.setattr(importlib.import_module("dreamer.dream"), "dream", dream)


def test_an_unwritable_folder_is_refused_before_the_dream(work, still, capsys, monkeypatch,
                                                          no_dream):
    (work / "locked").mkdir()
    monkeypatch.setattr(os, "access", lambda path, mode, **_: Path(path).name != "locked")
    refused(capsys, main([*still, "-o", "locked/d.png"]), "cannot write in", "locked")


def test_too_little_free_space_is_refused_before_the_dream(work, still, capsys, monkeypatch,
                                                          no_dream):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1, 1, 4000))
    refused(capsys, main([*still, "-o", "d.png"]), "d.png: needs up to 0.1 MB", "0.0 MB free")
    assert not (work / "d.png").exists()


def test_from_png_dreams_the_same_pixels_again(work, still, capsys):
    assert main([*still, "--seed", "4", "--jitter", "3", "-o", "d.png"]) == 0
    stored = json.loads(Image.open(work / "d.png").info["dreamzoo"])
    # the command line less its outputs (and --quiet)
    assert stored["argv"] == [*(a for a in still if a != "--quiet"), "--seed", "4", "--jitter", "3"]
    assert stored["network"].startswith("TinyRef sha256:")
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    os.chdir(elsewhere)  # the stored paths are read from the folder the dream was made in
    assert main(["--from-png", str(work / "d.png"), "-o", "again.png", "--quiet"]) == 0
    assert np.array_equal(pixels(elsewhere / "again.png"), pixels(work / "d.png"))
    assert main(["--from-png", str(work / "d.png"), "--quiet"]) == 0  # <stem>_dream.png
    assert np.array_equal(pixels(elsewhere / "photo_dream.png"), pixels(work / "d.png"))
    os.chdir(work)
    refused(capsys, main(["--from-png", "photo.png"]), "photo.png", "no dreamzoo settings")
    refused(capsys, main(["--from-png", "d.png", "-o", "d.png"]), "is the input d.png")
    refused(capsys, main(["--from-png", "d.png", "-o", "e.png", "--seed", "2"]), "--seed")
    refused(capsys, main(["--from-png", "d.png", "photo.png"]), "give no SRC")


# --- zoom and video -------------------------------------------------------------------------

def test_zoom_replaces_its_own_gif_mp4_and_folder_only(work, tiny_cli_args, capsys):
    zoom = ["zoom", "photo.png", *DREAM, *tiny_cli_args, "--frames", "2"]
    (work / "my.gif").write_text("a text file")
    refused(capsys, main([*zoom, "-o", "my.gif"]), "my.gif", "not a file dreamzoo wrote")
    assert (work / "my.gif").read_text() == "a text file"
    for out in ("g.gif", "m.mp4", "frames"):
        assert main([*zoom, "-o", out]) == 0
        assert main([*zoom, "-o", out, "--zoom", "1.1", "--force"]) == 0  # ours again
    assert sorted(os.listdir(work / "frames")) == [RECORD_FILE, "frame000001.png",
                                                    "frame000002.png"]
    mine = work / "mine"
    mine.mkdir()
    Image.open(work / "photo.png").save(mine / "frame000001.png")
    before = (mine / "frame000001.png").read_bytes()
    refused(capsys, main([*zoom, "-o", "mine"]), "mine", "not a frames folder dreamzoo wrote")
    assert (mine / "frame000001.png").read_bytes() == before
    refused(capsys, main([*zoom, "-o", ".", "--overwrite"]), "holds the input photo.png")
    assert main([*zoom, "-o", "my.gif", "--overwrite"]) == 0
    assert is_ours(work / "my.gif")


def test_force_refuses_a_frames_folder_whose_settings_we_did_not_write(work, tiny_cli_args,
                                                                      capsys):
    zoom = ["zoom", "photo.png", *DREAM, *tiny_cli_args, "--frames", "1", "-o", "z.gif"]
    folder = work / "z_frames"
    folder.mkdir()
    (folder / "settings.json").write_text(json.dumps({"kind": "zoom", "mine": True}))
    (folder / "frame000001.png").write_text("my frame")
    refused(capsys, main([*zoom, "--force"]), "settings.json", "not one dreamzoo wrote")
    assert (folder / "frame000001.png").read_text() == "my frame"
    assert not (work / "z.gif").exists()


def test_video_refuses_its_own_input(work, tiny_cli_args, capsys):
    from motion_clips import write_clip

    clip = write_clip(work / "clip.mp4", [np.full((40, 48, 3), v, np.uint8) for v in (60, 90)])
    source = clip.read_bytes()
    video = ["video", "clip.mp4", *DREAM, *tiny_cli_args]
    refused(capsys, main([*video, "-o", "clip.mp4", "--overwrite"]), "is the input clip.mp4")
    assert clip.read_bytes() == source
    assert main([*video, "-o", "v.mp4"]) == 0
    assert main([*video, "-o", "v.mp4"]) == 0  # ours (MP4 comment): replaced
    assert is_ours(work / "v.mp4") and not is_ours(clip)


# --- batch ------------------------------------------------------------------------------------

def test_batch_writes_nothing_outside_outdir(work, tiny_cli_args, capsys):
    for folder in ("list", "victim", "elsewhere", "photos/sub"):
        (work / folder).mkdir(parents=True)
    source = (work / "photo.png").read_bytes()
    for path in ("list/a.png", "victim/b.png", "elsewhere/c.png", "photos/sub/d.png",
                 "photos/e.png"):
        (work / path).write_bytes(source)
    os.symlink(work / "victim", work / "list" / "link")
    (work / "list" / "list.txt").write_text(
        f"a.png\n../victim/b.png\n{work / 'elsewhere' / 'c.png'}\nlink/b.png\n")
    assert main(["batch", "list/list.txt", *DREAM, *tiny_cli_args, "-o", "out"]) == 0
    capsys.readouterr()
    made = sorted(str(p.relative_to(work / "out")) for p in (work / "out").rglob("*.png"))
    assert made == ["elsewhere/c.png", "list/a.png", "list/link/b.png", "victim/b.png"]
    assert (work / "victim" / "b.png").read_bytes() == source
    assert sorted(os.listdir(work / "victim")) == ["b.png"]
    # A folder in OUTDIR that is a symlink out of it: that entry is refused, the rest dreamed.
    (work / "out2").mkdir()
    os.symlink(work / "victim", work / "out2" / "sub")
    assert main(["batch", "photos", *DREAM, *tiny_cli_args, "-o", "out2"]) == 1
    err = capsys.readouterr().err
    assert "d.png" in err and "outside out2" in err and err.count("\n") == 1, err
    assert sorted(os.listdir(work / "victim")) == ["b.png"]
    assert (work / "out2" / "e.png").is_file()


def test_batch_overwrite_replaces_a_users_file_but_never_an_input(work, tiny_cli_args, capsys):
    (work / "photos").mkdir()
    (work / "photos" / "a.png").write_bytes((work / "photo.png").read_bytes())
    (work / "out").mkdir()
    (work / "out" / "a.png").write_text("mine")
    batch = ["batch", "photos", *DREAM, *tiny_cli_args, "-o", "out"]
    refused(capsys, main(batch), "a.png", "refusing to replace it")
    assert main([*batch, "--overwrite"]) == 0
    assert pixels(work / "out" / "a.png").shape == (40, 48, 3)


# --- converters -----------------------------------------------------------------------------

def test_export_replaces_its_own_onnx_only(work, tiny_cli_args, capsys):
    model = tiny_cli_args[1::2]  # deploy.prototxt, tiny.caffemodel
    (work / "mine.onnx").write_text("my file")
    refused(capsys, convert_main(["export", *model, "-o", "mine.onnx"]), "mine.onnx")
    assert (work / "mine.onnx").read_text() == "my file"
    assert convert_main(["export", *model, "-o", "net.onnx"]) == 0
    assert convert_main(["export", *model, "-o", "net.onnx"]) == 0  # ours: replaced
    assert convert_main(["export", *model, "-o", "mine.onnx", "--overwrite"]) == 0
    refused(capsys, convert_main(["export", "net.onnx", "-o", "net.onnx", "--overwrite"]),
            "is the input net.onnx")


def test_the_sample_image_replaces_only_its_own(work, capsys):
    from models import sample

    pytest.importorskip("skimage", reason="the sample image comes from scikit-image (dev)")
    (work / "mine.png").write_text("mine")
    refused(capsys, sample.main(["mine.png"]), "mine.png")
    assert (work / "mine.png").read_text() == "mine"
    assert sample.main(["astronaut.png"]) == 0
    assert sample.main(["astronaut.png"]) == 0


@pytest.mark.parametrize("command", ["sweep", "gallery"])
def test_sweep_and_gallery_refuse_a_users_file_and_the_source(work, tiny_cli_args, capsys,
                                                              command, no_dream):
    (work / "notes.png").write_text("my notes")
    base = [command, "photo.png", *tiny_cli_args, "--quiet"]
    refused(capsys, main([*base, "-o", "notes.png"]), "notes.png", "--overwrite")
    refused(capsys, main([*base, "-o", "photo.png", "--overwrite"]), "is the input photo.png")
    assert (work / "notes.png").read_text() == "my notes"


def test_containment_compares_resolved_paths_also_of_folders_not_made_yet(tmp_path):
    from converters.ownership import is_inside, same_file

    out = tmp_path / "new" / "out"  # neither exists
    assert is_inside(out / "sub" / "a.png", out)
    assert not is_inside(out / ".." / "victim" / "b.png", out)
    assert not is_inside(Path("/etc/passwd"), out)
    (tmp_path / "victim").mkdir()
    (tmp_path / "new").mkdir()
    os.symlink(tmp_path / "victim", tmp_path / "new" / "link")
    assert not is_inside(tmp_path / "new" / "link" / "b.png", tmp_path / "new")
    (tmp_path / "victim" / "b.png").write_text("b")
    os.link(tmp_path / "victim" / "b.png", tmp_path / "hard.png")
    assert same_file(tmp_path / "hard.png", tmp_path / "new" / "link" / "b.png")
    assert same_file(tmp_path / "new" / "link" / ".." / "victim" / "b.png", tmp_path / "hard.png")
