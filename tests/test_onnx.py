"""ONNX export and import: onnxruntime against our PyTorch nets at the declared size and
at two sizes where Caffe's ceil rule matters, the round trip through onnx2torch, a
hand-written graph, the CLI and its errors.

Tolerances: onnxruntime vs PyTorch ≤ 1e-4 · max(1, max |y|); read back vs original
≤ 1e-5 (outputs), relative the same way; DeepDream input gradients by the gradient rule
of tests/compare.py.
"""

from __future__ import annotations

import functools
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from caffe_refs import CAFFE_REFERENCES, dream_gradient, load_reference_net
from compare import assert_gradient_close, relative_error
from conftest import ROOT, shared_path
from onnx import TensorProto, helper, numpy_helper

import converters
from converters.__main__ import main
from converters.layer_types.windows import Pool, pooled_size
from converters.network import Network
from converters.onnx.cli import compare
from converters.onnx.export import OPSET, export_onnx, output_names, to_onnx
from converters.torch7 import read_torch7

pytestmark = pytest.mark.numerical

# net -> two other (H, W) input sizes; each makes some ceil-mode pooling differ from floor
# or drop a last window (asserted below), and H != W.
SIZES = {
    "tiny": [(33, 36), (40, 37)],
    "tiny_inception": [(29, 33), (39, 23)],
    "lenet_mnist_img_7_0": [(27, 31), (33, 25)],
    "cifar10_quick_v1_cat10": [(31, 35), (36, 29)],
    "nin_cifar10": [(33, 37), (36, 41)],
    "squeezenet_v1.1_cat227": [(225, 229), (233, 239)],
    "bvlc_googlenet_cat224": [(225, 231), (235, 229)],
    "handbuilt.t7": [(31, 36), (27, 33)],
    "tiny_caffe_v2.t7": [(33, 29), (35, 38)],
    "nin_cifar10_formula.t7": [(33, 37), (41, 36)],
}
SIZE_BOUND = ("InnerProduct", "TorchView", "TorchReshape", "Reshape", "Flatten")


@functools.cache
def reference(name: str) -> Network:
    if name.endswith(".t7"):
        return Network(read_torch7(shared_path("reference", "torch7", name)))
    formula = None
    if CAFFE_REFERENCES[name][1] is None:
        sys.path.insert(0, str(shared_path("tools")))
        try:
            from formula_weights import blob as formula
        finally:
            sys.path.pop(0)
    return load_reference_net(shared_path(), name, formula)


def spatial_end(net: Network) -> str:
    """The last layer before the first one that only runs at the declared size."""
    for i, kind in enumerate(net.layer_types):
        if kind in SIZE_BOUND:
            return net.layer_names[i - 1]
    return net.layer_names[-1]


def ceil_matters(net: Network, end: str, size: tuple[int, int]) -> bool:
    """Whether some ceil-mode pooling up to `end` has another size than floor or than
    ceil without Caffe's last-window rule at this input size."""
    pools = [(layer, pool) for layer, pool in zip(net.spec.layers[:net.layer_index[end] + 1],
                                                  net.stages)
             if layer.type == "Pooling" and not pool.global_pool and pool.ceil]
    with torch.no_grad():
        ins = net.forward_to(torch.zeros(1, net.spec.input_shape[1], *size),
                             blobs={layer.bottoms[0] for layer, _ in pools})
    for layer, pool in pools:
        assert isinstance(pool, Pool)
        for n, k, s, p in zip(ins[layer.bottoms[0]].shape[2:], pool.kernel, pool.stride, pool.pad):
            ceil = pooled_size(n, k, s, p, True)
            if ceil != pooled_size(n, k, s, p, False) or ceil != -(-(n + 2 * p - k) // s) + 1:
                return True
    return False


def check_every_layer(net: Network, path, size: tuple[int, int]) -> float:
    x = torch.randn(1, net.spec.input_shape[1], *size, generator=torch.Generator().manual_seed(1))
    result = compare(path, x.numpy(), every_layer=True, network=net)
    produced = {o for node in onnx.load(path).graph.node for o in node.output}
    layers = [n for n in net.layer_names if n in produced]
    assert layers == net.layer_names[:len(layers)] and set(layers) <= set(result)
    worst = max(r[2] for r in result.values())
    assert worst <= 1e-4, f"{net.name} at {size}: {max(result, key=lambda n: result[n][2])}"
    return worst


@pytest.mark.parametrize("name", list(SIZES))
def test_export_agrees_with_onnxruntime(name, tmp_path):
    net = reference(name)
    path = export_onnx(net, tmp_path / "net.onnx")
    model = onnx.load(path)
    assert [o.version for o in model.opset_import] == [OPSET]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims[2:]] == ["height", "width"]
    values = {o for node in model.graph.node for o in node.output}
    assert all(layer in values for layer in net.layer_names)
    consumed = {i for node in model.graph.node for i in node.input}
    assert {o.name for o in model.graph.output} == \
        {v for layer in net.spec.layers for v in output_names(layer) if v not in consumed}
    worst = [check_every_layer(net, path, tuple(net.spec.input_shape[2:]))]
    end = spatial_end(net)
    spatial = export_onnx(net, tmp_path / "spatial.onnx", until=end)
    assert [o.name for o in onnx.load(spatial).graph.output] == [end]
    for size in SIZES[name]:
        assert ceil_matters(net, end, size), size
        worst.append(check_every_layer(net, spatial, size))
    print(f"{name}: onnxruntime vs torch, worst relative {max(worst):.2e}")


