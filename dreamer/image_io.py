"""Reading and writing images: clear one-line errors, and no half-written output."""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
# Larger images are refused before decoding: PIL's own decompression-bomb size, which
# PIL only warns about (it refuses twice as many).
MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3


class ImageError(Exception):
    """An image that cannot be read or written; the message is one line."""


def load_rgb(path: str | Path) -> np.ndarray:
    """The image as H×W×3 uint8 RGB."""
    path = Path(path)
    try:
        # From memory: PIL reads a chunk of the size a file declares, which from a file
        # object allocates that size first, and from bytes no more than there are.
        with warnings.catch_warnings():  # PIL warns of what is refused here anyway
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(path.read_bytes()))
        with image:
            if image.width * image.height > MAX_PIXELS:
                raise ImageError(f"{path}: {image.width}×{image.height} pixels is too large "
                                 f"(at most {MAX_PIXELS} pixels)")
            image.load()
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file PIL can read") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageError(f"{path}: cannot read the image ({e})") from None


def check_writable(path: str | Path) -> Path:
    """Fail before any work if `path` has an unknown image suffix or no folder."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ImageError(f"{path}: the output must end in .png, .jpg or .jpeg")
    if not path.parent.is_dir():
        raise ImageError(f"{path}: the folder {path.parent} does not exist")
    return path


def check_npy(path: str | Path) -> Path:
    """Fail before any work if a raw-result path is not a .npy in an existing folder."""
    path = Path(path)
    if path.suffix.lower() != ".npy":
        raise ImageError(f"{path}: the raw result is written as .npy")
    if not path.parent.is_dir():
        raise ImageError(f"{path}: the folder {path.parent} does not exist")
    return path


def quantise(rgb: np.ndarray) -> np.ndarray:
    """Float RGB 0..255 -> uint8, clipped then truncated as the notebook's np.uint8 does."""
    return np.clip(rgb, 0, 255).astype(np.uint8)


def save_rgb(path: str | Path, rgb: np.ndarray) -> Path:
    """Write H×W×3 uint8 RGB as PNG or JPEG (by suffix), atomically."""
    path = check_writable(path)
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB")
    options = {"quality": 95} if FORMATS[path.suffix.lower()] == "JPEG" else {}
    _atomic(path, lambda f: image.save(f, FORMATS[path.suffix.lower()], **options))
    return path


def save_array(path: str | Path, array: np.ndarray) -> Path:
    """Write a float array as .npy (no pickle), atomically."""
    path = check_npy(path)
    _atomic(path, lambda f: np.save(f, np.ascontiguousarray(array), allow_pickle=False))
    return path


def _atomic(path: Path, write) -> None:
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as f:
            write(f)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except OSError as e:
        raise ImageError(f"{path}: cannot write ({e.strerror or e})") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
