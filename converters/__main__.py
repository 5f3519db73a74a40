"""Command line: convert a model, print its layer table, save it.

    python -m converters PROTOTXT CAFFEMODEL -o DIR
    python -m converters MODEL.t7 -o DIR
    python -m converters DIR                      # print the table of a converted net
    python -m converters export ... / check ...   # ONNX (converters/onnx/cli.py)

Converting takes no subcommand word: a first argument that names a subcommand selects
it, anything else is a model path. Errors are one line on stderr and exit status 2;
nothing is written on error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cli import broken_pipe, flushed, interrupted, warnings_held
from .errors import DreamzooError
from .onnx.cli import add_check_arguments, add_export_arguments, run_check, run_export
from .ownership import check_not_input
from .store import check_network_target, open_model, save

SUBCOMMANDS = ("export", "check")


def subcommand_parser() -> argparse.ArgumentParser:
    """The parser of `python -m converters SUBCOMMAND ...`; each sets `run`."""
    parser = argparse.ArgumentParser(prog="python -m converters")
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write a model as an ONNX file")
    add_export_arguments(export)
    export.set_defaults(run=run_export)
    check = commands.add_parser("check", help="compare an ONNX file in onnxruntime and PyTorch")
    add_check_arguments(check)
    check.set_defaults(run=run_check)
    return parser


def convert_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m converters",
        description="Convert a Caffe or Torch7 model to dreamzoo's format and print its layers.",
        epilog=f"subcommands: {', '.join(SUBCOMMANDS)} (python -m converters export -h)")
    parser.add_argument("model", nargs="+",
                        help="PROTOTXT [CAFFEMODEL], a .t7/.net file, or a converted directory")
    parser.add_argument("-o", "--output", help="directory to write (network.json + safetensors)")
    parser.add_argument("--input-shape", type=int, nargs=4, metavar=("N", "C", "H", "W"),
                        help="override the input shape declared by the model")
    args = parser.parse_args(argv)
    if args.output:
        check_network_target(args.output)
        check_not_input(Path(args.output), args.model)
    network = open_model(args.model, args.input_shape)
    print(network.layer_table())
    if args.output:
        path = save(network, args.output)
        print(f"saved {len(network.layer_names)} layers to {path}/")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        with warnings_held():  # an error is one line, without the warnings that came before
            if argv and argv[0] in SUBCOMMANDS:
                args = subcommand_parser().parse_args(argv)
                return flushed(args.run(args))
            return flushed(convert_main(argv))
    except DreamzooError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return interrupted()
    except BrokenPipeError:
        return broken_pipe()


if __name__ == "__main__":
    sys.exit(main())
