"""Shapes and minimum input sizes by arithmetic (converters/shapes.py), checked against
what the real modules compute, and the refusals built on them: images too small for the
target, declared inputs too large to allocate, devices that are not there."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, SHARED, shared_path
from PIL import Image

import converters
import dreamer
from converters.caffe.reader import read_caffe
from converters.layer_types import build_module
from converters.shapes import min_input_sizes, walk_shapes
from converters.spec import ConversionError, NetSpec
from converters.torch7 import read_torch7
from dreamer.loops.google import OctaveSettings, dream_octaves, octave_pyramid, octave_sizes

CAFFE_DEPLOYS = sorted(str(p.relative_to(SHARED)) for p in SHARED.glob("models/*/*.prot*txt")
                       if "deploy" in p.name)
TORCH7_NETS = ["reference/torch7/handbuilt.t7", "reference/torch7/handbuilt_withstate.t7",
               "reference/torch7/tiny_caffe_v1.t7", "reference/torch7/tiny_caffe_v2.t7",
               "reference/torch7/googlenet_torch7.t7", "reference/torch7/nin_cifar10_formula.t7",
               "models/torch7/stl10_model.net", "models/torch7/face-detector-elab_model.net",
               "models/torch7/face-detector_model.ascii.net"]
SIZES = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89]


def no_weights(layer: str, index: int, shape: tuple[int, ...]) -> np.ndarray:
    """Weights of the right shape that take no memory: shapes do not depend on values."""
    return np.broadcast_to(np.float32(0), shape)


def meta_modules(spec: NetSpec) -> list[torch.nn.Module]:
    """The builder's real modules, on PyTorch's meta device (nothing allocated)."""
    modules = []
    for layer in spec.layers:
        on_cpu = layer.type == "BatchNorm"  # reads a value of its blobs while building
        blobs = [torch.from_numpy(np.array(b)) if on_cpu else
                 torch.empty(b.shape, device="meta") for b in layer.blobs]
        modules.append(build_module(layer, blobs).to("meta"))
    return modules


def module_shapes(spec: NetSpec, modules: list, shape: list[int]) -> dict[str, list]:
    """Each layer's top shapes as the real modules compute them; layers they refuse to
    compute (and those after them) are left out."""
    values = {spec.input_name: torch.empty(shape, device="meta")}
    out = {}
    for layer, module in zip(spec.layers, modules):
        if any(b not in values for b in layer.bottoms):
            continue
        try:
            y = module(*[values[b] for b in layer.bottoms])
        except RuntimeError:
            continue
        ys = y if isinstance(y, tuple) else (y,)
        values.update(zip(layer.tops, ys))
        out[layer.name] = [list(t.shape) for t in ys]
    return out


def assert_arithmetic_matches_modules(spec: NetSpec) -> None:
    modules = meta_modules(spec)
    declared = spec.input_shape
    sizes = [(h, h) for h in SIZES] + [(declared[-2], declared[-1])] if len(declared) == 4 \
        else [None]
    for size in sizes:
        shape = [1, *declared[1:]] if size is None else [1, declared[1], *size]
        arithmetic = walk_shapes(spec, shape).outputs
        assert arithmetic == module_shapes(spec, modules, shape), (spec.name, shape)


@pytest.mark.parametrize("prototxt", CAFFE_DEPLOYS)
def test_caffe_shapes_match_the_modules(prototxt):
    spec = read_caffe(shared_path(prototxt), no_weights)
    assert_arithmetic_matches_modules(spec)


@pytest.mark.parametrize("path", TORCH7_NETS)
def test_torch7_shapes_match_the_modules(path):
    assert_arithmetic_matches_modules(read_torch7(shared_path(path)))


# --- minimum sizes against the real nets --------------------------------------------------

def caffe_side(spec: NetSpec, size: int, target: str) -> int:
    """The target's output height on a size×size input, from Caffe's own formulas
    (conv_layer.cpp: floor; pooling_layer.cpp: ceil, then the last window must start
    inside the padded input); written here independently of shapes.py."""
    side = {spec.input_name: size}
    for layer in spec.layers:
        n, p = side[layer.bottoms[0]], layer.params
        if layer.type == "Convolution":
            n = (n + 2 * p["pad"][0] - (p["kernel"][0] - 1) * p["dilation"][0] - 1) \
                // p["stride"][0] + 1
        elif layer.type == "Pooling" and p.get("global"):
            n = 1
        elif layer.type == "Pooling":
            k, s, pad = p["kernel"][0], p["stride"][0], p["pad"][0]
            out = int(np.ceil((n + 2 * pad - k) / s)) + 1
            if pad and (out - 1) * s >= n + pad:
                out -= 1
            n = out
        for top in layer.tops:
            side[top] = n
        if layer.name == target:
            return n
    raise KeyError(target)


@pytest.mark.parametrize("model, layers", [
    ("googlenet", ["conv2/3x3", "inception_3a/output", "inception_4c/output",
                   "inception_5b/output", "pool5/7x7_s1"]),
    ("nin", ["conv2", "pool2", "conv4-1024", "pool4"]),
])
def test_minimum_size_is_the_smallest_the_net_computes(request, model, layers):
    net = request.getfixturevalue(model)
    sizes = min_input_sizes(net.spec)
    for layer in layers:
        height, width = sizes[layer]
        assert height == width  # square kernels and strides throughout
        with torch.no_grad():
            out = net.forward_to(torch.zeros(1, 3, height, width), [layer])[layer]
        assert min(out.shape[2:]) >= 1
        assert caffe_side(net.spec, height, layer) >= 1
        assert caffe_side(net.spec, height - 1, layer) < 1, layer


def test_minimum_sizes_are_in_network_json_and_the_layer_table(tiny, tmp_path):
    converters.save(tiny, tmp_path / "tiny")
    entries = json.loads((tmp_path / "tiny" / "network.json").read_text())["layers"]
    # By hand (see test_dream_cli's layer table): conv1 5, pool1 7, fc3 35.
    assert {e["name"]: e["min_size"] for e in entries} == {
        "conv1": [5, 5], "relu1": [5, 5], "pool1": [7, 7], "norm1": [7, 7], "conv2": [7, 7],
        "relu2": [7, 7], "fc3": [35, 35], "prob": [35, 35]}
    assert converters.load(tmp_path / "tiny").min_sizes == min_input_sizes(tiny.spec)


def test_onnx_export_carries_the_minimum_sizes(tiny, tmp_path):
    from converters.onnx.export import export_onnx
    from converters.onnx.reader import load_onnx

    back = load_onnx(export_onnx(tiny, tmp_path / "tiny.onnx"))
    assert back.min_sizes == tiny.min_sizes
    assert back.output_shapes() == tiny.output_shapes()  # meta device vs arithmetic
    assert back.size_problem(6, 40, ["conv2"]).too_small
    assert back.size_problem(7, 7, ["conv2"]) is None


def test_a_shape_rule_names_the_layer(tiny):
    spec = read_caffe(shared_path("models", "tiny", "deploy.prototxt"), no_weights)
    spec.layer("pool1").params["method"] = "stochastic"
    with pytest.raises(ConversionError, match="'pool1' .*stochastic"):
        walk_shapes(spec, [1, 3, 35, 35])


# --- dreams on images too small --------------------------------------------------------------

def dreamer_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dreamer", *args], capture_output=True,
                          text=True, cwd=cwd, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin"})


def tiny_args() -> list[str]:
    models = shared_path("models", "tiny")
    return ["--model", str(models / "deploy.prototxt"), "--weights",
            str(models / "tiny.caffemodel"), "--quiet"]


def test_a_one_pixel_image_is_an_error_naming_the_minimum(tmp_path):
    Image.new("RGB", (1, 1), (120, 80, 40)).save(tmp_path / "dot.png")
    result = dreamer_cli(tmp_path, "dot.png", "conv2", "2", "0.05", *tiny_args())
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "needs at least 7×7" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dot.png"]


def test_skipped_octaves_are_announced_before_any_compute(tiny):
    base = np.zeros((3, 20, 24), np.float32)  # octaves 4×4, 5×6, 7×9, 10×12, 14×17, 20×24
    settings = OctaveSettings(iterations=2, octaves=6, octave_scale=1.4, jitter=0)
    low, high = np.full((3, 1, 1), -1e9, np.float32), np.full((3, 1, 1), 1e9, np.float32)
    calls: list[int] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        def gradient(x: torch.Tensor) -> torch.Tensor:
            calls.append(len(caught))  # warnings given when the net runs
            return torch.ones_like(x)

        def problem(height: int, width: int):
            return tiny.size_problem(height, width, ["conv2"])

        dream_octaves(base, gradient, settings, low, high, np.random.RandomState(0),
                      size_problem=problem)
    assert [str(w.message).split(" skipped")[0] for w in caught] == \
        ["octave 1 (4×4)", "octave 2 (6×5)"]
    assert calls == [2] * (4 * 2)  # four octaves of two steps, all after both warnings


@pytest.mark.parametrize("height, width, count, scale", [(20, 24, 6, 1.4), (375, 500, 8, 1.3),
                                                         (7, 3, 3, 1.5)])
def test_octave_sizes_are_the_pyramid_sizes(height, width, count, scale):
    pyramid = octave_pyramid(np.zeros((3, height, width), np.float32), count, scale)
    assert octave_sizes(height, width, count, scale) == [o.shape[1:] for o in pyramid[::-1]]


def test_the_torch7_preset_refuses_a_one_colour_image(tiny):
    with pytest.raises(ValueError, match="standard deviation"):
        dreamer.dream(np.full((1, 1, 3), 90, np.uint8), tiny, "conv2", 1, 0.01,
                      preset="torch7")


def test_the_torch7_preset_checks_its_working_size(tiny):
    # The tiny net's fc3 needs exactly its 35×35 input: 224×224 cannot be dreamed at fc3.
    with pytest.raises(ValueError, match="224×224: .*'fc3'"):
        image = np.random.default_rng(0).integers(0, 256, (30, 30, 3), np.uint8)
        dreamer.dream(image, tiny, "fc3", 1, 0.01, preset="torch7")


# --- devices -------------------------------------------------------------------------------

@pytest.mark.parametrize("device", ["cuda:99", "nonsense", "cuda:x"])
def test_an_unavailable_device_is_one_line_before_any_work(tmp_path, device):
    result = dreamer_cli(tmp_path, "missing.png", "conv2", "2", "0.05", "--device", device,
                         *tiny_args())
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert f"device {device!r} is not available" in result.stderr and "cpu" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_dream_refuses_an_unavailable_device(tiny):
    with pytest.raises(ValueError, match="'cuda:99' is not available .*cpu"):
        dreamer.dream(np.zeros((40, 40, 3), np.uint8), tiny, "conv2", 1, 0.01,
                      device="cuda:99")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_refused(tiny):
    with pytest.raises(ValueError, match="'cuda' is not available on this machine"):
        dreamer.dream(np.zeros((40, 40, 3), np.uint8), tiny, "conv2", 1, 0.01, device="cuda")


# --- declared inputs too large ------------------------------------------------------------

BOUNDED_READ = textwrap.dedent("""
    import resource, sys, time
    import converters
    from converters.spec import ConversionError
    from converters.torch7 import read_torch7
    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    kind, path = sys.argv[1], sys.argv[2]
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as f:
        size = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize"))
    resource.setrlimit(resource.RLIMIT_AS, (size + (1 << 30), hard))
    before, start = peak(), time.monotonic()
    try:
        if kind == "caffe":
            converters.load_caffe(path, None)
        elif kind == "torch7":
            read_torch7(path, input_shape=[1, 3, 100000, 100000])
        else:
            converters.load(path)
        print("no error")
    except ConversionError as e:
        print(f"{time.monotonic() - start:.3f} {peak() - before} {e}")
