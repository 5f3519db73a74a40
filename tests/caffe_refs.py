"""Reading the real-Caffe references of shared/reference/caffe (see its README)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

import converters
from converters.network import Network

# reference name -> (prototxt under models/, caffemodel under models/ or None for formula)
CAFFE_REFERENCES = {
    "tiny": ("tiny/deploy.prototxt", "tiny/tiny.caffemodel"),
    "tiny_inception": ("tiny_inception/deploy.prototxt",
                       "tiny_inception/tiny_inception.caffemodel"),
    "lenet_mnist_img_7_0": ("lenet_mnist/mnist_deploy.prototxt",
                            "lenet_mnist/lenet_iter_10000.caffemodel"),
    "lenet_mnist_img_2_1": ("lenet_mnist/mnist_deploy.prototxt",
                            "lenet_mnist/lenet_iter_10000.caffemodel"),
    "cifar10_quick_v1_cat10": ("cifar10_quick_v1/deploy_v1.prototxt",
                               "cifar10_quick_v1/cifar10_quick_iter_5000.caffemodel"),
    "cifar10_quick_v1_dog10": ("cifar10_quick_v1/deploy_v1.prototxt",
                               "cifar10_quick_v1/cifar10_quick_iter_5000.caffemodel"),
    "cifar10_quick_v1_truck10": ("cifar10_quick_v1/deploy_v1.prototxt",
                                 "cifar10_quick_v1/cifar10_quick_iter_5000.caffemodel"),
    "bvlc_googlenet_cat224": ("bvlc_googlenet/deploy.prototxt",
                              "bvlc_googlenet/bvlc_googlenet.caffemodel"),
    "squeezenet_v1.1_cat227": ("squeezenet_v1.1/deploy.prototxt",
                               "squeezenet_v1.1/squeezenet_v1.1.caffemodel"),
    "nin_imagenet": ("nin_imagenet/deploy.prototxt", None),
    "nin_cifar10": ("nin_cifar10/deploy.prototxt", None),
    "bvlc_alexnet": ("bvlc_alexnet/deploy.prototxt", None),
    "bvlc_reference_caffenet": ("bvlc_reference_caffenet/deploy.prototxt", None),
    "vgg_cnn_s": ("vgg_cnn_s/VGG_CNN_S_deploy.prototxt", None),
    "vgg_cnn_f": ("vgg_cnn_f/VGG_CNN_F_deploy.prototxt", None),
    "vgg_cnn_m": ("vgg_cnn_m/VGG_CNN_M_deploy.prototxt", None),
    "places205_alexnet": ("places205_alexnet/places205CNN_deploy.prototxt", None),
    "alexnet_places365": ("alexnet_places365/deploy_alexnet_places365.prototxt", None),
    "googlenet_places205": ("googlenet_places205/deploy_places205.protxt", None),
    "googlenet_places365": ("googlenet_places365/deploy_googlenet_places365.prototxt", None),
}


class CaffeReference:
    def __init__(self, shared: Path, name: str) -> None:
        self.name = name
        self.arrays = np.load(shared / "reference" / "caffe" / f"{name}.npz")
        self.meta = json.loads((shared / "reference" / "caffe" / f"{name}.json").read_text())

    @property
    def input(self) -> torch.Tensor:
        return torch.from_numpy(self.arrays["input"])

    @property
    def blob_names(self) -> list[str]:
        return [str(b) for b in self.arrays["blob_names"]]

    @property
    def grad_ends(self) -> list[str]:
        return [str(b) for b in self.arrays["grad_ends"]]

    def sampled(self, kind: str, key: str, value: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(ours, reference) at the reference's stored indices."""
        prefix = "" if kind == "blob" else "grad_"
        idx = self.arrays[f"{prefix}idx:{key}"]
        ref = self.arrays[f"{prefix}values:{key}"]
        ours = value.detach().numpy().ravel()[idx]
        return ours, ref


def load_reference_net(shared: Path, name: str, formula) -> Network:
    prototxt, caffemodel = CAFFE_REFERENCES[name]
    weights = shared / "models" / caffemodel if caffemodel else formula
    return converters.load_caffe(shared / "models" / prototxt, weights)


def dream_gradient(net: Network, x: torch.Tensor, end: str) -> torch.Tensor:
    """DeepDream's gradient: forward to layer `end`, dy = y, backward to the input."""
    x = x.clone().requires_grad_(True)
    y = net.forward_to(x, [end])[end]
    y.backward(y.detach())
    return x.grad
