"""Whose output is it: the one policy of every command that writes.

An existing file or folder at an output path is replaced only if dreamzoo wrote it, as its
own marker proves (PNG: a text chunk; JPEG and GIF: a comment; MP4: the container's comment;
ONNX: the producer name; a folder: our record file in it), or if the user says
`--overwrite`. Formats that carry no marker (.npy) are replaced only with `--overwrite`.
An output that is one of the command's inputs (resolved: `..`, symlinks, hard links) is
always refused. Checked before any work, with the output folder's writability and, where
the size can be estimated, its free space.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Iterable
from pathlib import Path

import onnx
from PIL import Image, UnidentifiedImageError

from .atomic import OutputError, check_file_target
from .spec import ConversionError

MARKER_KEY = "dreamzoo"  # the PNG text chunk's keyword
MARKER_FORMAT = "dreamzoo/1"
RECORD_FORMAT = "dreamzoo-folder/1"
RECORD_FILE = "dreamzoo-output.json"  # in an output folder of ours
MAX_RECORD_BYTES = 1 << 20
MAX_MARKED_BYTES = 4 << 30  # a larger file is not opened to look for our marker
OVERWRITE_HELP = ("replace an existing output that dreamzoo did not write (never an input; "
                  "outputs of ours are replaced without it)")


def marker(**fields) -> str:
    """The text of our marker: JSON with our format and `fields`."""
    return json.dumps({"format": MARKER_FORMAT, **fields}, separators=(",", ":"))


def read_marker(text: str | bytes | None) -> dict | None:
    """The fields of a marker's text; None if it is not ours."""
    try:
        data = json.loads(text) if text else None
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and data.get("format") == MARKER_FORMAT else None


def read_stored_run(png: Path) -> dict | None:
    """What a dream PNG of ours stores to make it again (`argv`: a list of strings, `cwd`,
    `network`), or None if it stores no such thing; a file that cannot be read is a
    ConversionError."""
    try:
        with Image.open(png) as image:
            fields = read_marker(image.info.get(MARKER_KEY)) if image.format == "PNG" else None
    except UnidentifiedImageError:
        return None
    except OSError as e:
        raise ConversionError(f"{png}: cannot be read ({e.strerror or e})") from None
    if fields is None or not isinstance(fields.get("cwd"), str) \
            or not isinstance(fields.get("argv"), list) \
            or not all(isinstance(a, str) for a in fields["argv"]):
        return None
    return fields


def resolved(path: str | Path) -> Path:
    """`path` with `..` and every symlink resolved, also when (part of) it does not exist."""
    return Path(os.path.realpath(path))


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file: resolved equal, or hard links of one."""
    if resolved(a) == resolved(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False  # one of them does not exist


def is_inside(path: str | Path, root: str | Path) -> bool:
    """Whether `path`, resolved, is `root` (resolved) or below it."""
    return resolved(path).is_relative_to(resolved(root))


def check_not_input(out: Path, inputs: Iterable[str | Path | None]) -> None:
    """Refuse an output that is one of the inputs (or a folder holding one of them)."""
    for given in inputs:
        if given is None or str(given) == "" or not os.path.lexists(given):
            continue  # not a file (a zoo model's name), or no such input: nothing to lose
        if same_file(out, given):
            raise OutputError(f"{out}: is the input {given}; refusing to write over an input "
                              f"(give another output)")
        if os.path.isdir(out) and is_inside(given, out):
            raise OutputError(f"{out}: holds the input {given}; refusing to replace it (give "
                              f"another output)")


def is_ours(path: Path) -> bool:
    """Whether the existing file `path` carries our marker (by its suffix's format)."""
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_MARKED_BYTES:
            return False
        reader = _MARKER_READERS.get(path.suffix.lower())
        return reader is not None and read_marker(reader(path)) is not None
    except Exception:  # noqa: BLE001 - a file any library cannot read is not ours
        return False


def _image_marker(path: Path) -> str | bytes | None:
    """Our PNG text chunk, or a JPEG's or GIF's comment (read with the header only)."""
    with warnings.catch_warnings():  # a huge image of someone's is only not ours
        warnings.simplefilter("ignore")
        with Image.open(path) as image:
            return image.info.get(MARKER_KEY) or image.info.get("comment")


def _mp4_marker(path: Path) -> str | None:
    import av  # optional: heavy, needed only for an .mp4 (zoom and video)

    with av.open(str(path)) as container:
        return container.metadata.get("comment")


def _onnx_marker(path: Path) -> str | None:
    model = onnx.load(str(path), load_external_data=False)
    return marker() if model.producer_name == "dreamzoo" else None


_MARKER_READERS = {".png": _image_marker, ".jpg": _image_marker, ".jpeg": _image_marker,
                   ".gif": _image_marker, ".mp4": _mp4_marker, ".onnx": _onnx_marker}


def check_output(path: str | Path, inputs: Iterable[str | Path | None] = (),
                 overwrite: bool = False, size: int = 0) -> Path:
    """Refuse, before any work, an output file that is an input, or exists and is not ours
    (unless `overwrite`), or whose folder cannot be written or lacks `size` bytes."""
    path = check_file_target(Path(path))
    check_not_input(path, inputs)
    if os.path.lexists(path) and not overwrite and not is_ours(path):
        raise OutputError(f"{path}: exists and is not a file dreamzoo wrote; refusing to "
                          f"replace it (give another output, or --overwrite)")
    check_writable_folder(path, size)
    return path


def check_writable_folder(path: Path, size: int = 0) -> None:
    """Refuse an output whose nearest existing folder we cannot write, or that lacks `size`
    free bytes there."""
    folder = resolved(path).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: cannot write in {folder} (no permission)")
    if size:
        free = shutil.disk_usage(folder).free
        if free < size:
            raise OutputError(f"{path}: needs up to {size / 1e6:.1f} MB, and {folder} has "
                              f"{free / 1e6:.1f} MB free")


def write_record(folder: Path, **fields) -> None:
    """Our record file in a folder being made (e.g. a staging folder): proves it ours."""
    text = json.dumps({"format": RECORD_FORMAT, **fields}, indent=1) + "\n"
    (folder / RECORD_FILE).write_text(text)


def has_record(folder: Path) -> bool:
    """Whether `folder` holds our record file (a small plain file of our format)."""
    record = folder / RECORD_FILE
    try:
        if not record.is_file() or record.is_symlink() \
                or record.stat().st_size > MAX_RECORD_BYTES:
            return False
        data = json.loads(record.read_bytes())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and data.get("format") == RECORD_FORMAT
