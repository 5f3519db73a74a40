"""The command line: `python -m dreamer SRC LAYER ITERATIONS RATE [options]` (the still
dreamer, dreamer/cli/still.py) and its subcommands, one module each:
`python -m dreamer zoom|video ...` (animations), `batch INPUT LAYER ITERATIONS RATE -o
OUTDIR` (many images), `gallery SRC [ITERATIONS RATE]` (one labelled cell per layer),
`sweep SRC [LAYERS [ITERATIONS RATE]] --channels 0-3` (layers × channels),
`classify IMG` (the net's top classes), `visualize TARGET` (feature visualisation) and
`studio` (the still dreamer in a web page).
Options that more than one takes: options.py.
Errors are one line, exit status 2, and no output file.

Each command module has PARSER (its parser's keywords), add_arguments(parser) and run(args)
(the still dreamer's also takes the command line, which its PNG keeps).
"""

from __future__ import annotations

import argparse
import sys
import warnings

from tqdm import tqdm

from converters.cli import broken_pipe, flushed, interrupted, shown_once
from converters.errors import DreamzooError
from dreamer.cli import batch, classify, gallery, still, studio, sweep, video, visualize, zoom
from dreamer.cli.options import DeprecatedForm
from dreamer.runtime.allocator import keep_freed_memory
from models.open import UnofficialWeights

# `python -m dreamer NAME ...`: NAME's module; without a NAME, the still dreamer.
COMMANDS = {"zoom": zoom, "video": video, "batch": batch, "gallery": gallery, "sweep": sweep,
            "classify": classify, "studio": studio, "visualize": visualize}
STILL = "still"  # the still dreamer's name among the parsers (never typed)
# Those whose rerun continues where an interrupted run stopped (frames folder, batch record).
RESUMABLE = ("zoom", "video", "batch")


def parser_of(name: str) -> argparse.ArgumentParser:
    """The parser of one command, as a subparser of `python -m dreamer` (the others are
    not built: a command reads only its own options)."""
    root = argparse.ArgumentParser(prog=still.PARSER["prog"])
    module = COMMANDS.get(name, still)
    parser = root.add_subparsers(dest="command").add_parser(name, **module.PARSER)
    module.add_arguments(parser)
    return parser


def run_command(argv: list[str]) -> int:
    """The command `argv` names (the still dreamer when its first word is no command's)."""
    name = argv[0] if argv and argv[0] in COMMANDS else STILL
    parser = parser_of(name)
    if name == STILL:
        return still.run(parser.parse_intermixed_args(argv), argv)
    return COMMANDS[name].run(parser.parse_intermixed_args(argv[1:]))


def main(argv: list[str] | None = None) -> int:
    keep_freed_memory()
    argv = list(sys.argv[1:] if argv is None else argv)
    with warnings.catch_warnings():  # restores the caller's warning display afterwards
        warnings.simplefilter("always")
        reminders: list[str] = []  # shown once the command is done: an error stays one line

        def show(message, category, *_, **__) -> None:
            if issubclass(category, (UnofficialWeights, DeprecatedForm)):
                reminders.append(f"warning: {message}")
            else:  # tqdm.write: a warning during a dream gets its own line, above the bar
                tqdm.write(f"warning: {message}", file=sys.stderr)

        warnings.showwarning = shown_once(show)  # not once per frame of a zoom or video
        try:
            status = run_command(argv)
            for reminder in reminders:
                print(reminder, file=sys.stderr)
            return flushed(status)
        except (DreamzooError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return interrupted(resumable=bool(argv) and argv[0] in RESUMABLE)
        except BrokenPipeError:
            return broken_pipe()
