"""What decides a dream's outputs, as JSON can hold it: a batch's record
(dreamer/jobs/batch_record.py) and an animation's frames folder (dreamer/motion) compare
these to refuse mixing two runs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from converters.network import Network
from models.download import file_digest

NOT_SETTINGS = ("device",)  # where a dream runs, not what it computes


def fingerprint(value) -> object:
    """`value` as JSON can hold it: arrays and files by their SHA-256."""
    if isinstance(value, np.ndarray):
        digest = hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()
        return f"array {value.shape} {value.dtype} sha256:{digest}"
    if isinstance(value, Path):
        try:
            return f"sha256:{file_digest(value, 'sha256')}"
        except OSError as e:
            raise ValueError(f"{value}: cannot be read ({e.strerror or e})") from None
    if isinstance(value, (list, tuple)):
        return [fingerprint(v) for v in value]
    return value


def network_digest(net: Network) -> str:
    """The SHA-256 of the layers' description and every weight and buffer, by name: the same
    net, whatever its files."""
    digest = hashlib.sha256(json.dumps(net.spec.to_json(), sort_keys=True).encode())
    for name, tensor in sorted(net.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().flatten().view(torch.uint8).numpy())
    return f"sha256:{digest.hexdigest()}"


def dream_settings(kind: str, net: Network, targets: list, iterations: int | None,
                   rate: float | None, options: dict, **more) -> dict:
    """Everything that decides the outputs of a `kind` of run: the net, targets, every
    option of `dream()` (`options`: all of them, given or not, so that the CLI and the API
    agree) and `more`."""
    every = dict(options)
    if isinstance(every["guide"], str):
        every["guide"] = Path(every["guide"])  # by its content
    kept = {k: fingerprint(v) for k, v in sorted(every.items()) if k not in NOT_SETTINGS}
    return {"kind": kind, "network": f"{net.name} {network_digest(net)}",
            "targets": [[t.layer, t.weight, t.channel] for t in targets],
            "iterations": iterations, "rate": rate, "options": kept,
            **{k: fingerprint(v) for k, v in more.items()}}


def changed(old: dict, new: dict) -> list[str]:
    """The names of the settings that differ, sorted."""
    return [name for name in sorted(old.keys() | new.keys()) if old.get(name) != new.get(name)]
