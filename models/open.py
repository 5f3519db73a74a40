"""Opening a network by name or path: the one way in for the dreamer (`--model`/`--weights`)
and for library callers.

    models.open("nin")                                   # a zoo name: its converted folder
    models.open("models/my_net")                         # a converted folder
    models.open("net.t7"), models.open("net.onnx")       # a model file
    models.open("deploy.prototxt", "net.caffemodel")     # Caffe, with its weights
"""

from __future__ import annotations

import warnings
from pathlib import Path

from converters.errors import ConversionError
from converters.network import Network
from converters.store import PROTOTXT_SUFFIXES, load, open_path

from .converted import find_converted

DEFAULT_MODEL = "nin"


def open(name_or_path: str | Path | None = None, weights: str | Path | None = None) -> Network:
    """The network `name_or_path` names (default: the zoo's NIN): a model path a converter
    reads (a prototxt with its caffemodel `weights`), else a zoo or converted model's name.
    Warns (UnofficialWeights) when a converted zoo model's weights are not the official ones."""
    model = str(name_or_path or DEFAULT_MODEL)
    path = Path(model)
    if path.suffix.lower() in PROTOTXT_SUFFIXES or weights is not None or path.exists():
        return warn_unofficial(open_path(path, weights))
    if "/" in model or path.suffix:
        raise ConversionError(f"{model}: no such file or directory")
    return warn_unofficial(load(find_converted(model)))


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
