"""Contact sheets (gallery, sweep): the layers worth showing, cells of one size, and the
labelled grid they are laid out on."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from converters.layer_types import LAYER_TYPES
from converters.network import Network
from dreamer.loops.gradient import receptive_field

LABEL_HEIGHT = 18


def default_layers(network: Network, count: int) -> list[str]:
    """`count` feature layers (of a type whose entry says so: not ReLUs, splits, ...)
    spread evenly through the net: those with a spatial output larger than 1×1 at the
    net's declared input size."""
    candidates, shapes = [], network.output_shapes()
    for name in network.sequence:
        if not LAYER_TYPES[network.layer_types[network.layer_index[name]]].is_feature:
            continue
        if len(shapes[name]) < 4 or shapes[name][2] * shapes[name][3] <= 1:
            continue
        try:
            receptive_field(network, [name])
        except Exception:  # behind a fully connected or global layer: no picture to show
            continue
        candidates.append(name)
    if len(candidates) <= count:
        return candidates
    picks = np.linspace(0, len(candidates) - 1, count).round().astype(int)
    return [candidates[i] for i in dict.fromkeys(picks)]


def fit(rgb: np.ndarray, size: int) -> np.ndarray:
    """The image scaled so that its longer side is `size`."""
    h, w = rgb.shape[:2]
    factor = size / max(h, w)
    target = (max(1, round(w * factor)), max(1, round(h * factor)))
    return np.asarray(Image.fromarray(rgb).resize(target, Image.BICUBIC))


def grid(cells: list[tuple[str, np.ndarray]], columns: int) -> np.ndarray:
    """Cells side by side, `columns` per row, each with its label underneath."""
    h, w = cells[0][1].shape[:2]
    rows = math.ceil(len(cells) / columns)
    sheet = Image.new("RGB", (columns * w, rows * (h + LABEL_HEIGHT)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for i, (label, rgb) in enumerate(cells):
        x, y = (i % columns) * w, (i // columns) * (h + LABEL_HEIGHT)
        sheet.paste(Image.fromarray(rgb), (x, y))
        text = label if draw.textlength(label, font=font) <= w - 4 else "…" + label[-(w // 7):]
        draw.text((x + 2, y + h + 3), text, fill="black", font=font)
    return np.asarray(sheet)
