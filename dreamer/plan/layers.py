"""Which layer is the target: the command line's LAYER (exact name, unique prefix, or the
seed script's integer `layer_max`) into a layer name."""

from __future__ import annotations

import difflib

from converters.network import Network
from converters.spec import ConversionError


def dream_layer_default(network: Network) -> str:
    """The zoo's default dream layer, if the net came from the zoo."""
    zoo = network.spec.source.get("zoo") or {}
    if zoo.get("default_layer") in network.layer_index:
        return zoo["default_layer"]
    raise ConversionError("give a LAYER (see --list-layers)")


def resolve_layer(network: Network, text: str) -> str:
    """A layer name from an exact name, a unique prefix or a 1-based `layer_max`."""
    names = network.layer_names
    if text.isdigit():
        index, sequence = int(text), network.sequence
        if not 1 <= index <= len(sequence):
            raise ConversionError(f"layer_max {index} is out of range: {network.name!r} has "
                                  f"{len(sequence)} modules (1..{len(sequence)})")
        return sequence[index - 1]
    if text in network.layer_index:
        return text
    matches = [n for n in names if n.startswith(text)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ConversionError(f"layer {text!r} is ambiguous in {network.name!r}: it starts "
                              f"{_listing(matches)}")
    close = difflib.get_close_matches(text, names, n=5, cutoff=0.4)
    hint = f"; closest: {_listing(close)}" if close else ""
    raise ConversionError(f"{network.name!r} has no layer {text!r}{hint} (see --list-layers)")


def _listing(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
