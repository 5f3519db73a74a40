"""Memory planned before compute: a dream step's peak bytes from shape arithmetic, what the
machine can give, and, when the largest octave does not fit, a tile size (tiling is exact)
or a one-line refusal naming the size that fits.

The estimate of one gradient step at an h×w input: the outputs of every layer up to the
deepest target, which autograd keeps for the backward pass (less those a later layer
overwrites in place; max pooling also keeps its int64 indices, LRN its scale and factor),
two of the largest gradients alive at once in the backward pass, and a few input-sized
tensors; `KEPT_SCALE` and `STEP_OVERHEAD` are fitted to measured peaks (`bench/memory.py`
prints both side by side). The image side adds the octave pyramid and the image-sized
arrays of the octave loop.
"""

from __future__ import annotations

import math
import os
import re
import resource
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from converters.network import Network
from converters.shapes import closed_form, walk_shapes
from converters.spec import ConversionError
from dreamer.loops.gradient import DreamGradient, crop_size
from dreamer.plan.plan import objective_for
from dreamer.plan.targets import Target

LIMIT_VARIABLE = "DREAMZOO_MEMORY_LIMIT"  # bytes (or 512M, 2G) in place of the machine's
# Extra float32-sized tensors kept for backward per output element, beyond the output.
EXTRA_KEPT = {"Pooling": 2.0, "LRN": 2.0}
# Fitted (least squares) to the peaks measured on GoogLeNet, 256² to 4000×3000, tiled and
# not, targets conv2/3x3 to inception_5b (bench/memory.py prints both): autograd keeps
# less than every output (a convolution's backward to its input needs only the weights).
KEPT_SCALE = 0.75
STEP_OVERHEAD = 160 << 20  # the allocator's and oneDNN's slack, measured
STEP_IMAGE_COPIES = 6  # input-sized tensors of a step: x, its roll, channels-last, grads
LOOP_IMAGE_COPIES = 2  # image-sized float32 arrays of the octave loop besides the pyramid
FLOAT32 = 4
HEADROOM = 0.9  # plan for this share of what the machine says it can give
TILES = (2048, 1536, 1024, 768, 512, 384, 256, 192, 128, 96, 64, 48, 32)


@dataclass(frozen=True)
class Need:
    """Peak bytes of a dream step: on the compute device, and in this process besides."""

    device: int
    host: int


@dataclass(frozen=True)
class Available:
    """Bytes the dream may still take: on the device (None: not known) and in this process."""

    device: int | None
    host: int | None


def step_bytes(network: Network, targets: list[Target], height: int, width: int,
               element_size: int = FLOAT32) -> int:
    """Peak bytes of one gradient step on a 1×C×height×width input."""
    layers = [t.layer for t in targets]
    deepest = max(layers, key=network.layer_index.get)
    channels = network.spec.input_shape[1]
    walk = walk_shapes(network.spec, [1, channels, height, width], deepest)
    kept, largest = 0.0, 0
    rewritten = _rewritten_in_place(network)
    for layer in network.spec.layers:
        shapes = walk.outputs.get(layer.name, [])
        elements = sum(math.prod(shape) for shape in shapes)
        largest = max(largest, elements)
        if layer.name not in rewritten:
            kept += elements * (element_size + FLOAT32 * EXTRA_KEPT.get(layer.type, 0.0))
    image = channels * height * width * FLOAT32
    return int(KEPT_SCALE * (kept + 2 * largest * FLOAT32) + STEP_IMAGE_COPIES * image
               + STEP_OVERHEAD)


def _rewritten_in_place(network: Network) -> set[str]:
    """Layers whose output a later layer overwrites in place (Caffe's ReLU on `conv1`):
    autograd keeps the later output only."""
    writers: dict[str, str] = {}
    rewritten = set()
    for layer in network.spec.layers:
        for top in layer.tops:
            if top in layer.bottoms and top in writers:
                rewritten.add(writers[top])
            writers[top] = layer.name
    return rewritten


@dataclass(frozen=True)
class DreamMemory:
    """What a dream's peak depends on besides the image's size and the tile."""

    network: Network
    targets: list[Target]
    element_size: int = FLOAT32  # of the network's arithmetic (2 for bf16 and fp16)
    tile_margin: int | None = None

    def need(self, sizes: list[tuple[int, int]], tile: int | None) -> Need | None:
        """The peak of a dream whose octaves are `sizes` (smallest first), at the largest
        one, computed in tiles of `tile` (None: whole); None where the net's shapes are not
        arithmetic (ONNX nodes)."""
        if not closed_form(self.network.spec):
            return None
        height, width = sizes[-1]
        window = crop_size(self.network, self.targets) or self.window(height, width, tile)
        step = step_bytes(self.network, self.targets, *window, self.element_size)
        channels = self.network.spec.input_shape[1]
        image = channels * height * width * FLOAT32
        pyramid = sum(channels * h * w * FLOAT32 for h, w in sizes)
        tiled = window != (height, width)
        return Need(step + (image if tiled else 0), pyramid + LOOP_IMAGE_COPIES * image)

    def window(self, height: int, width: int, tile: int | None) -> tuple[int, int]:
        """The largest input window a step computes on: the image, or its largest tile's."""
        if tile is None:
            return height, width
        gradient = DreamGradient(self.network, objective_for(tuple(self.targets)), tile=tile,
                                 tile_margin=self.tile_margin)
        return gradient.largest_window(height, width)

    def tiles(self, size: tuple[int, int], tile: int | None) -> list[int]:
        """Tile sizes to try, largest first, smaller than the image (and than `tile`); none
        where a target sees the whole image or the dream feeds crops."""
        if crop_size(self.network, self.targets) is not None:
            return []
        try:
            DreamGradient(self.network, objective_for(tuple(self.targets)), tile=1)
        except ConversionError:
            return []
        below = min(max(size), tile or max(size))
        return [t for t in TILES if t < below]


