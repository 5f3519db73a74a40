"""dreamzoo converters: legacy model files into one network description and a torch module.

    import converters
    net = converters.load_caffe("deploy.prototxt", "weights.caffemodel")
    outs = net.forward_to(x, ["conv3"], blobs=["conv3"])   # pre- and post-ReLU
    converters.save(net, "out/")
    same = converters.load("out/")
"""

from . import onnx  # noqa: F401  (registers the "ONNX" layer type)
from .caffe.reader import read_caffe
from .network import Network
from .spec import ConversionError, Layer, NetSpec
from .store import load, load_caffe, save

__all__ = ["ConversionError", "Layer", "NetSpec", "Network", "load", "load_caffe", "read_caffe",
           "save"]
