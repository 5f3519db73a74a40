"""The typed `Preprocessing` of the network description: it round-trips through
network.json and ONNX, reads the files earlier versions wrote, refuses bad values in one
line, and is the one way the dreamer and `converters check --image` make net input."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from conftest import ROOT, shared_path
from fuzz_cases import fix_png_crcs
from PIL import Image

import converters
from converters import ConversionError
from converters.onnx.cli import image_input
from converters.onnx.export import export_onnx
from converters.onnx.reader import read_onnx
from converters.preprocessing import Preprocessing
from dreamer.dream import dream

# torchvision's ImageNet normalisation: RGB in [0, 1], per-channel mean and std.
TORCHVISION = Preprocessing("RGB", 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# network.json's "preprocessing" as the zoo wrote it before it was a type (NIN's mean file).
OLD_STYLE = {"channel_order": "BGR", "scale": 255.0, "mean": [104.007, 116.6688, 122.6789],
             "std": [1.0, 1.0, 1.0]}


@pytest.fixture
def tiny_folder(tiny, tmp_path):
    """The tiny net saved as a converted folder with no preprocessing."""
    return converters.save(tiny, tmp_path / "tiny")


def with_preprocessing(folder, value) -> None:
    """Rewrite the folder's network.json with `value` as its "preprocessing"."""
    description = folder / "network.json"
    data = json.loads(description.read_text())
    data["preprocessing"] = value
    description.write_text(json.dumps(data))


def test_typed_preprocessing_round_trips_through_network_json(tiny, tmp_path):
    folder = converters.save(replace(tiny.spec, preprocessing=TORCHVISION), tmp_path / "net")
    written = json.loads((folder / "network.json").read_text())["preprocessing"]
    assert written == {"channel_order": "RGB", "scale": 1.0, "mean": [0.485, 0.456, 0.406],
                       "std": [0.229, 0.224, 0.225]}
    assert converters.load(folder).spec.preprocessing == TORCHVISION


def test_old_style_network_json_loads_and_preprocesses_as_written(tiny_folder):
    with_preprocessing(tiny_folder, OLD_STYLE)
    pre = converters.load(tiny_folder).spec.input_preprocessing()
    assert pre == Preprocessing("BGR", 255.0, (104.007, 116.6688, 122.6789), (1.0, 1.0, 1.0))
    pixel = np.array([[[10, 20, 30]]], np.uint8)  # R, G, B
    expected = [30 - 104.007, 20 - 116.6688, 10 - 122.6789]  # B, G, R minus the means
    assert pre.to_net(pixel).ravel() == pytest.approx(expected, abs=1e-4)


def test_a_net_without_preprocessing_gets_caffe_imagenet(tiny_folder):
    pre = converters.load(tiny_folder).spec.input_preprocessing()
    assert (pre.channel_order, pre.scale, pre.mean, pre.std) == (
        "BGR", 255.0, (104.0, 117.0, 123.0), (1.0, 1.0, 1.0))


BAD = [
    ("BGR", "preprocessing: expected an object, got 'BGR'"),
    ({"channel_order": "GBR"}, "'channel_order' must be one of BGR, RGB, L, got 'GBR'"),
    ({"channel_order": "RGBA"}, "'channel_order' must be one of"),
    ({"scale": -1}, "'scale' must be a positive number, got -1"),
    ({"scale": "255"}, "'scale' must be a positive number"),
    ({"mean": [104, 117]}, "'mean' must be 3 numbers, one per channel of 'BGR'"),
    ({"std": [1, 0, 1]}, "'std' must be 3 positive numbers"),
    ({"std": [1, None, 1]}, "'std' must be 3 positive numbers"),
    ({"std": [1, 10**400, 1]}, "'std' must be 3 positive numbers"),
    ({"mean": [0, float("nan"), 0]}, "'mean' must be 3 numbers"),
    ({"channel_order": "L", "mean": [0, 0, 0]}, "'mean' must be 1 numbers, one per channel"),
    ({"stdev": [1, 1, 1]}, "unknown field 'stdev'"),
]


