"""The network to dream with: `--model` is a zoo name (converted into models/), a converted
directory, a `.t7`/`.net`, an `.onnx`, or a prototxt with its caffemodel (`--weights`)."""

from __future__ import annotations

import warnings
from pathlib import Path

import converters
import models
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
        return warn_unofficial(converters.load(path))
    if "/" in model or path.suffix:
        raise ConversionError(f"{model}: no such file or directory")
    return warn_unofficial(converters.load(models.find_converted(model)))


class UnofficialWeights(UserWarning):
    """Weights that did not match their published checksum when converted."""


def warn_unofficial(network: Network) -> Network:
    """`network`, after a warning when the zoo record of its conversion says its weights
    did not match the published checksum (a mirror's stand-in or re-saved weights)."""
    zoo = network.spec.source.get("zoo") or {}
    for file in zoo.get("files", []):
        if file.get("kind") == "weights" and file.get("checksum") in ("differs", "doubtful"):
            warnings.warn(f"{network.name}: its weights were converted from {file['file']}, "
                          f"which does not match the published checksum of "
                          f"{file['official_name']}: not the official weights, so dreams and "
                          "classes may not be the real net's", UnofficialWeights, stacklevel=3)
    return network
