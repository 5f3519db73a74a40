"""The model zoo: every named net, where its files officially come from, and converting it.

    make convert MODEL=nin [FROM=../shared/models]   # fetch, verify, convert into models/nin/
    models.open("nin")                                # -> Network (a name or any model path)
    models.find_converted("nin")                      # -> Path("models/nin")
    models.is_zoo_name("nin_imagenet")                # -> True (aliases count)

Converted models live one directory each (network.json, weights.safetensors, layers.txt)
in `models_root()`: this folder in a checkout, the per-user data folder when installed.
"""

from __future__ import annotations

from .converted import NAME_PATTERN, convert_command, find_converted, models_root
from .open import DEFAULT_MODEL, UnofficialWeights, warn_unofficial
from .open import open as open  # the public `models.open`
from .registry import REGISTRY, Source, ZooModel, did_you_mean, is_zoo_name, lookup

# Not "open": `from models import *` would hide the builtin; call it as `models.open`.
__all__ = ["DEFAULT_MODEL", "NAME_PATTERN", "REGISTRY", "Source", "UnofficialWeights", "ZooModel",
           "convert_command", "did_you_mean", "find_converted", "is_zoo_name", "lookup",
           "models_root", "warn_unofficial"]
