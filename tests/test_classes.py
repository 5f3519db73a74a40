"""Class names, `classify` and `--class` lookup. The probabilities are real Caffe's on the
same image (shared/reference/caffe/README.md: cat.jpg, centre crop, real weights)."""

from __future__ import annotations

import json

import pytest

from converters.spec import ConversionError
from dreamer.__main__ import main
from models.convert import convert_zoo
from models.labels import class_index, read_labels
from models.registry import lookup
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """GoogLeNet and SqueezeNet v1.1 converted from the shared mirror into a temp folder."""
    root = tmp_path_factory.mktemp("models")
    mirror = shared_path("models")
    for name in ("googlenet", "squeezenet"):
        convert_zoo(lookup(name), mirror, root=root, quiet=True)
    return root


@pytest.fixture
def imagenet():
    return read_labels(shared_path("models", "bvlc_googlenet", "categories.txt"))


def classify(zoo, monkeypatch, capsys, *args: str) -> list[dict]:
    monkeypatch.setenv("DREAMZOO_MODELS", str(zoo))
    assert main(["classify", str(shared_path("models", "_common", "cat.jpg")), "--json",
                 *args]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("model, expected", [
    ("googlenet", [(282, "tiger cat", 0.433), (281, "tabby", 0.295),
                   (285, "Egyptian cat", 0.217)]),
    ("squeezenet", [(281, "tabby", 0.394), (282, "tiger cat", 0.301)]),
])
def test_classify_gives_real_caffes_top_classes(zoo, monkeypatch, capsys, model, expected):
    rows = classify(zoo, monkeypatch, capsys, "--model", model, "--top", str(len(expected)))
    assert [(r["index"], r["name"]) for r in rows] == [(i, n) for i, n, _ in expected]
    for row, (_, _, probability) in zip(rows, expected):
        assert abs(row["probability"] - probability) <= 1e-3


def test_a_plain_resize_classifies_another_input(zoo, monkeypatch, capsys):
    centre = classify(zoo, monkeypatch, capsys, "--model", "googlenet", "--top", "1")
    plain = classify(zoo, monkeypatch, capsys, "--model", "googlenet", "--top", "1",
                     "--crop", "none")
    assert plain[0]["probability"] != centre[0]["probability"]


def test_the_converted_folder_keeps_the_class_list(zoo, imagenet):
    kept = read_labels(zoo / "googlenet" / "labels.txt")
    assert kept.names == imagenet.names and len(kept) == 1000
    assert (kept.name(0), kept.name(281), kept.name(999)) == ("tench", "tabby", "toilet tissue")
    files = json.loads((zoo / "googlenet" / "network.json").read_text())["source"]["zoo"]
    assert {"kind": "classes", "official_name": "synset_words.txt", "checksum": "unverifiable"
            }.items() <= next(f for f in files["files"] if f["kind"] == "classes").items()


def test_the_mirror_forms_read():
    places205 = read_labels(shared_path("models", "googlenet_places205",
                                        "categoryIndex_places205.csv"))
    plain205 = read_labels(shared_path("models", "googlenet_places205", "categories.txt"))
    places365 = read_labels(shared_path("models", "googlenet_places365",
                                        "categories_places365.txt"))
    assert (len(places205), len(plain205), len(places365)) == (205, 205, 365)
    assert [places205.name(i) for i in (0, 1, 204)] == ["abbey", "airport_terminal", "yard"]
    assert [plain205.name(i) for i in (0, 1, 204)] == ["abbey", "airport_terminal", "yard"]
    assert [places365.name(i) for i in (0, 2, 364)] == ["airfield", "airport_terminal",
                                                        "zen_garden"]


def test_synset_words_and_cifar_names_read(tmp_path):
    synsets = tmp_path / "synset_words.txt"
    synsets.write_text("n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n")
    assert read_labels(synsets).names == (("tench", "Tinca tinca"),
                                          ("goldfish", "Carassius auratus"))
    cifar = tmp_path / "batches.meta.txt"
    cifar.write_text("airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n")
    labels = read_labels(cifar)
    assert len(labels) == 10 and labels.name(3) == "cat" and labels.name(9) == "truck"


@pytest.mark.parametrize("content, message", [
    (b"", "empty class list"),
    (b"a\n\nb\n", "line 2 is empty"),
    (b"/a/abbey 0\n/a/alley 0\n", "line 2: index 0 is repeated"),
    (b"/a/abbey 0\n/a/alley 5\n", "line 2: index 5 is out of range"),
    (b"\xff\xfe\n", "not a UTF-8 class list"),
])
def test_bad_class_lists_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "labels.txt"
    path.write_bytes(content)
    with pytest.raises(ConversionError) as error:
        read_labels(path)
    assert str(path) in str(error.value) and message in str(error.value)
    assert "\n" not in str(error.value)


def test_names_match_exactly_on_any_synonym(imagenet):
    assert class_index("tiger cat", 1000, imagenet) == 282
    assert class_index("Tabby", 1000, imagenet) == 281
    assert class_index("tabby cat", 1000, imagenet) == 281  # a synonym
    assert class_index("Felis concolor", 1000, imagenet) == 286
    assert class_index("285", 1000, imagenet) == 285


def test_an_ambiguous_name_is_an_error_naming_both(imagenet):
    with pytest.raises(ValueError, match=r"'crane' is ambiguous: it names 134 .*, 517 "):
        class_index("crane", 1000, imagenet)


def test_an_unknown_name_lists_the_closest_and_selects_none(imagenet):
    with pytest.raises(ValueError) as error:
        class_index("cat", 1000, imagenet)  # no class is called just "cat"
    message = str(error.value)
    assert message.startswith("no class is named 'cat'")
    for suggestion in ("'tiger cat' (282)", "'Persian cat' (283)", "'Egyptian cat' (285)"):
        assert suggestion in message
    assert "catamaran" not in message  # a substring is no match, and no suggestion
    with pytest.raises(ValueError, match=r"closest: 'tabby' \(281\)"):
        class_index("tabyy", 1000, imagenet)


def test_an_index_out_of_range_is_an_error(imagenet):
    with pytest.raises(ValueError, match="class 1000 is out of range: the net has 1000"):
        class_index("1000", 1000, imagenet)
    with pytest.raises(ValueError, match="no class names; give --labels"):
        class_index("tabby", 1000, None)


def test_labels_that_do_not_fit_the_net_are_refused(zoo, monkeypatch, capsys):
    monkeypatch.setenv("DREAMZOO_MODELS", str(zoo))
    other = shared_path("models", "googlenet_places365", "categories_places365.txt")
    status = main(["classify", str(shared_path("models", "_common", "cat.jpg")),
                   "--model", "googlenet", "--labels", str(other)])
    error = capsys.readouterr().err
    assert status == 2 and error.count("\n") == 1
    assert f"{other}: 365 class names, but the net has 1000 classes" in error
