"""ONNX files: the reader (through onnx2torch), the exporter and the `export`/`check` commands.

    spec = read_onnx("net.onnx")            # NetSpec; converters.load("net.onnx") builds it
    export_onnx(network, "net.onnx")        # opset 13, values named after layers

Importing this package registers the "ONNX" layer type (`layer.py`).
"""

from . import layer  # noqa: F401  (registers the "ONNX" layer type)
from .export import export_onnx, to_onnx
from .reader import load_onnx, read_onnx

__all__ = ["export_onnx", "load_onnx", "read_onnx", "to_onnx"]
