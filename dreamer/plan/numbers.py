"""The numbers of the command line, checked where they are parsed: finite, in a stated
range, refused with a message naming the option.

A `Bounds` is an argparse `type` (argparse then writes "argument --blur: must be a number
from 0 to 100 (got nan)"), parses a positional (`parse(text, "RATE")`) and checks a value
given to the library (`check(value, "--octaves")`), so each range is stated once, here.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from numbers import Integral, Real


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
        """`value` if it is in range, else a ValueError naming `name`."""
        kind_ok = isinstance(value, Integral) if self.integer else isinstance(value, Real)
        if isinstance(value, bool) or not kind_ok or not self.holds(value):
            raise ValueError(f"{name} must be {self.describe()} (got {value})")
        return value

    def parse(self, text: str, name: str | None = None) -> int | float:
        """The number `text` spells, in range; else a ValueError (naming `name` if given)."""
        value = _number(text, self.integer)
        if value is None or not self.holds(value):
            prefix = f"{name} " if name else ""
            raise ValueError(f"{prefix}must be {self.describe()} (got {text!r})")
        return value

    def __call__(self, text: str) -> int | float:
        """As argparse's `type`: argparse prefixes the message with the option's name."""
        try:
            return self.parse(text)
        except ValueError as e:
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


# Each range once; `--help` and the errors state them.
ITERATIONS = Bounds(1, 100_000, integer=True)  # per octave (deepdraw: in all)
RATE = Bounds(0, 1000, low_open=True)  # 1000 standard deviations a step is noise already
WEIGHT = Bounds(-1000, 1000)  # of a LAYER:WEIGHT or --class NAME:WEIGHT
OCTAVES = Bounds(1, 100, integer=True)
OCTAVE_SCALE = Bounds(1, 100)
JITTER = Bounds(0, 10_000, integer=True)  # pixels; a roll wraps, so more is no different
CHANNEL = Bounds(0, integer=True)  # the layer's channel count is checked with the net
TOPK = Bounds(0, 1, low_open=True)
BLUR = Bounds(0, 100)  # sigma in pixels; the kernel spans 6 sigma
LAPLACIAN = Bounds(0, 32, integer=True)  # each level halves the size: 32 is past any image
TILE = Bounds(1, 1_000_000, integer=True)
TILE_MARGIN = Bounds(0, 1_000_000, integer=True)
# NumPy's seeds are below 2**32; animations add the frame's index, so half is left for it.
SEED = Bounds(0, 2**31 - 1, integer=True)
FRAMES = Bounds(1, 1_000_000, integer=True)
FPS = Bounds(0.01, 240)  # MP4's time base is 1/fps to 1/1001; above 240 no player keeps up
ZOOM = Bounds(0.01, 100)
ROTATE = Bounds(-360, 360)
PAN = Bounds(-10_000, 10_000)  # pixels per frame
BLEND = Bounds(0, 1, high_open=True)  # the carried detail must fade
CHUNK = Bounds(1, integer=True)
CELL_SIZE = Bounds(8, 4096, integer=True)  # pixels, the longer side of a gallery/sweep cell
COUNT = Bounds(1, 10_000, integer=True)  # cells of a gallery, columns, classes shown
WORKERS = Bounds(1, 10_000, integer=True)  # Ray workers
CPUS = Bounds(1, 1024, integer=True)  # of each Ray worker
GPUS = Bounds(0, 64)  # of each Ray worker; fractions share one
