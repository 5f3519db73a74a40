"""Reading image files, the one way everyone does: bounded before decoding, one-line errors.

Every mode becomes 8-bit RGB by its real range (16-bit by 65535, float by 0..1), and a
photo's EXIF orientation is applied, so the array is the picture as a viewer shows it.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .bounded import read_bounded
from .errors import ConversionError

# Larger images are refused before decoding: PIL's own decompression-bomb size, which
# PIL only warns about (it refuses twice as many).
MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3
# Files are read whole (see `_opened`): above any image of MAX_PIXELS pixels, even
# uncompressed 16-bit RGBA (8 bytes a pixel, 716 MB).
MAX_IMAGE_BYTES = 1 << 30
EXIF_ORIENTATION = 0x0112
SWAPPING_ORIENTATIONS = (5, 6, 7, 8)  # a quarter turn: width and height trade places


class ImageError(ConversionError):
    """An image that cannot be read or written; the message is one line."""


def load_rgb(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """The image as H×W×3 uint8 RGB, upright (EXIF orientation applied); refused before
    decoding if it has more than `max_pixels` pixels."""
    path = Path(path)
    with _opened(path) as image:
        if image.width * image.height > max_pixels:
            raise ImageError(f"{path}: {image.width}×{image.height} pixels is too large "
                             f"(at most {max_pixels} pixels)")
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
        return _rgb(image, path)


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of the upright image, from its header: nothing is decoded."""
    path = Path(path)
    with _opened(path) as image:
        size = image.size
        if _orientation(image) in SWAPPING_ORIENTATIONS:
            return size[1], size[0]
        return size


def _orientation(image: Image.Image) -> int | None:
    """The EXIF orientation known without decoding (a PNG's eXIf chunk after its pixels is
    not: PIL decodes them to reach it)."""
    if image.format == "PNG" and "exif" not in image.info:
        return None
    return image.getexif().get(EXIF_ORIENTATION)


@contextmanager
def _opened(path: Path) -> Iterator[Image.Image]:
    """The image, opened lazily (header read, pixels not decoded); errors as ImageError."""
    data = read_bounded(path, MAX_IMAGE_BYTES, "image", ImageError)
    try:
        # From memory: PIL reads a chunk of the size a file declares, which from a file
        # object allocates that size first, and from bytes no more than there are.
        with warnings.catch_warnings():  # PIL warns of what is refused here anyway
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        with image:
            yield image
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file PIL can read") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageError(f"{path}: cannot read the image ({e})") from None


def _rgb(image: Image.Image, path: Path) -> np.ndarray:
    """8-bit RGB of any mode; the wide ones (16-bit, 32-bit, float) by their real range."""
    if image.mode.startswith("I") or image.mode == "F":
        grey = _wide_to_8bit(np.asarray(image), image.mode, path)
        return np.repeat(grey[:, :, None], 3, axis=2)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def _wide_to_8bit(values: np.ndarray, mode: str, path: Path) -> np.ndarray:
    """One channel of integer (taken as 16-bit: 0..65535) or float (0..1, else 0..255)
    values as uint8; values beyond these ranges are stretched from their least to most."""
    values = values.astype(np.float32)  # exact to far below one 8-bit level
    if not np.isfinite(values).all():
        raise ImageError(f"{path}: a {mode} image with values that are not finite")
    low, high = (values.min(), values.max()) if values.size else (0.0, 0.0)
    if mode != "F" and low >= 0 and high <= 65535:
        top, low = 65535.0, 0.0
    elif mode == "F" and low >= 0 and high <= 1:
        top, low = 1.0, 0.0
    elif low >= 0 and high <= 255:
        top, low = 255.0, 0.0
    else:
        top = high if high > low else low + 1
    return np.rint((values - low) * (255 / (top - low))).clip(0, 255).astype(np.uint8)
