"""The engine of the commands that dream many times with one network (batch, gallery,
sweep): a job is an ordered list of tasks, and each task's work item runs on a worker that
holds the network, in this process or on Ray actors (`dreamer/jobs/ray_pool.py`). Results come
back to this process, which alone writes outputs, so a worker that dies has written
nothing and its items are simply run again.

A task, in this process:
  prepare() -> work item   just before the item is sent (reads its input; an error there
                           fails this task only)
  finish(result)           when the item's result arrives (writes the output)
A work item (dreamer/jobs/work.py) has `run(network) -> result`, called on the worker. `Still`
is one dream of one image; another kind of work (a chunk of a video's frames) is another
such class.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from converters.network import Network
from converters.spec import ConversionError
from dreamer.jobs.work import Failure, Still, WorkItem, run_item
from dreamer.loops.run import on_device
from dreamer.plan import numbers as numbers
from dreamer.plan.plan import DreamPlan
from dreamer.runtime.devices import resolve_device

# What refuses one task (its input, its output), leaving the others to go on.
TASK_ERRORS = (ConversionError, ValueError)


@dataclass
class Task:
    label: str  # shown in the summary (an input path, a cell's name)
    prepare: Callable[[], WorkItem]
    finish: Callable[[Any], None]


@dataclass
class Report:
    done: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (label, reason)
    retried: int = 0  # items run again because their worker died


class LocalPool:
    """The work items run one after the other in this process."""

    retried = 0

    def __init__(self, network: Network, device: str) -> None:
        self.device = resolve_device(device)
        self.network = on_device(network, self.device)  # moved once, not once per item

    def describe(self) -> str:
        return "in this process"

    def map(self, items: Iterator[tuple[int, WorkItem]]) -> Iterator[tuple[int, Any]]:
        for key, item in items:
            yield key, run_item(item, self.network)


def run_job(tasks: list[Task], pool, *, quiet: bool, unit: str) -> Report:
    """Every task's item on `pool`, with a progress bar (ETA) over the tasks."""
    from tqdm import tqdm

    report = Report()
    with tqdm(total=len(tasks), disable=quiet, unit=unit, leave=False) as bar, \
            warnings.catch_warnings():
        warnings.showwarning = shown_once(warnings.showwarning)
        def prepared() -> Iterator[tuple[int, WorkItem]]:
            for i, task in enumerate(tasks):
                try:
                    item = task.prepare()
                except TASK_ERRORS as e:
                    report.failed.append((task.label, str(e)))
                    bar.update()
                    continue
                yield i, item

        for i, result in pool.map(prepared()):
            task = tasks[i]
            if isinstance(result, Failure):
                report.failed.append((task.label, result.reason))
            else:
                try:
                    task.finish(result)
                    report.done.append(task.label)
                except TASK_ERRORS as e:
                    report.failed.append((task.label, str(e)))
            bar.update()
    report.retried = pool.retried
    return report


def shown_once(show: Callable) -> Callable:
    """`warnings.showwarning` showing each message once: the same warning about the
    settings comes with every item."""
    shown: set[str] = set()

    def show_once(message, *args, **kwargs) -> None:
        if str(message) not in shown:
            shown.add(str(message))
            show(message, *args, **kwargs)

    return show_once


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """Where the job runs: this process (default) or Ray workers. The values are checked
    here, where they are parsed, so that a bad one is refused before Ray starts."""
    parser.add_argument("--ray", metavar="auto|ADDRESS", type=ray_address,
                        help="run on Ray workers: `auto` (the cluster `ray start` made on this "
                        "machine, else a new local one) or a cluster's address")
    parser.add_argument("--workers", type=numbers.WORKERS, help="Ray workers, "
                        f"{numbers.WORKERS.describe()} (default: as many as the cluster's "
                        "CPUs, and GPUs, allow)")
    parser.add_argument("--cpus-per-worker", type=numbers.CPUS, default=1,
                        help="CPUs (= torch threads) of each Ray worker, "
                        f"{numbers.CPUS.describe()} (default: %(default)s)")
    parser.add_argument("--gpus-per-worker", type=numbers.GPUS, default=0,
                        help="GPUs of each Ray worker (fractions share one), "
                        f"{numbers.GPUS.describe()} (default: %(default)s); workers then "
                        "dream on cuda")


def ray_address(text: str) -> str:
    """--ray: `auto` or HOST:PORT (optionally ray://HOST:PORT)."""
    from dreamer.jobs.ray_pool import host_port

    if text != "auto":
        try:
            host_port(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return text


def check_engine_options(args: argparse.Namespace) -> None:
    """Refuse, before any work, Ray options without --ray, and --ray without Ray."""
    if args.ray is not None:
        from dreamer.jobs.ray_pool import import_ray

        import_ray()
        return
    given = [flag for flag, value in (("--workers", args.workers is not None),
                                      ("--cpus-per-worker", args.cpus_per_worker != 1),
                                      ("--gpus-per-worker", args.gpus_per_worker != 0)) if value]
    if given:
        raise ValueError(f"{given[0]} goes with --ray")


@contextmanager
def open_pool(args: argparse.Namespace, network: Network, device: str) -> Iterator[LocalPool]:
    """The workers the command line asks for, dreaming on `device` (Ray workers with GPUs:
    cuda), stopped when the block ends."""
    check_engine_options(args)
    if args.ray is None:
        yield LocalPool(network, device)
        return
    from dreamer.jobs.ray_pool import RayPool

    pool = RayPool(args.ray, network, workers=args.workers, cpus=args.cpus_per_worker,
                   gpus=args.gpus_per_worker, device=device)
    try:
        yield pool
    finally:
        pool.close()


def work_plan(pool, plan: DreamPlan) -> DreamPlan:
    """The plan as the pool's workers run it: on their device (a guide image is in the
    plan already, read here: workers on other machines may not see the file)."""
    return plan.on(pool.device)


def dream_cells(cells: list[tuple[str, Still]], pool, *, quiet: bool
                ) -> list[tuple[str, np.ndarray]]:
    """(label, dream) of every cell of a contact sheet, in order; a cell that fails fails
    the sheet (gallery, sweep)."""
    results: list = [None] * len(cells)

    def task(i: int, label: str, item: Still) -> Task:
        def finish(rgb: np.ndarray) -> None:
            results[i] = (label, rgb)

        return Task(label, lambda: item, finish)

    report = run_job([task(i, *cell) for i, cell in enumerate(cells)], pool, quiet=quiet,
                     unit="cell")
    if report.failed:
        label, reason = report.failed[0]
        raise ValueError(f"the cell {label!r} failed: {reason}")
    return results
