"""Reading and writing images: clear one-line errors, and no half-written output."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from converters.atomic import OutputError, check_file_target, is_temporary, replacing
from converters.images import ImageError
from converters.ownership import MARKER_KEY, check_output, is_ours, marker

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
OCTAVE_FILE = re.compile(r"octave[1-9][0-9]*\.png")


MAX_SIDE_HELP = ("scale the input down (never up) so that its longer side is at most N "
                 "pixels, keeping its aspect ratio (Lanczos resampling, Pillow)")


def check_max_side(max_side: int | None) -> None:
    if max_side is not None and max_side < 1:
        raise ValueError(f"--max-side must be at least 1 pixel (got {max_side})")


def scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) scaled down so that the longer side is at most `max_side`."""
    if max_side is None or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def scaled_down(rgb: np.ndarray, max_side: int | None) -> np.ndarray:
    """`rgb` (H×W×3 uint8) at `scaled_size` (Lanczos), unchanged when it already fits."""
    size = scaled_size(rgb.shape[1], rgb.shape[0], max_side)
    if size == (rgb.shape[1], rgb.shape[0]):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize(size, Image.LANCZOS))


def check_writable(path: str | Path) -> Path:
    """Fail before any work if `path` has an unknown image suffix or no folder."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ImageError(f"{path}: the output must end in .png, .jpg or .jpeg")
    if not path.parent.is_dir():
        raise ImageError(f"{path}: the folder {path.parent} does not exist")
    return check_file_target(path)


def check_npy(path: str | Path) -> Path:
    """Fail before any work if a raw-result path is not a .npy in an existing folder."""
    path = Path(path)
    if path.suffix.lower() != ".npy":
        raise ImageError(f"{path}: the raw result is written as .npy")
    if not path.parent.is_dir():
        raise ImageError(f"{path}: the folder {path.parent} does not exist")
    return check_file_target(path)


def check_image_output(path: str | Path, inputs: Iterable = (), overwrite: bool = False) -> Path:
    """`check_writable`, and the output policy (converters/ownership.py): not an input, and
    an existing file only if ours or with `overwrite`."""
    return check_output(check_writable(path), inputs, overwrite)


def check_raw_output(path: str | Path, inputs: Iterable = (), overwrite: bool = False) -> Path:
    """`check_npy`, and the output policy: a .npy has no marker, so an existing one is
    replaced only with `overwrite`."""
    return check_output(check_npy(path), inputs, overwrite)


def check_octave_folder(folder: str | Path, overwrite: bool = False) -> Path:
    """Fail before any work unless `folder` is new, empty, or holds only octaveN.png files
    of ours (an earlier run's, which carry our marker; any with `overwrite`)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: is a file, not a folder for the octaves")
    if not folder.is_dir():
        return folder
    try:
        foreign = sorted(n for n in folder.iterdir() if not is_temporary(n.name)
                         and not (OCTAVE_FILE.fullmatch(n.name)
                                  and (overwrite or is_ours(n))))
    except OSError as e:
        raise OutputError(f"{folder}: cannot read the folder ({e.strerror or e})") from None
    if foreign:
        raise OutputError(f"{folder}: holds {foreign[0].name!r}, which is not an octave "
                          f"image of ours; give a new or empty folder for --save-octaves")
    return folder


def save_octave(folder: Path, k: int, rgb: np.ndarray) -> Path:
    """Write octave k's image (1-based) as folder/octave<k>.png, creating the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    return save_rgb(folder / f"octave{k}.png", rgb)


def quantise(rgb: np.ndarray) -> np.ndarray:
    """Float RGB 0..255 -> uint8, clipped then truncated as the notebook's np.uint8 does."""
    return np.clip(rgb, 0, 255).astype(np.uint8)


def save_rgb(path: str | Path, rgb: np.ndarray, mark: str | None = None) -> Path:
    """Write H×W×3 uint8 RGB as PNG or JPEG (by suffix), atomically, with our marker `mark`
    (default: a bare one) in a PNG text chunk or the JPEG comment."""
    path = check_writable(path)
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB")
    options = marker_options(FORMATS[path.suffix.lower()], mark or marker())
    with replacing(path) as file:
        image.save(file, FORMATS[path.suffix.lower()], **options)
    return path


def marker_options(image_format: str, mark: str) -> dict:
    """PIL's save options that put our marker in a PNG or JPEG."""
    if image_format == "JPEG":
        return {"quality": 95, "comment": mark.encode()}
    text = PngInfo()
    text.add_itxt(MARKER_KEY, mark)
    return {"pnginfo": text}


def save_array(path: str | Path, array: np.ndarray) -> Path:
    """Write a float array as .npy (no pickle), atomically."""
    path = check_npy(path)
    with replacing(path) as file:
        np.save(file, np.ascontiguousarray(array), allow_pickle=False)
    return path
