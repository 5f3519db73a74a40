"""A classifier net's class probabilities for an image at its input size (its class names
and logit layer: dreamer/plan/targets.py); the `classify` command: dreamer/cli/classify.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from converters.images import load_rgb
from converters.network import Network
from dreamer.plan.targets import classifier_of
from models.labels import ClassList


def fit_input(rgb: np.ndarray, height: int, width: int, crop: str) -> np.ndarray:
    """The image at the net's input size: a centre square crop then a bilinear resize
    (crop 'centre', as the Caffe references were made), or a plain resize ('none')."""
    image = Image.fromarray(rgb)
    if crop == "centre":
        side = min(image.width, image.height)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side))
    return np.asarray(image.resize((width, height), Image.BILINEAR))


def probabilities(network: Network, x: np.ndarray) -> np.ndarray:
    """The net's class probabilities for one input (C×H×W): its final Softmax's output,
    else the softmax of the last layer."""
    classifier = classifier_of(network)
    name = classifier.softmax or classifier.logits
    with torch.no_grad():
        out = network.forward_to(torch.from_numpy(x)[None], [name])[name]
    out = out.reshape(out.shape[0], out.shape[1], -1).mean(-1)[0]  # a spatial map: averaged
    return (out if classifier.softmax else torch.softmax(out, 0)).double().numpy()


def top_classes(probs: np.ndarray, labels: ClassList | None, top: int) -> list[dict]:
    order = np.argsort(-probs, kind="stable")[:top]
    return [{"index": int(i), "name": labels.name(i) if labels else f"class {i}",
             "probability": float(probs[i])} for i in order]


def classified(network: Network, image: str | Path, labels: ClassList | None, top: int,
               crop: str = "centre") -> list[dict]:
    """The `top` classes of the image file, with the net's own preprocessing at its declared
    input size."""
    height, width = network.spec.input_shape[-2:]
    rgb = fit_input(load_rgb(image), height, width, crop)
    probs = probabilities(network, network.spec.input_preprocessing().to_net(rgb))
    return top_classes(probs, labels, top)

