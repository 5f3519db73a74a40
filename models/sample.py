"""`python -m models.sample OUT.png`: write a photograph bundled with scikit-image.

The demo dreams on it, so that `make demo` needs no image of the user's.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from converters.atomic import replacing
from converters.cli import broken_pipe, flushed, interrupted
from converters.ownership import MARKER_KEY, check_output, marker
from converters.spec import ConversionError


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m models.sample OUT.png", file=sys.stderr)
        return 2
    from skimage import data  # optional: a dev dependency, only the demo needs it

    out = Path(argv[0])
    try:
        check_output(out)  # replaces only a file of ours (converters/ownership.py)
        text = PngInfo()
        text.add_itxt(MARKER_KEY, marker())
        with replacing(out) as file:
            Image.fromarray(data.astronaut()).save(file, "PNG", pnginfo=text)
        print(f"sample image (scikit-image's astronaut, 512x512) written to {out}")
        return flushed(0)
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return interrupted()
    except BrokenPipeError:
        return broken_pipe()


if __name__ == "__main__":
    sys.exit(main())
