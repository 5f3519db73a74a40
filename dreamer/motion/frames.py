"""The frames folder of an animation: what makes a run resumable.

It holds `settings.json` (everything that decides the frames), `frameNNNNNN.png` (1-based,
lossless 8-bit) and `carryNNNNNN.npy`, the float frame the next one is dreamed from, kept
for the last complete frame only. Each frame's carry is written before its PNG, and the
previous carry removed after it, so a complete frame (its PNG) always has its carry: a
run killed at any moment resumes exactly where it stopped. A video dreamed in chunks
(motion/chunks.py) has no carry, and keeps its chunks' warm-up frames (`warmNNNNNN.png`).
Only files of these names are ever removed, and only from a folder whose settings.json
we wrote.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np

from converters.atomic import OutputError, is_temporary, write_bytes
from converters.bounded import read_bounded, read_json
from converters.images import load_rgb
from dreamer.image_io import quantise, save_array, save_rgb
from dreamer.plan.plan import changed

SETTINGS = "settings.json"
FRAME = re.compile(r"frame([0-9]{6,})\.png")
CARRY = re.compile(r"carry([0-9]{6,})\.npy")
MARK, MARK_VALUE = "written_by", "dreamzoo frames folder"  # in settings.json: ours
WARM = re.compile(r"warm([0-9]{6,})\.png")  # a chunk's warm-up frame (motion/chunks.py)
MAX_SETTINGS_BYTES = 1 << 20  # ours are about 2 kB
NPY_HEADER_BYTES = 1 << 16  # numpy's limit on a .npy header


def read_settings(path: Path) -> dict | None:
    """The settings a frames folder's settings.json holds; None if we did not write it."""
    if path.is_symlink() or not path.is_file():
        return None
    data = read_json(path, MAX_SETTINGS_BYTES, "frames settings", error=OutputError)
    if not isinstance(data, dict) or data.pop(MARK, None) != MARK_VALUE:
        return None
    return data


def frame_name(k: int) -> str:
    return f"frame{k:06d}.png"


def carry_name(k: int) -> str:
    return f"carry{k:06d}.npy"


def warm_name(k: int) -> str:
    return f"warm{k:06d}.png"


def carry_problem(carried: np.ndarray, frame: np.ndarray) -> str:
    """What is wrong with `carried` as the float RGB of `frame` (uint8 RGB); "" if
    nothing."""
    if carried.dtype.kind != "f":
        return f"holds {carried.dtype} values, not float"
    if carried.shape != frame.shape:
        return f"has shape {carried.shape}, not its frame's {frame.shape}"
    if not np.isfinite(carried).all():
        return "holds values that are not finite"
    # Saved as float32 and its PNG quantised from the float it was made as: one level apart
    # at most where they round differently.
    if np.abs(quantise(carried).astype(np.int16) - frame).max(initial=0) > 1:
        return "does not match its frame's pixels"
    return ""


class FramesFolder:
    """A frames folder opened for `settings`: new, empty, or an earlier run's with the same
    settings (resumed), or with others and `force` (its frames are replaced)."""

    def __init__(self, folder: str | Path, settings: dict, force: bool = False,
                 overwrite: bool = False) -> None:
        self.folder = Path(folder)
        self.settings = json.loads(json.dumps(settings))  # as it reads back from the file
        self._check(force, overwrite)

    def _check(self, force: bool, overwrite: bool = False) -> None:
        folder = self.folder
        if folder.exists() and not folder.is_dir():
            raise OutputError(f"{folder}: is a file, not a frames folder")
        names = self._names()
        if not (folder / SETTINGS).is_file():
            if names:
                raise OutputError(f"{folder}: holds {sorted(names)[0]!r} and no {SETTINGS}: "
                                  "not a frames folder of ours; give a new or empty folder")
            return
        earlier = read_settings(folder / SETTINGS)
        if earlier is None and not overwrite:
            raise OutputError(f"{folder / SETTINGS}: not one dreamzoo wrote; refusing to use "
                              f"{folder} (give another folder, or --overwrite)")
        if earlier != self.settings:
            if not (force or overwrite):
                names_changed = ", ".join(changed(earlier, self.settings))
                raise OutputError(f"{folder}: holds frames made with other settings "
                                  f"({names_changed}); give another folder or --force "
                                  "to replace them")
            for name in names:  # ours: we wrote settings.json and names of this form
                if FRAME.fullmatch(name) or CARRY.fullmatch(name) or WARM.fullmatch(name):
                    (folder / name).unlink()
            self._write_settings()

    def _write_settings(self) -> None:
        written = {MARK: MARK_VALUE, **self.settings}
        write_bytes(self.folder / SETTINGS, json.dumps(written, indent=1).encode())

    def _names(self) -> list[str]:
        try:
            return [n for n in (p.name for p in self.folder.iterdir()) if not is_temporary(n)]
        except FileNotFoundError:
            return []
        except OSError as e:
            raise OutputError(f"{self.folder}: cannot read the folder ({e.strerror})") from None

    def complete(self) -> int:
        """How many frames are done: frames 1..n all present, with frame n's carry."""
        names = set(self._names())
        n = 0
        while frame_name(n + 1) in names:
            n += 1
        if n and carry_name(n) not in names:
            raise OutputError(f"{self.folder}: {carry_name(n)} is missing, so frame {n + 1} "
                              "cannot continue from it; give --force to start again")
        return n

    def carry(self, k: int) -> np.ndarray:
        """Frame k's float RGB, exactly as the next frame was dreamed from it: checked to
        be frame k's (its PNG's size, and within one level of its pixels) and finite."""
        path = self.folder / carry_name(k)
        frame = self.frame(k)
        data = read_bounded(path, NPY_HEADER_BYTES + frame.size * 8, "carried frame",
                            OutputError)
        try:
            carried = np.load(io.BytesIO(data), allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise OutputError(f"{path}: cannot be read ({e})") from None
        problem = carry_problem(carried, frame)
        if problem:
            raise OutputError(f"{path}: {problem}, so frame {k + 1} cannot continue from it; "
                              "give --force to start again")
        return carried.astype(np.float32)

    def save(self, k: int, rgb: np.ndarray) -> None:
        """Frame k (1-based): its carry, then its PNG, then frame k−1's carry removed."""
        if not (self.folder / SETTINGS).is_file():
            self._write_settings()
        save_array(self.folder / carry_name(k), np.asarray(rgb, np.float32))
        save_rgb(self.folder / frame_name(k), quantise(rgb))
        if k > 1:
            (self.folder / carry_name(k - 1)).unlink(missing_ok=True)

    def save_png(self, name: str, rgb: np.ndarray) -> None:
        """A PNG alone (uint8 RGB; `frame_name(k)` or `warm_name(k)`), with no carry: for
        a video dreamed in chunks, whose frames no later run continues from."""
        if not (self.folder / SETTINGS).is_file():
            self._write_settings()
        save_rgb(self.folder / name, rgb)

    def has(self, name: str) -> bool:
        return (self.folder / name).is_file()

    def png(self, name: str) -> np.ndarray:
        return load_rgb(self.folder / name)

    def frame(self, k: int) -> np.ndarray:
        return load_rgb(self.folder / frame_name(k))

    def frames(self, count: int):
        """Frames 1..count as uint8 RGB, one at a time."""
        return (self.frame(k) for k in range(1, count + 1))
