"""Class names, `classify` and `--class` lookup. The probabilities are real Caffe's on the
same image (shared/reference/caffe/README.md: cat.jpg, centre crop, real weights)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import converters
from converters.images import load_rgb
from converters.spec import ConversionError
from dreamer.__main__ import main
from dreamer.dream import dream
from dreamer.loops.classify import fit_input, probabilities
from dreamer.loops.deepdraw import noise_canvas, schedule
from dreamer.loops.gradient import crop_size, size_problem_for
from dreamer.plan.targets import Target, class_targets, classifier_of
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


def test_a_matlab_cell_array_of_names_reads(tmp_path):
    """CompCars' make_model_names_cls.mat form: a cell array of names (one of them empty)."""
    from scipy.io import savemat

    cells = np.empty((3, 1), dtype=object)
    cells[:, 0] = [np.array(["Audi A4L"]), np.array(["BMW 3 Series"]), np.array([], "U1")]
    path = tmp_path / "make_model_names_cls.mat"
    savemat(path, {"make_model_names": cells, "count": np.array([[3.0]])})
    labels = read_labels(path)
    assert labels.names == (("Audi A4L",), ("BMW 3 Series",), ("unnamed class 2",))


def test_a_python_list_of_names_reads_without_running_it(tmp_path):
    """caffe-oxford102's class-labels.py form; code in the file is never executed."""
    path = tmp_path / "class-labels.py"
    flag = tmp_path / "ran"
    path.write_text(f"import pathlib\npathlib.Path({str(flag)!r}).touch()\n"
                    "labels = ['pink primrose', 'hard-leaved pocket orchid',\n"
                    "          \"colt's foot\"]\n")
    assert read_labels(path).names == (("pink primrose",), ("hard-leaved pocket orchid",),
                                       ("colt's foot",))
    assert not flag.exists()


def test_a_matlab_file_without_one_name_list_is_refused(tmp_path):
    from scipy.io import savemat

    path = tmp_path / "numbers.mat"
    savemat(path, {"x": np.arange(4.0)})
    with pytest.raises(ConversionError, match="expected one cell array of class names, "
                       "found 0"):
        read_labels(path)


def test_every_zoo_classifier_has_a_class_list():
    from models.registry import REGISTRY

    assert [m.name for m in REGISTRY if not m.classes] == []


@pytest.mark.parametrize("name, content, message", [
    ("labels.txt", b"", "empty class list"),
    ("labels.txt", b"a\n\nb\n", "line 2 is empty"),
    ("labels.txt", b"/a/abbey 0\n/a/alley 0\n", "line 2: index 0 is repeated"),
    ("labels.txt", b"/a/abbey 0\n/a/alley 5\n", "line 2: index 5 is out of range"),
    ("labels.txt", b"\xff\xfe\n", "not a UTF-8 class list"),
    ("labels.mat", b"MATLAB 5.0 but not really", "not a readable MATLAB file"),
    ("labels.py", b"a = ['x']\nb = ['y']\n", "expected one list of class names, found 2"),
    ("labels.py", b"names = [open('x').read()]\n", "found 0"),
    ("labels.py", b"names = [\n", "not Python source"),
])
def test_bad_class_lists_are_one_line_errors(tmp_path, name, content, message):
    path = tmp_path / name
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


# --- the --class dream target -----------------------------------------------------------------

def zero_weights(layer: str, index: int, shape: list[int]) -> np.ndarray:
    return np.zeros(shape, np.float32)


@pytest.mark.parametrize("folder, prototxt, logits", [
    ("bvlc_googlenet", "deploy.prototxt", "loss3/classifier"),
    ("bvlc_alexnet", "deploy.prototxt", "fc8"),
    ("nin_imagenet", "deploy.prototxt", "pool4"),  # the average of cccp8-1024
    ("squeezenet_v1.1", "deploy.prototxt", "pool10"),  # after conv10 and its ReLU
])
def test_the_logit_layer_is_the_one_feeding_the_final_softmax(folder, prototxt, logits):
    net = converters.load_caffe(shared_path("models", folder, prototxt), zero_weights)
    classifier = classifier_of(net)
    assert (classifier.logits, classifier.classes) == (logits, 1000)
    fully_connected = folder in ("bvlc_googlenet", "bvlc_alexnet")
    targets = [Target(logits, channel=0)]
    assert crop_size(net, targets) == (tuple(net.spec.input_shape[-2:]) if fully_connected
                                       else None)


