"""Reading image files, the one way everyone does: bounded before decoding, one-line errors."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import ConversionError

# Larger images are refused before decoding: PIL's own decompression-bomb size, which
# PIL only warns about (it refuses twice as many).
MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3


class ImageError(ConversionError):
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
