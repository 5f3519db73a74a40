"""One kind of table for everything registered by name: adding a name twice is an error."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Registry(dict[str, T]):
    """Values by name, each name added once (`what` names the values in the error)."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def add(self, name: str, value: T) -> T:
        if name in self:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self[name] = value
        return value

    def register(self, *names: str) -> Callable[[T], T]:
        """A decorator adding the decorated value under each of `names`."""
        def add(value: T) -> T:
            for name in names:
                self.add(name, value)
            return value
        return add
