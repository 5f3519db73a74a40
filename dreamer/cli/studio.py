"""`python -m dreamer studio [--host 127.0.0.1] [--port 7860] [--models DIR]`: the still
dreamer in a local web page (dreamer/studio/; Gradio, the optional `dreamzoo[studio]`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from converters.errors import UsageError
from converters.numbers import Bounds
from dreamer.studio import app
from models.convert import mirror_folder
from models.converted import models_root

PORT = Bounds(1, 65535, integer=True)
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

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


def run(args: argparse.Namespace) -> int:
    app.import_gradio()  # before anything: a missing extra is one line
    folder = Path(args.models) if args.models else None
    if folder is not None and not folder.is_dir():
        raise UsageError(f"--models {args.models}: no such folder")
    mirror = mirror_folder(args.mirror)
    if args.host not in LOCAL_HOSTS:
        print(f"warning: the studio listens on {args.host}: anyone who can reach port "
              f"{args.port} can use this machine", file=sys.stderr)
    app.serve(folder or models_root(), folder, args.host, args.port, mirror)
    return 0
