"""Moved to models/open.py (`models.open`); re-exported here until the callers switch."""

from models.open import DEFAULT_MODEL, UnofficialWeights, warn_unofficial
from models.open import open as open_network

__all__ = ["DEFAULT_MODEL", "UnofficialWeights", "open_network", "warn_unofficial"]
