"""The studio's layer gallery: one small dream of the uploaded image per layer, or per
channel of one layer, made as `python -m dreamer gallery` and `sweep` make their cells (the
engine's tasks, the sheets' layers, cell size and grid), handed over cell by cell as they
finish, stoppable, and kept in the studio's work folder per (model, image, settings) so
that asking again shows it without dreaming."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from converters.digest import file_digest
from converters.images import load_rgb
from converters.network import Network
from dreamer.cli.options import check_channel
from dreamer.cli.sweep import parse_channels
from dreamer.image_io import save_rgb
from dreamer.jobs.engine import LocalPool, Task, run_job
from dreamer.jobs.sheets import default_layers, fit, grid
from dreamer.jobs.work import Still
from dreamer.loops.run import check_image, dream_with_plan
from dreamer.plan.plan import make_plan
from dreamer.plan.targets import resolve_layer
from dreamer.studio.cache import ModelCache
from dreamer.studio.context import Stopped, stopper, threaded

MAX_CELLS = 64  # a page's gallery, not a contact sheet's 4096
COLUMNS = 4  # of the sheet to download
CELLS_FILE = "cells.json"
SHEET_FILE = "sheet.png"


@dataclass(frozen=True)
class GallerySettings:
    """What the gallery asks for: `layer` None, one cell per layer (`count` of them spread
    through the net); else one cell per channel of `layer` (`channels`: 0-3,7)."""

    layer: str | None
    channels: str
    count: int
    iterations: int
    rate: float
    octaves: int
    size: int
    seed: int


@dataclass(frozen=True)
class Cell:
    """One cell: its label, and the layer and channel it dreams."""

    label: str
    layer: str
    channel: int | None


@dataclass
class StoppableStill(Still):
    """A `Still` that ends at its next step once `stop` is set (in this process only)."""

    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, network: Network) -> np.ndarray:
        return dream_with_plan(self.rgb, network, self.plan, on_step=stopper(self.stop))


def cells_of(network: Network, settings: GallerySettings) -> list[Cell]:
    """The gallery's cells (a ValueError beyond `MAX_CELLS`)."""
    if settings.layer is None:
        cells = [Cell(name, name, None)
                 for name in default_layers(network, min(settings.count, MAX_CELLS))]
    else:
        layer = resolve_layer(network, settings.layer)
        channels = parse_channels(settings.channels)
        if len(channels) > MAX_CELLS:
            raise ValueError(f"channels: {len(channels)} cells, at most {MAX_CELLS} in the "
                             "studio (`python -m dreamer sweep` makes larger sheets)")
        cells = [Cell(f"{layer} #{channel}", layer, channel) for channel in channels]
    if not cells:
        raise ValueError(f"{network.name!r} has no layer to show")
    return cells


def gallery_key(network_digest: str, image: Path, settings: GallerySettings) -> str:
    """The cache entry's name: a digest of the network, the image's bytes and the settings."""
    record = {"network": network_digest, "image": file_digest(image, "sha256"),
              "settings": asdict(settings)}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:32]


def cached(entry: Path) -> list[tuple[str, Path]] | None:
    """(label, PNG) per cell of a finished gallery kept at `entry`, or None."""
    try:
        labels = json.loads((entry / CELLS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return [(label, entry / f"{i:03d}.png") for i, label in enumerate(labels)]


def gallery_events(cache: ModelCache, model: str, upload: Path, settings: GallerySettings,
                   folder: Path, stop: threading.Event) -> Iterator[tuple]:
    """("cached", cells, sheet) for a gallery made before; else ("cell", label, png, count)
    per cell as it finishes (`count`: the gallery's) and then ("done", sheet); ("error",
    exception) instead when it fails or is stopped. Cells are dreamt in a worker thread, one
    dream at a time (the cache's lock); closing the iterator stops them at their next step."""
    loaded = cache.get(model)
    entry = folder / "gallery" / gallery_key(loaded.digest, upload, settings)
    cells = cached(entry)
    if cells is not None:
        yield "cached", cells, entry / SHEET_FILE
        return
    yield from threaded(
        lambda put: dream_gallery(loaded.network, upload, settings, entry, stop,
                                  lambda *cell: put(("cell", *cell)), cache.dreaming),
        stop, "studio-gallery")


def dream_gallery(network: Network, upload: Path, settings: GallerySettings, entry: Path,
                  stop: threading.Event, on_cell, lock: threading.Lock) -> Path:
    """Dream every cell into a new folder beside `entry`, calling `on_cell(label, png,
    count)` as each finishes, then give it `entry`'s name (a stopped or failed gallery is removed);
    returns the labelled sheet's PNG."""
    cells = cells_of(network, settings)
    source = fit(load_rgb(upload), settings.size)
    entry.parent.mkdir(parents=True, exist_ok=True)
    part = Path(tempfile.mkdtemp(prefix=".part-", dir=entry.parent))
    try:
        with lock:
            pool = LocalPool(network, "auto")
            plans = [make_plan(network, cell.layer, settings.iterations, settings.rate,
                               octaves=settings.octaves, seed=settings.seed,
                               channel=cell.channel, device=pool.device) for cell in cells]
            for cell, plan in zip(cells, plans):  # every cell checked before any compute
                if cell.channel is not None:
                    check_channel(network, plan.targets, cell.channel)
                check_image(network, plan, source)
            images = run_cells(cells, plans, source, pool, part, stop, on_cell)
        (part / CELLS_FILE).write_text(json.dumps([cell.label for cell in cells]))
        save_rgb(part / SHEET_FILE, grid(images, COLUMNS))
        if entry.exists():  # the same gallery, made meanwhile on another page
            shutil.rmtree(part)
        else:
            os.replace(part, entry)
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    return entry / SHEET_FILE


def run_cells(cells: list[Cell], plans: list, source: np.ndarray, pool: LocalPool,
              part: Path, stop: threading.Event, on_cell) -> list[tuple[str, np.ndarray]]:
    """Each cell's dream on `pool` (the engine's job), saved in `part` as it finishes."""
    images: list = [None] * len(cells)

    def task(i: int) -> Task:
        def prepare() -> StoppableStill:
            if stop.is_set():
                raise Stopped
            return StoppableStill(source, plans[i], stop)

        def finish(rgb: np.ndarray) -> None:
            images[i] = (cells[i].label, rgb)
            on_cell(cells[i].label, save_rgb(part / f"{i:03d}.png", rgb), len(cells))

        return Task(cells[i].label, prepare, finish)

    report = run_job([task(i) for i in range(len(cells))], pool, quiet=True, unit="cell")
    if stop.is_set():
        raise Stopped
    if report.failed:
        label, reason = report.failed[0]
        raise ValueError(f"the cell {label!r} failed: {reason}")
    return images
