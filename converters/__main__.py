"""Command line: convert a model, print its layer table, save it.

    python -m converters PROTOTXT CAFFEMODEL -o DIR
    python -m converters MODEL.t7 -o DIR
    python -m converters DIR                      # print the table of a converted net

Errors are one line on stderr and exit status 2; nothing is written on error.
Subcommands (`export`, `check`) live in the modules that implement them and are
registered in SUBCOMMANDS.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from .network import Network
from .spec import ConversionError

# name -> (add_arguments(parser), run(args) -> exit code); filled by feature modules.
SUBCOMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None],
                             Callable[[argparse.Namespace], int]]] = {}


def _register_subcommands() -> None:
    for module in ("converters.onnx_cli",):
        try:
            __import__(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise


def open_model(paths: list[str], input_shape: list[int] | None = None) -> Network:
    """A Network from CLI paths: PROTOTXT [CAFFEMODEL], a .t7/.onnx file or a directory."""
    from . import load, load_caffe

    first = Path(paths[0])
    if first.suffix.lower() in (".prototxt", ".protxt", ".pbtxt") or len(paths) == 2:
        weights = paths[1] if len(paths) > 1 else None
        return load_caffe(first, weights, input_shape)
    if len(paths) != 1:
        raise ConversionError("give PROTOTXT CAFFEMODEL, or one .t7/.onnx file or directory")
    return load(first)


def convert_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m converters",
        description="Convert a Caffe or Torch7 model to dreamzoo's format and print its layers.")
    parser.add_argument("model", nargs="+",
                        help="PROTOTXT [CAFFEMODEL], a .t7/.net file, or a converted directory")
    parser.add_argument("-o", "--output", help="directory to write (network.json + safetensors)")
    parser.add_argument("--input-shape", type=int, nargs=4, metavar=("N", "C", "H", "W"),
                        help="override the input shape declared by the model")
    args = parser.parse_args(argv)
    from .store import check_network_target, save

    if args.output:
        check_network_target(args.output)
    network = open_model(args.model, args.input_shape)
    print(network.layer_table())
    if args.output:
        path = save(network, args.output)
        print(f"saved {len(network.layer_names)} layers to {path}/")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _register_subcommands()
    try:
        if argv and argv[0] in SUBCOMMANDS:
            add_arguments, run = SUBCOMMANDS[argv[0]]
            parser = argparse.ArgumentParser(prog=f"python -m converters {argv[0]}")
            add_arguments(parser)
            return run(parser.parse_args(argv[1:]))
        return convert_main(argv)
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
