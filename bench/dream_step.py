"""Seconds per DeepDream iteration (forward to the layer + backward to the input).

    python bench/dream_step.py [--model DIR_or_prototxt] [--layer L] [--size WxH]

Defaults: real GoogLeNet (the converted zoo model, else the prototxt and caffemodel in
DREAMZOO_SHARED) to inception_4c/output at 1024×576, on 1 thread and on all threads, in
float32 and in bfloat16 autocast (the dreamer runs convolutions channels-last on CPU).
Each case runs in its own process so that its peak memory (max RSS) is its own.
Prints ratios against real Caffe's 1.6 s per iteration (1 thread, same net, layer, size).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

CAFFE_SECONDS = 1.6
CASES = {"fp32": "float32", "bf16 autocast": "bfloat16"}


def open_googlenet(model: str | None):
    import converters
    from dreamer.networks import open_network

    if model:
        caffemodel = Path(model).with_name("bvlc_googlenet.caffemodel")
        return open_network(model, str(caffemodel) if model.endswith(".prototxt") else None)
    try:
        return open_network("googlenet")
    except converters.ConversionError:
        shared = Path(os.environ.get("DREAMZOO_SHARED", "../shared")) / "models/bvlc_googlenet"
        return open_network(str(shared / "deploy.prototxt"),
                            str(shared / "bvlc_googlenet.caffemodel"))


def measure(args: argparse.Namespace) -> dict:
    """One case in this process: median seconds per iteration and peak RSS."""
    import torch

    from dreamer.gradient import DreamGradient, Target

    torch.set_num_threads(args.threads)
    dtype = CASES[args.case]
    network = open_googlenet(args.model)
    width, height = (int(v) for v in args.size.split("x"))
    x = torch.randn(1, 3, height, width) * 50
    gradient = DreamGradient(network, [Target(args.layer)])
    times = []
    for _ in range(args.iterations + 1):  # the first one warms up oneDNN
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
            gradient(x)
        times.append(time.perf_counter() - start)
    times = sorted(times[1:])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": times[len(times) // 2], "peak_mib": peak}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--layer", default="inception_4c/output")
    parser.add_argument("--size", default="1024x576", help="W x H")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--case", choices=list(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(args)))
        return 0
    print(f"{args.layer} at {args.size}, median of {args.iterations} iterations "
          f"(real Caffe: {CAFFE_SECONDS} s on 1 thread)")
    print(f"{'case':<20} {'threads':>7} {'s/iter':>8} {'vs Caffe':>9} {'peak MiB':>9}")
    for case in CASES:
        for threads in sorted({1, os.cpu_count() or 1}):
            command = [sys.executable, __file__, "--case", case, "--threads", str(threads),
                       "--layer", args.layer, "--size", args.size,
                       "--iterations", str(args.iterations)]
            if args.model:
                command += ["--model", args.model]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                print(f"{case:<20} {threads:>7} failed: {done.stderr.strip().splitlines()[-1]}")
                continue
            r = json.loads(done.stdout)
            print(f"{case:<20} {threads:>7} {r['seconds']:>8.3f} "
                  f"{CAFFE_SECONDS / r['seconds']:>8.2f}× {r['peak_mib']:>9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