def available(device: str) -> Available:
    """What the machine can give now: `DREAMZOO_MEMORY_LIMIT` if set, else the least of
    MemAvailable, the cgroup's limit less its usage and RLIMIT_AS less this process's
    address space; a CUDA device's free memory."""
    limit = limit_from_environment()
    if limit is not None:
        return Available(limit, limit)
    host = min((n for n in (_mem_available(), _cgroup_left(), _address_space_left())
                if n is not None), default=None)
    gpu = None
    if device.startswith("cuda") and torch.cuda.is_available():
        gpu = torch.cuda.mem_get_info(torch.device(device))[0]
    return Available(gpu if device.startswith(("cuda", "mps", "xpu")) else host, host)


def limit_from_environment() -> int | None:
    """`DREAMZOO_MEMORY_LIMIT` in bytes (a number, optionally with K, M, G or T)."""
    text = os.environ.get(LIMIT_VARIABLE, "").strip()
    if not text:
        return None
    size = bytes_of(text)
    if size is None:
        raise ValueError(f"{LIMIT_VARIABLE}={text!r} is not a size (e.g. 512M, 2G)")
    return size


def bytes_of(text: str) -> int | None:
    """A size in bytes: a number, optionally with K, M, G or T (powers of 1024); None if
    `text` is not one."""
    match = re.fullmatch(r"(\d+(?:\.\d*)?)\s*([KMGT]?)i?B?", text.strip(), re.IGNORECASE)
    if match is None:
        return None
    return int(float(match[1]) * 1024 ** " KMGT".index(match[2].upper() or " "))


def _mem_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_left() -> int | None:
    """The cgroup (v2, else v1) memory limit less what the group uses; None if unlimited."""
    for limit, usage in (("memory.max", "memory.current"),
                         ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        try:
            text = Path("/sys/fs/cgroup", limit).read_text().strip()
            used = int(Path("/sys/fs/cgroup", usage).read_text())
        except (OSError, ValueError):
            continue
        if text.isdigit() and int(text) < 1 << 60:
            return max(0, int(text) - used)
    return None


def _address_space_left() -> int | None:
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(0, soft - pages * os.sysconf("SC_PAGE_SIZE"))


def fits(need: Need, room: Available, device: str) -> bool:
    """Whether `need` fits in `room` (on the cpu, device and host share one memory)."""
    def under(n: int, limit: int | None) -> bool:
        return limit is None or n <= HEADROOM * limit

    if _on_cpu(device):
        return under(need.device + need.host, room.host)
    return under(need.device, room.device) and under(need.host, room.host)


def plan_tile(memory: DreamMemory, sizes: list[tuple[int, int]], tile: int | None,
              device: str) -> int | None:
    """The tile to dream with: `tile` if the largest octave fits so, else the largest
    tile that fits (with one warning), else a ValueError naming the size that fits."""
    room = available(device)
    need = memory.need(sizes, tile)
    if need is None or fits(need, room, device):
        return tile
    height, width = sizes[-1]
    tiles = memory.tiles(sizes[-1], tile)
    for choice in tiles:
        if fits(memory.need(sizes, choice), room, device):
            warnings.warn(f"the largest octave ({width}×{height}) needs about "
                          f"{_size(need)}{_tiled(tile)}, more than the "
                          f"{_size(_room(room, device))} this machine can give: dreaming "
                          f"in tiles of {choice} (--tile {choice}; exact, slower)",
                          stacklevel=3)
            return choice
    raise ValueError(refusal(memory, sizes, tiles[-1] if tiles else tile, device, room, need))


def refusal(memory: DreamMemory, sizes: list[tuple[int, int]], tile: int | None,
            device: str, room: Available, need: Need) -> str:
    """One line: what the largest octave needs, what there is, and the size that fits
    (in tiles of `tile`), found by bisection on the scale of the image."""
    height, width = sizes[-1]
    scales = [h / height for h, _ in sizes]

    def fitting(scale: float) -> bool:
        scaled = [(max(1, round(height * s * scale)), max(1, round(width * s * scale)))
                  for s in scales]
        return fits(memory.need(scaled, tile), room, device)

    low, high = 0.0, 1.0
    for _ in range(20):
        middle = (low + high) / 2
        low, high = (middle, high) if fitting(middle) else (low, middle)
    tiled = memory.need(sizes, tile) if tile else None
    even = f", {_size(tiled)}{_tiled(tile)}" if tiled else ""
    start = (f"the image ({width}×{height}) needs about {_size(need)} at its largest "
             f"octave{even}, more than the {_size(_room(room, device))} this machine can give")
    if low * min(height, width) < 1:
        return f"{start}, at any size"
    return f"{start}: at most about {int(width * low)}×{int(height * low)} fits (scale it down)"


def _on_cpu(device: str) -> bool:
    return device.split(":")[0] == "cpu"


def _room(room: Available, device: str) -> int:
    return (room.host if _on_cpu(device) else room.device) or 0


def _tiled(tile: int | None) -> str:
    return f" in tiles of {tile}" if tile else ""


def _size(need: Need | int) -> str:
    return size_text(need.device + need.host if isinstance(need, Need) else need)


def size_text(n: int) -> str:
    """`n` bytes in KiB, MiB, GiB or TiB, 3 digits."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n / 1024:.3g} KiB"
