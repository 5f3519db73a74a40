"""The model zoo: registry, `make convert` from the shared mirror, find_converted, errors."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from caffe_refs import CaffeReference
from compare import relative_error
from conftest import ROOT, shared_path

import converters
import models
from converters.caffe import mean_values
from converters.caffe.proto import BlobProto
from converters.caffe.reader import read_prototxt
from converters.spec import ConversionError
from models.convert import convert_files, convert_zoo
from models.registry import REGISTRY, lookup

REQUIRED = ["nin", "nin_cifar10", "alexnet", "caffenet", "googlenet", "places205_googlenet",
            "places365_googlenet", "places205_alexnet", "places365_alexnet", "vgg_s", "vgg_f",
            "vgg_m", "squeezenet"]
# zoo model -> (reference in shared/reference/caffe, blob compared) for those whose weights
# are in shared/models.
IN_MIRROR = {"nin": ("nin_imagenet", "pool4"), "nin_cifar10": ("nin_cifar10", "pool3"),
             "googlenet": ("bvlc_googlenet_cat224", "prob"),
             "squeezenet": ("squeezenet_v1.1_cat227", "prob")}
NOT_IN_MIRROR = [m.name for m in REGISTRY if m.name not in IN_MIRROR]


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the repository's Makefile (it uses the repository's .venv)."""
    return subprocess.run(["make", "-s", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)


@pytest.fixture
def zoo_dirs(tmp_path, monkeypatch):
    """Converted models and downloads go to tmp_path, for make and for the Python API."""
    env = {"DREAMZOO_MODELS": str(tmp_path / "models"),
           "DREAMZOO_CACHE": str(tmp_path / "cache")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DREAMZOO_MIRROR", raising=False)
    return env


# --- the registry ----------------------------------------------------------------------------

def test_registry_has_every_named_model_with_complete_entries():
    names = [m.name for m in REGISTRY]
    assert set(REQUIRED) <= set(names)
    every_name = [n for m in REGISTRY for n in m._names]
    assert len(every_name) == len(set(every_name)), "a name or alias is used twice"
    for model in REGISTRY:
        kinds = [s.kind for s in model.sources]
        assert kinds[:2] == ["prototxt", "weights"], model.name
        assert ("mean" in kinds) != (model.mean is not None), f"{model.name}: one mean source"
        for source in model.sources:
            assert source.url.startswith(("http://", "https://")), source
            assert source.name and "/" not in source.name, source
        assert model.description and model.licence and model.default_layer and model.folder
        assert model.channel_order in ("BGR", "RGB") and len(model.std) == 3


def test_bvlc_checksums_are_the_published_ones():
    """Copied from the model cards in shared/models (BVLC's readme.md front matter)."""
    for name, folder in [("alexnet", "bvlc_alexnet"), ("caffenet", "bvlc_reference_caffenet"),
                         ("googlenet", "bvlc_googlenet")]:
        card = shared_path("models", folder, "readme.md").read_text()
        weights = lookup(name).source("weights")
        assert f"sha1: {weights.sha1}" in card
        assert f"caffemodel_url: {weights.url}" in card


NOT_IN_MIRROR = ("googlenet_cars", "oxford102")  # the two extras shared/models lacks


def test_mirror_folders_are_those_of_shared_models():
    for model in REGISTRY:
        if model.name not in NOT_IN_MIRROR:
            assert shared_path("models", model.folder).is_dir(), model.name


def test_default_layer_is_a_layer_of_the_model():
    """Checked on each prototxt the mirror has (every model but the two extras)."""
    for model in REGISTRY:
        if model.name in NOT_IN_MIRROR:
            continue
        net = read_prototxt(shared_path("models", model.folder, model.source("prototxt").name))
        names = [lp.name for lp in net.layer] + [v1.name or v1.layer.name for v1 in net.layers]
        assert model.default_layer in names, model.name


def test_names_and_aliases():
    assert models.is_zoo_name("nin") and models.is_zoo_name("NIN_ImageNet")
    assert models.is_zoo_name("bvlc-googlenet") and models.is_zoo_name("vgg_cnn_s")
    assert models.is_zoo_name("OxfordFlowers102") and models.is_zoo_name("GoogLeNetCars")
    assert not models.is_zoo_name("resnet50")
    assert lookup("squeezenet_v1.1").name == "squeezenet"


# --- conversion from the mirror --------------------------------------------------------------

@pytest.mark.parametrize("name", list(IN_MIRROR))
def test_make_convert_from_the_shared_mirror(name, zoo_dirs):
    mirror = shared_path("models")
    result = make("convert", f"MODEL={name}", f"FROM={mirror}", env=zoo_dirs)
    assert result.returncode == 0, result.stderr
    directory = Path(zoo_dirs["DREAMZOO_MODELS"]) / name
    labels = [] if name == "nin_cifar10" else ["labels.txt"]  # no CIFAR-10 list in the mirror
    assert sorted(p.name for p in directory.iterdir()) == [
        *labels, "layers.txt", "network.json", "weights.safetensors"]
    assert f"saved to {directory}/" in result.stdout
    table = (directory / "layers.txt").read_text()
    assert table in result.stdout + "\n"
    # The mirror's weights are stand-ins or re-saved copies, never the official files;
    # SqueezeNet's authors publish no checksum to tell.
    if name == "squeezenet":
        assert "squeezenet_v1.1.caffemodel  (no published checksum to verify)" in result.stdout
    else:
        assert "not the official weights" in result.stderr
    # The converted directory computes what real Caffe computed.
    reference_name, blob = IN_MIRROR[name]
    ref = CaffeReference(shared_path(), reference_name)
    net = converters.load(directory)
    with torch.no_grad():
        out = net.forward_to(ref.input, blobs=[blob])[blob]
    assert relative_error(*ref.sampled("blob", blob, out)) <= 1e-4
    assert models.find_converted(name) == directory


def test_nin_preprocessing_and_provenance(zoo_dirs):
    result = convert_zoo(lookup("nin"), mirror=shared_path("models"))
    description = json.loads((result.directory / "network.json").read_text())
    # Caffe's ImageNet mean, per channel (BGR), as Caffe's classification example prints it.
    assert description["preprocessing"]["channel_order"] == "BGR"
    assert description["preprocessing"]["scale"] == 255.0
    assert description["preprocessing"]["mean"] == pytest.approx([104.0070, 116.6688, 122.6789])
    assert description["preprocessing"]["std"] == [1.0, 1.0, 1.0]
    zoo = description["source"]["zoo"]
    assert zoo["default_layer"] == "conv4-1024" and zoo["licence"].startswith("non-commercial")
    assert [f["checksum"] for f in zoo["files"]] == ["unverifiable", "doubtful", "verified",
                                                     "unverifiable"]  # + the class list
    assert result.warnings and all("not the official" in w for w in result.warnings)
    assert "nin_imagenet_formula.caffemodel" in result.warnings[0]


@pytest.mark.parametrize("name", NOT_IN_MIRROR)
def test_weights_missing_from_the_mirror_are_named_with_their_url(name, zoo_dirs):
    model = lookup(name)
    with pytest.raises(ConversionError) as error:
        convert_zoo(model, mirror=shared_path("models"))
    weights = model.source("weights")
    assert f"{model.folder}/{weights.name}" in str(error.value)
    assert weights.url in str(error.value)
    assert not Path(zoo_dirs["DREAMZOO_MODELS"]).exists()


def test_make_convert_missing_weights_exits_2_with_the_url(zoo_dirs):
    result = make("convert", "MODEL=alexnet", f"FROM={shared_path('models')}", env=zoo_dirs)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "bvlc_alexnet/bvlc_alexnet.caffemodel" in errors[0]
    assert "http://dl.caffe.berkeleyvision.org/bvlc_alexnet.caffemodel" in errors[0]


def test_make_convert_lists_the_registry_and_rejects_unknown_models(zoo_dirs):
    listing = make("convert", env=zoo_dirs)
    assert listing.returncode == 0, listing.stderr
    for name in REQUIRED:
        assert f"  {name} " in listing.stdout
    unknown = make("convert", "MODEL=resnet50", env=zoo_dirs)
    assert unknown.returncode != 0
    error = next(line for line in unknown.stderr.splitlines() if line.startswith("error:"))
    assert "unknown MODEL 'resnet50'" in error
    assert all(name in error for name in REQUIRED)


def test_mirror_env_variable_is_the_same_as_from(zoo_dirs, monkeypatch):
    monkeypatch.setenv("DREAMZOO_MIRROR", str(shared_path("models")))
    assert models.convert.main(["nin_cifar10", "--quiet"]) == 0
    assert models.find_converted("nin_cifar10").name == "nin_cifar10"


def link(target: Path, link_path: Path) -> None:
    link_path.parent.mkdir(parents=True, exist_ok=True)
    link_path.symlink_to(target)


def test_mirror_file_choice(tmp_path, zoo_dirs):
    shared = shared_path("models", "nin_cifar10")
    mirror = tmp_path / "mirror"
    link(shared / "train_val.prototxt", mirror / "nin_cifar10" / "train_val.prototxt")
    link(shared / "nin_cifar10_formula.caffemodel", mirror / "nin_cifar10" / "a.caffemodel")
    link(shared / "nin_cifar10_formula.caffemodel", mirror / "nin_cifar10" / "b.caffemodel")
    with pytest.raises(ConversionError, match=r"a\.caffemodel and b\.caffemodel"):
        convert_zoo(lookup("nin_cifar10"), mirror=mirror)
    # The file the registry names wins over other candidates.
    named = mirror / "nin_cifar10" / "cifar10_nin.caffemodel"
    link(shared / "nin_cifar10_formula.caffemodel", named)
    result = convert_zoo(lookup("nin_cifar10"), mirror=mirror)
    assert result.files[1].path.name == "cifar10_nin.caffemodel"


def test_mirror_file_that_fails_to_parse_is_an_error(tmp_path, zoo_dirs):
    mirror = tmp_path / "mirror"
    link(shared_path("models", "nin_cifar10", "train_val.prototxt"),
         mirror / "nin_cifar10" / "train_val.prototxt")
    (mirror / "nin_cifar10" / "cifar10_nin.caffemodel").write_bytes(os.urandom(3000))
    with pytest.raises(ConversionError, match=r"cifar10_nin\.caffemodel: not a valid caffemodel"):
        convert_zoo(lookup("nin_cifar10"), mirror=mirror)
    assert not Path(zoo_dirs["DREAMZOO_MODELS"]).exists()


# --- find_converted and the model directory -------------------------------------------------

def test_find_converted_gives_the_command_when_not_converted(zoo_dirs):
    with pytest.raises(ConversionError, match=r"`make convert MODEL=nin`"):
        models.find_converted("nin_imagenet")
    with pytest.raises(ConversionError, match=r"no converted model 'mynet'"):
        models.find_converted("mynet")
    with pytest.raises(ConversionError):
        models.find_converted("../etc")


def test_unwritable_models_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    message = r"cannot write .*not_a_dir/models/nin_cifar10: Not a directory"
    with pytest.raises(ConversionError, match=message):
        convert_zoo(lookup("nin_cifar10"), mirror=shared_path("models"), root=blocker / "models")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ConversionError, match=r"cannot write .*Permission denied"):
            convert_zoo(lookup("nin_cifar10"), mirror=shared_path("models"), root=locked)
        assert list(locked.iterdir()) == []


def test_disk_full_leaves_no_partial_model_dir(tmp_path, monkeypatch):
    root = tmp_path / "models"

    def full_disk(tensors, path, metadata=None):
        Path(path).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(converters.store, "save_file", full_disk)
    with pytest.raises(ConversionError, match=r"cannot write .*nin_cifar10: No space left"):
        convert_zoo(lookup("nin_cifar10"), mirror=shared_path("models"), root=root)
    assert list(root.iterdir()) == []


# --- mean files and nets outside the zoo -----------------------------------------------------

def test_mean_values_from_binaryproto_and_npy(tmp_path):
    blob = BlobProto(num=1, channels=3, height=2, width=2)
    blob.data.extend([1, 2, 3, 4, 10, 10, 10, 10, 0, 0, 0, 100])
    (tmp_path / "mean.binaryproto").write_bytes(blob.SerializeToString())
    assert mean_values(tmp_path / "mean.binaryproto") == [2.5, 10.0, 25.0]
    np.save(tmp_path / "mean.npy", np.stack([np.full((4, 4), v) for v in (1.0, 2.0, 3.0)]))
    assert mean_values(tmp_path / "mean.npy") == [1.0, 2.0, 3.0]
    np.save(tmp_path / "gray.npy", np.zeros((1, 4, 4)))
    with pytest.raises(ConversionError, match=r"gray\.npy: a mean file needs 3 channels"):
        mean_values(tmp_path / "gray.npy")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(ConversionError, match=r"objects\.npy: not a readable \.npy"):
        mean_values(tmp_path / "objects.npy")


def test_make_convert_any_caffe_net(zoo_dirs):
    tiny = shared_path("models", "tiny")
    result = make("convert", f"PROTOTXT={tiny / 'deploy.prototxt'}",
                  f"CAFFEMODEL={tiny / 'tiny.caffemodel'}", "NAME=my_tiny", env=zoo_dirs)
    assert result.returncode == 0, result.stderr
    directory = models.find_converted("my_tiny")
    assert (directory / "layers.txt").read_text().splitlines()[1].split()[1] == "conv1"
    with pytest.raises(ConversionError, match=r"NAME='nin' is a zoo model's name"):
        convert_files("nin", tiny / "deploy.prototxt", tiny / "tiny.caffemodel")


def test_a_name_no_folder_can_have_is_refused_before_anything_is_made(zoo_dirs, tmp_path):
    tiny = shared_path("models", "tiny")
    for name in ("a" * 300, "../up", ".hidden"):
        with pytest.raises(ConversionError, match=r"NAME=.*: use letters, digits"):
            convert_files(name, tiny / "deploy.prototxt", tiny / "tiny.caffemodel",
                          root=tmp_path / "zoo")
    assert not (tmp_path / "zoo").exists()


def test_make_convert_torch7_net(zoo_dirs):
    net_file = shared_path("models", "torch7", "stl10_model.net")
    result = make("convert", f"T7={net_file}", "NAME=stl10", env=zoo_dirs)
    assert result.returncode == 0, result.stderr
    assert (models.find_converted("stl10") / "weights.safetensors").is_file()
