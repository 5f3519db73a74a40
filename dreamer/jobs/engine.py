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

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from converters.cli import shown_once
from converters.errors import DreamzooError
from converters.network import Network
from dreamer.jobs.ray_pool import RayPool
from dreamer.jobs.work import Failure, Still, WorkItem, run_item
from dreamer.loops.run import on_device
from dreamer.plan.plan import DreamPlan
from dreamer.runtime.devices import resolve_device

# What refuses one task (its input, its output), leaving the others to go on.
TASK_ERRORS = (DreamzooError, ValueError)


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


@dataclass(frozen=True)
class Workers:
    """Where a job runs: this process (`ray` None), or Ray workers at `ray` (`auto` or an
    address), `count` of them (None: as many as the cluster allows), each with `cpus` CPUs
    (= torch threads) and `gpus` GPUs."""

    ray: str | None = None
    count: int | None = None
    cpus: int = 1
    gpus: float = 0


@contextmanager
def open_pool(workers: Workers, network: Network, device: str) -> Iterator[LocalPool]:
    """The pool of `workers`, dreaming on `device` (Ray workers with GPUs: cuda), stopped
    when the block ends."""
    if workers.ray is None:
        yield LocalPool(network, device)
        return
    pool = RayPool(workers.ray, network, workers=workers.count, cpus=workers.cpus,
                   gpus=workers.gpus, device=device)
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
