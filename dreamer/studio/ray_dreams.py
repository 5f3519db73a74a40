"""The studio's dreams on Ray workers (`studio --ray auto|ADDRESS`): one Ray actor per
worker slot, each holding the model it dreamt with last (sent once per model through Ray's
object store, as batch --ray sends it: dreamer/jobs/ray_pool.py). A dream's final image
comes back, not its octaves. Stop kills the slot's actor; the next dream starts another."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from converters.network import Network
from converters.store import from_bytes, to_bytes
from dreamer.jobs.engine import Workers, work_plan
from dreamer.jobs.ray_pool import RayActors, import_ray
from dreamer.jobs.work import Failure, Still, run_item
from dreamer.loops.run import dream_with_plan, on_device
from dreamer.plan.plan import DreamPlan
from dreamer.runtime.allocator import keep_freed_memory
from dreamer.studio.cache import Loaded
from dreamer.studio.context import Stopped

POLL_S = 0.1  # how often a dream waiting for its worker looks at the Stop flag


@dataclass
class RawStill(Still):
    """One dream of one image before quantisation (float32 RGB), as the studio's own
    dreams end: the studio quantises it as they do."""

    def run(self, network: Network) -> np.ndarray:
        return dream_with_plan(self.rgb, network, self.plan, raw=True)


class StudioWorker:
    """A Ray actor that dreams with the model last sent to it (its digest names it)."""

    def __init__(self, threads: int, device: str) -> None:
        keep_freed_memory()
        torch.set_num_threads(threads)
        self.device, self.digest, self.network = device, None, None

    def ready(self) -> bool:
        return True

    def run(self, digest: str, model: list, item: RawStill) -> Any:
        """`item` on the network `model[0]` holds (an object ref in a list: Ray fetches
        it here only when the model is not the one held)."""
        if digest != self.digest:
            self.network = None  # the last model freed before the next is loaded
            self.network = on_device(from_bytes(*import_ray().get(model[0])), self.device)
            self.digest = digest
        return run_item(item, self.network)


class RayDreams(RayActors):
    """Dreams on `workers` (Ray workers), one per slot of the studio's queue."""

    worker_class = StudioWorker
    ready = "ready"

    def __init__(self, workers: Workers) -> None:
        # a worker without GPUs of its own sees none (Ray hides them)
        self.device = "cuda" if workers.gpus > 0 else "cpu"
        self.models: dict[str, Any] = {}  # digest -> object ref of the model's bytes
        self.lock = threading.Lock()
        super().__init__(workers.ray, workers.count, workers.cpus, workers.gpus)

    def start(self):
        return self.actor.remote(self.cpus, self.device)

    def describe(self) -> str:
        return f"{self.count} Ray workers"

    def dream(self, slot: int, loaded: Loaded, rgb: np.ndarray, plan: DreamPlan,
              stop: threading.Event, held: list[str]) -> np.ndarray:
        """`rgb` dreamt with `plan` on the worker of `slot` (float32 RGB, not yet
        quantised); `held`: the digests of the models the studio holds (the
        others are dropped from the object store); Stopped when `stop` is set first."""
        ray = self.ray
        actor = self.actors[slot]
        item = RawStill(rgb, work_plan(self, plan))
        done = actor.run.remote(loaded.digest, [self.model_of(loaded, held)], item)
        while not ray.wait([done], timeout=POLL_S)[0]:
            if stop.is_set():
                self.replace(slot, actor)
                raise Stopped
        try:
            result = ray.get(done)
        except ray.exceptions.RayActorError:
            self.replace(slot, actor)
            raise ValueError("the dream's Ray worker died; dream again") from None
        if isinstance(result, Failure):
            raise ValueError(f"the dream failed on its Ray worker: {result.reason}")
        return result

    def model_of(self, loaded: Loaded, held: list[str]):
        """The object ref of `loaded`'s bytes, put once; refs of models not held dropped."""
        with self.lock:
            for digest in [d for d in self.models if d not in held]:
                del self.models[digest]
            if loaded.digest not in self.models:
                self.models[loaded.digest] = self.ray.put(to_bytes(loaded.network))
            return self.models[loaded.digest]

    def replace(self, slot: int, actor) -> None:
        """Kill the slot's actor (its work ends at once) and start another in its place."""
        self.ray.kill(actor)
        self.actors[slot] = self.start()
