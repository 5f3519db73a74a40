"""Caffe models: deploy prototxt + `.caffemodel` into the network description, and mean files.

    spec = read_caffe("deploy.prototxt", "w.caffemodel")  # NetSpec; converters.load_caffe builds it
    mean = mean_values("mean.binaryproto")                # one value per channel
"""

from .mean import mean_values
from .reader import read_caffe

__all__ = ["mean_values", "read_caffe"]
