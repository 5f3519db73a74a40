"""One way to open a network (`models.open`, a name or any model path), the error hierarchy
(a usage error is a UsageError, a ValueError, never a ConversionError), and the helpers the
dreamer shares with the converters (`Bounds`, `file_digest`)."""

from __future__ import annotations

import argparse
import hashlib
import json

import pytest
from conftest import shared_path

import converters
import dreamer.plan.numbers
import models
import models.download
from converters.__main__ import main as converters_main
from converters.digest import file_digest
from converters.errors import ConversionError, DreamzooError, UsageError
from converters.numbers import Bounds
from converters.onnx.cli import check_shape
from converters.store import open_model
from models.convert import main as convert_main
from models.labels import class_index

TINY = ("deploy.prototxt", "tiny.caffemodel")


@pytest.fixture
def zoo_root(tmp_path, monkeypatch):
    """An empty folder of converted models (DREAMZOO_MODELS)."""
    root = tmp_path / "converted"
    monkeypatch.setenv("DREAMZOO_MODELS", str(root))
    return root


def test_open_takes_a_prototxt_a_folder_and_a_converted_name(tiny, zoo_root):
    prototxt, weights = (shared_path("models", "tiny", f) for f in TINY)
    opened = models.open(prototxt, weights)
    assert opened.layer_names == tiny.layer_names
    converters.save(tiny, zoo_root / "my_tiny")
    assert models.open(zoo_root / "my_tiny").layer_names == tiny.layer_names
    assert models.open("my_tiny").layer_names == tiny.layer_names


def test_open_names_what_is_missing(zoo_root):
    with pytest.raises(ConversionError, match=r"`make convert MODEL=nin`"):
        models.open()  # the default model, NIN, not converted here
    with pytest.raises(ConversionError, match="nothing/here.t7: no such file or directory"):
        models.open("nothing/here.t7")


def test_weights_without_a_prototxt_is_a_usage_error(tiny, zoo_root):
    converters.save(tiny, zoo_root / "my_tiny")
    for model in ("my_tiny", str(zoo_root / "my_tiny")):
        with pytest.raises(UsageError, match="its weights .*go with a prototxt only") as error:
            models.open(model, "tiny.caffemodel")
        assert isinstance(error.value, ValueError)
        assert not isinstance(error.value, ConversionError)


def test_unofficial_weights_warn_when_opened(tiny, zoo_root):
    converters.save(tiny, zoo_root / "stand_in")
    description = zoo_root / "stand_in" / "network.json"
    data = json.loads(description.read_text())
    data["source"]["zoo"] = {"files": [{"kind": "weights", "checksum": "differs",
                                        "file": "mirror.caffemodel",
                                        "official_name": "real.caffemodel"}]}
    description.write_text(json.dumps(data))
    with pytest.warns(models.UnofficialWeights, match="mirror.caffemodel, which does not match"):
        models.open("stand_in")


def test_usage_errors_are_not_conversion_errors(tiny):
    cases = [lambda: class_index("7", 5, None),  # a class out of range
             lambda: open_model(["a", "b", "c"]),  # three model paths
             lambda: check_shape(tiny.spec, [1, 4, 35, 35]),  # --input-shape: 4 channels
             lambda: Bounds(0, 1).check(2, "--x")]
    for case in cases:
        with pytest.raises(UsageError) as error:
            case()
        assert isinstance(error.value, (ValueError, DreamzooError))
        assert not isinstance(error.value, ConversionError), error.value


def test_the_clis_refuse_usage_in_one_line(capsys):
    assert converters_main(["a.prototxt", "b.caffemodel", "c"]) == 2
    assert capsys.readouterr().err == \
        "error: give PROTOTXT CAFFEMODEL, or one .t7/.onnx file or directory\n"
    assert convert_main(["--t7", "net.t7"]) == 2
    assert capsys.readouterr().err == \
        "error: NAME=<directory name> is needed with PROTOTXT= or T7=\n"


def test_check_refuses_a_tolerance_that_is_no_finite_number(capsys):
    for tolerance in ("nan", "inf", "-1"):
        with pytest.raises(SystemExit, match="2"):
            converters_main(["check", "net.onnx", "--tolerance", tolerance])
        assert capsys.readouterr().err.splitlines()[-1].endswith(
            f"argument --tolerance: must be a finite number, at least 0 (got {tolerance!r})")


def test_bounds_live_in_converters_for_both_clis():
    assert dreamer.plan.numbers.Bounds is Bounds
    with pytest.raises(UsageError, match="^RATE must be a finite number"):
        dreamer.plan.numbers.RATE.parse("nan", "RATE")
    with pytest.raises(argparse.ArgumentTypeError, match="an integer from 1 to 3"):
        Bounds(1, 3, integer=True)("4")


def test_file_digest_is_the_converters_one(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(b"dreamzoo" * 300_000)  # more than one block of 1 MiB
    assert file_digest(path, "sha256") == hashlib.sha256(b"dreamzoo" * 300_000).hexdigest()
    assert models.download.file_digest is file_digest
