"""`python -m dreamer batch`: every output equals what `python -m dreamer` writes for its
image (pixel for pixel, as the PNGs store different command lines; same thread count: 1
here, as each Ray worker of 1 CPU runs 1 thread), in this process and on Ray workers; a
killed worker's images are run again and each output is written once; an interrupted job
resumes; a bad image fails alone; other settings are refused without --force, and --force
replaces only outputs of ours.

The tiny Caffe net (real Caffe weights) on 64×64 images keeps each dream a few hundredths
of a second; the Ray cluster (2 CPUs) is the session's own (conftest.py: `ray_cluster`),
on which commands run as subprocesses.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared_path
from PIL import Image

from converters.spec import ConversionError
from converters.store import from_bytes, to_bytes
from dreamer.__main__ import main
from dreamer.jobs import batch
from dreamer.jobs.batch_record import LOG_FILE

DREAM = ("conv2", "2", "0.05", "--octaves", "3")  # LAYER ITERATIONS RATE, small and quick
# The folder: two levels of subfolders, PNG and JPEG (a JPEG's output is a PNG).
NAMES = ("a.png", "b.jpg", "sub/c.png", "sub/d.png", "sub/deeper/e.png", "sub/deeper/f.jpg",
         "g.png", "h.png")


def make_images(folder: Path, size: int) -> Path:
    """NAMES as size×size crops of the cat photo, each a different crop."""
    cat = Image.open(shared_path("models", "_common", "cat.jpg")).convert("RGB")
    for i, name in enumerate(NAMES):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        cat.crop((30 * i, 15 * i, 30 * i + 240, 15 * i + 240)).resize((size, size)).save(
            folder / name)
    return folder


def output_name(name: str) -> str:
    return str(Path(name).with_suffix(".png"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return make_images(tmp_path_factory.mktemp("batch") / "photos", 64)


@pytest.fixture(scope="module")
def reference(folder, tiny_cli_args, tmp_path_factory) -> dict[str, bytes]:
    """The still dreamer's PNG of each image (1 thread), by output name."""
    out = tmp_path_factory.mktemp("reference")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for i, name in enumerate(NAMES):
            assert main([str(folder / name), *DREAM, *tiny_cli_args, "--quiet",
                         "-o", str(out / f"{i}.png")]) == 0
    finally:
        torch.set_num_threads(threads)
    return {output_name(name): png_pixels(out / f"{i}.png") for i, name in enumerate(NAMES)}


def batch_command(source, outdir: Path, model: list[str], *extra: str, dream=DREAM) -> list[str]:
    return ["batch", str(source), *dream, *model, "--quiet", "-o", str(outdir), *extra]


def run_batch(capsys, source, outdir: Path, model: list[str], *extra: str,
              dream=DREAM) -> tuple[int, str, str]:
    code = main(batch_command(source, outdir, model, *extra, dream=dream))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def outputs(outdir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(outdir)): png_pixels(p) for p in outdir.rglob("*.png")}


def png_pixels(path: Path) -> bytes:
    """An image's size and RGB pixels (not its metadata)."""
    rgb = np.asarray(Image.open(path).convert("RGB"))
    return repr(rgb.shape).encode() + rgb.tobytes()


def log_counts(outdir: Path) -> dict[tuple[str, str], int]:
    """How many `writing` and `done` lines the log holds per (event, output)."""
    counts: dict[tuple[str, str], int] = {}
    for line in (outdir / LOG_FILE).read_text().splitlines():
        event, _, name = json.loads(line)[:3]
        counts[event, name] = counts.get((event, name), 0) + 1
    return counts


# --- the outputs ---------------------------------------------------------------------------


def test_outputs_equal_the_still_dreamer_in_this_process(capsys, folder, reference, tiny_cli_args,
                                                         tmp_path, one_thread):
    code, out, _ = run_batch(capsys, folder, tmp_path / "out", tiny_cli_args)
    assert code == 0
    assert outputs(tmp_path / "out") == reference  # the folder layout mirrored, PNG
    assert "8 done, 0 skipped" in out


