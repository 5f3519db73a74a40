"""Feature visualisation on real GoogLeNet against its peers, measured in the same run.

    python bench/visualize.py [--model DIR_or_prototxt] [--steps N] [--size S]
                              [--classes K] [--channels K] [--crops N] [--params LIST]
                              [--seed S] [--device D] [--images DIR] [--quick]

Methods: `dreamer.visualize` with each of --params (PARAM or PARAM/TRANSFORMS; default
fft, maco, and fft through the robust transforms); our deepdraw
preset (classes only: it draws a class); lucent (torch-lucent 0.1.8, the PyTorch port of
Lucid, installed apart by `make bench-visualize`: bench/_lucent_peer.py) with its own
defaults (Fourier parameterisation, decorrelated colour, standard transforms, Adam 0.05)
on our converted GoogLeNet behind the net's Caffe preprocessing. Same steps, size and
seed for all.

1. Class transfer: each of the first K of CLASSES is visualised on GoogLeNet at --size,
   then classified by real SqueezeNet v1.1 (a net nobody optimised against; its own
   preprocessing, a centre crop resized to 227): the classes in its top 5, and in
   GoogLeNet's top 1.
2. Channel strength: for the first K of CHANNELS of inception_4c/output, the channel's mean
   reached by the image, relative to the strongest of --crops natural crops (Caffe's
   cat.jpg and fish-bike.jpg, square crops at many positions and scales, resized to --size).
3. Time: seconds per step (wall, and this process's CPU time) of each method on a class
   and on a channel, --time-steps steps per run, the methods in turn for --rounds rounds
   (so that load from other processes spreads over all of them): median (min–max).

The full run (512 steps, 10 classes, 8 channels, 1000 crops; 82 visualisations) takes
512 steps × the seconds per step of each: on 2 AVX-512 cores 1.05 h when they are
free (2026-12-07), many more with other work on them (the last line estimates it from the
rates measured). --quick:
2 classes, 2 channels, 24 steps, 100 crops, 2 timing rounds of 16 steps (about 10
minutes on 2 busy CPU cores).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _common import SHARED, open_googlenet

LAYER = "inception_4c/output"
# ImageNet classes chosen here, none that the tests, README's sheets or the choice of the
# robust transforms (dreamer/plan/transforms.py) dreamed: animals, food, objects.
CLASSES = ("king penguin", "tree frog", "red fox", "monarch", "strawberry", "pizza",
           "pineapple", "beacon", "jack-o'-lantern", "hourglass")
CHANNELS = (0, 33, 97, 150, 230, 307, 405, 488)  # of inception_4c/output's 512
LABELS = SHARED / "models/bvlc_googlenet/categories.txt"
PHOTOS = ("cat.jpg", "fish-bike.jpg")
LUCENT = "lucent 0.1.8"
DEEPDRAW = "deepdraw preset"
QUICK = {"classes": 2, "channels": 2, "steps": 24, "crops": 100, "time_steps": 16,
         "rounds": 2}

# A method: (kind "class"|"channel", index) -> H×W×3 uint8.
Method = Callable[[str, int], np.ndarray]


def machine(device: str) -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    where = torch.cuda.get_device_name() if device.startswith("cuda") else \
        f"CPU, {torch.get_num_threads()} torch threads"
    return (f"{cpu}, {os.cpu_count()} cores; {where}; torch {torch.__version__}, "
            f"ATen CPU capability {torch.backends.cpu.get_cpu_capability()}")


def methods(network, args: argparse.Namespace, logits: str) -> dict[str, tuple[Method, set]]:
    """name -> (method, the kinds it takes)."""
    from _lucent_peer import render

    import dreamer
    from dreamer.loops.deepdraw import noise_canvas
    from dreamer.plan.objectives import ClassLogit

    def ours(param: str, transforms: str) -> Method:
        def run(kind: str, index: int) -> np.ndarray:
            target = f"class:{index}" if kind == "class" else f"{LAYER}:{index}"
            return dreamer.visualize(target, network, labels=str(LABELS), param=param,
                                     transforms=transforms, size=args.size,
                                     steps=args.steps, seed=args.seed, device=args.device)[0]
        return run

    def deepdraw(kind: str, index: int) -> np.ndarray:
        canvas = noise_canvas(args.size, args.size, args.seed)
        return dreamer.dream(canvas, network, ClassLogit(logits, index), iterations=args.steps,
                             preset="deepdraw", seed=args.seed, device=args.device)

    def lucent(kind: str, index: int) -> np.ndarray:
        layer = logits if kind == "class" else LAYER
        return render(network, layer, index, args.steps, args.size, args.seed, args.device,
                      fixed_size=kind == "class")

    both = {"class", "channel"}
    chosen = {}
    for choice in args.params:
        param, _, transforms = choice.partition("/")
        name = f"dreamzoo --param {param}" + (f" --transforms {transforms}" if transforms else "")
        chosen[name] = (ours(param, transforms or "standard"), both)
    return chosen | {DEEPDRAW: (deepdraw, {"class"}), LUCENT: (lucent, both)}


def natural_crops(size: int, count: int) -> list[np.ndarray]:
    """`count` square crops of the photos (sides 30%..100% of the short side, positions on
    a grid), each resized to size×size; shared evenly between the photos."""
    from PIL import Image

    from converters.images import load_rgb

    crops = []
    per_photo = -(-count // len(PHOTOS))
    sides = np.linspace(0.3, 1.0, 10)
    for name in PHOTOS:
        image = Image.fromarray(load_rgb(SHARED / "models/_common" / name))
        short = min(image.size)
        per_side = -(-per_photo // len(sides))
        grid = max(1, int(np.ceil(np.sqrt(per_side))))
        boxes = []
        for fraction in sides:
            side = int(short * fraction)
            for y in np.linspace(0, image.height - side, grid).astype(int):
                for x in np.linspace(0, image.width - side, grid).astype(int):
                    boxes.append((x, y, x + side, y + side))
        picked = np.linspace(0, len(boxes) - 1, per_photo).astype(int)
        crops += [np.asarray(image.crop(boxes[i]).resize((size, size), Image.BILINEAR))
                  for i in picked]
    return crops[:count]


def channel_means(network, images: list[np.ndarray], channels: list[int],
                  device: str, batch: int = 16) -> np.ndarray:
    """len(images) × len(channels): each image's spatial mean of each channel of LAYER."""
    import torch

    pre = network.spec.input_preprocessing()
    rows = []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            x = torch.from_numpy(np.stack([pre.to_net(i) for i in images[start:start + batch]]))
            out = network.forward_to(x.to(device), [LAYER])[LAYER]
            rows.append(out[:, channels].mean((2, 3)).float().cpu().numpy())
    return np.concatenate(rows)


