"""The network to dream with: `--model` is a zoo name (converted into models/), a converted
directory, a `.t7`/`.net`, an `.onnx`, or a prototxt with its caffemodel (`--weights`)."""

from __future__ import annotations

from pathlib import Path

import converters
from converters.network import Network
from converters.spec import ConversionError
from converters.store import PROTOTXT_SUFFIXES

DEFAULT_MODEL = "nin"


def open_network(model: str | None, weights: str | None = None) -> Network:
    """The network named by `--model` (default: the zoo's NIN) and `--weights`."""
    model = model or DEFAULT_MODEL
    path = Path(model)
    if path.suffix.lower() in PROTOTXT_SUFFIXES:
        return converters.load_caffe(path, weights)
    if weights is not None:
        raise ConversionError("--weights goes with a prototxt --model")
    if path.exists():
        return converters.load(path)
    import models

    if "/" in model or path.suffix:
        raise ConversionError(f"{model}: no such file or directory")
    return converters.load(models.find_converted(model))
