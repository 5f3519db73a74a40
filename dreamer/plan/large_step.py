"""The warning for a step so large that the dream can only be noise.

Each step moves a pixel by RATE standard deviations of the image on average (the step is
normalised by the gradient's mean |g|), so ITERATIONS × RATE is how far an octave can
carry the image from itself. Measured on real GoogLeNet (inception_4c/output, 4 octaves),
as the correlation of the blurred result with the blurred photo (random pixels: 0.04), on
the BVLC cat at 256×192: 0.99 at 0.5, 0.98 at 1, 0.93 at 2, 0.84 at 3 (heavy dreams), 0.58
at 5 (the cat gone, a dreamt animal in its place), 0.15 at 7.5 (`10 0.75`), 0.04 at 7.5
(`5 1.5`), 0.45 at 8 (`20 0.4`), 0.07 at 10 and 0.03 at 15 (`10 1.5`); on the astronaut at
512×512: 0.36 at 5 and 0.11 at 7.5, pattern soup with no photo left. Hence the warning
beyond 4. The figures behind the measures are in tests/test_demo.py.
"""

from __future__ import annotations

import warnings

NOISE_TRAVEL = 4.0  # ITERATIONS × RATE (in standard deviations) beyond which it is noise


def warn_if_noise(iterations: int, rate_in_std: float) -> None:
    """Warn (UserWarning; one `warning:` line in the CLI) when the steps add up to noise."""
    travel = iterations * rate_in_std
    if travel > NOISE_TRAVEL:
        warnings.warn(f"{iterations} iterations at this RATE move each pixel about "
                      f"{travel:.3g} standard deviations of the image per octave (noise beyond "
                      f"{NOISE_TRAVEL:g}): expect noise, not a dream; without a preset, RATE is "
                      f"in standard deviations and 10 0.03 makes a classic dream", stacklevel=3)