""")


def bounded_read(kind: str, path: Path) -> tuple[float, int, str]:
    result = subprocess.run([sys.executable, "-c", BOUNDED_READ, kind, str(path)],
                            capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    seconds, grown, message = result.stdout.strip().split(" ", 2)
    return float(seconds), int(grown), message


def test_a_huge_declared_input_fails_fast_and_small(tmp_path, tiny):
    prototxt = tmp_path / "huge.prototxt"
    text = shared_path("models", "tiny", "deploy.prototxt").read_text()
    prototxt.write_text(text.replace("dim: 35 dim: 35", "dim: 100000 dim: 100000"))
    converters.save(tiny, tmp_path / "folder")
    description = tmp_path / "folder" / "network.json"
    data = json.loads(description.read_text())
    data["input"]["shape"] = [1, 3, 100000, 100000]
    description.write_text(json.dumps(data))
    cases = [("caffe", prototxt, "huge.prototxt"),
             ("torch7", shared_path("reference", "torch7", "tiny_caffe_v2.t7"),
              "tiny_caffe_v2.t7"),
             ("folder", tmp_path / "folder", "network.json")]
    for kind, path, name in cases:
        seconds, grown, message = bounded_read(kind, path)
        assert name in message and "30,000,000,000 elements" in message, message
        assert seconds < 2 and grown < 200 << 20, (kind, seconds, grown)


def test_the_converter_refuses_a_huge_prototxt_in_one_line(tmp_path):
    prototxt = tmp_path / "huge.prototxt"
    text = shared_path("models", "tiny", "deploy.prototxt").read_text()
    prototxt.write_text(text.replace("dim: 35 dim: 35", "dim: 100000 dim: 100000"))
    result = subprocess.run([sys.executable, "-m", "converters", str(prototxt), "-o",
                             str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "huge.prototxt" in result.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("change, message", [
    (lambda p: p.update(stride=[0, 2]), r"'conv1' \(Convolution\): invalid stride \[0, 2\]"),
    (lambda p: p.pop("kernel"), "malformed network description"),
])
def test_a_bad_window_in_network_json_is_a_clear_error(tiny, tmp_path, change, message):
    converters.save(tiny, tmp_path / "tiny")
    description = tmp_path / "tiny" / "network.json"
    data = json.loads(description.read_text())
    change(next(e for e in data["layers"] if e["name"] == "conv1")["params"])
    description.write_text(json.dumps(data))
    with pytest.raises(ConversionError, match=message):
        converters.load(tmp_path / "tiny")
