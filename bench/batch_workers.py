"""Seconds for `python -m dreamer batch` on a folder of images: in this process (torch on
all threads) and on a local Ray instance with 1 and with 2 workers of 1 CPU each.

    python bench/batch_workers.py [--images 8] [--size 224] [--repeat 1] [--no-local]

GoogLeNet (real weights, DREAMZOO_SHARED) at inception_4c/output, 10 iterations, 4 octaves,
on crops of the shared cat photo. Each run is a fresh command into a fresh OUTDIR; "job" is
the time from the command's first line (workers ready, network loaded) to its end, "command"
the whole of it (Python, torch and Ray start-up included).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, SHARED
from PIL import Image

DREAM = ["inception_4c/output", "10", "0.03"]
CASES = {"Ray, 1 worker": ["--ray", "auto", "--workers", "1"],
         "Ray, 2 workers": ["--ray", "auto", "--workers", "2"], "in this process": []}


def make_images(folder: Path, count: int, size: int) -> None:
    cat = Image.open(SHARED / "models/_common/cat.jpg").convert("RGB")
    folder.mkdir()
    for i in range(count):
        cat.crop((20 * i, 10 * i, 20 * i + 300, 10 * i + 300)).resize((size, size)).save(
            folder / f"{i}.png")


def timed(argv: list[str]) -> tuple[float, float]:
    """(job seconds, command seconds) of one run."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "dreamer", *argv], stdout=subprocess.PIPE,
                               text=True, env=env)
    first = None
    for line in process.stdout:
        first = first or time.perf_counter()
        print("   ", line.rstrip(), flush=True)
    if process.wait() != 0:
        sys.exit(f"failed: {' '.join(argv)}")
    end = time.perf_counter()
    return end - first, end - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-local", action="store_true", help="Ray cases only")
    args = parser.parse_args()
    models = SHARED / "models/bvlc_googlenet"
    model = ["--model", str(models / "deploy.prototxt"),
             "--weights", str(models / "bvlc_googlenet.caffemodel")]
    with tempfile.TemporaryDirectory() as folder:
        images = Path(folder) / "images"
        make_images(images, args.images, args.size)
        results = {}
        for run in range(args.repeat):
            for case, extra in CASES.items():
                if args.no_local and not extra:
                    continue
                outdir = Path(folder) / f"out{run}-{case}"
                print(f"{case}:", flush=True)
                job, command = timed(["batch", str(images), *DREAM, *model, "--quiet",
                                      "-o", str(outdir), *extra])
                print(f"    job {job:.1f} s, command {command:.1f} s; load average "
                      f"{os.getloadavg()[0]:.1f} (other processes included)", flush=True)
                results.setdefault(case, []).append((job, command))
    print(f"{args.images} images {args.size}x{args.size}, GoogLeNet {' '.join(DREAM)}, "
          f"{os.cpu_count()} CPUs (best of {args.repeat}):")
    for case, times in results.items():
        job, command = min(times)
        print(f"  {case:<16} job {job:6.1f} s   command {command:6.1f} s")
    one, two = min(results["Ray, 1 worker"])[0], min(results["Ray, 2 workers"])[0]
    print(f"  speed-up of 2 Ray workers over 1: {one / two:.2f}x")


if __name__ == "__main__":
    main()
