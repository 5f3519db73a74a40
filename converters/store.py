"""Saving and loading converted networks: `network.json` + `weights.safetensors`.

No pickle anywhere: the description is readable JSON, the blobs are safetensors.
`load` also accepts any model file a reader understands, dispatched by suffix.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from .network import Network
from .shapes import computed_shapes, min_input_sizes
from .spec import ConversionError, NetSpec, blob_key

DESCRIPTION_FILE = "network.json"
WEIGHTS_FILE = "weights.safetensors"


def save(network: Network | NetSpec, directory: str | Path,
         extra_files: dict[str, str] | None = None) -> Path:
    """Write the network (and any `extra_files`, name -> text) into `directory`
    atomically: all files appear, or none, and an existing directory is replaced."""
    spec = network.spec if isinstance(network, Network) else network
    directory = Path(directory)
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    except OSError as e:
        raise ConversionError(f"cannot write {directory}: {e.strerror or e}") from None
    try:
        blobs = {blob_key(layer.name, i): np.ascontiguousarray(b, dtype=np.float32)
                 for layer in spec.layers for i, b in enumerate(layer.blobs)}
        save_file(blobs, staging / WEIGHTS_FILE, metadata={"format": "dreamzoo-network/1"})
        description = spec.to_json(min_input_sizes(spec))
        (staging / DESCRIPTION_FILE).write_text(json.dumps(description, indent=1) + "\n")
        for name, text in (extra_files or {}).items():
            (staging / name).write_text(text)
        _make_public(staging)
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(staging, directory)
    except OSError as e:
        raise ConversionError(f"cannot write {directory}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def _make_public(directory: Path) -> None:
    """mkdtemp and safetensors create private files; give them the usual umask modes."""
    umask = os.umask(0)
    os.umask(umask)
    directory.chmod(0o777 & ~umask)
    for file in directory.iterdir():
        file.chmod(0o666 & ~umask)


def load(path: str | Path) -> Network:
    """A Network from a converted directory (or a model file a reader understands)."""
    path = Path(path)
    if path.is_dir():
        return Network(read_directory(path))
    suffix = path.suffix.lower()
    if suffix in (".t7", ".net", ".lua"):
        from .torch7 import read_torch7
        return Network(read_torch7(path))
    if suffix == ".onnx":
        from .onnx_import import load_onnx
        return load_onnx(path)
    if not path.exists():
        raise ConversionError(f"{path}: no such file or directory")
    raise ConversionError(f"{path}: unknown model format (expected a converted directory, "
                          f".t7/.net or .onnx; for Caffe use load_caffe(prototxt, caffemodel))")


def read_directory(directory: Path) -> NetSpec:
    description, weights = directory / DESCRIPTION_FILE, directory / WEIGHTS_FILE
    try:
        data = json.loads(description.read_text())
    except OSError as e:
        raise ConversionError(f"{description}: cannot read ({e.strerror or e})") from None
    except json.JSONDecodeError as e:
        raise ConversionError(f"{description}: invalid JSON (line {e.lineno}: {e.msg})") from None
    except UnicodeDecodeError as e:
        raise ConversionError(f"{description}: not UTF-8 text (byte {e.start})") from None
    try:
        blobs = load_file(weights) if weights.exists() else {}
    except (SafetensorError, OSError) as e:
        raise ConversionError(f"{weights}: cannot read weights ({e})") from None
    try:
        spec = NetSpec.from_json(data, blobs)
        computed_shapes(spec, [1, *spec.input_shape[1:]])  # bounded, and computable
    except ConversionError as e:
        raise ConversionError(f"{description}: {e}") from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:  # wrong kinds
        raise ConversionError(f"{description}: malformed network description "
                              f"({type(e).__name__}: {e})") from None
    return spec
