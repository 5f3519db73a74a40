"""Peak memory (max RSS) and time of one dream iteration at large sizes.

    python bench/memory.py [--threads N] [--tile T] [--quick]

One `dreamer.dream()` iteration (1 octave, no jitter, fp32) on real GoogLeNet to
inception_4c/output, each case in its own process so that its max RSS is its own:
untiled 1920×1080, untiled 4000×3000, tiled 4000×3000 (`--tile`, default
576, `TILE`), then the tiled/untiled time ratio. Each case also prints the RSS before the
dream and the estimate of what the dream adds to it (`dreamer/loops/memory.py`, which plans
memory before a dream from this estimate; measured: 0.97 to 1.24 of the real increase).
Threads: all of the machine's by default (4000×3000 untiled takes about 100 s on 1
thread); `--threads 1` is the issue's setting. `--quick` runs only the 1920×1080 case.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

from _common import open_googlenet, run_case

LAYER = "inception_4c/output"
TILE = 576  # the --tile that keeps 4000×3000 under 2 GB
CASES = {"untiled 1920×1080": (1920, 1080, False), "untiled 4000×3000": (4000, 3000, False),
         "tiled 4000×3000": (4000, 3000, True)}


def measure(args: argparse.Namespace) -> dict:
    """One case in this process: seconds of the dream() call and the process's max RSS."""
    import numpy as np
    import torch

    import dreamer
    from dreamer.loops.memory import DreamMemory
    from dreamer.plan.targets import parse_targets
    from dreamer.runtime.allocator import keep_freed_memory

    keep_freed_memory()  # as `python -m dreamer` does
    torch.set_num_threads(args.threads)
    width, height, tiled = CASES[args.case]
    network = open_googlenet(args.model)
    rgb = np.random.RandomState(0).randint(0, 256, (height, width, 3)).astype(np.uint8)
    need = DreamMemory(network, parse_targets(network, LAYER)).need(
        [(height, width)], args.tile if tiled else None)
    before = _rss_mib()
    start = time.perf_counter()
    dreamer.dream(rgb, network, LAYER, 1, 0.03, octaves=1, jitter=0, precision="fp32",
                  device="cpu", tile=args.tile if tiled else None)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mib": peak, "before_mib": before,
            "estimate_mib": (need.device + need.host) / 2 ** 20}


def _rss_mib() -> float:
    """This process's resident memory now."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--tile", type=int, default=TILE)
    parser.add_argument("--quick", action="store_true", help="only untiled 1920×1080")
    parser.add_argument("--case", choices=list(CASES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(args)))
        return 0
    print(f"one iteration to {LAYER}, fp32, {args.threads} thread(s), tile {args.tile}")
    print(f"{'case':<20} {'seconds':>8} {'max RSS MiB':>12} {'before':>7} {'estimate':>9} "
          f"{'est/added':>9}")
    seconds = {}
    for case in list(CASES)[:1] if args.quick else CASES:
        argv = ["--case", case, "--threads", str(args.threads), "--tile", str(args.tile)]
        result, error = run_case(__file__, argv + (["--model", args.model] if args.model else []))
        if result is None:
            print(f"{case:<20} failed: {error}")
            continue
        seconds[case] = result["seconds"]
        added = result["peak_mib"] - result["before_mib"]
        print(f"{case:<20} {result['seconds']:>8.1f} {result['peak_mib']:>12.0f} "
              f"{result['before_mib']:>7.0f} {result['estimate_mib']:>9.0f} "
              f"{result['estimate_mib'] / added:>9.2f}")
    if len(seconds) == len(CASES):
        ratio = seconds["tiled 4000×3000"] / seconds["untiled 4000×3000"]
        print(f"tiled / untiled time at 4000×3000: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
