"""Bad Torch7 files: one line naming the file and the problem, exit status 2, nothing
written; declared sizes are refused before anything that large is allocated."""

from __future__ import annotations

import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
import torchfile
from conftest import ROOT, shared_path

from converters.__main__ import main
from converters.torch7 import read_torch7


# A minimal binary torch.save, to craft files. Objects carry explicit reference indices.
def i32(value: int) -> bytes:
    return struct.pack("<i", value)


def i64(value: int) -> bytes:
    return struct.pack("<q", value)


def raw(data: bytes) -> bytes:
    return i32(len(data)) + data


def string(text: str) -> bytes:
    return i32(2) + raw(text.encode())


def number(value: float) -> bytes:
    return i32(1) + struct.pack("<d", value)


def table(index: int, pairs: list[tuple[bytes, bytes]]) -> bytes:
    return i32(3) + i32(index) + i32(len(pairs)) + b"".join(k + v for k, v in pairs)


def instance(index: int, class_name: str, fields: bytes) -> bytes:
    """A Torch class instance; `fields` is its serialized table."""
    return i32(4) + i32(index) + raw(b"V 1") + raw(class_name.encode()) + fields


def reference(index: int) -> bytes:
    """A second mention of the class instance written with `index`."""
    return i32(4) + i32(index)


def float_tensor(index: int, sizes: list[int], storage_count: int, data: bytes) -> bytes:
    strides, step = [], 1
    for size in reversed(sizes):
        strides.insert(0, step)
        step *= size
    storage = instance(index + 1, "torch.FloatStorage", i64(storage_count) + data)
    return (i32(4) + i32(index) + raw(b"V 1") + raw(b"torch.FloatTensor") + i32(len(sizes))
            + b"".join(map(i64, sizes)) + b"".join(map(i64, strides)) + i64(1) + storage)


def sequential(modules: list[bytes]) -> bytes:
    """nn.Sequential (index 1) of the given modules (indices from 10 on are theirs)."""
    listed = table(3, [(number(i + 1), m) for i, m in enumerate(modules)])
    return instance(1, "nn.Sequential", table(2, [(string("modules"), listed)]))


def mul_constant(index: int) -> bytes:
    return instance(index, "nn.MulConstant",
                    table(index + 1, [(string("constant_scalar"), number(2.0))]))


def linear(index: int, weight: bytes) -> bytes:
    return instance(index, "nn.Linear", table(index + 1, [(string("weight"), weight)]))


def convert(path: Path, tmp_path: Path, capsys) -> str:
    """Run the CLI in-process; check the failure contract; return the message."""
    out = tmp_path / "out"
    assert main([str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ") and str(path) in err
    assert not out.exists() and not list(tmp_path.glob(".out*"))
    return err


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_crafted_files_are_valid_torch7(tmp_path):
    """The writer above is right: torchfile reads its output, and so does the converter."""
    path = write(tmp_path, "good.t7", sequential([mul_constant(10), linear(
        20, float_tensor(30, [2, 3], 6, struct.pack("<6f", *range(6))))]))
    net = torchfile.load(str(path), use_list_heuristic=False)
    assert net["modules"][2]["weight"].tolist() == [[0, 1, 2], [3, 4, 5]]
    spec = read_torch7(path)
    assert [layer.type for layer in spec.layers] == ["Power", "InnerProduct"]
    assert spec.input_shape == [1, 3]


def test_truncated_binary_file_cli(tmp_path):
    data = shared_path("reference", "torch7", "handbuilt.t7").read_bytes()
    bad = write(tmp_path, "truncated.t7", data[: len(data) // 2])
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "converters", str(bad), "-o", str(out)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "truncated.t7" in result.stderr and "truncated or corrupt Torch7 file" in result.stderr
    assert not out.exists()


def test_truncated_ascii_file(tmp_path, capsys):
    data = shared_path("models", "torch7", "face-detector_model.ascii.net").read_bytes()
    bad = write(tmp_path, "truncated.ascii.net", data[: len(data) * 2 // 3])
    assert "truncated or corrupt Torch7 file" in convert(bad, tmp_path, capsys)


def test_wrong_magic(tmp_path, capsys):
    bad = write(tmp_path, "picture.t7", b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert "not a Torch7 file" in convert(bad, tmp_path, capsys)


@pytest.mark.parametrize("name, data", [
    ("storage.t7", sequential([linear(10, float_tensor(20, [4], 2**26, bytes(16)))])),
    ("string.t7", i32(4) + i32(1) + raw(b"V 1") + i32(2**31 - 1) + b"nn.Seq"),
    ("ascii.t7", b"4\n1\n3\nV 1\n18\ntorch.FloatStorage\n100000000000\n1 2 3\n"),
])
def test_declared_size_beyond_the_file_fails_before_allocating(tmp_path, capsys, name, data):
    bad = write(tmp_path, name, data)
    tracemalloc.start()
    try:
        message = convert(bad, tmp_path, capsys)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20
    assert "declares a" in message and "bytes left in the file" in message


def test_tensor_larger_than_its_storage(tmp_path, capsys):
    bad = write(tmp_path, "overrun.t7", sequential(
        [linear(10, float_tensor(20, [1000, 1000], 4, bytes(16)))]))
    assert "does not fit in its storage" in convert(bad, tmp_path, capsys)


def test_reference_cycle(tmp_path, capsys):
    bad = write(tmp_path, "cycle.t7", sequential([mul_constant(10), reference(1)]))
    message = convert(bad, tmp_path, capsys)
    assert "reference cycle" in message and "net.modules[2]" in message


def test_unknown_class_names_class_and_path(tmp_path, capsys):
    inner = instance(20, "nn.Frobnicate", table(21, []))
    branch = instance(12, "nn.Sequential", table(13, [(string("modules"), table(
        14, [(number(1), mul_constant(15)), (number(2), inner)]))]))
    bad = write(tmp_path, "unknown.t7", sequential([mul_constant(10), branch]))
    message = convert(bad, tmp_path, capsys)
    assert "'nn.Frobnicate'" in message and "net.modules[2].modules[2]" in message


def test_objects_nested_too_deeply(tmp_path, capsys):
    depth = 5000
    data = b"".join(i32(3) + i32(i + 1) + i32(1) + number(1) for i in range(depth)) + i32(0)
    bad = write(tmp_path, "deep.t7", data)
    assert "nested too deeply" in convert(bad, tmp_path, capsys)


def test_not_a_network(tmp_path, capsys):
    bad = write(tmp_path, "table.t7", table(1, [(string("hello"), number(123))]))
    assert "holds a Lua table, not a network" in convert(bad, tmp_path, capsys)
