"""A still dream of the studio: its settings as the command line `python -m dreamer` takes
(parsed by the still dreamer's own parser, so the page's command is the same dream), run
in a worker thread that hands each octave's image over as it finishes, and stoppable."""

from __future__ import annotations

import argparse
import os
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
from dreamer.image_io import check_max_side, quantise, save_rgb, scaled_down
from dreamer.loops.run import check_image, dream_with_plan, loop_of
from dreamer.studio.cache import ModelCache
from dreamer.studio.context import Stopped, threaded


@dataclass(frozen=True)
class Settings:
    """What the still page asks for: every option of `python -m dreamer` it offers; None
    (and the defaults below) leave an option to the dreamer's default. `class_`: the
    class(es) dreamed instead of the layer (`--class`); `guide`: the guide image's file
    name, as the command names it."""

    model: str
    layer: str | None
    iterations: int | None = None
    rate: float | None = None
    octaves: int | None = None
    seed: int = 0
    preset: str | None = None
    class_: str | None = None
    objective: str = "l2"
    guide: str | None = None
    octave_scale: float | None = None
    jitter: int | None = None
    channel: int | None = None
    max_side: int | None = None


# The options after the positionals, in the command's order: (flag, Settings field).
OPTIONS = (("--model", "model"), ("--preset", "preset"), ("--class", "class_"),
           ("--octaves", "octaves"), ("--octave-scale", "octave_scale"),
           ("--jitter", "jitter"), ("--channel", "channel"), ("--objective", "objective"),
           ("--guide", "guide"), ("--seed", "seed"), ("--max-side", "max_side"))
DEFAULT = Settings("", None)


def command_line(src: str, settings: Settings) -> list[str]:
    """The `python -m dreamer` arguments of the dream (no output: as a dream PNG stores
    them); options at their default are left out."""
    if settings.rate is not None and settings.iterations is None:
        raise ValueError("give the iterations with the rate (the command line's RATE "
                         "follows ITERATIONS)")
    if settings.layer is None and settings.class_ is None:
        raise ValueError("choose a layer or a class")
    numbers = [str(settings.iterations)] if settings.iterations is not None else []
    if settings.rate is not None:
        numbers.append(repr(float(settings.rate)))
    argv = [not_an_option(src)]
    if settings.class_ is None:
        argv += [settings.layer, *numbers]
    else:  # with --class, the positionals are ITERATIONS RATE
        argv += [*(["--layer", settings.layer] if settings.layer else []), *numbers]
    for flag, name in OPTIONS:
        value = getattr(settings, name)
        if value != getattr(DEFAULT, name) or name == "model":
            argv += [flag, option_text(name, value)]
    return argv


def option_text(name: str, value) -> str:
    """An option's value as the command line gives it."""
    if name == "octave_scale":
        return repr(float(value))
    if name == "guide":
        return not_an_option(value)
    return str(value)


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
               stop: threading.Event, on_octave, guide: Path | None = None,
               on_progress=None) -> Path:
    """Dream the uploaded image with `settings` into a new PNG in `folder`, with the marker
    `python -m dreamer` writes; `on_octave(k, rgb)` gets each octave's uint8 image,
    `on_progress(done, total)` the steps done after each one; `guide`: the uploaded guide
    image that `settings.guide` names."""
    src = upload.name
    argv = command_line(src, settings)
    loaded = cache.get(settings.model)
    args = parsed(argv)
    args.guide = None if guide is None else str(guide)  # the upload, not its name
    plan = plan_from_args(loaded.network, args)
    check_max_side(args.max_side)
    rgb = scaled_down(load_rgb(upload), args.max_side)
    check_image(loaded.network, plan, rgb)
    total, done = loop_of(plan).steps(plan), 0

    def on_step() -> None:
        nonlocal done
        if stop.is_set():
            raise Stopped
        done += 1
        if on_progress is not None:
            on_progress(done, total)

    with cache.dreaming.slot() as slot:  # on a Ray worker (--ray): no octaves, the result
        result = cache.ray.dream(slot, loaded, rgb, plan, stop, cache.digests()) if cache.ray \
            else dream_with_plan(rgb, loaded.network, plan, raw=True, on_step=on_step,
                                 on_octave=lambda k, octave: on_octave(k, quantise(octave)))
    out = Path(tempfile.mkdtemp(dir=folder)) / f"{Path(src).stem}_dream.png"
    return save_rgb(out, loop_of(plan).quantise(result),
                    marker(argv=argv, cwd=os.getcwd(), network=loaded.digest))


def progress_html(done: int, total: int, elapsed: float) -> str:
    """A progress bar of the dream's steps, with the time left at the pace so far."""
    left = elapsed / done * (total - done) if done else None
    eta = "ETA –" if left is None else f"ETA {left:.0f} s" if left >= 1 else "ETA <1 s"
    return (f'<progress value="{done}" max="{total}"></progress> '
            f"<span>iteration {done} of {total} · {elapsed:.0f} s · {eta}</span>")


def dream_events(cache: ModelCache, upload: Path, settings: Settings, folder: Path,
                 stop: threading.Event, guide: Path | None = None) -> Iterator[tuple]:
    """("step", done, total) after each step and ("octave", k, rgb) per finished octave,
    then ("done", png); ("error", exception) instead when the dream fails. The dream runs
    in a worker thread; closing the iterator (the page's Stop, or the page gone) stops it
    at its next step."""
    return threaded(
        lambda put: dream_file(cache, upload, settings, folder, stop,
                               lambda k, rgb: put(("octave", k, rgb)), guide,
                               lambda done, total: put(("step", done, total))),
        stop, "studio-dream")