def top_ranks(network, image: np.ndarray, index: int) -> int:
    """The rank (1 = top) of class `index` in the net's probabilities for the image (its own
    preprocessing, a centre crop resized to its declared size)."""
    from dreamer.loops.classify import fit_input, probabilities

    height, width = network.spec.input_shape[-2:]
    x = network.spec.input_preprocessing().to_net(fit_input(image, height, width, "centre"))
    probs = probabilities(network.to("cpu"), x)
    return int((probs > probs[index]).sum()) + 1


def warm_up(runs: dict[str, tuple[Method, set]], args: argparse.Namespace,
            class_index: int | None, channel: int | None) -> None:
    """Each method once for 2 steps, untimed: the first call's one-time costs (kernels,
    caches, lazy imports) are no step's."""
    steps, args.steps = args.steps, 2
    for method, kinds in runs.values():
        kind, index = ("class", class_index) if "channel" not in kinds or channel is None \
            else ("channel", channel)
        if index is not None:
            method(kind, index)
    args.steps = steps


def timed(method: Method, kind: str, index: int) -> tuple[np.ndarray, float, float]:
    start, start_cpu = time.perf_counter(), time.process_time()
    image = method(kind, index)
    return image, time.perf_counter() - start, time.process_time() - start_cpu


def time_steps(runs: dict[str, tuple[Method, set]], args: argparse.Namespace,
               class_index: int, channel: int | None
               ) -> tuple[dict[tuple[str, str], list[float]], dict[tuple[str, str], list[float]]]:
    """(wall, CPU) seconds per step per (method, kind): --rounds rounds of every method
    in turn, --time-steps steps each."""
    steps, args.steps = args.steps, args.time_steps
    seconds: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for kind, index in (("class", class_index), ("channel", channel)):
            for name, (method, kinds) in runs.items():
                if kind in kinds and index is not None:
                    _, wall, used = timed(method, kind, index)
                    seconds.setdefault((name, kind), []).append(wall / args.steps)
                    cpu.setdefault((name, kind), []).append(used / args.steps)
    args.steps = steps
    return seconds, cpu


def save(folder: str | None, name: str, kind: str, index: int, image: np.ndarray) -> None:
    if folder is None:
        return
    from PIL import Image

    safe = name.replace(" ", "_").replace("-", "").replace(".", "")
    Path(folder).mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(Path(folder) / f"{safe}_{kind}{index}.png")


