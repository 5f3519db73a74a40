"""Torch7 files against real Torch7: every model of shared/reference/torch7 and
shared/models/torch7, output, input gradient (dy = output) and per-module outputs.

References are read with torchfile, not with our reader. Tolerance: max |Δ| ≤ 1e-4 ·
max(1, max |ref|) for values; input gradients by the gradient rule of tests/compare.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchfile
from compare import assert_gradient_close, relative_error
from conftest import ROOT, shared_path

import converters
from converters.network import Network
from converters.torch7 import read_torch7
from converters.torch7.t7file import read_t7

pytestmark = pytest.mark.numerical
REFERENCE = ("reference", "torch7")
DATA_SUFFIXES = ("_input.t7", "_output.t7", "_gradinput.t7", "_layer_outputs.t7")

# model file (under shared/) -> (reference prefix, whether Torch7 ran it on a batch, what
# Torch7 stored beside input and output). Whole nets: `batched` is what the reader must
# detect by itself (README §5, §7).
FULL = ("gradinput", "layer_outputs")
NETS = {
    "reference/torch7/handbuilt.t7": ("reference/torch7/handbuilt", True, FULL),
    "reference/torch7/handbuilt_double.t7":
        ("reference/torch7/handbuilt_double", True, ("gradinput",)),
    "reference/torch7/handbuilt_withstate.t7":
        ("reference/torch7/handbuilt_withstate", True, FULL),
    "reference/torch7/handbuilt_conv3d.t7": ("reference/torch7/handbuilt_conv3d", False, FULL),
    "reference/torch7/tiny_caffe_v1.t7": ("reference/torch7/tiny_caffe_v1", False, FULL),
    "reference/torch7/tiny_caffe_v2.t7": ("reference/torch7/tiny_caffe_v2", False, FULL),
    "models/torch7/face-detector-elab_model.net":
        ("reference/torch7/genuine/face-detector-elab_model", False, ()),
    "models/torch7/face-detector_model.ascii.net":
        ("reference/torch7/genuine/face-detector_model.ascii", False, ()),
    "models/torch7/stl10_model.net": ("reference/torch7/genuine/stl10_model", False, ()),
}
# Single modules, all run by Torch7 on a batch (2×6×14×12, 3×20, 3×7), so `batched=True`.
LAYER_CASES = [
    "Concat", "DepthConcat", "Dropout", "Linear", "ReLU", "SoftMax",
    "SpatialAveragePooling_ceil", "SpatialAveragePooling_global",
    "SpatialAveragePooling_pad_ceil", "SpatialAveragePooling_pad_ceil_edge",
    "SpatialAveragePooling_pad_ceil_exclude_pad", "SpatialBatchNormalization",
    "SpatialConvolution", "SpatialConvolutionMM", "SpatialCrossMapLRN",
    "SpatialMaxPooling_ceil", "SpatialMaxPooling_floor", "SpatialMaxPooling_pad_ceil",
    "SpatialMaxPooling_pad_ceil_edge", "View",
]
# Tested below with their own references.
OTHER_MODELS = ["reference/torch7/googlenet_torch7.t7",
                "reference/torch7/nin_imagenet_formula.t7",
                "reference/torch7/nin_cifar10_formula.t7"]
# torchfile's own test files that hold no network; each must be refused in one line.
NOT_NETWORKS = {
    "custom_class.t7": "an instance of a Lua class 'Blah'",
    "doubletensor.t7": "a tensor",
    "floattensor.t7": "a tensor",
    "function.t7": "a Lua function",
    "function_upvals.t7": "a Lua function with upvalues",
    "hello=123.t7": "a Lua table",
    "list_table.t7": "a Lua table",
    "map_table1.t7": "a Lua table",
    "map_table2.t7": "a Lua table",
    "nngraph_node.t7": "one nngraph.Node, not a graph",
    "recursive_class.t7": "a Lua class 'A' holding itself",
    "recursive_kv_table.t7": "a Lua table that is its own key and value",
    "tds_hash.t7": "a tds.Hash",
    "tds_vec.t7": "a tds.Vec",
}
# A network we refuse: an nngraph gModule with two inputs (a Linear and an Identity
# summed); the description has one input, and nngraph is not among the supported
# containers. No Torch7 output exists for it.
UNSUPPORTED_NETWORKS = {"gmodule_with_linear_identity.t7": "nn.gModule"}


def t7(relative: str):
    """A reference array (or table) read with torchfile."""
    return torchfile.load(str(shared_path(*relative.split("/"))), use_list_heuristic=False)


def check_against_torch7(spec: converters.NetSpec, prefix: str, stored: tuple[str, ...]) -> None:
    """Output and what else Torch7 `stored`: gradInput (dy = output, by the gradient rule),
    each top-level module's output."""
    net = Network(spec)
    unbatched = not spec.source["batched"]
    x = torch.from_numpy(np.ascontiguousarray(t7(prefix + "_input.t7"))).float()
    x = (x[None] if unbatched else x).requires_grad_(True)
    last = net.layer_names[-1]
    outs = net.forward_to(x, list(dict.fromkeys([*spec.sequence, last])))
    y = outs[last]
    y.backward(y.detach())
    unwrap = (lambda t: t[0]) if unbatched else (lambda t: t)
    assert relative_error(unwrap(y), t7(prefix + "_output.t7")) <= 1e-4
    if "gradinput" in stored:
        assert_gradient_close(unwrap(x.grad), t7(prefix + "_gradinput.t7"), prefix)
    if "layer_outputs" in stored:
        modules = t7(prefix + "_layer_outputs.t7")
        assert sorted(modules) == list(range(1, len(spec.sequence) + 1))
        for index, ref in modules.items():
            layer = spec.sequence[index - 1]
            assert relative_error(unwrap(outs[layer]), ref) <= 1e-4, (index, layer)


