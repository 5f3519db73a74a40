"""Fuzzing, kept: a bounded seeded run of every reader (the full one is `make fuzz`), the
seeds it starts from, and one small test per problem the fuzzer found."""

from __future__ import annotations

import json
import math
import re
import struct
import tempfile
import tracemalloc
import warnings
from pathlib import Path

import pytest
from conftest import shared_path
from fuzz import fuzz, summary
from fuzz_cases import (
    BEHAVIOURS,
    CHECKS,
    FORMATS,
    SEED_FILES,
    TINY_V0,
    ascii_t7,
    fix_png_crcs,
    make_case,
    read_model,
    small_t7_files,
)
from test_torch7_errors import instance, sequential, string, table

from converters import ConversionError, load, save
from converters.images import ImageError, load_rgb
from converters.onnx.export import to_onnx
from converters.torch7.t7file import read_t7

# Cases per format in the suite: about 40 s in all on 2 busy cores.
SUITE_CASES = {"caffemodel": 150, "onnx": 150}
DEFAULT_SUITE_CASES = 300


def one_line_error(read, *paths: Path) -> str:
    """The error `read(*paths)` gives: a ConversionError of one line naming a file."""
    with pytest.raises(ConversionError) as caught:
        read(*paths)
    message = str(caught.value)
    assert "\n" not in message and any(str(p) in message for p in paths), message
    return message


def test_bounded_fuzz_gives_only_one_line_errors():
    for entries in SEED_FILES.values():
        for entry in entries:
            shared_path(entry)
    cases = {name: SUITE_CASES.get(name, DEFAULT_SUITE_CASES) for name in FORMATS}
    with tempfile.TemporaryDirectory() as scratch:
        reports = fuzz(list(FORMATS), cases, log=Path(scratch) / "worker.log")
    print(summary(reports))
    findings = [f"{name} {f}" for name, r in reports.items() for f in r.findings]
    assert not findings, "\n".join(findings)
    for name, report in reports.items():  # the mutations reach past the first check
        assert report.rejected and report.accepted, (name, report)


# --- the seeds: what the fuzzer starts from reads as the original does ---------------------

def test_v0_prototxt_seed_reads_as_the_v2_original(tmp_path):
    tiny = shared_path("models", "tiny")
    (tmp_path / "v0.prototxt").write_text(TINY_V0)
    v0 = read_model(tmp_path / "v0.prototxt", tiny / "tiny.caffemodel")
    assert v0 == read_model(tiny / "deploy.prototxt", tiny / "tiny.caffemodel")


@pytest.mark.parametrize("name", ["SpatialConvolution.t7", "Concat.t7", "View.t7"])
def test_ascii_seed_reads_as_the_binary_original(tmp_path, name):
    binary = shared_path("reference", "torch7", "layers", name)
    assert binary in small_t7_files()
    ascii_path = tmp_path / name
    ascii_path.write_bytes(ascii_t7(binary.read_bytes()))
    assert read_t7(ascii_path)[1] == "ascii"
    assert read_model(ascii_path) == read_model(binary)


# --- regressions: one per problem the fuzzer found -------------------------------------------

@pytest.fixture
def tiny_folder(tiny, tmp_path) -> Path:
    return save(tiny, tmp_path / "tiny")


def edit_description(folder: Path, edit) -> None:
    path = folder / "network.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_folder_description_not_utf8(tiny_folder):
    path = tiny_folder / "network.json"
    path.write_bytes(path.read_bytes().replace(b'"conv1"', b'"conv\xb3"', 1))
    assert "not UTF-8" in one_line_error(load, tiny_folder)


@pytest.mark.parametrize("edit", [
    lambda d: d["layers"][0]["params"].pop("stride"),
    lambda d: d["layers"][0]["params"].update(group={"a": 1}),
    lambda d: d["layers"][0]["params"].update(kernel="55"),
    lambda d: d["layers"][5].update(tops=[]),
    lambda d: d["layers"].__setitem__(0, "conv1"),
    lambda d: d.update(layers=[]),
])
def test_folder_parameters_of_a_wrong_kind(tiny_folder, edit):
    edit_description(tiny_folder, edit)
    one_line_error(load, tiny_folder)


@pytest.mark.parametrize("layer, field", [("conv1", "stride"), ("pool1", "stride"),
                                          ("conv2", "group"), ("conv1", "dilation")])
def test_prototxt_sizes_of_zero(tmp_path, layer, field):
    tiny = shared_path("models", "tiny")
    text = (tiny / "deploy.prototxt").read_text()
    start = text.index(f'name: "{layer}"')
    end = text.index("layer {", start)
    params = re.sub(rf"{field}: \d+ ", "", text[start:end]).replace("_param {",
                                                                     f"_param {{ {field}: 0")
    bad = tmp_path / "zero.prototxt"
    bad.write_text(text[:start] + params + text[end:])
    message = one_line_error(read_model, bad, tiny / "tiny.caffemodel")
    assert layer in message


