"""Work items on Ray actors (`--ray auto|ADDRESS`): each actor loads the network once, from
the converted files' bytes in Ray's object store (no worker converts or reads model files),
and runs torch on as many threads as it was given CPUs. Items are handed out as workers
free up; an actor that dies (its process killed, its machine gone) is replaced and its
items are run again, each at most MAX_ATTEMPTS times. Ray is the optional `ray` extra.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import deque
from collections.abc import Iterator
from typing import Any

import torch

from converters.errors import UsageError
from converters.network import Network
from converters.store import from_bytes, to_bytes
from dreamer.jobs.work import Failure, WorkItem, run_item
from dreamer.loops.run import on_device
from dreamer.runtime.allocator import keep_freed_memory

MAX_ATTEMPTS = 3  # an item whose worker died this often (each time) is reported failed
IN_FLIGHT = 2  # items queued per worker: the next one is there when the last one ends
START_TIMEOUT_S = 600
CONNECT_TIMEOUT_S = 10.0  # for a given address to answer as a Ray head does (gRPC)
# An HTTP/2 client's connection preface and an empty SETTINGS frame (RFC 9113 3.4): a gRPC
# server, as Ray's GCS is, answers with a SETTINGS frame (type 4) of its own.
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
SETTINGS_FRAME = 4


def import_ray():
    try:
        import ray  # optional: `pip install 'dreamzoo[ray]'`
    except ImportError:
        raise UsageError("--ray needs Ray, which is not installed: "
                              "pip install 'dreamzoo[ray]' (or `make setup`)") from None
    return ray


class DreamWorker:
    """A Ray actor holding the network; it runs work items one at a time."""

    def __init__(self, model: tuple[bytes, bytes], threads: int, device: str) -> None:
        keep_freed_memory()
        torch.set_num_threads(threads)
        self.network = on_device(from_bytes(*model), device)

    def pid(self) -> int:
        return os.getpid()

    def run(self, item: WorkItem) -> Any:
        return run_item(item, self.network)


class RayActors:
    """`count` actors of `worker_class` on Ray, started and ended together: Ray connected to
    `address` unless this process is already; `prepare` (what the actors need in the object
    store) and the actors started, each waited for until its method `ready` answers, else a
    one-line UsageError and nothing left behind; `close` kills them and shuts down Ray only
    if it started it. A subclass sets what its `start`
    needs before calling this `__init__`."""

    worker_class: type
    ready: str

    def __init__(self, address: str, workers: int | None, cpus: int, gpus: float) -> None:
        ray = self.ray = import_ray()
        self.started_ray = not ray.is_initialized()
        if self.started_ray:
            connect(ray, address)
        self.actors: list[Any] = []
        self.cpus, self.gpus = cpus, gpus
        try:
            self.count = worker_count(ray.cluster_resources(), workers, cpus, gpus)
            self.prepare()
            self.actor = ray.remote(self.worker_class).options(num_cpus=cpus, num_gpus=gpus,
                                                               max_restarts=0)
            self.actors = [self.start() for _ in range(self.count)]
            ray.get([getattr(a, self.ready).remote() for a in self.actors],
                    timeout=START_TIMEOUT_S)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as e:
            self.close()
            raise UsageError(f"the Ray workers did not start: {first_line(e)}") from None
        except BaseException:
            self.close()
            raise

    def prepare(self) -> None:
        """Put what the actors need in the object store (nothing by default)."""

    def start(self):
        """One more actor (an ActorHandle)."""
        raise NotImplementedError

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        if self.started_ray:
            self.ray.shutdown()


class RayPool(RayActors):
    worker_class = DreamWorker
    ready = "pid"  # answered once the actor has loaded the network

    def __init__(self, address: str, network: Network, *, workers: int | None, cpus: int,
                 gpus: float, device: str) -> None:
        self.network, self.retried = network, 0
        # a worker without GPUs of its own sees none (Ray hides them): `auto` is its cpu
        self.device = "cuda" if gpus > 0 else "cpu" if device == "auto" else device
        super().__init__(address, workers, cpus, gpus)

    def prepare(self) -> None:
        self.model = self.ray.put(to_bytes(self.network))

    def start(self):
        return self.actor.remote(self.model, self.cpus, self.device)

    def describe(self) -> str:
        gpus = f", {self.gpus:g} GPU" if self.gpus else ""
        return f"on {self.count} Ray workers ({self.cpus} CPU{gpus} each)"

    def map(self, items: Iterator[tuple[int, WorkItem]]) -> Iterator[tuple[int, Any]]:
        """Each item's (key, result) as results arrive; a dead worker's items run again."""
        ray = self.ray
        pending: dict[Any, tuple[int, WorkItem, int, Any, int]] = {}  # ref -> key, item, ...
        load = [0] * self.count
        again: deque[tuple[int, WorkItem, int]] = deque()  # (key, item, attempts so far)
        items = iter(items)
        while True:
            while min(load) < IN_FLIGHT:
                job = again.popleft() if again else next_job(items)
                if job is None:
                    break
                w = load.index(min(load))
                handle = self.actors[w]
                pending[handle.run.remote(job[1])] = (*job, handle, w)
                load[w] += 1
            if not pending:
                return
            [ref], _ = ray.wait(list(pending), num_returns=1)
            key, item, attempts, handle, w = pending.pop(ref)
            load[w] -= 1
            try:
                result = ray.get(ref)
            except ray.exceptions.RayActorError:
                self.retried += 1
                if self.actors[w] is handle:  # the first of its items to report the death
                    self.actors[w] = self.start()
                if attempts + 1 < MAX_ATTEMPTS:
                    again.append((key, item, attempts + 1))
                else:
                    yield key, Failure(f"its Ray worker died {MAX_ATTEMPTS} times")
                continue
            yield key, result


def connect(ray, address: str) -> None:
    """Join the cluster at `address` (`auto`: the one `ray start` made on this machine, else
    a new local one); one line when the address does not answer or Ray does not start."""
    if address != "auto":
        check_answers(address, CONNECT_TIMEOUT_S)
    try:
        ray.init(address=None if address == "auto" else address, include_dashboard=False,
                 logging_level=logging.WARNING)
    except (OSError, RuntimeError, ValueError) as e:  # ConnectionError, TimeoutError: OSError
        raise UsageError(f"--ray {address}: Ray did not start: {first_line(e)}") from None


def check_answers(address: str, timeout: float) -> None:
    """Refuse, within about `timeout` seconds, an address where no gRPC server (a Ray head's
    GCS, or a Ray Client server) answers: ray.init would retry it for many minutes."""
    host, port = host_port(address)
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.sendall(HTTP2_PREFACE)
            header = received(connection, 9)
    except TimeoutError:
        raise UsageError(f"--ray {address}: no answer within {timeout:g} s") from None
    except OSError as e:
        raise UsageError(f"--ray {address}: cannot connect ({e.strerror or e})") from None
    if len(header) < 9 or header[3] != SETTINGS_FRAME:
        raise UsageError(f"--ray {address}: what answers there is not a Ray cluster")


def received(connection: socket.socket, size: int) -> bytes:
    """Up to `size` bytes: fewer only if the other side closed the connection."""
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def host_port(address: str) -> tuple[str, int]:
    """HOST and PORT of a Ray address `[ray://]HOST:PORT` (IPv6 hosts in brackets)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise ValueError(f"expected auto or HOST:PORT (a Ray cluster's address, PORT 1-65535), "
                         f"not {address!r}")
    return host, int(port)


def first_line(error: BaseException) -> str:
    """The first line of an error's message, or its type's name when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def next_job(items: Iterator[tuple[int, WorkItem]]) -> tuple[int, WorkItem, int] | None:
    """The next new item as (key, item, attempts so far), None when there is none."""
    following = next(items, None)
    return None if following is None else (*following, 0)


def worker_count(resources: dict[str, float], workers: int | None, cpus: int,
                 gpus: float) -> int:
    """`workers`, or as many as the cluster holds; refused when it cannot hold them (the
    counts themselves are checked where they are parsed: dreamer/jobs/engine.py)."""
    have_cpus, have_gpus = resources.get("CPU", 0), resources.get("GPU", 0)
    room = int(have_cpus // cpus)
    if gpus > 0:
        room = min(room, int(have_gpus // gpus))
    count = room if workers is None else workers
    if not 1 <= count <= room:
        raise ValueError(f"the Ray cluster has {have_cpus:g} CPUs and {have_gpus:g} GPUs: room "
                         f"for {room} workers of {cpus} CPUs and {gpus:g} GPUs, not {count}")
    return count
