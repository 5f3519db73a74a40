"""Work items: what a worker holding the network runs (dreamer/jobs/engine.py hands them out).
Each is small to send; `run` returns what the task's `finish` needs, or a `Failure`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from converters.network import Network
from dreamer.loops.run import dream_with_plan
from dreamer.plan.plan import DreamPlan


class WorkItem(Protocol):
    def run(self, network: Network) -> Any:
        """The item's work, on a worker holding `network`; the result goes to `finish`."""


@dataclass
class Still:
    """One dream of one image, as `python -m dreamer` computes it: uint8 RGB."""

    rgb: np.ndarray
    plan: DreamPlan

    def run(self, network: Network) -> np.ndarray:
        return dream_with_plan(self.rgb, network, self.plan)


@dataclass
class Failure:
    """A work item that failed on its worker (not a worker that died)."""

    reason: str


def run_item(item: WorkItem, network: Network) -> Any:
    """The item's result, or a Failure: on a worker, one bad item must not stop the others."""
    try:
        return item.run(network)
    except Exception as e:  # whatever it was (too large for memory, ...), the job goes on
        return Failure(" ".join(f"{type(e).__name__}: {e}".split()))
