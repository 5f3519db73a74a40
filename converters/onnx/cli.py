"""The `export` and `check` subcommands of `python -m converters`.

    python -m converters export DIR_or_MODEL... -o net.onnx [--until LAYER]
    python -m converters check net.onnx [--image IMG] [--layers] [--input-shape N C H W]

`check` runs the file in onnxruntime and, through the ONNX reader (onnx2torch), in
PyTorch on the same input, and prints the largest difference of each output; exit
status 1 when one exceeds --tolerance (relative to max(1, max |output|)).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import torch
from PIL import Image

from ..atomic import write_bytes
from ..errors import UsageError
from ..images import load_rgb
from ..network import Network
from ..numbers import Bounds
from ..ownership import OVERWRITE_HELP, check_output
from ..preprocessing import Preprocessing
from ..shapes import MAX_INPUT_ELEMENTS, computed_shapes
from ..spec import ConversionError, NetSpec, first_line
from ..store import open_model
from .export import OPSET, output_names, to_onnx
from .reader import load_onnx, read_model, read_onnx

ORT_FATAL = 4  # onnxruntime's log severities: 0 verbose ... 3 error, 4 fatal
MAX_BATCH = 64  # a comparison needs a few inputs; the batch multiplies every layer's memory
MAX_SEED = 2**31 - 1  # the dreamer's --seed range
SEED = Bounds(0, MAX_SEED, integer=True)
DIMENSION = Bounds(1, integer=True)  # of --input-shape; `check_shape` bounds the whole
TOLERANCE = Bounds(0)  # relative to max(1, max |output|); inf would pass all


def dimension(text: str) -> int:
    """An argparse `type` for an --input-shape entry: `DIMENSION`, in this command's
    wording ("an integer of at least 1")."""
    try:
        return DIMENSION.parse(text)
    except UsageError:
        raise argparse.ArgumentTypeError(f"must be an integer of at least 1 (got {text!r})") \
            from None


def non_empty(text: str) -> str:
    """An argparse `type` for a path: an empty one would silently mean the current
    folder."""
    if not text:
        raise argparse.ArgumentTypeError("is empty; give the path of the file")
    return text


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Export a converted net (or any model file) to ONNX (opset 13)."
    parser.add_argument("model", nargs="+", type=non_empty,
                        help="a converted directory, PROTOTXT CAFFEMODEL, or a .t7/.onnx file")
    parser.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    parser.add_argument("--until", metavar="LAYER", help="stop at this layer (the output)")
    parser.add_argument("--input-shape", type=dimension, nargs=4,
                        metavar=("N", "C", "H", "W"),
                        help="the size to trace at (default: the model's declared size)")


def run_export(args: argparse.Namespace) -> int:
    path = check_output(Path(args.output), args.model, args.overwrite)
    network = open_model(args.model, args.input_shape)
    if args.input_shape:
        network.spec.input_shape = list(args.input_shape)
    model = to_onnx(network, args.until)
    write_bytes(path, model.SerializeToString())
    count = network.layer_index[args.until] + 1 if args.until else len(network.layer_names)
    print(f"exported {count} layers of {network.name!r} as {len(model.graph.node)} ONNX nodes "
          f"(opset {OPSET}) to {path}; outputs: {', '.join(o.name for o in model.graph.output)}")
    return 0


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Run an .onnx file in onnxruntime and PyTorch and compare outputs."
    parser.add_argument("model", type=non_empty, help="the .onnx file")
    parser.add_argument("--image", help="an image to use instead of random input")
    parser.add_argument("--input-shape", type=dimension, nargs=4,
                        metavar=("N", "C", "H", "W"),
                        help=f"input shape (default: the declared one; N at most {MAX_BATCH}, "
                        f"N×C×H×W at most {MAX_INPUT_ELEMENTS:,})")
    parser.add_argument("--layers", action="store_true",
                        help="compare every layer's output, not only the graph's outputs")
    parser.add_argument("--seed", type=SEED, default=0,
                        help=f"seed of the random input (0 to {MAX_SEED}; default 0)")
    parser.add_argument("--tolerance", type=TOLERANCE, default=1e-4,
                        help=f"largest relative difference accepted ({TOLERANCE.describe()}; "
                        "default 1e-4)")


def image_input(path: str, shape: list[int], preprocessing: Preprocessing) -> np.ndarray:
    """An image resized (bilinear) to the input's H×W and preprocessed: N×C×H×W."""
    rgb = Image.fromarray(load_rgb(path)).resize((shape[3], shape[2]), Image.Resampling.BILINEAR)
    pixels = preprocessing.to_net(np.asarray(rgb))
    if pixels.shape[0] != shape[1]:
        raise ConversionError(f"{path}: the preprocessing gives {pixels.shape[0]} channels, "
                              f"the net's input has {shape[1]}")
    return np.ascontiguousarray(np.broadcast_to(pixels, shape), dtype=np.float32)


