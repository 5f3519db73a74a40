"""`python -m dreamer studio [--host 127.0.0.1] [--port 7860] [--models DIR] [--memory SIZE]
[--workers N | --ray auto|ADDRESS]`: the still dreamer in a local web page (dreamer/studio/;
Gradio, the optional `dreamzoo[studio]`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from converters.errors import UsageError
from converters.numbers import Bounds
from dreamer.cli.options import add_engine_options, check_engine_options, workers_of
from dreamer.loops.memory import bytes_of, size_text
from dreamer.plan import numbers
from dreamer.studio import app
from dreamer.studio.cache import ModelCache
from dreamer.studio.ray_dreams import RayDreams
from models.convert import mirror_folder
from models.converted import models_root

PORT = Bounds(1, 65535, integer=True)
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
MEMORY = 4 << 30  # the models' budget by default

PARSER = {"prog": "python -m dreamer studio",
          "description": "Serve the studio, a web page to dream in: upload an image, choose "
          "a converted model and its layer, and watch each octave's result as it finishes; "
          "the PNG downloads with its settings, and the page shows the same dream's command."}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: "
                        "%(default)s, this machine only; any other lets whoever reaches the "
                        "port dream on this machine)")
    parser.add_argument("--port", type=PORT, default=7860,
                        help=f"port to listen on, {PORT.describe()} (default: %(default)s)")
    parser.add_argument("--models", metavar="DIR", help="the folder of converted models to "
                        "offer (default: where `make convert` puts them)")
    parser.add_argument("--from", dest="mirror", metavar="MIRROR", type=Path,
                        help="the Zoo tab converts models from this folder, laid out like "
                        "shared/models (default: $DREAMZOO_MIRROR, else download)")
    parser.add_argument("--work", metavar="DIR", type=Path,
                        help="the studio's work folder (dreams, zoom and video jobs, layer "
                        "galleries), kept when it stops, so that a video job goes on when the "
                        "studio starts again there; a new or empty folder, or one a studio "
                        "worked in (default: a temporary folder, removed when it stops)")
    parser.add_argument("--memory", metavar="SIZE", type=memory_size, default=MEMORY,
                        help="memory budget of the models kept open between dreams, in bytes "
                        "or with K, M, G (the least recently used is closed beyond it; "
                        f"default: {size_text(MEMORY)})")
    add_engine_options(parser, workers_help=f"dreams at once, {numbers.WORKERS.describe()} "
                       "(default: 1, one at a time, the others wait in the queue; with --ray, "
                       "as many Ray workers as the cluster allows); in this process each runs "
                       "on torch's threads divided by WORKERS")


def memory_size(text: str) -> int:
    """--memory: a size in bytes, at least 1."""
    size = bytes_of(text)
    if size is None or size < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 512M, 2G)")
    return size


def run(args: argparse.Namespace) -> int:
    check_engine_options(args, local_workers=True)
    app.import_gradio()  # before anything: a missing extra is one line
    folder = Path(args.models) if args.models else None
    if folder is not None and not folder.is_dir():
        raise UsageError(f"--models {args.models}: no such folder")
    mirror = mirror_folder(args.mirror)
    work = app.work_folder(args.work) if args.work else None
    if args.host not in LOCAL_HOSTS:
        print(f"warning: the studio listens on {args.host}: anyone who can reach port "
              f"{args.port} can use this machine", file=sys.stderr)
    ray = RayDreams(workers_of(args)) if args.ray is not None else None
    try:
        cache = models_cache(args, folder or models_root(), ray)
        app.serve(cache.root, folder, args.host, args.port, cache, mirror, work)
    finally:
        if ray is not None:
            ray.close()
    return 0


def models_cache(args: argparse.Namespace, root: Path, ray: RayDreams | None) -> ModelCache:
    """The models within --memory, and as many workers as --workers asks (in this process)
    or Ray gives (said on the terminal)."""
    if ray is None:
        workers = args.workers or 1
        threads = share_threads(workers)
        where = f"{threads} torch thread{'s' * (threads > 1)} each"
    else:
        workers = ray.count
        where = f"on {ray.describe()} (no octave previews: the final image only)"
    cache = ModelCache(root, max_bytes=args.memory, workers=workers)
    cache.ray = ray
    print(f"studio: {workers} dream{'s' * (workers > 1)} at once, {where}", flush=True)
    return cache


def share_threads(workers: int) -> int:
    """Torch's threads divided between `workers` dreams at once (each at least 1): one
    dream's threads are torch's, process-wide; the number of them each dream has."""
    threads = max(1, torch.get_num_threads() // workers)
    if workers > 1:  # one worker: torch as the command line runs it, untouched
        torch.set_num_threads(threads)
    return threads