@pytest.mark.parametrize("model", list(NETS))
def test_net_matches_torch7(model):
    prefix, batched, stored = NETS[model]
    spec = read_torch7(shared_path(*model.split("/")))
    assert spec.source["batched"] is batched
    check_against_torch7(spec, prefix, stored)


@pytest.mark.parametrize("case", LAYER_CASES)
def test_module_matches_torch7(case):
    spec = read_torch7(shared_path(*REFERENCE, "layers", f"{case}.t7"), batched=True)
    check_against_torch7(spec, f"reference/torch7/layers/{case}", ("gradinput",))


def test_every_model_file_is_covered():
    """Every .t7/.net that is not reference data (inputs, outputs, image.scale pairs) is
    one of the cases above or refused by name below."""
    shared = shared_path()
    found = {str(p.relative_to(shared))
             for folder in (shared_path(*REFERENCE), shared_path("models", "torch7"))
             for pattern in ("*.t7", "*.net") for p in folder.rglob(pattern)}
    found = {f for f in found if not f.endswith(DATA_SUFFIXES)
             and not f.startswith("reference/torch7/image/")
             and not f.endswith(("googlenet_torch7_l16_output.t7",
                                 "googlenet_torch7_l16_gradinput.t7"))}
    covered = set(NETS) | set(OTHER_MODELS)
    covered |= {f"reference/torch7/layers/{case}.t7" for case in LAYER_CASES}
    covered |= {f"models/torch7/torchfile_tests/{name}"
                for name in [*NOT_NETWORKS, *UNSUPPORTED_NETWORKS]}
    assert found == covered


@pytest.mark.parametrize("name", list(NOT_NETWORKS))
def test_non_network_files_are_refused(name):
    path = shared_path("models", "torch7", "torchfile_tests", name)
    with pytest.raises(converters.ConversionError) as error:
        read_torch7(path)
    message = str(error.value)
    assert "\n" not in message and name in message
    assert "not a network" in message or "unsupported Torch7 class" in message


@pytest.mark.parametrize("name", list(UNSUPPORTED_NETWORKS))
def test_unsupported_network_is_refused_by_class(name):
    path = shared_path("models", "torch7", "torchfile_tests", name)
    with pytest.raises(converters.ConversionError, match=UNSUPPORTED_NETWORKS[name]):
        read_torch7(path)


@pytest.mark.parametrize("name", list(NOT_NETWORKS))
def test_reader_agrees_with_torchfile(name):
    """Our checked reader returns what torchfile does (tables, classes, cycles, tds)."""
    path = shared_path("models", "torch7", "torchfile_tests", name)
    ours, encoding = read_t7(path)
    assert encoding == "binary"
    assert repr(ours) == repr(torchfile.load(str(path), use_list_heuristic=False))


def test_reader_reads_an_nngraph_module_as_torchfile_does():
    path = shared_path("models", "torch7", "torchfile_tests", "gmodule_with_linear_identity.t7")
    ours, theirs = read_t7(path)[0], torchfile.load(str(path), use_list_heuristic=False)
    assert sorted(ours._obj) == sorted(theirs._obj)
    for index, module in theirs["modules"].items():
        assert ours["modules"][index].torch_typename() == module.torch_typename()
    assert np.array_equal(ours["modules"][3]["weight"], theirs["modules"][3]["weight"])


# --- GoogLeNet (real weights) ----------------------------------------------------------------

@pytest.fixture(scope="module")
def torch7_googlenet():
    spec = read_torch7(shared_path(*REFERENCE, "googlenet_torch7.t7"))
    x = torch.from_numpy(t7("reference/torch7/googlenet_torch7_input.t7"))[None]
    return Network(spec), x


def test_googlenet_modules_and_top5(torch7_googlenet):
    net, x = torch7_googlenet
    assert len(net.sequence) == 26 and net.sequence[15] == "inception_4c/output"
    assert net.sequence[23:] == ["torch_view", "loss3/classifier", "prob"]
    with torch.no_grad():
        prob = net(x)[0]
    ref = t7("reference/torch7/googlenet_torch7_output.t7")
    assert relative_error(prob, ref) <= 1e-4
    assert list(torch.topk(prob, 5).indices) == list(np.argsort(-ref)[:5])


