"""Every layer type of the network description, one `LayerType` entry each.

`LAYER_TYPES` is keyed by the description's type names (Caffe's, plus Torch7-only
ones); the families below register their entries when imported. The "ONNX" type
(nodes converted by onnx2torch) is registered by the ONNX package.
"""

from . import joining, normalisation, pointwise, reshaping, torch7_only, windows  # noqa: F401
from .arithmetic import Outcome, Shape, Unfit
from .registry import LAYER_TYPES, LayerType, build_module, exports, layer_type, params

__all__ = ["LAYER_TYPES", "LayerType", "Outcome", "Shape", "Unfit", "build_module", "exports",
           "layer_type", "params"]
