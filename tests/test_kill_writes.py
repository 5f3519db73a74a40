"""Every writer, killed with SIGKILL at random moments: the output is always the old
complete one or the new complete one, never partial or missing, and no temporary is left
where a user would see it (ours are hidden, and the next write removes them).

Each attempt forks this (already imported) test process; the child tells the parent when
it starts writing and the parent kills it after a seeded random delay drawn from the
writer's measured duration. The children run no torch code (forking after torch has run
threads is not safe), so the ONNX graphs are made here and `to_onnx` hands them back.
All eight writers together: 36 s on the 2-core development machine (shared, busy).
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from PIL import Image
from test_zoo_download import FileServer
from tqdm import tqdm

import converters
from converters.atomic import PREFIX
from converters.onnx import export as onnx_export
from converters.ownership import RECORD_FILE, has_record, is_ours
from converters.store import read_directory
from dreamer.image_io import save_array, save_octave, save_rgb
from dreamer.motion.frames import frame_name
from dreamer.motion.outputs import copy_frames
from models.convert import write_model
from models.download import download

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

ATTEMPTS = 24
PROTOTXT = """name: "{name}"
input: "data"
input_dim: 1 input_dim: 64 input_dim: 16 input_dim: 16
layer {{ name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param {{ num_output: {channels} kernel_size: 3 }} }}
layer {{ name: "relu" type: "ReLU" bottom: "conv" top: "conv" }}
"""
State = tuple  # one version (0 or 1) per output file


def run_child(write: Callable[[int], None], version: int) -> int:
    """Fork a child that writes `version`; its pid once it has started writing."""
    ready, started = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(ready)
            # tqdm's lock is a semaphore shared across fork: a child killed holding it
            # would block the parent's next progress bar for ever.
            tqdm.set_lock(threading.RLock())
            os.write(started, b".")
            write(version)
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(started)
    os.read(ready, 1)
    os.close(ready)
    return pid


def wait(pid: int) -> bool:
    """Reap the child; whether it was killed (a child that failed fails the test)."""
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return True
    assert os.WEXITSTATUS(status) == 0, "the writer failed without being killed"
    return False


def assert_no_visible_leftovers(folder: Path, outputs: set[str]) -> None:
    names = set(os.listdir(folder))
    visible = {n for n in names if not n.startswith(".")}
    assert visible <= outputs, f"stray files: {sorted(visible - outputs)}"
    hidden = names - visible
    assert all(n.startswith(PREFIX) for n in hidden), f"foreign hidden files: {sorted(hidden)}"


def kill_during(folder: Path, outputs: set[str], write: Callable[[int], None],
                state: Callable[[], State], seed: int,
                next_version: Callable[[State], int] = lambda s: 1 - s[0],
                before: Callable[[], None] | None = None, stretch: float = 1.0
                ) -> dict[str, int]:
    """Write the other version ATTEMPTS times, each killed at a random moment (up to
    `stretch` times a whole write's duration); check the outputs after each kill, then
    after one more, complete write. `before` runs before each attempt (and the state is
    read again after it)."""
    rng = random.Random(seed)
    write(0)
    current = state()
    pid = run_child(write, next_version(current))
    began = time.perf_counter()  # from the child's start of writing to its exit
    wait(pid)
    duration = time.perf_counter() - began
    current = state()
    counts = {"killed": 0, "changed": 0}
    for _ in range(ATTEMPTS):
        if before is not None:
            before()
            current = state()
        version = next_version(current)
        pid = run_child(write, version)
        time.sleep(rng.uniform(0, stretch * duration))
        os.kill(pid, signal.SIGKILL)
        counts["killed"] += wait(pid)
        found = state()
        assert all(f in (c, version) for f, c in zip(found, current)), (found, current, version)
        assert_no_visible_leftovers(folder, outputs)
        counts["changed"] += found != current
        current = found
    write(next_version(current))
    state()
    assert not [n for n in os.listdir(folder) if n.startswith(PREFIX)], os.listdir(folder)
    assert counts["killed"] >= 1, "no kill landed during a write"
    return counts


def versions(rng_seed: int, make: Callable[[np.random.Generator], object]) -> list:
    rng = np.random.default_rng(rng_seed)
    return [make(rng), make(rng)]


def which(found: object, candidates: list, equal=np.array_equal) -> int:
    """The index of the candidate `found` equals; fails when it equals none (partial)."""
    matches = [i for i, c in enumerate(candidates) if equal(found, c)]
    assert matches, "the output is neither the old nor the new one"
    return matches[0]


@pytest.fixture(scope="module")
def networks(tmp_path_factory) -> list[converters.Network]:
    """Two versions of a small net (different widths and weights), about 1 MB each."""
    folder = tmp_path_factory.mktemp("nets")
    nets = []
    for k, channels in enumerate((512, 384)):
        rng = np.random.default_rng(k)
        (folder / f"{k}.prototxt").write_text(PROTOTXT.format(name=f"v{k}", channels=channels))
        weights = lambda name, i, shape, rng=rng: rng.standard_normal(shape)  # noqa: E731
        nets.append(converters.load_caffe(folder / f"{k}.prototxt", weights))
    return nets


@pytest.fixture(scope="module")
def onnx_models(networks) -> list[onnx.ModelProto]:
    return [onnx_export.to_onnx(net) for net in networks]


@pytest.fixture
def cached_onnx(monkeypatch, networks, onnx_models):
    """`to_onnx` without torch: the graphs made above, so that children run no torch."""
    graphs = {id(net): model for net, model in zip(networks, onnx_models)}
    monkeypatch.setattr(onnx_export, "to_onnx", lambda net, until=None: graphs[id(net)])


def network_version(directory: Path, networks: list[converters.Network]) -> int:
    spec = read_directory(directory)
    version = which(spec.name, [n.name for n in networks], equal=str.__eq__)
    for ours, theirs in zip(spec.layers, networks[version].spec.layers):
        for a, b in zip(ours.blobs, theirs.blobs, strict=True):
            np.testing.assert_array_equal(a, b)
    return version


def test_converted_network(tmp_path, networks):
    target = tmp_path / "net"

    def state() -> State:
        assert sorted(os.listdir(target)) == ["network.json", "weights.safetensors"]
        return (network_version(target, networks),)

    kill_during(tmp_path, {"net"}, lambda v: converters.save(networks[v], target), state, 1)


def test_onnx_export(tmp_path, networks, onnx_models, cached_onnx):
    target = tmp_path / "net.onnx"
    data = [m.SerializeToString() for m in onnx_models]

    def state() -> State:
        onnx.checker.check_model(onnx.load(target))
        return (which(target.read_bytes(), data, equal=bytes.__eq__),)

    kill_during(tmp_path, {"net.onnx"}, lambda v: onnx_export.export_onnx(networks[v], target),
                state, 2)


def test_zoo_model_folder(tmp_path, networks, onnx_models, cached_onnx):
    tables = [net.layer_table() + "\n" for net in networks]
    data = [m.SerializeToString() for m in onnx_models]
    target = tmp_path / "mynet"

    def state() -> State:
        assert sorted(os.listdir(target)) == ["layers.txt", "mynet.onnx", "network.json",
                                              "weights.safetensors"]
        version = network_version(target, networks)
        assert (target / "layers.txt").read_text() == tables[version]
        assert (target / "mynet.onnx").read_bytes() == data[version]
        return (version,)

    kill_during(tmp_path, {"mynet"}, lambda v: write_model(
        networks[v], tables[v][:-1], "mynet", tmp_path, onnx=True), state, 3)


def decoded(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_image(tmp_path):
    images = versions(4, lambda rng: rng.integers(0, 256, (384, 384, 3), dtype=np.uint8))
    target = tmp_path / "dream.png"
    kill_during(tmp_path, {"dream.png"}, lambda v: save_rgb(target, images[v]),
                lambda: (which(decoded(target), images),), 4)
    assert is_ours(target)  # our marker, so the next run may replace it


def test_raw_array(tmp_path):
    arrays = versions(5, lambda rng: rng.standard_normal((768, 768, 3)).astype(np.float32))
    target = tmp_path / "dream.npy"
    kill_during(tmp_path, {"dream.npy"}, lambda v: save_array(target, arrays[v]),
                lambda: (which(np.load(target, allow_pickle=False), arrays),), 5)


def test_octave_folder(tmp_path):
    sizes = [(96, 128), (134, 179), (188, 251), (263, 351)]
    octaves = versions(6, lambda rng: [rng.integers(0, 256, (*s, 3), dtype=np.uint8)
                                       for s in sizes])
    folder = tmp_path / "octaves"
    names = {f"octave{k}.png" for k in range(1, 5)}

    def write(version: int) -> None:
        for k, rgb in enumerate(octaves[version], 1):
            save_octave(folder, k, rgb)

    def state() -> State:
        assert {n for n in os.listdir(folder) if not n.startswith(".")} == names
        return tuple(which(decoded(folder / f"octave{k}.png"), [o[k - 1] for o in octaves])
                     for k in range(1, 5))

    kill_during(folder, names, write, state, 6)


def test_frames_output_folder(tmp_path):
    """zoom -o DIR: the frames and our record (converters/ownership.py) appear together."""
    frames = versions(8, lambda rng: [rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
                                      for _ in range(6)])
    sources = [tmp_path / f"frames{v}" for v in (0, 1)]
    for source, images in zip(sources, frames):
        source.mkdir()
        for k, rgb in enumerate(images, 1):
            save_rgb(source / frame_name(k), rgb)
    work = tmp_path / "work"
    work.mkdir()
    target = work / "zoom"

    def state() -> State:
        assert sorted(os.listdir(target)) == [RECORD_FILE, *(frame_name(k) for k in range(1, 7))]
        assert has_record(target)
        version = which(decoded(target / frame_name(1)), [f[0] for f in frames])
        for k in range(2, 7):
            np.testing.assert_array_equal(decoded(target / frame_name(k)), frames[version][k - 1])
        return (version,)

    kill_during(work, {"zoom"}, lambda v: copy_frames(SimpleNamespace(folder=sources[v]), 6,
                                                      target), state, 8)


def test_download(tmp_path):
    """Old is no file, new is the whole file. A killed download resumes next time, so
    most attempts are short: kills are drawn over twice a whole download's time."""
    payload = np.random.default_rng(7).integers(0, 256, 2 << 20, dtype=np.uint8).tobytes()
    server = FileServer()
    server.files["/w.caffemodel"] = payload
    server.pause = 0.002
    server.start()
    target = tmp_path / "w.caffemodel"
    url = f"{server.url}/w.caffemodel"

    def write(version: int) -> None:
        download(url, target, ("sha256", hashlib.sha256(payload).hexdigest()), quiet=True)

    def state() -> State:
        if not target.exists():
            return (0,)
        assert target.read_bytes() == payload, "a partial file under the real name"
        return (1,)

    def forget() -> None:
        if target.exists():
            target.unlink()  # so that the next attempt downloads again

    try:
        counts = kill_during(tmp_path, {"w.caffemodel"}, write, state, 7,
                             next_version=lambda s: 1, before=forget, stretch=2.0)
    finally:
        server.stop()
    assert counts["killed"] >= 1