def compare(path: Path, x: np.ndarray, every_layer: bool = False,
            network: Network | None = None) -> dict[str, tuple[list[int], float, float]]:
    """Per output: (shape, max |onnxruntime − PyTorch|, that relative to max(1, max |y|)).

    PyTorch is the file read back by the ONNX reader, unless `network` is given."""
    ort = onnxruntime()
    model = read_model(path)
    torch_net = load_onnx(path) if network is None else network
    names = [o.name for o in model.graph.output]
    if every_layer:
        produced = {o for n in model.graph.node for o in n.output}
        names += [n for n in torch_net.layer_names if n in produced and n not in names]
        del model.graph.output[:]
        model.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names)
    try:
        options = ort.SessionOptions()
        options.log_severity_level = ORT_FATAL
        session = ort.InferenceSession(model.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        ort_outs = session.run(names, {model.graph.input[0].name: x})
    except Exception as e:  # onnxruntime raises its own exception types
        raise ConversionError(f"{path}: onnxruntime cannot run it ({first_line(e)})") from None
    with torch.no_grad():
        torch_outs = torch_values(torch_net, torch.from_numpy(x), names)
    result = {}
    for name, ours in zip(names, ort_outs):
        theirs = torch_outs[name]
        if list(theirs.shape) != list(ours.shape):
            result[name] = (list(ours.shape), float("inf"), float("inf"))
            continue
        diff = float(np.abs(ours.astype(np.float64) - theirs.double().numpy()).max(initial=0))
        scale = max(1.0, float(theirs.abs().max()) if theirs.numel() else 1.0)
        result[name] = (list(ours.shape), diff, diff / scale)
    return result


def torch_values(net: Network, x: torch.Tensor, values: list[str]) -> dict[str, torch.Tensor]:
    """ONNX values by name from a Network: a layer's output, or an ONNX layer's k-th one."""
    where: dict[str, tuple[str, int]] = {}
    for layer in net.spec.layers:
        for k, value in enumerate(layer.params["outputs"] if layer.type == "ONNX"
                                  else output_names(layer)):
            where[value] = (layer.name, k)
    for name in values:
        if name not in where and name in net.layer_index:
            where[name] = (name, 0)
    missing = [v for v in values if v not in where]
    if missing:
        raise ConversionError(f"no layer of {net.name!r} computes {missing[0]!r}")
    outs = net.forward_to(x, sorted({where[v][0] for v in values}, key=net.layer_index.get))
    picked = {}
    for value in values:
        layer, k = where[value]
        out = outs[layer]
        picked[value] = out[k] if isinstance(out, tuple) else out
    return picked


def onnxruntime() -> ModuleType:
    """The onnxruntime module, an optional dependency (the `check` extra), logging only
    fatal errors: an error it logs is also raised, and our message says it in one line."""
    try:
        import onnxruntime as ort  # optional: the `check` extra
    except ImportError:
        raise ConversionError("`check` needs onnxruntime, which is not installed: "
                              "pip install 'dreamzoo[check]' (or `make setup`)") from None
    ort.set_default_logger_severity(ORT_FATAL)
    return ort


def check_shape(spec: NetSpec, shape: list[int]) -> None:
    """--input-shape (positive already): the net's channels, a bounded batch and size, one
    the net is computed at (by shape arithmetic); else a UsageError naming it, before any
    tensor is made."""
    given = f"--input-shape {' '.join(map(str, shape))}"
    channels = spec.input_shape[1] if len(spec.input_shape) == 4 else shape[1]
    if shape[1] != channels:
        raise UsageError(f"{given}: C is {shape[1]}, the net's input has {channels} channels")
    if shape[0] > MAX_BATCH:
        raise UsageError(f"{given}: N is {shape[0]}, more than the {MAX_BATCH} a check needs")
    try:
        computed_shapes(spec, shape)  # the element count bounded, every layer computed
    except ConversionError as e:
        raise UsageError(f"{given}: {e}") from None


def run_check(args: argparse.Namespace) -> int:
    onnxruntime()  # refused before any work when missing
    path = Path(args.model)
    spec = read_onnx(path)
    shape = list(args.input_shape or spec.input_shape)
    if args.input_shape:
        check_shape(spec, shape)
    if args.image:
        x = image_input(args.image, shape, spec.input_preprocessing())
    else:
        x = np.random.default_rng(args.seed).standard_normal(shape, dtype=np.float32)
    result = compare(path, x, args.layers, Network(spec))
    width = max(len(n) for n in result)
    worst = 0.0
    print(f"{path}: onnxruntime vs PyTorch on {'×'.join(map(str, shape))} "
          f"{'image ' + args.image if args.image else 'random input'}")
    for name, (dims, diff, relative) in result.items():
        worst = max(worst, relative)
        print(f"  {name:<{width}}  {'×'.join(map(str, dims)):>14}  max |Δ| {diff:.3g}"
              f"  (relative {relative:.3g})")
    ok = worst <= args.tolerance
    print(f"{'OK' if ok else 'DIFFERENT'}: largest relative difference {worst:.3g} "
          f"(tolerance {args.tolerance:g})")
    return 0 if ok else 1