def test_class_dreams_raise_their_class(zoo):
    """A short --class dream (one octave, 224×224) on real GoogLeNet multiplies the class's
    probability at least tenfold, for 3 of 4 classes."""
    net = converters.load(zoo / "googlenet")
    labels = read_labels(zoo / "googlenet" / "labels.txt")
    pre = net.spec.input_preprocessing()
    rgb = fit_input(load_rgb(shared_path("models", "_common", "cat.jpg")), 224, 224, "centre")
    before = probabilities(net, pre.to_net(rgb))
    raised = []
    for name in ("goldfish", "bell pepper", "school bus", "volcano"):
        targets = class_targets(net, name, labels)
        after = probabilities(net, pre.to_net(dream(rgb, net, targets, 4, 1.5, preset="google",
                                                    octaves=1, seed=0)))
        index = targets[0].channel
        raised.append(after[index] >= 10 * before[index])
    assert sum(raised) >= 3, raised


GOLDFISH = 1  # ImageNet's index of "goldfish", known here, not looked up by the code under test


def test_class_targets_reach_batch_zoom_and_video(zoo, tmp_path, monkeypatch, capsys):
    """`--class goldfish` through batch, zoom and video (SqueezeNet, 3 steps, 1 octave):
    each output's goldfish probability is at least 10× the source's."""
    from tests.motion_clips import write_clip

    monkeypatch.setenv("DREAMZOO_MODELS", str(zoo))
    net = converters.load(zoo / "squeezenet")
    pre = net.spec.input_preprocessing()
    rgb = fit_input(load_rgb(shared_path("models", "_common", "cat.jpg")), 112, 112, "centre")
    (tmp_path / "in").mkdir()
    Image.fromarray(rgb).save(tmp_path / "in" / "cat.png")
    write_clip(tmp_path / "cat.mp4", [rgb, np.roll(rgb, 2, axis=1)])
    common = ["3", "0.3", "--class", "goldfish", "--model", "squeezenet", "--octaves", "1",
              "--quiet"]
    assert main(["batch", str(tmp_path / "in"), *common, "-o", str(tmp_path / "out")]) == 0
    assert main(["zoom", str(tmp_path / "in" / "cat.png"), *common, "--frames", "2",
                 "-o", str(tmp_path / "zoom")]) == 0
    assert main(["video", str(tmp_path / "cat.mp4"), *common,
                 "-o", str(tmp_path / "video.mp4")]) == 0
    capsys.readouterr()
    before = probabilities(net, pre.to_net(rgb))[GOLDFISH]
    outputs = [tmp_path / "out" / "cat.png", *sorted((tmp_path / "zoom").glob("*.png")),
               *sorted((tmp_path / "video_frames").glob("*.png"))]
    assert len(outputs) == 5
    for path in outputs:
        after = probabilities(net, pre.to_net(load_rgb(path)))[GOLDFISH]
        assert after >= 10 * before, (path.name, before, after)


