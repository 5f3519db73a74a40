"""What the benchmarks share: the reference folder, real GoogLeNet, one case per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("DREAMZOO_SHARED", ROOT.parent / "shared"))


def open_googlenet(model: str | None):
    """`model` (a converted folder or a prototxt beside bvlc_googlenet.caffemodel), else
    the converted zoo model, else the prototxt and caffemodel in SHARED."""
    import converters
    import models

    if model:
        caffemodel = Path(model).with_name("bvlc_googlenet.caffemodel")
        return models.open(model, str(caffemodel) if model.endswith(".prototxt") else None)
    try:
        return models.open("googlenet")
    except converters.ConversionError:
        folder = SHARED / "models/bvlc_googlenet"
        return models.open(str(folder / "deploy.prototxt"),
                            str(folder / "bvlc_googlenet.caffemodel"))


def run_case(script: str, argv: list[str]) -> tuple[dict | None, str]:
    """Run `script argv` in its own process (its peak memory is its own): (the JSON it
    printed, "") or (None, the last line it wrote to stderr)."""
    done = subprocess.run([sys.executable, script, *argv], capture_output=True, text=True)
    if done.returncode:
        return None, (done.stderr.strip().splitlines() or ["no output"])[-1]
    return json.loads(done.stdout), ""
