"""The numbers of a command line, checked where they are parsed: finite, in a stated
range, refused with a message naming the option.

A `Bounds` is an argparse `type` (argparse then writes "argument --blur: must be a number
from 0 to 100 (got nan)"), parses a positional (`parse(text, "RATE")`) and checks a value
given to a library (`check(value, "--octaves")`), so each range is stated once, where the
command states its numbers (dreamer/plan/numbers.py, converters/onnx/cli.py).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from numbers import Integral, Real

from .errors import UsageError


@dataclass(frozen=True)
class Bounds:
    """Integers or finite numbers from `low` to `high` (None: unbounded); `low_open` and
    `high_open` leave that end out."""

    low: float | None = None
    high: float | None = None
    integer: bool = False
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        """E.g. "an integer from 1 to 100", "a finite number, above 0 and at most 1"."""
        kind = "an integer" if self.integer else "a finite number"
        if self.low is not None and self.high is not None \
                and not (self.low_open or self.high_open):
            return f"{kind} from {_text(self.low)} to {_text(self.high)}"
        ends = []
        if self.low is not None:
            ends.append(f"{'above' if self.low_open else 'at least'} {_text(self.low)}")
        if self.high is not None:
            ends.append(f"{'below' if self.high_open else 'at most'} {_text(self.high)}")
        return ", ".join([kind, " and ".join(ends)]) if ends else kind

    def holds(self, value: float) -> bool:
        if not isinstance(value, Integral) and not math.isfinite(value):
            return False
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open
                                      else value <= self.high)
        return above and below

    def check(self, value: float, name: str) -> float:
        """`value` if it is in range, else a UsageError (a ValueError) naming `name`."""
        kind_ok = isinstance(value, Integral) if self.integer else isinstance(value, Real)
        if isinstance(value, bool) or not kind_ok or not self.holds(value):
            raise UsageError(f"{name} must be {self.describe()} (got {value})")
        return value

    def parse(self, text: str, name: str | None = None) -> int | float:
        """The number `text` spells, in range; else a UsageError (naming `name` if given)."""
        value = _number(text, self.integer)
        if value is None or not self.holds(value):
            prefix = f"{name} " if name else ""
            raise UsageError(f"{prefix}must be {self.describe()} (got {text!r})")
        return value

    def __call__(self, text: str) -> int | float:
        """As argparse's `type`: argparse prefixes the message with the option's name."""
        try:
            return self.parse(text)
        except UsageError as e:
            raise argparse.ArgumentTypeError(str(e)) from None


def _number(text: str, integer: bool) -> int | float | None:
    """The int (or float) `text` spells, else None; digits other than ASCII are refused."""
    text = text.strip()
    if not text.isascii() or len(text) > 100:
        return None
    try:
        return int(text) if integer else float(text)
    except ValueError:
        return None


def _text(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"