def test_outputs_equal_the_still_dreamer_on_ray_workers(folder, reference, tiny_cli_args,
                                                        tmp_path, ray_cluster):
    done = ray_cluster.dreamer(*batch_command(folder, tmp_path / "out", tiny_cli_args),
                               "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "on 2 Ray workers (1 CPU each)" in done.stdout and "8 done" in done.stdout
    assert outputs(tmp_path / "out") == reference


def test_a_glob_and_a_list_mirror_paths_below_their_folder(capsys, folder, reference,
                                                          tiny_cli_args, tmp_path, one_thread):
    pattern = str(folder / "sub" / "**" / "*.png")
    code, out, _ = run_batch(capsys, pattern, tmp_path / "globbed", tiny_cli_args)
    assert code == 0
    assert outputs(tmp_path / "globbed") == {  # relative to sub/, the glob's fixed part
        "c.png": reference["sub/c.png"], "d.png": reference["sub/d.png"],
        "deeper/e.png": reference["sub/deeper/e.png"]}
    listing = tmp_path / "list.txt"
    listing.write_text(f"# two images\n{folder / 'b.jpg'}\n\n{folder / 'sub/deeper/f.jpg'}\n")
    code, out, _ = run_batch(capsys, listing, tmp_path / "listed", tiny_cli_args)
    assert code == 0
    assert outputs(tmp_path / "listed") == {"b.png": reference["b.png"],
                                            "sub/deeper/f.png": reference["sub/deeper/f.png"]}


def test_outputs_inside_the_input_folder_are_not_inputs(capsys, tiny_cli_args, tmp_path,
                                                        one_thread):
    photos = make_images(tmp_path / "photos", 64)
    code, out, _ = run_batch(capsys, photos, photos / "dreams", tiny_cli_args)
    assert code == 0 and "8 images" in out
    code, out, _ = run_batch(capsys, photos, photos / "dreams", tiny_cli_args)  # a rerun
    assert code == 0 and "8 images, 8 finished before, 0 to dream" in out


# --- failures, workers killed, jobs interrupted -------------------------------------------


def test_a_corrupt_image_is_reported_and_the_others_are_done(capsys, folder, reference,
                                                            tiny_cli_args, tmp_path, one_thread):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in NAMES:
        (photos / name).parent.mkdir(parents=True, exist_ok=True)
        (photos / name).write_bytes((folder / name).read_bytes())
    (photos / "sub" / "broken.png").write_bytes((folder / "a.png").read_bytes()[:100])
    code, out, err = run_batch(capsys, photos, tmp_path / "out", tiny_cli_args)
    assert code == 1
    failed = [line for line in err.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and "broken.png" in failed[0]
    assert "8 done, 0 skipped (finished before), 1 failed" in out
    assert outputs(tmp_path / "out") == reference


def test_a_killed_worker_s_images_are_dreamed_again_and_each_written_once(
        capsys, tiny_cli_args, tmp_path, ray_cluster, one_thread):
    """A worker's process killed as the job starts, while it has images in hand; longer
    dreams (128×128, 30 iterations: ~0.3 s each) so that it has."""
    photos = make_images(tmp_path / "photos", 128)
    dream = ("conv2", "30", "0.05", "--octaves", "3")
    code, _, _ = run_batch(capsys, photos, tmp_path / "here", tiny_cli_args, dream=dream)
    assert code == 0
    job = subprocess.Popen(ray_cluster.command(*batch_command(
        photos, tmp_path / "ray", tiny_cli_args, "--workers", "2", dream=dream)),
        env=ray_cluster.environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = job.stdout.readline()  # "batch: 8 images, ... on 2 Ray workers": the job starts
    assert "to dream on 2 Ray workers" in first
    workers = ray_cluster.workers("DreamWorker")
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    out, err = job.communicate(timeout=600)
    assert job.returncode == 0, err
    assert "8 done" in out and "run again after their worker died" in out
    assert outputs(tmp_path / "ray") == outputs(tmp_path / "here")  # all complete, all equal
    counts = log_counts(tmp_path / "ray")
    assert counts == {(event, output_name(name)): 1 for name in NAMES
                      for event in ("writing", "done")}


def test_an_interrupted_job_resumes_with_only_the_missing_outputs(
        capsys, folder, reference, tiny_cli_args, tmp_path, monkeypatch, one_thread):
    saving, written = batch.save_rgb, []

    def save_then_interrupt(path, rgb):
        if len(written) == 3:
            raise KeyboardInterrupt  # Ctrl-C while the fourth output is being written
        written.append(Path(path))
        return saving(path, rgb)

    monkeypatch.setattr(batch, "save_rgb", save_then_interrupt)
    code, _, err = run_batch(capsys, folder, tmp_path / "out", tiny_cli_args)
    assert code == 130 and err == "interrupted; run the same command to resume\n"
    first = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in written}
    assert len(outputs(tmp_path / "out")) == 3

    redone = []

    def save_and_count(path, rgb):
        redone.append(Path(path))
        return saving(path, rgb)

    monkeypatch.setattr(batch, "save_rgb", save_and_count)
    code, out, _ = run_batch(capsys, folder, tmp_path / "out", tiny_cli_args)
    assert code == 0
    assert "8 images, 3 finished before, 5 to dream" in out and "5 done, 3 skipped" in out
    assert sorted(redone) == sorted(tmp_path / "out" / output_name(n) for n in NAMES
                                               if tmp_path / "out" / output_name(n) not in first)
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in written} == first
    assert outputs(tmp_path / "out") == reference


# --- settings --------------------------------------------------------------------------------


def test_other_settings_are_refused_and_force_replaces_only_our_outputs(
        capsys, folder, reference, tiny_cli_args, tmp_path, one_thread):
    out = tmp_path / "out"
    assert run_batch(capsys, folder, out, tiny_cli_args)[0] == 0
    other = ("conv2", "3", "0.05", "--octaves", "3")
    code, _, err = run_batch(capsys, folder, out, tiny_cli_args, dream=other)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "other settings (iterations: 2 -> 3)" in err and "--force" in err
    assert outputs(out) == reference  # untouched

    foreign = out / "sub" / "deeper" / "e.png"
    foreign.unlink()
    foreign.write_bytes(b"a file of the user's")
    (out / "log.txt").write_text("another file of the user's")
    code, _, err = run_batch(capsys, folder, out, tiny_cli_args, "--force", dream=other)
    assert code == 2 and "e.png: exists and is not an output of dreamzoo batch" in err
    foreign.unlink()  # once the user's file is out of the way, --force dreams again
    code, stdout, _ = run_batch(capsys, folder, out, tiny_cli_args, "--force", dream=other)
    assert code == 0 and "8 done" in stdout
    again = outputs(out)
    assert again.keys() == reference.keys()
    assert all(again[name] != reference[name] for name in reference)
    assert (out / "log.txt").read_text() == "another file of the user's"


def test_two_inputs_for_one_output_are_refused_before_any_work(capsys, tiny_cli_args, tmp_path):
    photos = make_images(tmp_path / "photos", 64)
    (photos / "a.jpg").write_bytes((photos / "b.jpg").read_bytes())  # beside a.png
    code, _, err = run_batch(capsys, photos, tmp_path / "out", tiny_cli_args)
    assert code == 2 and "would both be written to" in err and "a.png" in err
    assert not (tmp_path / "out").exists()


def test_without_ray_installed_ray_says_how_to_get_it(capsys, folder, tiny_cli_args, tmp_path,
                                                      monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    code, _, err = run_batch(capsys, folder, tmp_path / "out", tiny_cli_args, "--ray", "auto")
    assert code == 2
    assert err.strip().splitlines() == ["error: --ray needs Ray, which is not installed: "
                                        "pip install 'dreamzoo[ray]' (or `make setup`)"]
    assert not (tmp_path / "out").exists()


def test_workers_get_the_network_as_its_files_bytes_checked_as_files_are(tiny):
    description, weights = to_bytes(tiny)
    copy = from_bytes(description, weights)
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 3, 35, 35)).astype("float32"))
    assert torch.equal(copy(x), tiny(x))
    with pytest.raises(ConversionError, match=r"network.json \(sent\): invalid JSON"):
        from_bytes(description[:-10], weights)
    with pytest.raises(ConversionError, match=r"weights.safetensors \(sent\): cannot read"):
        from_bytes(description, weights[:100])
