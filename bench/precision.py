"""Each precision this machine computes natively, and `auto`: seconds per dream and PSNR
against the fp32 dream.

    python bench/precision.py [--device auto|cpu|cuda] [--size WxH] [--octaves N]
                              [--iterations N] [--threads N] [--model M]

A whole `dreamer.dream()` (default 1024×576, 4 octaves × 2 iterations, RATE 0.03, no
jitter) on real GoogLeNet to inception_4c/output, on the cat photo of DREAMZOO_SHARED
(random pixels without it), after a warm-up dream of 1 iteration at the same sizes (the
kernels for each size are made on first use: a dream's first steps at a new size are
slower, in bf16 with AMX more than in fp32). Prints what
`auto` chose and its speed against fp32 (auto must never be slower). The GPU target
(bench/gpu.sh): --size 1920x1080 --iterations 10 under 1 s in the fast mode.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from _common import ROOT, SHARED, open_googlenet

LAYER = "inception_4c/output"


def photo(width: int, height: int) -> np.ndarray:
    from PIL import Image

    cat = SHARED / "models/_common/cat.jpg"
    if not cat.is_file():
        return np.random.RandomState(0).randint(0, 256, (height, width, 3)).astype(np.uint8)
    image = Image.open(cat).convert("RGB").resize((width, height), Image.BILINEAR)
    return np.asarray(image, np.uint8)


def main() -> int:
    import torch

    import dreamer
    from dreamer.runtime.devices import resolve_device
    from dreamer.runtime.precision import PRECISIONS, auto_precision, native

    sys.path.insert(0, str(ROOT / "tests"))
    from compare import psnr

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", default="1024x576", help="W x H")
    parser.add_argument("--octaves", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--model")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = True  # each octave's size runs 10 times: tune once
    device = resolve_device(args.device)
    offered = [p for p in PRECISIONS[1:] if native(p, torch.device(device))]
    network = open_googlenet(args.model)
    width, height = (int(v) for v in args.size.split("x"))
    rgb = photo(width, height)
    settings = {"octaves": args.octaves, "jitter": 0, "device": device}
    chosen = auto_precision(torch.device(device))
    print(f"{LAYER} at {width}×{height}, {args.octaves} octaves × {args.iterations} "
          f"iterations on {device} ({args.threads} CPU threads); auto chooses {chosen}")
    print(f"{'precision':<10} {'seconds':>8} {'vs fp32':>8} {'PSNR dB':>8}")
    results, seconds = {}, {}
    for precision in [*offered, "auto"]:
        dreamer.dream(rgb, network, LAYER, 1, 0.03, precision=precision, **settings)  # warm-up
        start = time.perf_counter()
        results[precision] = dreamer.dream(rgb, network, LAYER, args.iterations, 0.03,
                                           precision=precision, **settings)
        seconds[precision] = time.perf_counter() - start
        print(f"{precision:<10} {seconds[precision]:>8.2f} "
              f"{seconds['fp32'] / seconds[precision]:>7.2f}× "
              f"{psnr(results[precision], results['fp32']):>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
