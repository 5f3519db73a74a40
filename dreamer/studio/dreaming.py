"""A still dream of the studio: its settings as the command line `python -m dreamer` takes
(parsed by the still dreamer's own parser, so the page's command is the same dream), run
in a worker thread that hands each octave's image over as it finishes, and stoppable."""

from __future__ import annotations

import argparse
import os
import queue
import shlex
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from converters.images import load_rgb
from converters.ownership import marker
from dreamer.cli.options import plan_from_args
from dreamer.cli.still import still_parser
from dreamer.image_io import quantise, save_rgb
from dreamer.loops.run import check_image, dream_with_plan, loop_of
from dreamer.studio.cache import ModelCache
from dreamer.studio.context import Stopped


@dataclass(frozen=True)
class Settings:
    """What the still page asks for."""

    model: str
    layer: str
    iterations: int
    rate: float
    octaves: int
    seed: int


def command_line(src: str, settings: Settings) -> list[str]:
    """The `python -m dreamer` arguments of the dream (no output: as a dream PNG stores them)."""
    return [not_an_option(src), settings.layer, str(settings.iterations),
            repr(float(settings.rate)),
            "--model", settings.model, "--octaves", str(settings.octaves),
            "--seed", str(settings.seed)]


def command_text(argv: list[str], output: str, models_folder: Path | None) -> str:
    """The shell command that makes the same PNG (`models_folder`: the one the studio was
    started with, if any)."""
    prefix = f"DREAMZOO_MODELS={shlex.quote(str(models_folder))} " if models_folder else ""
    return prefix + shlex.join(["python", "-m", "dreamer", *argv, "-o", not_an_option(output)])


def not_an_option(name: str) -> str:
    """A file name as an argument: ./NAME if it starts with "-" (else argparse reads an
    option)."""
    return f"./{name}" if name.startswith("-") else name


def refuse(message: str) -> NoReturn:
    """The parser's error as a ValueError (argparse would print usage and exit)."""
    raise ValueError(message)


def parsed(argv: list[str]) -> argparse.Namespace:
    parser = still_parser()
    parser.error = refuse
    return parser.parse_intermixed_args(argv)


def dream_file(cache: ModelCache, upload: Path, settings: Settings, folder: Path,
               stop: threading.Event, on_octave) -> Path:
    """Dream the uploaded image with `settings` into a new PNG in `folder`, with the marker
    `python -m dreamer` writes; `on_octave(k, rgb)` gets each octave's uint8 image."""
    src = upload.name
    argv = command_line(src, settings)
    loaded = cache.get(settings.model)
    plan = plan_from_args(loaded.network, parsed(argv))
    rgb = load_rgb(upload)
    check_image(loaded.network, plan, rgb)

    def on_step() -> None:
        if stop.is_set():
            raise Stopped

    with cache.dreaming.slot() as slot:  # on a Ray worker (--ray): no octaves, the result
        result = cache.ray.dream(slot, loaded, rgb, plan, stop, cache.digests()) if cache.ray \
            else dream_with_plan(rgb, loaded.network, plan, raw=True, on_step=on_step,
                                 on_octave=lambda k, octave: on_octave(k, quantise(octave)))
    out = Path(tempfile.mkdtemp(dir=folder)) / f"{Path(src).stem}_dream.png"
    return save_rgb(out, loop_of(plan).quantise(result),
                    marker(argv=argv, cwd=os.getcwd(), network=loaded.digest))


def dream_events(cache: ModelCache, upload: Path, settings: Settings, folder: Path,
                 stop: threading.Event) -> Iterator[tuple]:
    """("octave", k, rgb) per finished octave, then ("done", png); ("error", exception)
    instead when the dream fails. The dream runs in a worker thread; closing the iterator
    (the page's Stop, or the page gone) stops it at its next step."""
    events: queue.Queue = queue.Queue()

    def work() -> None:
        try:
            png = dream_file(cache, upload, settings, folder, stop,
                             lambda k, rgb: events.put(("octave", k, rgb)))
            events.put(("done", png))
        except Exception as e:  # handed to the page, which shows it
            events.put(("error", e))

    worker = threading.Thread(target=work, name="studio-dream", daemon=True)
    worker.start()
    try:
        while True:
            event = events.get()
            yield event
            if event[0] != "octave":
                return
    finally:
        stop.set()
