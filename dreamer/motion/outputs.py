"""The outputs of `zoom` and `video` (dreamer/cli/zoom.py, video.py): OUT checked before
any work, the resumable frames folder beside it, OUT as a folder of frames, and the notes
on what an encoder or an earlier run changes."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from converters import ownership
from converters.atomic import OutputError, is_temporary, replacing_folder
from dreamer.motion.frames import FRAME, FramesFolder, frame_name
from dreamer.motion.media import check_gif_rate, write_gif, write_mp4


@dataclass(frozen=True)
class AnimationFile:
    """A file format an animation is written to: what it refuses before any dream, and its
    writer of (OUT, uint8 RGB frames, frames per second, (width, height))."""

    check_rate: Callable[[float], None]
    write: Callable[[Path, Iterable[np.ndarray], Fraction, tuple[int, int]], None]


def mp4_file(out: Path, frames: Iterable[np.ndarray], fps: Fraction,
             size: tuple[int, int]) -> None:
    note_odd_size(*size)
    write_mp4(out, frames, fps)


def any_rate(fps: float) -> None:
    """MP4 holds any frame rate --fps allows."""


# By suffix; OUT without one of these is a folder of PNG frames (zoom only).
ANIMATION_FILES = {
    ".mp4": AnimationFile(any_rate, mp4_file),
    ".gif": AnimationFile(check_gif_rate, lambda out, frames, fps, _: write_gif(out, frames, fps)),
}
OUTPUTS = tuple(ANIMATION_FILES)


def check_output(out: Path, folder_allowed: bool, inputs: Iterable = (),
                 overwrite: bool = False) -> Path:
    """Refuse, before any work, an OUT that cannot be written or is not ours to replace
    (the output policy of converters/ownership.py)."""
    if not out.parent.is_dir():
        raise OutputError(f"{out}: the folder {out.parent} does not exist")
    if out.suffix.lower() in OUTPUTS and (folder_allowed or out.suffix.lower() == ".mp4"):
        return ownership.check_output(out, inputs, overwrite)
    if not folder_allowed:
        raise OutputError(f"{out}: the output must end in .mp4")
    if out.suffix or (out.exists() and not out.is_dir()):
        raise OutputError(f"{out}: the output must end in .mp4 or .gif, or be a folder")
    ownership.check_not_input(out, inputs)
    names = sorted(p.name for p in out.iterdir() if not is_temporary(p.name)) \
        if out.is_dir() else []
    if names and not overwrite:
        foreign = [n for n in names if not FRAME.fullmatch(n) and n != ownership.RECORD_FILE]
        if foreign or not ownership.has_record(out):
            what = repr(foreign[0]) if foreign else f"no {ownership.RECORD_FILE} of ours"
            raise OutputError(f"{out}: holds {what}: not a frames folder dreamzoo wrote; give "
                              "a new or empty folder (or --overwrite)")
    ownership.check_writable_folder(out)  # its new version is made beside it
    return out


def frames_folder(frames_dir: str | None, out: Path, settings: dict, force: bool,
                  overwrite: bool) -> FramesFolder:
    """The frames folder of OUT: `frames_dir`, else <OUT stem>_frames beside OUT."""
    folder = Path(frames_dir) if frames_dir else out.parent / f"{out.stem}_frames"
    ownership.check_writable_folder(folder / "settings.json")
    return FramesFolder(folder, settings, force, overwrite)


def copy_frames(folder: FramesFolder, count: int, out: Path) -> None:
    """OUT as a folder: the frames' PNGs and our record, all appearing at once."""
    with replacing_folder(out) as staging:
        for k in range(1, count + 1):
            shutil.copyfile(folder.folder / frame_name(k), staging / frame_name(k))
        ownership.write_record(staging, frames=count)


def note_odd_size(width: int, height: int) -> None:
    if width % 2 or height % 2:
        print(f"note: H.264 yuv420p needs even sides: the {width}×{height} frames are padded "
              "to even by repeating their last column/row", file=sys.stderr)


def note_resume(folder: FramesFolder, done: int, total: int | None) -> None:
    """Say so when `folder` already holds `done` frames of an earlier run."""
    if not done:
        return
    if total is not None and done >= total:
        print(f"all {total} frames are in {folder.folder} from an earlier run: encoding only",
              file=sys.stderr)
        return
    of = f" of {total}" if total is not None else ""
    print(f"resuming at frame {done + 1}{of} (frames 1-{done} are in {folder.folder} from "
          "an earlier run)", file=sys.stderr)
