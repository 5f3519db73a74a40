"""dreamzoo converters: legacy model files into one network description and a torch module.

    import converters
    net = converters.load_caffe("deploy.prototxt", "weights.caffemodel")
    outs = net.forward_to(x, ["conv3"], blobs=["conv3"])   # pre- and post-ReLU
    converters.save(net, "out/")
    same = converters.load("out/")
"""

from .caffe.reader import read_caffe
from .network import Network
from .spec import ConversionError, Layer, NetSpec
from .store import load, save


def load_caffe(prototxt, weights, input_shape=None) -> Network:
    """A Network from a deploy prototxt and a .caffemodel (or a weight callable)."""
    return Network(read_caffe(prototxt, weights, input_shape))


__all__ = ["ConversionError", "Layer", "NetSpec", "Network", "load", "load_caffe", "read_caffe",
           "save"]
