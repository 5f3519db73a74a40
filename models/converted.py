"""Where converted models live, and finding one by name: `models_root()`, `find_converted`.

Converted models live one directory each (network.json, weights.safetensors, layers.txt)
in `models_root()`: the models/ folder in a checkout, the per-user data folder when
installed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from converters.spec import ConversionError

from .registry import REGISTRY, ZooModel, did_you_mean, lookup

# A converted model's directory name: no path separators, no leading dot, at most 100
# characters (file systems refuse names over 255 bytes).
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def models_root() -> Path:
    """Where converted models live, for `make convert` and the dreamer alike:
    $DREAMZOO_MODELS; else, run from a checkout, its models/ folder; else (installed)
    $XDG_DATA_HOME/dreamzoo/models, ~/.local/share/dreamzoo/models without XDG_DATA_HOME.
    Never the installed package."""
    configured = os.environ.get("DREAMZOO_MODELS")
    if configured:
        return Path(configured)
    package = Path(__file__).resolve().parent
    if (package.parent / "pyproject.toml").is_file():
        return package
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "dreamzoo" / "models"


def convert_command(model: ZooModel) -> str:
    return f"make convert MODEL={model.name}"


def find_converted(name: str) -> Path:
    """The converted directory of a zoo model (aliases accepted) or of a custom NAME.

    Raises ConversionError, naming the exact `make convert` command, when the model
    has not been converted yet.
    """
    model = lookup(name)
    if model is None and not NAME_PATTERN.fullmatch(name):
        raise ConversionError(f"{name!r} is not a model name")
    directory = models_root() / (model.name if model else name)
    if (directory / "network.json").is_file():
        return directory
    if model is not None:
        raise ConversionError(f"model {model.name!r} is not converted yet: run "
                              f"`{convert_command(model)}` (offline: add FROM=<mirror folder>)")
    if guess := did_you_mean(name):
        raise ConversionError(f"no model {name!r}: {guess} (`make convert` lists the zoo)")
    zoo = ", ".join(m.name for m in REGISTRY)
    raise ConversionError(f"no converted model {name!r} in {models_root()}, and the zoo has no "
                          f"such model (zoo: {zoo}); convert your own with `make convert "
                          f"PROTOTXT=... CAFFEMODEL=... NAME={name}`")
