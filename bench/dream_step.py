"""Seconds per DeepDream iteration (forward to the layer + gradient to the input), fp32,
against peers measured in the same run.

    python bench/dream_step.py [--model DIR_or_prototxt] [--layer L] [--size WxH]
                               [--rounds R] [--iterations N]

Defaults: real GoogLeNet (the converted zoo model, else the prototxt and caffemodel in
DREAMZOO_SHARED) to inception_4c/output at 1024×576. Cases, each in its own process (so
that its peak memory, max RSS, is its own): dreamzoo on 1 thread and on all threads; the
plain PyTorch loop a user would write (torchvision's GoogLeNet, no weights, eval,
channels-last, same size, up to inception4c) on 1 thread; the machine's 1-thread sgemm
rate (torch.mm of 2048×2048 fp32 matrices). The cases run in turn, `rounds` times, and
each prints the median of all its timings, so that load from other processes spreads
over all of them; the spread (min–max) shows how noisy the run was, and the CPU time
of the 1-thread cases (which leaves out the time other processes held the core) gives
ratios that hold on a busy machine too.

Faults: minor page faults per iteration. The dreamzoo cases keep freed memory in the
heap as the command line does (dreamer/runtime/allocator.py); the peer runs as a user's script,
and once more with the same allocator setting, to show what of the ratio that is.

Roofline: the convolutions' FLOPs (forward + gradient to the input, from the layer
shapes) divided by the time of a whole iteration, against the sgemm rate.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time

from _common import open_googlenet, run_case

SGEMM_SIZE = 2048
PEER = "torchvision GoogLeNet loop"


def conv_flops(network, layer: str, height: int, width: int) -> float:
    """FLOPs of the convolutions up to `layer`: forward plus gradient to the input
    (the same multiply-adds again), 2 FLOPs per multiply-add, from the layer shapes."""
    from converters.shapes import walk_shapes

    walk = walk_shapes(network.spec, [1, 3, height, width], until=layer)
    total = 0
    for spec_layer in network.spec.layers[:network.layer_index[layer] + 1]:
        if spec_layer.type == "Convolution":
            out = walk.outputs[spec_layer.name][0]
            per_output = spec_layer.blobs[0][0].size  # C_in / group × kernel area
            total += 2 * 2 * per_output * out[1] * out[2] * out[3]
    return float(total)


def timed(step, iterations: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds (this process's, all threads) of each of `iterations` calls
    of `step`. On 1 thread the CPU time leaves out the time other processes held the
    core, so it is the steadier figure on a busy machine."""
    wall, cpu = [], []
    for _ in range(iterations):
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def dreamzoo_step(args: argparse.Namespace):
    import torch

    from dreamer.loops.gradient import DreamGradient
    from dreamer.plan.plan import objective_for
    from dreamer.plan.targets import Target
    from dreamer.runtime.allocator import keep_freed_memory

    keep_freed_memory()  # as `python -m dreamer` does
    network = open_googlenet(args.model)
    width, height = (int(v) for v in args.size.split("x"))
    x = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(0)) * 50
    gradient = DreamGradient(network, objective_for(tuple([Target(args.layer)])))
    return lambda: gradient(x)


def peer_step(args: argparse.Namespace):
    """The ten lines a PyTorch user writes: torchvision's GoogLeNet up to inception4c,
    channels-last, the L2 objective's gradient (dy = y) to the input."""
    import torch
    import torchvision

    net = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False)
    net = net.eval().requires_grad_(False).to(memory_format=torch.channels_last)
    stages = []
    for name, module in net.named_children():
        stages.append(module)
        if name == "inception4c":
            break
    width, height = (int(v) for v in args.size.split("x"))
    x = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(0)) * 50
    x = x.contiguous(memory_format=torch.channels_last)

    def step():
        inp = x.detach().requires_grad_(True)
        y = inp
        for stage in stages:
            y = stage(y)
        return torch.autograd.grad(y, inp, y.detach())[0]
    return step


def sgemm_step(args: argparse.Namespace):
    import torch

    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(SGEMM_SIZE, SGEMM_SIZE, generator=generator) for _ in range(2))
    out = torch.empty(SGEMM_SIZE, SGEMM_SIZE)
    return lambda: torch.mm(a, b, out=out)


def peer_kept_step(args: argparse.Namespace):
    """The peer with dreamzoo's allocator setting: what of the ratio is the allocator."""
    from dreamer.runtime.allocator import keep_freed_memory

    keep_freed_memory()
    return peer_step(args)


PEER_KEPT = f"{PEER}, memory kept"
STEPS = {"dreamzoo": dreamzoo_step, PEER: peer_step, PEER_KEPT: peer_kept_step,
         "sgemm": sgemm_step}


