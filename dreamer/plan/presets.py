"""The ways to dream, as data: one frozen record per preset, in one table.

A preset names its loop (dreamer/loops/: Google's octave loop, the seed Torch7 script's,
deepdraw's crops) and the defaults of its stages: the octave pyramid, jitter, step norm,
clipping, the RATE's unit, the input mean and 8-bit input, the output's quantisation, the
arithmetic. Nothing else looks at a preset's name.
"""

from __future__ import annotations

from dataclasses import dataclass

from converters.errors import UsageError

STEP_NORMS = ("mean", "max", "l2", "none")
# Google's notebook subtracts this from GoogLeNet's input (not the deploy's 104/117/123).
NOTEBOOK_GOOGLENET_MEAN = (104.0, 116.0, 122.0)


@dataclass(frozen=True)
class Preset:
    name: str | None  # None: the default, no --preset
    loop: str  # the loop that runs it, a key of dreamer.loops.run.LOOPS
    iterations: int | None = 10  # None: the loop's own schedule
    rate: float = 0.01
    rate_in_std: bool = True  # RATE in the image's standard deviation (else the net's units)
    motion_rate: float = 0.03  # a video frame's default RATE
    octaves: int | None = 4  # None: the loop's own schedule
    octave_scale: float = 1.4
    jitter: int = 32
    step_norm: str = "mean"
    clip: bool = True
    notebook_mean: bool = False  # the notebook's mean for GoogLeNet and nets without one
    eight_bit_input: bool = False  # the loop reads the image's 8-bit values
    noise_source: bool = False  # SRC `noise` (or none) is a noise canvas of the net's size
    warns_noise: bool = True  # warn when ITERATIONS × RATE can only make noise
    reproduces: bool = False  # reproduces its framework's numbers: `auto` precision is fp32
    animates: bool = True  # zoom and video may use it
    refuses: tuple[str, ...] = ()  # options it does not take (left at their default)


PRESETS: dict[str | None, Preset] = {p.name: p for p in (
    Preset(None, "google"),
    Preset("google", "google", rate=1.5, rate_in_std=False, motion_rate=1.5,
           notebook_mean=True, reproduces=True),
    Preset("torch7", "torch7", octaves=8, eight_bit_input=True,
           reproduces=True, animates=False,
           refuses=("octave_scale", "jitter", "step_norm", "tile", "guide")),
    Preset("deepdraw", "deepdraw", iterations=None, rate=1.0, octaves=None,
           eight_bit_input=True, noise_source=True, warns_noise=False, animates=False,
           refuses=("octave_scale", "jitter", "step_norm", "tile", "guide", "channel",
                    "objective", "param")),
)}
PRESET_NAMES = tuple(name for name in PRESETS if name is not None)


def preset_named(name: str | None) -> Preset:
    if name not in PRESETS:
        raise UsageError(f"unknown preset {name!r} (choose from {', '.join(PRESET_NAMES)})")
    return PRESETS[name]