@pytest.mark.parametrize("name", ["tiny", "tiny_inception", "handbuilt.t7", "tiny_caffe_v2.t7",
                                  "bvlc_googlenet_cat224"])
def test_read_back_gives_the_same_net(name, tmp_path):
    net = reference(name)
    back = converters.load(export_onnx(net, tmp_path / "net.onnx"))
    assert back.layer_names == net.layer_names
    assert back.sequence == net.sequence
    assert [layer.tops for layer in back.spec.layers] == [layer.tops for layer in net.spec.layers]
    assert back.spec.input_name == net.spec.input_name
    assert back.spec.input_shape == net.spec.input_shape
    x = torch.randn(net.spec.input_shape, generator=torch.Generator().manual_seed(2))
    blobs = [b for b in net.blob_writer if b not in net.layer_index]
    with torch.no_grad():
        ours, theirs = net.forward_to(x, net.layer_names), back.forward_to(x, net.layer_names)
        ours_b, theirs_b = net.forward_to(x, blobs=blobs), back.forward_to(x, blobs=blobs)
    for key in ours:
        assert relative_error(theirs[key], ours[key]) <= 1e-5, key
    for key in ours_b:
        assert relative_error(theirs_b[key], ours_b[key]) <= 1e-5, key
    end = net.layer_names[len(net.layer_names) // 2]
    assert_gradient_close(dream_gradient(back, x, end), dream_gradient(net, x, end), end)
    # truncation and another size (Caffe's ceil rule) through onnx2torch's modules
    other = spatial_end(net)
    x = torch.randn(1, net.spec.input_shape[1], *SIZES[name][0],
                    generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert relative_error(back.forward_to(x, [other])[other],
                              net.forward_to(x, [other])[other]) <= 1e-5
    assert_gradient_close(dream_gradient(back, x, other), dream_gradient(net, x, other), other)


def test_imported_net_saves_loads_and_exports_again(tmp_path):
    net = reference("handbuilt.t7")  # DepthConcat: Shape, Max, Div, Pad with int constants
    back = converters.load(export_onnx(net, tmp_path / "net.onnx"))
    saved = converters.load(converters.save(back, tmp_path / "saved"))
    x = torch.randn(net.spec.input_shape, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.equal(saved(x), back(x))
    again = export_onnx(saved, tmp_path / "again.onnx")
    assert check_every_layer(net, again, (32, 32)) <= 1e-4


def handwritten_model() -> onnx.ModelProto:
    """Conv → Relu → MaxPool (ceil) → Reshape(Constant shape) → Gemm → Softmax, plus an
    unnamed node; weights from a fixed generator."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.3
    b = rng.standard_normal(4).astype(np.float32)
    fc = rng.standard_normal((5, 4 * 4 * 4)).astype(np.float32) * 0.1
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),  # no name: the layer is named "r"
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[3, 3],
                         strides=[2, 2], ceil_mode=1),
        helper.make_node("Constant", [], ["shape"], name="shape",
                         value=numpy_helper.from_array(np.array([1, -1], np.int64))),
        helper.make_node("Reshape", ["p", "shape"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc"], ["logits"], name="fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["prob"], name="prob", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "handwritten", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                             [1, 3, 8, 8])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, 5])],
        [numpy_helper.from_array(a, n) for a, n in ((w, "w"), (b, "b"), (fc, "fc"))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def test_handwritten_graph_loads_and_runs(tmp_path):
    model = handwritten_model()
    path = tmp_path / "hand.onnx"
    onnx.save(model, path)
    net = converters.load(path)
    assert net.layer_names == ["conv", "r", "pool", "flatten", "fc", "prob"]
    assert net.spec.input_shape == [1, 3, 8, 8]
    w, b, fc = (torch.tensor(numpy_helper.to_array(t)) for t in model.graph.initializer)
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(5), requires_grad=True)
    pooled = net.forward_to(x, ["pool"])["pool"]
    x2 = x.detach().clone().requires_grad_(True)
    expected = torch.nn.functional.max_pool2d(
        torch.relu(torch.nn.functional.conv2d(x2, w, b, padding=1)), 3, 2, ceil_mode=True)
    assert pooled.shape == (1, 4, 4, 4)
    assert relative_error(pooled.detach(), expected.detach()) <= 1e-6
    pooled.backward(pooled.detach())
    expected.backward(expected.detach())
    assert relative_error(x.grad, x2.grad) <= 1e-6 and x.grad.abs().max() > 0
    prob = torch.softmax(expected.reshape(1, -1) @ fc.T, 1)
    with torch.no_grad():
        assert relative_error(net(x), prob.detach()) <= 1e-6
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert relative_error(session.run(None, {"x": x.detach().numpy()})[0], prob.detach()) <= 1e-6


def bad_models(tmp_path):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07\x12\x03abc" + bytes(range(256)) * 4)
    unknown = handwritten_model()
    unknown.graph.node[1].op_type = "Hardmax"  # a real ONNX op onnx2torch has no converter for
    new_opset = handwritten_model()
    new_opset.opset_import[0].version = 22  # MaxPool-22: onnx2torch stops at 12
    files = {"corrupt": corrupt}
    for key, model in (("unknown", unknown), ("opset", new_opset)):
        onnx.checker.check_model(model)
        files[key] = tmp_path / f"{key}.onnx"
        onnx.save(model, files[key])
    return files


@pytest.mark.parametrize("case, message", [
    ("corrupt", "not an ONNX model"),
    ("unknown", "onnx2torch cannot convert operator 'Hardmax'"),
    ("opset", "at opset 22 is not supported by onnx2torch (it converts versions"),
])
def test_bad_files_are_one_line_exit_2_nothing_written(case, message, tmp_path, capsys):
    path = bad_models(tmp_path)[case]
    commands = [["check", str(path)], [str(path), "-o", str(tmp_path / "out")],
                ["export", str(path), "-o", str(tmp_path / "out.onnx")]]
    for command in commands:
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(path) in err and message in err, err
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.onnx").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in bad_models(tmp_path).values())


def test_unexportable_pooling_is_an_error_and_writes_nothing(tmp_path):
    spec = reference("tiny").spec
    layer = converters.Layer("odd_pool", "Pooling", ["data"], ["odd_pool"],
                             {"method": "max", "kernel": [1, 1], "stride": [2, 2], "pad": [0, 0]})
    net = Network(converters.NetSpec("odd", "data", spec.input_shape, [layer]))
    with pytest.raises(converters.ConversionError, match="'odd_pool'.*cannot express"):
        export_onnx(net, tmp_path / "odd.onnx")
    assert not list(tmp_path.iterdir())


def test_cli_export_until_and_check(tmp_path):
    tiny = shared_path("models", "tiny_inception")
    out = tmp_path / "net.onnx"
    run = [sys.executable, "-m", "converters"]
    result = subprocess.run([*run, "export", str(tiny / "deploy.prototxt"),
                             str(tiny / "tiny_inception.caffemodel"), "-o", str(out),
                             "--until", "inc/output"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    model = onnx.load(out)
    assert [o.name for o in model.graph.output] == ["inc/output"]
    net = reference("tiny_inception")
    assert len(converters.load(out).layer_names) == net.layer_index["inc/output"] + 1
    image = shared_path("models", "_common", "cat.jpg")
    result = subprocess.run([*run, "check", str(out), "--image", str(image), "--layers"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "max |Δ|" in line]
    assert [line.split()[0] for line in lines][:1] == ["inc/output"] and len(lines) > 5
    assert all(float(line.rsplit("relative ", 1)[1].rstrip(")")) <= 1e-4 for line in lines)


def test_make_convert_format_onnx(tmp_path):
    from models.convert import convert_files

    tiny = shared_path("models", "tiny")
    result = convert_files("mytiny", tiny / "deploy.prototxt", tiny / "tiny.caffemodel",
                           root=tmp_path, onnx=True)
    path = result.directory / "mytiny.onnx"
    assert path.is_file() and (result.directory / "network.json").is_file()
    x = torch.randn(result.network.spec.input_shape, generator=torch.Generator().manual_seed(6))
    assert max(r[2] for r in compare(path, x.numpy(), network=result.network).values()) <= 1e-4
    assert to_onnx(result.network).graph.node[0].name == result.network.layer_names[0]