def measure(args: argparse.Namespace) -> dict:
    """One case in this process: its timings and peak RSS."""
    import torch

    torch.set_num_threads(args.threads)
    iterations = args.iterations * (5 if args.case == "sgemm" else 1)
    step = STEPS[args.case](args)
    step()  # untimed warm-up; its faults are the heap's first touch, not a cost per iteration
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    times, cpu = timed(step, iterations)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"times": times, "cpu": cpu, "peak_mib": usage.ru_maxrss / 1024,
            "faults": (usage.ru_minflt - faults) / iterations}


def measure_in_process(args: argparse.Namespace, case: str, threads: int) -> dict:
    argv = ["--case", case, "--threads", str(threads), "--layer", args.layer,
            "--size", args.size, "--iterations", str(args.iterations)]
    result, error = run_case(__file__, argv + (["--model", args.model] if args.model else []))
    if result is None:
        raise SystemExit(f"{case} on {threads} threads failed: {error}")
    return result


def report(args: argparse.Namespace, results: dict[tuple[str, int], dict]) -> None:
    import torch

    width, height = (int(v) for v in args.size.split("x"))
    flops = conv_flops(open_googlenet(args.model), args.layer, height, width)
    sgemm = 2 * SGEMM_SIZE ** 3 / statistics.median(results["sgemm", 1]["times"])
    print(f"{args.layer} at {args.size}, fp32, ATen CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}; {args.rounds} rounds × "
          f"{args.iterations} iterations per case, median (min–max)")
    print(f"convolutions: {flops / 1e9:.2f} GFLOP per iteration (forward + input gradient)")
    print(f"machine: 1-thread sgemm {sgemm / 1e9:.1f} GFLOP/s (torch.mm {SGEMM_SIZE}², fp32)")
    print(f"{'case':<40} {'threads':>7} {'s/iteration':>20} {'GFLOP/s':>8} "
          f"{'roofline':>8} {'CPU s':>6} {'peak MiB':>9} {'faults':>7}")
    seconds, cpu = {}, {}
    for (case, threads), r in results.items():
        if case == "sgemm":
            continue
        t = seconds[case, threads] = statistics.median(r["times"])
        cpu[case, threads] = statistics.median(r["cpu"])
        spread = f"{t:.3f} ({min(r['times']):.3f}–{max(r['times']):.3f})"
        roofline = f"{flops / t / sgemm:.0%}" if threads == 1 else ""
        print(f"{case:<40} {threads:>7} {spread:>20} {flops / t / 1e9:>8.1f} "
              f"{roofline:>8} {cpu[case, threads]:>6.3f} {r['peak_mib']:>9.0f} "
              f"{statistics.median(r['faults']):>7.0f}")
    ours = seconds["dreamzoo", 1]
    for peer in (PEER, PEER_KEPT):
        print(f"dreamzoo vs {peer}, 1 thread: {seconds[peer, 1] / ours:.2f}× faster "
              f"(CPU time: {cpu[peer, 1] / cpu['dreamzoo', 1]:.2f}×)")
    sgemm_cpu = 2 * SGEMM_SIZE ** 3 / statistics.median(results["sgemm", 1]["cpu"])
    print(f"roofline by CPU time, 1 thread: {flops / cpu['dreamzoo', 1] / sgemm_cpu:.0%}")
    for (case, threads), t in seconds.items():
        if case == "dreamzoo" and threads > 1:
            print(f"dreamzoo on {threads} threads vs 1: {ours / t:.2f}× faster")
    print("real Caffe is not measured here: 2.37 s/iteration on AMD EPYC, AVX2, 1 thread, "
          "OpenBLAS (README)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--layer", default="inception_4c/output")
    parser.add_argument("--size", default="1024x576", help="W x H")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--case", choices=list(STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(args)))
        return 0
    all_threads = os.cpu_count() or 1
    cases = [("dreamzoo", 1), (PEER, 1), (PEER_KEPT, 1), ("sgemm", 1)]
    cases += [("dreamzoo", all_threads)] if all_threads > 1 else []
    results: dict[tuple[str, int], dict] = {}
    for _ in range(args.rounds):
        for case, threads in cases:
            r = measure_in_process(args, case, threads)
            kept = results.setdefault((case, threads), {"times": [], "cpu": [], "faults": [],
                                                        "peak_mib": 0.0})
            kept["times"] += r["times"]
            kept["cpu"] += r["cpu"]
            kept["faults"].append(r["faults"])
            kept["peak_mib"] = max(kept["peak_mib"], r["peak_mib"])
    report(args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