@pytest.mark.parametrize("value,message", BAD)
def test_bad_preprocessing_is_a_one_line_error_naming_the_file(tiny_folder, value, message):
    with_preprocessing(tiny_folder, value)
    with pytest.raises(ConversionError) as caught:
        converters.load(tiny_folder)
    text = str(caught.value)
    assert "\n" not in text and text.startswith(f"{tiny_folder / 'network.json'}: ")
    assert message in text


def test_bad_preprocessing_on_the_command_line_is_exit_2(tiny_folder):
    with_preprocessing(tiny_folder, {"scale": 0})
    result = subprocess.run([sys.executable, "-m", "converters", str(tiny_folder)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "'scale' must be a positive number" in result.stderr


def test_check_image_and_the_dreamer_make_the_same_net_input(tiny, tmp_path):
    """Through ONNX (as `check` reads it) and a converted folder (as the dreamer does)."""
    described = replace(tiny.spec, preprocessing=TORCHVISION)
    onnx_path = export_onnx(described, tmp_path / "tiny.onnx")
    folder = converters.save(described, tmp_path / "tiny")
    spec = read_onnx(onnx_path)
    height, width = spec.input_shape[2:]
    image = Image.open(shared_path("models", "_common", "cat.jpg")).convert("RGB")
    path = tmp_path / "cat.png"
    image.resize((width, height), Image.BILINEAR).save(path)

    checked = image_input(str(path), spec.input_shape, spec.input_preprocessing())
    trace: dict = {}
    dream(path, str(folder), "conv1", 1, 0.01, octaves=1, jitter=0, trace=trace)
    assert np.array_equal(checked[0], trace["first_input"])

    rgb = np.asarray(Image.open(path), np.float64).transpose(2, 0, 1)  # by hand
    mean, std = np.array(TORCHVISION.mean), np.array(TORCHVISION.std)
    expected = (rgb / 255 - mean[:, None, None]) / std[:, None, None]
    assert np.abs(checked[0] - expected).max() < 1e-5


def test_check_image_refuses_a_decompression_bomb(tiny, tmp_path):
    """10000×10000 declared: refused in one line, exit status 2, before decoding."""
    onnx_path = export_onnx(tiny, tmp_path / "tiny.onnx")
    header = shared_path("models", "cifar10_quick_v1", "cat10.png").read_bytes()
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(fix_png_crcs(header[:16] + struct.pack(">II", 10000, 10000) + header[24:]))
    result = subprocess.run([sys.executable, "-m", "converters", "check", str(onnx_path),
                             "--image", str(bomb)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert f"{bomb}: 10000×10000 pixels is too large" in result.stderr


def test_a_grey_net_gets_luma_in_0_1_and_back_grey(tmp_path):
    lenet = shared_path("models", "lenet_mnist")
    spec = converters.load_caffe(lenet / "mnist_deploy.prototxt",
                                 lenet / "lenet_iter_10000.caffemodel").spec
    assert spec.input_shape[1] == 1 and spec.preprocessing is None
    pre = spec.input_preprocessing()
    image = Image.open(shared_path("models", "_common", "cat.jpg")).convert("RGB")
    path = tmp_path / "cat.png"
    image.resize((spec.input_shape[3], spec.input_shape[2]), Image.BILINEAR).save(path)
    checked = image_input(str(path), spec.input_shape, pre)
    rgb = np.asarray(Image.open(path), np.float64)
    luma = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]) / 255  # ITU-R 601
    assert checked.shape == tuple(spec.input_shape)
    assert np.abs(checked[0, 0] - luma).max() < 1e-6
    back = pre.to_rgb(checked[0])
    assert back.shape == (*luma.shape, 3) and np.abs(back - 255 * luma[..., None]).max() < 1e-3
