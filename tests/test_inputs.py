"""Input files a user names are read bounded and decoded correctly (issue 19, items 4, 6):
a device, fifo or huge file is a one-line error, not a MemoryError; JSON nested without end
is a one-line error, not a RecursionError; 16-bit and other wide images keep their range;
EXIF orientation is applied; a frames folder's carried .npy is checked before it is used.

Files are made here: sparse files for "huge" (nothing is written), symlinks to /dev/zero.
"""

from __future__ import annotations

import io
import os
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import onnx
import pytest
from fuzz_cases import fix_png_crcs
from PIL import Image

from converters import ConversionError, images, load
from converters.atomic import OutputError
from converters.bounded import json_depth, load_json, read_bounded
from converters.caffe.reader import MAX_CAFFEMODEL_BYTES, read_caffemodel, read_prototxt
from converters.images import ImageError, image_size, load_rgb
from converters.onnx.export import export_onnx
from converters.onnx.format import METADATA_KEY
from converters.onnx.reader import read_onnx
from converters.store import DESCRIPTION_FILE, MAX_DESCRIPTION_BYTES, save
from dreamer.__main__ import main
from dreamer.jobs.batch_record import SETTINGS_FILE, read_log, read_settings
from dreamer.motion.frames import FramesFolder, carry_name
from dreamer.motion.frames import read_settings as read_frames_settings
from models.labels import MAX_BYTES, read_labels

DEEP = "[" * 100_000 + "]" * 100_000  # far past Python's recursion limit
DREAM = ("conv2", "1", "0.05", "--octaves", "1", "--quiet")


def one_line(error: BaseException, *parts: str) -> None:
    """`error`'s message is one line holding each of `parts`."""
    message = str(error)
    assert "\n" not in message, message
    for part in parts:
        assert part in message, message


def zero_link(path: Path) -> Path:
    path.symlink_to("/dev/zero")
    return path


def huge(path: Path, size: int) -> Path:
    """A sparse file of `size` bytes (no disk used)."""
    with open(path, "wb") as file:
        file.truncate(size)
    return path


def png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    Image.fromarray(array, mode).save(path)
    return path


# --- read_bounded and load_json --------------------------------------------------------


