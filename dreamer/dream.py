"""`dream()`: one call from an image and a network to the dreamed image.

The ways to dream are the presets (dreamer/plan/presets.py):
- none: Google's octave loop at the image's full size; `rate` is in the seed script's
  unit, the standard deviation of the image as the net sees it (so `conv4 20 0.01`
  means what it meant to the seed script's users).
- "google": Google's notebook as written: 10 iterations of step 1.5 in the net's input
  units, 4 octaves × 1.4, jitter 32, clipping; GoogLeNet (and nets without their own
  preprocessing) use the notebook's mean (104, 116, 122).
- "torch7": the seed `deepdream.lua` reproduced: the image normalised by its own mean
  and std, 224×224, 8 octaves of 1.25/1.4, no jitter, no clipping.
- "deepdraw": auduno's class visualisation, crops of the net's size on a canvas.

`visualize()`: feature visualisation as Lucid does it (dreamer/loops/visualize.py), images
optimised from noise to raise a channel, a neuron, a class or a direction.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

import models
from converters.network import Network
from dreamer.loops.run import dream_with_plan, input_rgb
from dreamer.loops.visualize import render, visualisation
from dreamer.plan.objectives import Objective
from dreamer.plan.plan import make_plan
from dreamer.plan.targets import classifier_of, labels_for
from models.labels import ClassList


def dream(image: str | Path | np.ndarray, network: Network | str, layer: str | int | list,
          iterations: int | None = None, rate: float | None = None, *, raw: bool = False,
          on_step: Callable[[], None] | None = None,
          on_octave: Callable[[int, np.ndarray], None] | None = None,
          trace: dict | None = None, **options) -> np.ndarray:
    """Dream on `image` (a path, H×W×3 uint8 RGB, or float32 RGB 0..255, which is not
    rounded) at `layer` of `network` (a Network, or what `--model` accepts). Returns H×W×3
    uint8 RGB (224×224 for the torch7 preset), or the float RGB before quantisation with
    `raw=True`.

    Options (see `dreamer.Options`): preset, octaves, octave_scale, jitter, step_norm,
    channel, objective, topk, guide, blur, laplacian, tile, tile_margin, seed, device
    (auto: a GPU if there is one), precision (auto, fp32, bf16, fp16; see
    dreamer/runtime/precision.py). They make a `DreamPlan` (dreamer/plan/plan.py), checked
    once. `trace` (a dict) receives the first octave's input, first gradient, steps and
    jitter shifts in the net's input space (Google modes). A largest octave that does not
    fit in the memory the machine can give is tiled (a warning) or refused (a ValueError
    naming the size that fits) before any compute (dreamer/loops/memory.py).
    """
    net = network if isinstance(network, Network) else models.open(network)
    plan = make_plan(net, layer, iterations, rate, **options)
    return dream_with_plan(image, net, plan, raw=raw, on_step=on_step, on_octave=on_octave,
                           trace=trace)


def visualize(target: str | Objective | list[str], network: Network | str, *,
              labels: str | None = None, start: str | Path | np.ndarray | None = None,
              on_step: Callable[[], None] | None = None, **options) -> np.ndarray:
    """Feature visualisation of `target` on `network` (a Network, or what `--model`
    accepts): B×H×W×3 uint8 RGB. `target` is the TARGET of `python -m dreamer visualize`
    (`layer:channel`, `layer:channel@y,x`, `class:NAME|INDEX`, `layer:@file.npy`, weighted
    sums), an Objective (dreamer/plan/objectives.py), or a list of TARGETs (a sheet: one
    image each). `labels`: a class list file for class:NAME (default: the model's
    labels.txt). `start`: a photo (path or H×W×3 uint8 RGB) to begin from instead of noise.

    Options (dreamer/loops/visualize.py's `visualisation`): param (pixels, fft, maco),
    transforms (none, standard, robust, a list), batch, diversity, diversity_layer, size, steps,
    lr, seed, device, precision; each checked before any compute.
    """
    net = network if isinstance(network, Network) else models.open(network)
    named = "+".join(target) if isinstance(target, list) else target
    names = target_labels(net, None if net is network else network, labels, named)
    vis = visualisation(net, target, labels=names, **options)
    photo = None if start is None else input_rgb(start)
    return render(net, vis, start=photo, on_step=on_step)


def target_labels(network: Network, model: str | None, labels: str | None,
                  target: str | Objective) -> ClassList | None:
    """The class names a TARGET's `class:NAME` terms are read with (`labels_for`): the
    `labels` file, else the `model`'s own list; None where the target names no class
    (a net may have none) or a Network came without either."""
    wanted = labels or (model is not None and isinstance(target, str) and "class:" in target)
    return labels_for(model, labels, classifier_of(network).classes) if wanted else None