def main() -> int:
    args = parse_args()
    import torch

    import models
    from dreamer.plan.targets import classifier_of
    from models.labels import class_index, read_labels

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    googlenet = open_googlenet(args.model)
    squeezenet = models.open(SHARED / "models/squeezenet_v1.1/deploy.prototxt",
                             SHARED / "models/squeezenet_v1.1/squeezenet_v1.1.caffemodel")
    labels = read_labels(LABELS)
    classes = [class_index(name, 1000, labels) for name in CLASSES[:args.classes]]
    channels = list(CHANNELS[:args.channels])
    logits = classifier_of(googlenet).logits
    runs = methods(googlenet, args, logits)
    print(f"machine: {machine(args.device)}")
    print(f"GoogLeNet at {args.size}×{args.size}, {args.steps} steps, seed {args.seed}; "
          f"{len(classes)} classes, {len(channels)} channels of {LAYER}, "
          f"{args.crops} natural crops")

    crops = natural_crops(args.size, args.crops)
    strongest = channel_means(googlenet.to(args.device), crops, channels, args.device).max(0)
    transfer: dict[str, list[tuple[int, int]]] = {name: [] for name in runs}
    strength: dict[str, list[float]] = {name: [] for name in runs}
    warm_up(runs, args, classes[0] if classes else None, channels[0] if channels else None)
    for kind, indices in (("class", classes), ("channel", channels)):
        for index in indices:
            for name, (method, kinds) in runs.items():
                if kind not in kinds:
                    continue
                googlenet.to(args.device)  # top_ranks moved it to the CPU
                image, wall, _ = timed(method, kind, index)
                save(args.images, name, kind, index, image)
                if kind == "class":
                    transfer[name].append((top_ranks(googlenet, image, index),
                                           top_ranks(squeezenet, image, index)))
                else:
                    mean = channel_means(googlenet.to(args.device), [image], [index],
                                         args.device)[0, 0]
                    strength[name].append(mean / strongest[channels.index(index)])
                print(f"  {name}: {kind} {index} done in {wall:.1f} s", file=sys.stderr)
    seconds, cpu = time_steps(runs, args, classes[0], channels[0] if channels else None)
    report(args, classes, labels, channels, strongest, seconds, cpu, transfer, strength)
    return 0


def report(args, classes, labels, channels, strongest, seconds, cpu, transfer,
           strength) -> None:
    names = ", ".join(f"{labels.name(i)} ({i})" for i in classes)
    print(f"\n1. class transfer, {len(classes)} classes: {names}")
    print(f"{'method':<40} {'SqueezeNet top 5':>16} {'GoogLeNet top 1':>16}  "
          f"SqueezeNet ranks")
    for name, ranks in transfer.items():
        squeeze = sum(r[1] <= 5 for r in ranks)
        google = sum(r[0] == 1 for r in ranks)
        print(f"{name:<40} {squeeze:>13}/{len(ranks):<2} {google:>13}/{len(ranks):<2}  "
              f"{' '.join(str(r[1]) for r in ranks)}")
    print(f"\n2. channel strength, {LAYER} channels {channels}: the channel's mean reached / "
          f"the strongest natural crop's ({' '.join(f'{v:.1f}' for v in strongest)})")
    print(f"{'method':<40} {'median':>8}  per channel")
    for name, ratios in strength.items():
        if ratios:
            print(f"{name:<40} {statistics.median(ratios):>8.2f}  "
                  f"{' '.join(f'{r:.2f}' for r in ratios)}")
    print(f"\n3. time at {args.size}×{args.size} ({args.device}), {args.rounds} rounds × "
          f"{args.time_steps} steps, median (min–max)")
    print(f"{'method':<40} {'target':>7} {'s/step':>22} {'CPU s/step':>10} "
          f"{'lucent/this':>11} {'CPU':>6}")
    for (name, kind), times in sorted(seconds.items(), key=lambda item: item[0][1]):
        t, used = statistics.median(times), statistics.median(cpu[name, kind])
        peer, peer_cpu = (statistics.median(x[LUCENT, kind]) for x in (seconds, cpu))
        spread = f"{t:.3f} ({min(times):.3f}–{max(times):.3f})"
        print(f"{name:<40} {kind:>7} {spread:>22} {used:>10.3f} {peer / t:>10.2f}× "
              f"{peer_cpu / used:>5.2f}×")
    full = sum(statistics.median(times) * 512 * (10 if kind == "class" else 8)
               for (name, kind), times in seconds.items())
    print(f"\nthe full run (10 classes, 8 channels, 512 steps) would take about "
          f"{full / 3600:.1f} h at these rates")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--steps", type=int, default=512)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--classes", type=int, default=len(CLASSES))
    parser.add_argument("--channels", type=int, default=len(CHANNELS))
    parser.add_argument("--crops", type=int, default=1000)
    parser.add_argument("--params", default="fft,maco,fft/robust",
                        help="ours: comma-separated PARAM or PARAM/TRANSFORMS")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-steps", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--images", help="save every visualisation here (PNG)")
    parser.add_argument("--quick", action="store_true",
                        help=", ".join(f"--{k.replace('_', '-')} {v}"
                                       for k, v in QUICK.items()))
    args = parser.parse_args()
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    args.params = [p for p in args.params.split(",") if p]
    return args


if __name__ == "__main__":
    sys.exit(main())
