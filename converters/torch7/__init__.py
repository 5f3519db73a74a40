"""Torch7 models: `.t7`/`.net` files (binary or ASCII) into the network description.

    spec = read_torch7("model.t7")          # NetSpec; converters.load("model.t7") builds it
"""

from .reader import read_torch7

__all__ = ["read_torch7"]
