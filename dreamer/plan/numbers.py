"""The numbers of the command line, checked where they are parsed: finite, in a stated
range, refused with a message naming the option.

A `Bounds` is an argparse `type` (argparse then writes "argument --blur: must be a number
from 0 to 100 (got nan)"), parses a positional (`parse(text, "RATE")`) and checks a value
given to the library (`check(value, "--octaves")`), so each range is stated once, here
(`Bounds` itself lives in converters/numbers.py, shared with `python -m converters`).
"""

from __future__ import annotations

from converters.numbers import Bounds

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
