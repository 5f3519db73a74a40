"""`make convert`: a zoo model, or any Caffe/Torch7 net, into models/<name>/.

    python -m models                                  # list the zoo
    python -m models nin [--from DIR]                 # fetch, verify, convert
    python -m models --prototxt P --caffemodel W --name N
    python -m models --t7 FILE --name N

A model directory holds network.json (with the registry's preprocessing),
weights.safetensors and layers.txt; it appears whole or not at all. Errors are one
line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import converters
from converters.caffe import mean_values
from converters.cli import broken_pipe, flushed, interrupted
from converters.errors import DreamzooError, UsageError
from converters.network import Network
from converters.onnx.export import to_onnx
from converters.spec import NETWORK_FORMAT, ConversionError
from converters.store import DESCRIPTION_FILE, MAX_DESCRIPTION_BYTES, check_network_target

from .converted import NAME_PATTERN, convert_command, models_root
from .download import HostUnreachable
from .fetch import Found, folder_of, from_cache, from_mirror, in_mirror
from .labels import read_labels
from .registry import REGISTRY, ZooModel, did_you_mean, lookup, registry_table


@dataclass
class Converted:
    name: str
    directory: Path
    network: Network
    table: str  # network.layer_table(), as written to layers.txt
    files: list[Found] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def cache_root() -> Path:
    """Where downloads go: DREAMZOO_CACHE, else $XDG_CACHE_HOME/dreamzoo (~/.cache)."""
    configured = os.environ.get("DREAMZOO_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dreamzoo"


def mirror_folder(given: Path | None) -> Path | None:
    """The folder to take zoo files from: `given` (--from), else $DREAMZOO_MIRROR, else None
    (download); a UsageError when it is not a folder."""
    mirror = given or (Path(os.environ["DREAMZOO_MIRROR"])
                       if os.environ.get("DREAMZOO_MIRROR") else None)
    if mirror is not None and not Path(mirror).is_dir():
        raise UsageError(f"{mirror}: the mirror folder does not exist")
    return mirror


# What `convert_zoo` tells `on_step` as it starts each (the studio's progress bar).
CONVERSION_STEPS = ("fetching and verifying the files", "converting the network",
                    "writing the model folder")


def convert_zoo(model: ZooModel, mirror: Path | None = None, root: Path | None = None,
                cache: Path | None = None, quiet: bool = False, onnx: bool = False,
                on_step: Callable[[int], None] = lambda index: None) -> Converted:
    """Fetch (from `mirror`, else the download cache), verify and convert a zoo model;
    `on_step(i)` as the i-th of `CONVERSION_STEPS` starts."""
    check_network_target((root or models_root()) / model.name)
    on_step(0)
    if mirror is not None:
        if not Path(mirror).is_dir():
            raise ConversionError(f"{mirror}: the mirror folder does not exist")
        files = from_mirror(Path(mirror), model)
    else:
        try:
            files = from_cache(cache or cache_root(), model, quiet)
        except HostUnreachable as e:
            raise HostUnreachable(f"{e}; offline? give a local mirror laid out like "
                                  f"shared/models: {convert_command(model)} FROM=<folder> "
                                  f"(or set DREAMZOO_MIRROR)") from None
    by_kind = {f.source.kind: f for f in files if f.status != "unavailable"}
    height, width = model.input_size
    on_step(1)
    network = converters.load_caffe(by_kind["prototxt"].path, by_kind["weights"].path,
                                    [1, 3, height, width])
    mean = mean_values(by_kind["mean"].path) if "mean" in by_kind else None
    spec = network.spec
    spec.preprocessing = model.preprocessing(mean)
    spec.source["net_name"], spec.name = spec.name, model.name
    spec.source["zoo"] = {
        "model": model.name, "description": model.description, "licence": model.licence,
        "homepage": model.homepage, "default_layer": model.default_layer,
        "files": [{"kind": f.source.kind, "official_name": f.source.name, "url": f.source.url,
                   "file": f.path.name, "checksum": f.status} for f in files],
    }
    if model.default_layer not in network.layer_index:
        raise ConversionError(f"{model.name}: the registry's default layer "
                              f"{model.default_layer!r} is not in {by_kind['prototxt'].path}")
    table = network.layer_table()
    labels = {}
    if "classes" in by_kind:
        names = by_kind["classes"]
        try:
            labels = {"labels.txt": read_labels(names.path).text()}
        except ConversionError as e:  # the net works without names: this only warns
            names.status, names.problem = "unavailable", str(e)
    on_step(2)
    directory = write_model(network, table, model.name, root or models_root(), onnx, labels)
    warnings = [text for found in files if (text := warning(model, found))]
    return Converted(model.name, directory, network, table, files, warnings)


def up_to_date(model: ZooModel, mirror: Path | None, root: Path | None = None,
               cache: Path | None = None) -> Path | None:
    """The folder of `model` converted before, if it is of our format, records `model` and
    is newer than every file this conversion would read (None: convert it)."""
    directory = (root or models_root()) / model.name
    description = directory / DESCRIPTION_FILE
    try:
        if description.stat().st_size > MAX_DESCRIPTION_BYTES:
            return None
        data = json.loads(description.read_bytes())
        recorded = {f["file"] for f in data["source"]["zoo"]["files"]}
        current = data["format"] == NETWORK_FORMAT and data["source"]["zoo"]["model"] == \
            model.name
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None
    built = description.stat().st_mtime
    for source in (*model.sources, *model.classes):
        path = in_mirror(mirror, model, source) if mirror is not None \
            else (cache or cache_root()) / folder_of(model, source) / source.name
        if path is not None and path.is_file():
            current = current and path.name in recorded and path.stat().st_mtime <= built
    return directory if current else None


def warning(model: ZooModel, found: Found) -> str:
    """The warning for a file that is not (or may not be) the official one, else ''."""
    if found.status == "unavailable":
        return (f"no class names for {model.name}: {found.problem}; --class takes class "
                f"indices, or give the names with --labels FILE")
    if found.status not in ("differs", "doubtful"):
        return ""
    algorithm, expected = found.source.checksum or ("", "")
    what = "weights" if found.source.kind == "weights" else "file"
    text = (f"{found.path} is not the official {found.source.name} of {model.name} "
            f"({algorithm} {found.digest}, published {expected}): converting it anyway, but "
            f"these are not the official {what}")
    if found.status == "doubtful":
        text += f" (the published {algorithm} may itself be wrong: {found.source.checksum_doubt})"
    return text


def convert_files(name: str, prototxt: Path | None = None, caffemodel: Path | None = None,
                  t7: Path | None = None, root: Path | None = None, onnx: bool = False
                  ) -> Converted:
    """Convert a net that is not in the zoo into models/<name>/ (no preprocessing recorded)."""
    if not NAME_PATTERN.fullmatch(name):
        raise ConversionError(f"NAME={name!r}: use letters, digits, '.', '_' and '-' only, "
                              "at most 100")
    if lookup(name) is not None:
        raise ConversionError(f"NAME={name!r} is a zoo model's name; choose another, or use "
                              f"MODEL={name} for the zoo model")
    check_network_target((root or models_root()) / name)
    if t7 is not None:
        try:
            network = converters.load(t7)
        except ModuleNotFoundError as e:
            raise ConversionError(f"{t7}: cannot read Torch7 files here ({e})") from None
    else:
        network = converters.load_caffe(prototxt, caffemodel)
    table = network.layer_table()
    directory = write_model(network, table, name, root or models_root(), onnx)
    return Converted(name, directory, network, table)


def write_model(network: Network, table: str, name: str, root: Path, onnx: bool = False,
                labels: dict[str, str] | None = None) -> Path:
    """Save network.json, weights.safetensors, layers.txt and `labels` (labels.txt, the
    class list; with `onnx` also <name>.onnx) as the folder root/name, all or nothing."""
    files: dict[str, str | bytes] = {"layers.txt": table + "\n", **(labels or {})}
    if onnx:
        files[f"{name}.onnx"] = to_onnx(network).SerializeToString()
    return converters.save(network, root / name, extra_files=files)


def report(result: Converted) -> None:
    """Print the files used, the layer table and where the model went."""
    notes = {"verified": "checksum verified", "differs": "NOT the official file",
             "doubtful": "does not match the (doubtful) published checksum",
             "unverifiable": "no published checksum to verify",
             "unavailable": "could not be fetched"}
    for found in result.files:
        print(f"{found.source.kind:>9}: {found.path}  ({notes[found.status]})")
    print(result.table)
    onnx_file = result.directory / f"{result.name}.onnx"
    labels = ", labels.txt" if (result.directory / "labels.txt").is_file() else ""
    print(f"{result.name}: {len(result.network.layer_names)} layers saved to "
          f"{result.directory}/ (network.json, weights.safetensors, layers.txt{labels}"
          f"{', ' + onnx_file.name if onnx_file.is_file() else ''})")
    zoo = result.network.spec.source.get("zoo")
    if result.network.spec.preprocessing is None:
        print("no preprocessing recorded (not a zoo model): the dreamer will use its default")
    if zoo:
        print(f"dream with: python -m dreamer SRC {zoo['default_layer']} ITERATIONS RATE "
              f"--model {result.name}")
    for text in result.warnings:
        print(f"warning: {text}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m models",
        description="Convert a zoo model (downloaded and verified, or from a local mirror) or "
                    "any Caffe/Torch7 net into models/<name>/. No arguments: list the zoo.")
    parser.add_argument("model", nargs="?", help="zoo model name or alias, e.g. nin")
    parser.add_argument("--from", dest="mirror", type=Path,
                        help="take files from this folder, laid out like shared/models "
                             "(default: $DREAMZOO_MIRROR, else download)")
    parser.add_argument("--prototxt", type=Path, help="a Caffe deploy prototxt (not in the zoo)")
    parser.add_argument("--caffemodel", type=Path, help="its .caffemodel")
    parser.add_argument("--t7", type=Path, help="a Torch7 .t7/.net model (not in the zoo)")
    parser.add_argument("--name", help="directory name under models/ for --prototxt or --t7")
    parser.add_argument("--quiet", action="store_true", help="no download progress bar")
    parser.add_argument("--again", action="store_true", help="convert a zoo model even when "
                        "its folder is newer than the files it was converted from")
    parser.add_argument("--format", choices=("dreamzoo", "onnx"), default="dreamzoo",
                        help="onnx: also export models/<name>/<name>.onnx (opset 13)")
    args = parser.parse_args(argv)
    try:
        result = _run(args)
        if result is not None:
            report(result)
        return flushed(0)
    except DreamzooError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return interrupted()
    except BrokenPipeError:
        return broken_pipe()


def _run(args: argparse.Namespace) -> Converted | None:
    custom = args.prototxt or args.caffemodel or args.t7
    if args.model and (custom or args.name):
        raise UsageError("give MODEL=<zoo name>, or PROTOTXT=/CAFFEMODEL=/T7= with NAME=, "
                         "not both")
    if custom:
        if not args.name:
            raise UsageError("NAME=<directory name> is needed with PROTOTXT= or T7=")
        if args.t7 and (args.prototxt or args.caffemodel):
            raise UsageError("give T7=, or PROTOTXT= with CAFFEMODEL=, not both")
        if not args.t7 and not (args.prototxt and args.caffemodel):
            raise UsageError("PROTOTXT= and CAFFEMODEL= go together")
        return convert_files(args.name, args.prototxt, args.caffemodel, args.t7,
                             onnx=args.format == "onnx")
    if not args.model:
        print("Zoo models (make convert MODEL=<name> [FROM=<mirror folder>]):")
        root = models_root()
        done = {m.name for m in REGISTRY if (root / m.name / "network.json").is_file()}
        print(registry_table(done))
        return None
    model = lookup(args.model)
    if model is None and (guess := did_you_mean(args.model)):
        raise UsageError(f"unknown MODEL {args.model!r}: {guess} (`make convert` lists "
                         "the zoo)")
    if model is None:
        names = ", ".join(m.name for m in REGISTRY)
        raise UsageError(f"unknown MODEL {args.model!r}; the zoo has: {names} "
                         f"(`make convert` lists them with details)")
    mirror = mirror_folder(args.mirror)
    done = None if args.again or args.format == "onnx" else up_to_date(model, mirror)
    if done is not None:
        print(f"{model.name}: already converted in {done}/ from the same files (--again "
              "converts it again)")
        return None
    return convert_zoo(model, mirror, quiet=args.quiet, onnx=args.format == "onnx")
