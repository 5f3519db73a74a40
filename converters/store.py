"""Saving and loading converted networks: `network.json` + `weights.safetensors`.

No pickle anywhere: the description is readable JSON, the blobs are safetensors.
`load` also accepts any model file a reader understands, dispatched by suffix.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as load_bytes
from safetensors.numpy import load_file, save_file
from safetensors.numpy import save as save_bytes

from .atomic import OutputError, is_temporary, replacing_folder
from .bounded import load_json, read_bounded, read_json
from .caffe.reader import read_caffe
from .errors import UsageError
from .network import Network
from .onnx.reader import load_onnx
from .shapes import computed_shapes, min_input_sizes
from .spec import NETWORK_FORMAT, ConversionError, NetSpec, blob_key
from .torch7 import read_torch7

DESCRIPTION_FILE = "network.json"
WEIGHTS_FILE = "weights.safetensors"
EXTRA_FILES = ("layers.txt", "labels.txt")  # written by the zoo (models/convert.py)
MAX_DESCRIPTION_BYTES = 64 << 20
PROTOTXT_SUFFIXES = (".prototxt", ".protxt", ".pbtxt")


def save(network: Network | NetSpec, directory: str | Path,
         extra_files: dict[str, str | bytes] | None = None) -> Path:
    """Write the network (and `extra_files`, name -> text or bytes, named as `own_files`
    allows) as the folder `directory`: all files appear, or none. An existing converted
    network there is replaced whole; any other non-empty folder is refused (OutputError)."""
    spec = network.spec if isinstance(network, Network) else network
    directory = Path(directory)
    check_network_target(directory)
    unexpected = set(extra_files or {}) - own_files(directory)
    if unexpected:
        raise ValueError(f"{sorted(unexpected)[0]!r} is not a file of a converted network")
    blobs, description = _blobs(spec), _description(spec)
    with replacing_folder(directory) as staging:
        save_file(blobs, staging / WEIGHTS_FILE, metadata={"format": NETWORK_FORMAT})
        (staging / DESCRIPTION_FILE).write_text(description)
        for name, content in (extra_files or {}).items():
            if isinstance(content, bytes):
                (staging / name).write_bytes(content)
            else:
                (staging / name).write_text(content)
    return directory


def to_bytes(network: Network) -> tuple[bytes, bytes]:
    """The contents of the network's two files (network.json, weights.safetensors), to send
    where the folder is not (e.g. Ray's object store); `from_bytes` reads them back."""
    return (_description(network.spec).encode(),
            save_bytes(_blobs(network.spec), metadata={"format": NETWORK_FORMAT}))


def from_bytes(description: bytes, weights: bytes) -> Network:
    """The network whose files' contents `to_bytes` gave, checked as `load` checks files."""
    try:
        blobs = load_bytes(weights)
    except SafetensorError as e:
        raise ConversionError(f"{WEIGHTS_FILE} (sent): cannot read weights ({e})") from None
    return Network(_spec_from(Path(f"{DESCRIPTION_FILE} (sent)"), description, blobs))


def _blobs(spec: NetSpec) -> dict[str, np.ndarray]:
    return {blob_key(layer.name, i): np.ascontiguousarray(b, dtype=np.float32)
            for layer in spec.layers for i, b in enumerate(layer.blobs)}


def _description(spec: NetSpec) -> str:
    return json.dumps(spec.to_json(min_input_sizes(spec)), indent=1) + "\n"


def own_files(directory: Path) -> set[str]:
    """The names a converted network's folder may hold: ours, and nothing else."""
    return {DESCRIPTION_FILE, WEIGHTS_FILE, *EXTRA_FILES,
            f"{Path(directory).resolve().name}.onnx"}


def check_network_target(directory: str | Path) -> None:
    """Refuse, before any work, to write a network where something not ours would be lost:
    a file, or a non-empty folder that is not a converted network."""
    directory = Path(directory)
    if not os.path.lexists(directory):
        return
    if not directory.is_dir():
        raise OutputError(f"{directory}: is a file, not a folder; refusing to replace it")
    try:
        names = sorted(n for n in os.listdir(directory) if not is_temporary(n))
    except OSError as e:
        raise OutputError(f"{directory}: cannot read the folder ({e.strerror or e})") from None
    allowed = own_files(directory)
    foreign = [n for n in names if n not in allowed or not _plain_file(directory / n)]
    if foreign:
        raise OutputError(f"{directory}: not a converted network (it holds {foreign[0]!r}); "
                          f"refusing to replace it: give a new or empty folder")
    if names and not _written_by_us(directory / DESCRIPTION_FILE):
        raise OutputError(f"{directory}: its {DESCRIPTION_FILE} is not one dreamzoo wrote; "
                          f"refusing to replace it: give a new or empty folder")


def _plain_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _written_by_us(description: Path) -> bool:
    """Whether `description` is a network.json of our format (read only if small)."""
    if not _plain_file(description):
        return False
    try:
        data = read_json(description, MAX_DESCRIPTION_BYTES, "network description")
    except ConversionError:
        return False
    return isinstance(data, dict) and data.get("format") == NETWORK_FORMAT


def load(path: str | Path) -> Network:
    """A Network from a converted directory (or a model file a reader understands)."""
    path = Path(path)
    if path.is_dir():
        return Network(read_directory(path))
    suffix = path.suffix.lower()
    if suffix in (".t7", ".net", ".lua"):
        return Network(read_torch7(path))
    if suffix == ".onnx":
        return load_onnx(path)
    if not path.exists():
        raise ConversionError(f"{path}: no such file or directory")
    raise ConversionError(f"{path}: unknown model format (expected a converted directory, "
                          f".t7/.net or .onnx; for Caffe use load_caffe(prototxt, caffemodel))")


def load_caffe(prototxt, weights, input_shape=None) -> Network:
    """A Network from a deploy prototxt and a .caffemodel (or a weight callable)."""
    return Network(read_caffe(prototxt, weights, input_shape))


def open_path(model: str | Path, weights: str | Path | None = None,
              input_shape: list[int] | None = None) -> Network:
    """A Network from a model path: a prototxt with its caffemodel `weights`, a .t7/.net or
    .onnx file, or a converted directory; `weights` without a prototxt is a UsageError."""
    path = Path(model)
    if path.suffix.lower() in PROTOTXT_SUFFIXES:
        return load_caffe(path, weights, input_shape)
    if weights is not None:
        raise UsageError(f"{model}: not a prototxt; its weights ({weights}) go with a "
                         f"prototxt only")
    return load(path)


def open_model(paths: list[str], input_shape: list[int] | None = None) -> Network:
    """A Network from CLI paths: PROTOTXT [CAFFEMODEL], a .t7/.onnx file or a directory
    (two paths are always PROTOTXT CAFFEMODEL, whatever the first one's suffix)."""
    if len(paths) == 2:
        return load_caffe(paths[0], paths[1], input_shape)
    if len(paths) != 1:
        raise UsageError("give PROTOTXT CAFFEMODEL, or one .t7/.onnx file or directory")
    return open_path(paths[0], None, input_shape)


def read_directory(directory: Path) -> NetSpec:
    description, weights = directory / DESCRIPTION_FILE, directory / WEIGHTS_FILE
    text = read_bounded(description, MAX_DESCRIPTION_BYTES, "network description")
    try:
        blobs = load_file(weights) if weights.exists() else {}
    except (SafetensorError, OSError) as e:
        raise ConversionError(f"{weights}: cannot read weights ({e})") from None
    return _spec_from(description, text, blobs)


def _spec_from(description: Path, text: bytes, blobs: dict[str, np.ndarray]) -> NetSpec:
    """The NetSpec of a network.json's bytes and its blobs; errors name `description`."""
    data = load_json(text, description)
    try:
        spec = NetSpec.from_json(data, blobs)
        computed_shapes(spec, [1, *spec.input_shape[1:]])  # bounded, and computable
    except ConversionError as e:
        raise ConversionError(f"{description}: {e}") from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:  # wrong kinds
        raise ConversionError(f"{description}: malformed network description "
                              f"({type(e).__name__}: {e})") from None
    return spec