def test_googlenet_l16_output_and_gradient(torch7_googlenet):
    """Modules 1..16 (through inception_4c/output): output, and the DeepDream gradient.

    One max-pool switch differs: pool1/3x3_s2, channel 24, output (2, 5), whose two
    largest inputs, relu_7x7 at (4, 12) and (6, 10), are both 15.4058 and differ by
    4.5e-5 (3e-6 relative), within what conv1's 147-term float32 sums give in another
    summation order. Torch7 routes that unit's gradient to (4, 12), we to (6, 10); only
    the two 7×7 input windows under them (rows 5..15, columns 17..27) differ, by up to
    1.7e-3 relative: the gradient rule's case (tests/compare.py). With the switch set
    Torch7's way, every element matches to 1e-4.
    """
    net, x = torch7_googlenet
    end = net.sequence[15]
    output = t7("reference/torch7/googlenet_torch7_l16_output.t7")
    expected = t7("reference/torch7/googlenet_torch7_l16_gradinput.t7")

    def gradient() -> torch.Tensor:
        xg = x.clone().requires_grad_(True)
        y = net.forward_to(xg, [end])[end]
        assert relative_error(y[0], output) <= 1e-4
        y.backward(y.detach())
        return xg.grad[0]

    assert_gradient_close(gradient(), expected, "as is")

    def torch7_switch(module, inputs, out):
        bump = torch.zeros_like(out)
        bump[0, 24, 4, 12] = 2 * (out[0, 24, 6, 10] - out[0, 24, 4, 12]).detach()
        return out + bump

    hook = net.stages[net.layer_index["conv1/relu_7x7"]].register_forward_hook(torch7_switch)
    try:
        assert relative_error(gradient(), expected) <= 1e-4
    finally:
        hook.remove()


# --- NIN made by loadcaffe ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["nin_imagenet", "nin_cifar10"])
def test_nin_every_module_matches_torch7(name):
    spec = read_torch7(shared_path(*REFERENCE, f"{name}_formula.t7"))
    modules = np.load(shared_path(*REFERENCE, f"{name}_formula_modules.npz"))
    assert [str(n) for n in modules["module_names"]][1:] == spec.sequence
    x = torch.from_numpy(modules["full:input"])[None]
    with torch.no_grad():
        outs = Network(spec).forward_to(x, spec.sequence)
    for layer in spec.sequence:
        out = outs[layer][0]
        assert list(out.shape) == list(modules[f"shape:{layer}"]), layer
        if f"full:{layer}" in modules:
            err = relative_error(out, modules[f"full:{layer}"])
        else:
            idx = torch.from_numpy(modules[f"idx:{layer}"])
            err = relative_error(out.reshape(-1)[idx], modules[f"values:{layer}"])
        assert err <= 1e-4, layer


def test_nin_t7_and_caffemodel_give_the_same_net():
    """loadcaffe's .t7 and our Caffe reader: same names in the same order (loadcaffe drops
    the final `prob` Softmax), same outputs."""
    models = shared_path("models", "nin_imagenet")
    caffe = converters.load_caffe(models / "deploy.prototxt",
                                  models / "nin_imagenet_formula.caffemodel")
    torch7 = converters.load(shared_path(*REFERENCE, "nin_imagenet_formula.t7"))
    assert caffe.layer_names[-1] == "prob" and caffe.layer_types[-1] == "Softmax"
    assert torch7.layer_names == caffe.layer_names[:-1]
    assert torch7.sequence == caffe.sequence[:-1]
    x = torch.from_numpy(
        np.load(shared_path(*REFERENCE, "nin_imagenet_formula_modules.npz"))["full:input"])[None]
    with torch.no_grad():
        ours, theirs = torch7.forward_to(x, torch7.layer_names), caffe.forward_to(
            x, torch7.layer_names)
    for layer in torch7.layer_names:
        assert relative_error(ours[layer], theirs[layer].double().numpy()) <= 1e-4, layer


# --- the command line ------------------------------------------------------------------------

def test_cli_converts_a_t7_and_the_saved_net_matches(tmp_path):
    model = shared_path(*REFERENCE, "handbuilt.t7")
    out = tmp_path / "handbuilt"
    result = subprocess.run([sys.executable, "-m", "converters", str(model), "-o", str(out)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "inception_depthconcat" in result.stdout and "32×16×16" in result.stdout
    assert (out / "network.json").exists() and (out / "weights.safetensors").exists()
    direct, saved = converters.load(model), converters.load(out)
    assert saved.layer_names == direct.layer_names and saved.sequence == direct.sequence
    x = torch.from_numpy(t7("reference/torch7/handbuilt_input.t7"))
    with torch.no_grad():
        assert torch.equal(saved(x), direct(x))


def test_ascii_file_is_read(tmp_path):
    spec = read_torch7(shared_path("models", "torch7", "face-detector_model.ascii.net"))
    assert spec.source["encoding"] == "ascii"
    assert [layer.type for layer in spec.layers] == [
        "Convolution", "TorchThreshold", "Pooling", "Convolution", "TorchThreshold",
        "TorchReshape", "InnerProduct", "LogSoftmax"]
    assert spec.input_shape == [1, 1, 32, 32]
    assert Path(spec.source["file"]).suffix == ".net"
