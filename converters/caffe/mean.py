"""Caffe mean files: a `.binaryproto` BlobProto (or the `.npy` that pycaffe users saved)
reduced to one mean per channel."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..spec import ConversionError
from .proto import BlobProto
from .reader import blob_array

MAX_MEAN_FILE_BYTES = 64 << 20


def mean_values(path: Path) -> list[float]:
    """Per-channel means (in the file's channel order) of a .binaryproto or .npy mean file."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ConversionError(f"{path}: cannot read mean file ({e.strerror or e})") from None
    if size > MAX_MEAN_FILE_BYTES:
        raise ConversionError(f"{path}: {size} bytes is too large for a mean file")
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise ConversionError(f"{path}: not a readable .npy mean file ({e})") from None
    else:
        blob = BlobProto()
        try:
            blob.ParseFromString(path.read_bytes())
        except Exception as e:  # protobuf raises DecodeError or RuntimeError
            raise ConversionError(f"{path}: not a readable .binaryproto mean file ({e})") \
                from None
        array = blob_array(path, "mean", 0, blob)
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim not in (1, 3) or array.shape[0] != 3 or array.size == 0:
        raise ConversionError(f"{path}: a mean file needs 3 channels, found shape "
                              f"{list(array.shape)}")
    return [float(v) for v in array.reshape(3, -1).mean(axis=1)]