def test_devices_fifos_folders_and_large_files_are_refused_unread(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer: it must not
    cases = {zero_link(tmp_path / "zero"): "is a device",
             fifo: "is a fifo",
             tmp_path: "is a folder",
             huge(tmp_path / "big", 101): "too large for a class list (over 100 bytes)",
             tmp_path / "missing": "no such file"}
    for path, expected in cases.items():
        with pytest.raises(ConversionError) as caught:
            read_bounded(path, 100, "class list")
        one_line(caught.value, str(path), expected)
    (tmp_path / "small").write_bytes(b"x" * 100)
    assert read_bounded(tmp_path / "small", 100, "class list") == b"x" * 100


def test_json_depth_is_found_without_recursion_and_strings_do_not_count():
    assert json_depth(DEEP) == 100_000
    assert json_depth('{"a": [1, {"b": "[[[{{\\"]]"}]}') == 3
    assert load_json('["[[[[[[[[[["]', "x.json", max_depth=1) == ["[[[[[[[[[["]
    with pytest.raises(ConversionError) as caught:
        load_json(DEEP, "x.json")
    one_line(caught.value, "x.json: JSON nested 100000 levels deep (at most 64)")
    with pytest.raises(ConversionError, match=r"x.json: invalid JSON \(line 1"):
        load_json("[1,", "x.json")


# --- JSON files ------------------------------------------------------------------------


def test_a_deep_or_endless_network_json_is_one_line(tiny, tmp_path):
    folder = save(tiny, tmp_path / "net")
    description = folder / DESCRIPTION_FILE
    description.write_text(DEEP)
    with pytest.raises(ConversionError) as caught:
        load(folder)
    one_line(caught.value, f"{description}: JSON nested 100000 levels deep")
    description.unlink()
    zero_link(description)
    with pytest.raises(ConversionError) as caught:
        load(folder)
    one_line(caught.value, str(description), "is a device")
    description.unlink()
    huge(description, MAX_DESCRIPTION_BYTES + 1)
    with pytest.raises(ConversionError) as caught:
        load(folder)
    one_line(caught.value, str(description), f"over {MAX_DESCRIPTION_BYTES} bytes")


def test_deep_onnx_metadata_is_not_a_recursion_error(tiny, tmp_path):
    """Metadata that is not a record of ours (here: too deep) is ignored, as invalid JSON is:
    the graph reads as a plain ONNX model."""
    path = export_onnx(tiny, tmp_path / "tiny.onnx")
    model = onnx.load(path)
    record = next(p for p in model.metadata_props if p.key == METADATA_KEY)
    record.value = DEEP
    onnx.save(model, path)
    spec = read_onnx(path)
    assert all(layer.type == "ONNX" for layer in spec.layers)


def test_a_deep_batch_record_is_one_line(tmp_path):
    (tmp_path / SETTINGS_FILE).write_text('{"format": "dreamzoo-batch/1", "settings": '
                                          + DEEP + "}")
    with pytest.raises(OutputError) as caught:
        read_settings(tmp_path)
    one_line(caught.value, f"{tmp_path / SETTINGS_FILE}: JSON nested", "give another OUTDIR")


def test_a_deep_line_in_a_batch_log_is_skipped(tmp_path):
    """A line that is not a log entry (here: nested without end) is skipped, as a line cut
    off by a crash is."""
    log = tmp_path / "log"
    log.write_text('["writing", "d", "a.png"]\n' + DEEP + '\n["done", "d", "a.png", "h"]\n')
    assert read_log(log) == [["writing", "d", "a.png"], ["done", "d", "a.png", "h"]]


def test_a_deep_frames_settings_json_is_one_line(tmp_path):
    (tmp_path / "settings.json").write_text(DEEP)
    with pytest.raises(OutputError) as caught:
        FramesFolder(tmp_path, {"format": "x"})
    one_line(caught.value, f"{tmp_path / 'settings.json'}: JSON nested 100000 levels deep")
    (tmp_path / "settings.json").write_text("[1, 2]")
    with pytest.raises(OutputError, match="not one dreamzoo wrote"):
        FramesFolder(tmp_path, {"format": "x"})


# --- files named on the command line -----------------------------------------------------


def test_labels_from_a_device_or_a_huge_file_are_one_line(tmp_path):
    for path, expected in ((zero_link(tmp_path / "zero.txt"), "is a device"),
                           (huge(tmp_path / "big.txt", MAX_BYTES + 1), "too large")):
        with pytest.raises(ConversionError) as caught:
            read_labels(path)
        one_line(caught.value, str(path), expected)


def test_caffe_files_from_a_device_or_huge_are_one_line(tmp_path):
    for read, path, expected in (
            (read_prototxt, zero_link(tmp_path / "zero.prototxt"), "is a device"),
            (read_caffemodel, zero_link(tmp_path / "zero.caffemodel"), "is a device"),
            (read_caffemodel, huge(tmp_path / "big.caffemodel", MAX_CAFFEMODEL_BYTES + 1),
             f"too large for a caffemodel (over {MAX_CAFFEMODEL_BYTES} bytes)")):
        with pytest.raises(ConversionError) as caught:
            read(path)
        one_line(caught.value, str(path), expected)


def test_a_device_as_source_or_guide_is_one_line_and_exit_2(capsys, tiny_cli_args, tmp_path):
    photo = png(tmp_path / "photo.png", np.full((32, 32, 3), 90, np.uint8))
    zero = zero_link(tmp_path / "zero.png")
    for args in ([str(zero), *DREAM], [str(photo), *DREAM, "--guide", str(zero)]):
        assert main([*args, *tiny_cli_args, "-o", str(tmp_path / "out.png")]) == 2
        err = capsys.readouterr().err
        assert err == f"error: {zero}: is a device, not a file; give the image as a " \
                      "regular file\n"
    assert not (tmp_path / "out.png").exists()


def test_a_huge_image_file_is_refused_unread(monkeypatch, tmp_path):
    path = png(tmp_path / "a.png", np.zeros((40, 40, 3), np.uint8))
    monkeypatch.setattr(images, "MAX_IMAGE_BYTES", path.stat().st_size - 1)
    with pytest.raises(ImageError) as caught:
        load_rgb(path)
    one_line(caught.value, str(path), f"too large for an image (over {path.stat().st_size - 1}")


def test_a_device_in_a_batch_fails_that_image_only(capsys, tiny_cli_args, tmp_path):
    png(tmp_path / "a.png", np.full((32, 32, 3), 90, np.uint8))
    zero_link(tmp_path / "zero.png")
    listing = tmp_path / "list.txt"
    listing.write_text("a.png\nzero.png\n")
    code = main(["batch", str(listing), *DREAM, *tiny_cli_args, "-o", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 1
    assert "1 done, 0 skipped (finished before), 1 failed" in captured.out
    assert f"failed: {tmp_path / 'zero.png'}: is a device" in captured.err
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["a.png"]


def test_a_huge_batch_list_is_refused_unread(capsys, tiny_cli_args, tmp_path):
    listing = tmp_path / "list.txt"
    with open(listing, "wb") as file:
        file.truncate(100 << 20)  # sparse: nothing is written to the disk
    code = main(["batch", str(listing), *DREAM, *tiny_cli_args, "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith(f"error: {listing}: too large for a list of "
                                               "images")
    assert not (tmp_path / "out").exists()


# --- image modes, orientation, size --------------------------------------------------------


def test_a_16_bit_grey_png_keeps_its_range(tmp_path):
    levels = np.array([[0, 257, 13107, 26214], [39321, 52428, 65278, 65535]], np.uint16)
    path = png(tmp_path / "grey16.png", levels)
    assert Image.open(path).mode == "I;16"
    rgb = load_rgb(path)
    expected = np.array([[0, 1, 51, 102], [153, 204, 254, 255]], np.uint8)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 4, 3)
    assert (rgb == expected[:, :, None]).all()


@pytest.mark.parametrize("mode, values, expected", [
    ("I", np.array([[0, 32896, 65535]], np.int32), [0, 128, 255]),  # 16-bit in 32 bits
    ("I", np.array([[-1000, 0, 1000]], np.int32), [0, 128, 255]),  # beyond: stretched
    ("F", np.array([[0.0, 0.5, 1.0]], np.float32), [0, 128, 255]),  # float 0..1
    ("F", np.array([[0.0, 100.0, 255.0]], np.float32), [0, 100, 255]),  # float 0..255
])
def test_wide_modes_are_scaled_by_their_range(tmp_path, mode, values, expected):
    path = tmp_path / "wide.tiff"
    Image.fromarray(values, mode).save(path)
    assert Image.open(path).mode == mode
    assert load_rgb(path)[0, :, 0].tolist() == expected


def test_a_float_image_with_nan_is_refused(tmp_path):
    path = tmp_path / "nan.tiff"
    Image.fromarray(np.array([[0.0, np.nan]], np.float32), "F").save(path)
    with pytest.raises(ImageError) as caught:
        load_rgb(path)
    one_line(caught.value, str(path), "not finite")


@pytest.mark.parametrize("mode", ["L", "LA", "P", "CMYK", "1", "RGBA"])
def test_narrow_modes_become_their_rgb(tmp_path, mode):
    image = Image.new("RGB", (4, 2), (255, 255, 255)).convert(mode)
    path = tmp_path / ("x.tiff" if mode == "CMYK" else "x.png")
    image.save(path)
    assert (load_rgb(path) == 255).all()


def test_exif_orientation_is_applied(tmp_path):
    """Stored 40 wide, red left, blue right; orientation 6 (turn 90° clockwise to view)."""
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = (255, 0, 0)
    stored[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    assert image_size(path) == (20, 40)
    rgb = load_rgb(path).astype(int)
    assert rgb.shape == (40, 20, 3)
    assert rgb[5, 10, 0] > 200 and rgb[5, 10, 2] < 50  # red on top
    assert rgb[35, 10, 2] > 200 and rgb[35, 10, 0] < 50  # blue below


def test_size_is_known_and_checked_before_decoding(tmp_path):
    """A 9000×9000 PNG of a few hundred bytes: its size is read from the header, and above
    a caller's limit it is refused without decoding (the pixels would need 243 MB)."""
    header = png(tmp_path / "small.png", np.zeros((8, 8, 3), np.uint8)).read_bytes()
    path = tmp_path / "big.png"
    path.write_bytes(fix_png_crcs(header[:16] + struct.pack(">II", 9000, 9000) + header[24:]))
    tracemalloc.start()
    try:
        assert image_size(path) == (9000, 9000)
        with pytest.raises(ImageError) as caught:
            load_rgb(path, max_pixels=4096 * 4096)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    one_line(caught.value, f"{path}: 9000×9000 pixels is too large (at most 16777216 pixels)")
    assert peak < 10 << 20


# --- carried frames ------------------------------------------------------------------------


def frames_folder(tmp_path: Path) -> tuple[FramesFolder, np.ndarray]:
    folder = FramesFolder(tmp_path / "frames", {"format": "test"})
    frame = np.random.default_rng(0).uniform(0, 255, (6, 8, 3)).astype(np.float32)
    folder.save(1, frame)
    return folder, frame


def test_a_carried_frame_reads_back_as_saved(tmp_path):
    folder, frame = frames_folder(tmp_path)
    carried = folder.carry(1)
    assert carried.dtype == np.float32 and np.array_equal(carried, frame)


@pytest.mark.parametrize("change, expected", [
    (lambda f: f[:5], "has shape (5, 8, 3), not its frame's (6, 8, 3)"),
    (lambda f: f.astype(np.int64), "holds int64 values, not float"),
    (lambda f: np.where(np.arange(8)[None, :, None] == 3, np.nan, f), "not finite"),
    (lambda f: np.where(np.arange(8)[None, :, None] == 3, np.inf, f), "not finite"),
    (lambda f: 255 - f, "does not match its frame's pixels"),
])
def test_a_wrong_carried_frame_is_refused(tmp_path, change, expected):
    folder, frame = frames_folder(tmp_path)
    path = folder.folder / carry_name(1)
    np.save(path, change(frame))
    with pytest.raises(OutputError) as caught:
        folder.carry(1)
    one_line(caught.value, str(path), expected, "give --force")


def test_a_pickled_huge_or_device_carry_is_refused(tmp_path):
    folder, frame = frames_folder(tmp_path)
    path = folder.folder / carry_name(1)
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(OutputError) as caught:
        folder.carry(1)
    one_line(caught.value, str(path), "cannot be read")
    huge(path, 1 << 30)
    with pytest.raises(OutputError) as caught:
        folder.carry(1)
    one_line(caught.value, str(path), "too large for a carried frame")
    path.unlink()
    zero_link(path)
    with pytest.raises(OutputError) as caught:
        folder.carry(1)
    one_line(caught.value, str(path), "is a device")


def test_json_files_of_ours_still_read(tiny, tmp_path):
    """What we write reads back through the bounded readers."""
    assert load(save(tiny, tmp_path / "net")).spec.name == tiny.spec.name
    settings = {"format": "test", "nested": {"a": [1, 2, {"b": [3]}]}}
    FramesFolder(tmp_path / "frames", settings).save(1, np.zeros((2, 2, 3), np.float32))
    assert read_frames_settings(tmp_path / "frames" / "settings.json") == settings
    FramesFolder(tmp_path / "frames", settings)  # reopened: the same settings