def test_a_class_and_a_layer_combine(zoo, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DREAMZOO_MODELS", str(zoo))
    src = tmp_path / "src.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (230, 260, 3), np.uint8)).save(src)
    out = tmp_path / "out.png"
    args = [str(src), "--model", "squeezenet", "--class", "tabby:2,282", "1", "1.5",
            "--layer", "fire3/concat", "--preset", "google", "--octaves", "1", "--quiet",
            "-o", str(out)]
    assert main(args) == 0 and load_rgb(out).shape == (230, 260, 3)
    net = converters.load(zoo / "squeezenet")
    targets = class_targets(net, "tabby:2,282", read_labels(zoo / "squeezenet" / "labels.txt"))
    assert targets == [Target("pool10", 2.0, 281), Target("pool10", 1.0, 282)]


def test_a_bad_class_is_refused_before_any_output(zoo, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DREAMZOO_MODELS", str(zoo))
    out = tmp_path / "out.png"
    status = main([str(shared_path("models", "_common", "cat.jpg")), "--model", "googlenet",
                   "--class", "cat", "1", "1", "-o", str(out)])
    error = capsys.readouterr().err
    assert status == 2 and not out.exists() and error.count("\n") == 1
    assert "no class is named 'cat'" in error and "'tiger cat' (282)" in error


def test_a_fully_connected_classifier_needs_its_declared_size(zoo):
    net = converters.load(zoo / "googlenet")
    targets = [Target("loss3/classifier", channel=1)]
    assert size_problem_for(net, targets)(300, 400) is None  # random 224×224 crops
    problem = size_problem_for(net, targets)(200, 400)
    assert problem.too_small and "smaller than the 224×224 crops" in problem.reason


def test_gallery_lays_out_one_cell_per_class(zoo, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DREAMZOO_MODELS", str(zoo))
    out = tmp_path / "gallery.png"
    assert main(["gallery", str(shared_path("models", "_common", "cat.jpg")), "--model",
                 "googlenet", "--classes", "goldfish,volcano,779", "--iterations", "2",
                 "--rate", "0.1", "--quiet", "-o", str(out)]) == 0
    assert "gallery of 3 classes" in capsys.readouterr().out
    sheet = load_rgb(out)
    assert sheet.shape == (224 + 18, 4 * 224, 3)  # source + 3 classes, labels underneath
    cells = [sheet[:224, i * 224:(i + 1) * 224].astype(int) for i in range(4)]
    for a in range(4):
        for b in range(a + 1, 4):
            assert np.abs(cells[a] - cells[b]).mean() > 1  # each class dreams its own


def test_gallery_refuses_an_unknown_class_before_writing(zoo, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DREAMZOO_MODELS", str(zoo))
    out = tmp_path / "gallery.png"
    assert main(["gallery", str(shared_path("models", "_common", "cat.jpg")), "--model",
                 "googlenet", "--classes", "goldfish,cat", "-o", str(out)]) == 2
    assert "no class is named 'cat'" in capsys.readouterr().err and not out.exists()


def test_deepdraw_from_noise_draws_the_class(zoo):
    """`--preset deepdraw` with a short schedule (20 steps in all) from the noise canvas
    puts the class in the top 5 of real GoogLeNet for 3 of 4 classes."""
    net = converters.load(zoo / "googlenet")
    labels = read_labels(zoo / "googlenet" / "labels.txt")
    pre = net.spec.input_preprocessing()
    ranks = []
    for name in ("goldfish", "bell pepper", "school bus", "volcano"):
        targets = class_targets(net, name, labels)
        drawn = dream(noise_canvas(224, 224, 0), net, targets, 20, preset="deepdraw", seed=0)
        assert drawn.shape == (323, 323, 3)  # the canvas zoomed twice by 1.2
        probs = probabilities(net, pre.to_net(fit_input(drawn, 224, 224, "none")))
        ranks.append(int((probs > probs[targets[0].channel]).sum()))
    assert sum(rank < 5 for rank in ranks) >= 3, ranks


def test_deepdraw_shares_the_steps_in_the_schedules_proportions():
    assert [o.iterations for o in schedule(None, None)] == [190, 150, 150, 10]  # published
    assert [o.iterations for o in schedule(50, None)] == [19, 15, 15, 1]
    assert [o.iterations for o in schedule(None, 2)] == [190, 150]


def test_deepdraw_refuses_a_canvas_smaller_than_a_crop(zoo, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DREAMZOO_MODELS", str(zoo))
    src = tmp_path / "small.png"
    Image.fromarray(np.full((100, 300, 3), 128, np.uint8)).save(src)
    out = tmp_path / "out.png"
    assert main([str(src), "--preset", "deepdraw", "--class", "goldfish", "--model",
                 "googlenet", "-o", str(out)]) == 2
    assert "draws on crops of 224×224: the image (300×100) is smaller" in \
        capsys.readouterr().err and not out.exists()
