"""The studio's converted models: the names it offers, and an LRU of opened networks."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import models
from converters.errors import ConversionError, UsageError
from converters.network import Network
from dreamer.plan.plan import network_digest
from dreamer.plan.targets import dream_layer_default
from models.converted import NAME_PATTERN
from models.registry import lookup

# GoogLeNet's DeepDream layer, preselected wherever a net has it.
PREFERRED_LAYER = "inception_4c/output"


@dataclass(frozen=True)
class Loaded:
    """An opened network, its digest as a dream PNG records it, and its memory."""

    network: Network
    digest: str
    nbytes: int


def model_names(root: Path) -> list[str]:
    """The converted models in `root` that `--model NAME` opens there: folders with a
    network.json, named as the zoo names them (an alias would open another folder)."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if NAME_PATTERN.fullmatch(p.name) and (p / "network.json").is_file()
                  and (lookup(p.name) is None or lookup(p.name).name == p.name))


def memory_of(network: Network) -> int:
    """Bytes of the network's parameters and buffers."""
    tensors = [*network.parameters(), *network.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


class Slots:
    """`count` dreams at once: `with slots:` (or `with slots.slot() as k:`, k the slot's
    number, 0 to count-1) waits for a free slot and holds it."""

    def __init__(self, count: int = 1) -> None:
        self.count = count
        self._free = list(range(count - 1, -1, -1))  # popped from the end: slot 0 first
        self._changed = threading.Condition()
        self._held = threading.local()  # the slots `with slots:` holds, per thread

    @contextmanager
    def slot(self) -> Iterator[int]:
        with self._changed:
            self._changed.wait_for(lambda: self._free)
            number = self._free.pop()
        try:
            yield number
        finally:
            with self._changed:
                self._free.append(number)
                self._changed.notify()

    def busy(self) -> int:
        """How many slots are held now."""
        return self.count - len(self._free)

    def __enter__(self) -> int:
        held = self.slot()
        number = held.__enter__()
        self._held.stack = [*getattr(self._held, "stack", []), held]
        return number

    def __exit__(self, *error) -> None:
        self._held.stack.pop().__exit__(*error)


class ModelCache:
    """Opened networks by name, the least recently used dropped beyond `max_models` or
    `max_bytes` (the one just opened is always kept); `opened`: how many times a network
    was opened. `dreaming`: the `workers` slots a dream holds, so that at most that many
    dreams run at once."""

    def __init__(self, root: Path, max_models: int = 2, max_bytes: int = 4 << 30,
                 workers: int = 1) -> None:
        self.root, self.max_models, self.max_bytes = root, max_models, max_bytes
        self._open: OrderedDict[str, Loaded] = OrderedDict()
        self._table = threading.Lock()
        self.dreaming = Slots(workers)
        self.opened = 0
        self.ray = None  # the Ray workers dreams run on (`studio --ray`: RayDreams)

    def names(self) -> list[str]:
        return model_names(self.root)

    def get(self, name: str) -> Loaded:
        """The network `name` (one of `names()`: nothing else is opened), opened once."""
        if name not in self.names():
            raise UsageError(f"no converted model {name!r} in the studio's models folder")
        with self._table:
            if name not in self._open:
                network = models.open(self.root / name)
                digest = f"{network.name} {network_digest(network)}"
                self._open[name] = Loaded(network, digest, memory_of(network))
                self.opened += 1
            self._open.move_to_end(name)
            while len(self._open) > 1 and (len(self._open) > self.max_models
                                           or self.used() > self.max_bytes):
                self._open.popitem(last=False)
            return self._open[name]

    def used(self) -> int:
        """Bytes of the networks held (read without the lock: a copy, made at once)."""
        return sum(loaded.nbytes for loaded in list(self._open.values()))

    def held(self) -> list[str]:
        """The names held, least recently used first."""
        return list(self._open)

    def digests(self) -> list[str]:
        """The digests of the networks held."""
        return [loaded.digest for loaded in list(self._open.values())]


def layer_choices(network: Network) -> list[tuple[str, str]]:
    """(label, name) per layer for a dropdown: name, type, output shape, smallest input."""
    return [(f"{name}  ·  {kind}  ·  {dims}  ·  min {smallest}", name)
            for _, name, kind, dims, smallest in network.layer_rows()]


def default_layer(network: Network) -> str:
    """GoogLeNet's inception_4c/output where the net has it, else the zoo's default
    layer, else the first layer."""
    if PREFERRED_LAYER in network.layer_index:
        return PREFERRED_LAYER
    try:
        return dream_layer_default(network)
    except ConversionError:  # not from the zoo
        return network.layer_names[0]