def test_onnx_text_not_utf8(tiny, tmp_path):
    path = tmp_path / "tiny.onnx"
    path.write_bytes(to_onnx(tiny).SerializeToString().replace(b"conv1", b"conv\xff"))
    assert "not UTF-8" in one_line_error(read_model, path)


def test_onnx_tensor_in_segments(tiny, tmp_path):
    model = to_onnx(tiny)
    model.graph.initializer[0].segment.begin = 1
    path = tmp_path / "tiny.onnx"
    path.write_bytes(model.SerializeToString())
    assert "is malformed" in one_line_error(read_model, path)


def test_onnx_attribute_that_refers_to_a_function_attribute(tiny, tmp_path):
    model = to_onnx(tiny)
    node = next(n for n in model.graph.node if n.op_type == "LRN")
    node.attribute[0].ref_attr_name = "beta"
    path = tmp_path / "tiny.onnx"
    path.write_bytes(model.SerializeToString())
    one_line_error(read_model, path)


def test_onnx_tensor_of_an_unknown_type(tiny, tmp_path):
    model = to_onnx(tiny)
    model.graph.initializer[0].data_type = -2**31
    path = tmp_path / "tiny.onnx"
    path.write_bytes(model.SerializeToString())
    one_line_error(read_model, path)



@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_torch7_integer_field_not_finite(tmp_path, value):
    genuine = shared_path("reference", "torch7", "layers", "SpatialMaxPooling_floor.t7")
    kernel_width = b"kW" + struct.pack("<id", 1, 3.0)
    data = genuine.read_bytes()
    assert data.count(kernel_width) == 1
    path = tmp_path / "pool.t7"
    path.write_bytes(data.replace(kernel_width, b"kW" + struct.pack("<id", 1, value)))
    assert "'kW'" in one_line_error(read_model, path)


def tiny_prototxt_without(tmp_path: Path, text: str) -> Path:
    original = (shared_path("models", "tiny") / "deploy.prototxt").read_text()
    assert text in original
    path = tmp_path / "edited.prototxt"
    path.write_text(original.replace(text, ""))
    return path


def test_prototxt_layer_that_reads_nothing(tmp_path):
    path = tiny_prototxt_without(tmp_path, 'bottom: "norm1" ')
    caffemodel = shared_path("models", "tiny", "tiny.caffemodel")
    assert "conv2" in one_line_error(read_model, path, caffemodel)


def test_prototxt_without_layers(tmp_path):
    text = (shared_path("models", "tiny") / "deploy.prototxt").read_text()
    path = tmp_path / "input_only.prototxt"
    path.write_text(text[:text.index('layer { name: "conv1"')])
    assert "no layers" in one_line_error(read_model, path)


def test_image_too_large_is_refused_before_decoding(tmp_path):
    """10000×10000: more than PIL's warning size, less than its error size."""
    header = shared_path("models", "cifar10_quick_v1", "cat10.png").read_bytes()
    huge = header[:16] + struct.pack(">II", 10000, 10000) + header[24:]
    path = tmp_path / "huge.png"
    path.write_bytes(fix_png_crcs(huge))
    tracemalloc.start()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no warning besides the error
        with pytest.raises(ImageError, match="too large") as caught:
            load_rgb(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)
    assert peak < 10 << 20


def test_png_chunk_of_a_huge_declared_size_allocates_no_more_than_the_file(tmp_path):
    data = bytearray(shared_path("models", "lenet_mnist", "samples", "img_0_3.png").read_bytes())
    assert data[37:41] == b"IDAT"
    data[33] |= 0x40  # the IDAT chunk declares 1 GiB more than it holds
    path = tmp_path / "long_chunk.png"
    path.write_bytes(fix_png_crcs(bytes(data)))
    tracemalloc.start()
    try:
        load_rgb(path)  # the image data is all there, so it reads
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 << 20


def test_torch7_sizes_that_are_an_object(tmp_path):
    size = instance(12, "nn.Identity", table(13, []))
    view = instance(10, "nn.View", table(11, [(string("size"), size)]))
    path = tmp_path / "view.t7"
    path.write_bytes(sequential([view]))
    assert "'size' is not a list of sizes" in one_line_error(read_model, path)


# --- the fuzzer's own check: what it must report ---------------------------------------------

def test_the_driver_catches_crashes_hangs_and_stray_exceptions(tmp_path):
    start = 2  # cases 2..8 of "behaviour" hold each behaviour once (asserted)
    seeds = CHECKS["behaviour"].seeds(tmp_path)
    what = {i: make_case("behaviour", i, seeds)["case.txt"].decode()
            for i in range(start, start + 7)}
    assert sorted(what.values()) == sorted(BEHAVIOURS)
    report = fuzz(["behaviour"], 7, start, timeout=5, log=tmp_path / "worker.log")["behaviour"]
    finding_of = {"lines": "multi-line", "raise": "exception", "allocate": "memory",
                  "crash": "crash", "hang": "hang"}
    found = {int(f.split()[0]): f.split()[1].rstrip(":") for f in report.findings}
    assert found == {i: finding_of[w] for i, w in what.items() if w in finding_of}
    assert (report.cases, report.rejected, report.accepted) == (7, 1, 1)
