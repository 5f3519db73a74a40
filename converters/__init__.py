"""dreamzoo converters: legacy model files into one network description and a torch module.

    import converters
    net = converters.load_caffe("deploy.prototxt", "weights.caffemodel")
    outs = net.forward_to(x, ["conv3"], blobs=["conv3"])   # pre- and post-ReLU
    converters.save(net, "out/")
    same = converters.load("out/")
    net = converters.open_path("model.t7")   # any model path (a prototxt: with its weights)
"""

from . import onnx  # noqa: F401  (registers the "ONNX" layer type)
from .caffe.reader import read_caffe
from .errors import DreamzooError, UsageError
from .network import Network
from .spec import ConversionError, Layer, NetSpec
from .store import load, load_caffe, open_path, save

__all__ = ["ConversionError", "DreamzooError", "Layer", "NetSpec", "Network", "UsageError", "load",
           "load_caffe", "open_path", "read_caffe", "save"]
