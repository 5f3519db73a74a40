"""The batch of `python -m dreamer batch` (dreamer/cli/batch.py): its inputs (a folder,
searched recursively, a glob, or a text file listing images), each one's output at its
relative path in OUTDIR, refused when it would leave OUTDIR or replace what is not ours,
and each image as one task of the engine (dreamer/jobs/engine.py); OUTDIR's settings and
log: dreamer/jobs/batch_record.py.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from converters.bounded import read_bounded
from converters.images import load_rgb
from converters.network import Network
from converters.ownership import is_inside, resolved, same_file
from dreamer.image_io import save_rgb
from dreamer.jobs.batch_record import Record
from dreamer.jobs.engine import Task
from dreamer.jobs.work import Still
from dreamer.loops.run import check_image
from dreamer.plan.plan import DreamPlan

MAX_LIST_BYTES = 64 << 20  # a list of images: about a million paths
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


def find_inputs(spec: str, outdir: Path) -> list[tuple[Path, Path]]:
    """(image, its path relative to the input's root) of every input, sorted; images in
    OUTDIR are not inputs."""
    path = Path(spec)
    if path.is_dir():
        root, found = path, [p for p in path.rglob("*") if is_image_file(p)]
    elif path.is_file() and path.suffix.lower() not in IMAGE_SUFFIXES:
        found = listed_images(path)
        root = Path(os.path.commonpath([p.parent for p in found])) if found else path.parent
    else:
        root = glob_root(spec)
        found = [Path(p) for p in glob.glob(spec, recursive=True) if is_image_file(Path(p))]
    found = [p for p in found if not is_inside(p, outdir)]
    if not found:
        raise ValueError(f"{spec}: no images there (INPUT is a folder, a quoted glob, or a "
                         f"text file listing images)")
    return sorted((p, p.relative_to(root)) for p in found)


def is_image_file(path: Path) -> bool:
    """An image by its suffix, not hidden (no `._x.jpg` of macOS, no temporary of ours)."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") \
        and path.is_file()


def listed_images(listing: Path) -> list[Path]:
    """The images a text file lists, one a line (relative to the file's folder; blank lines
    and # comments skipped), as absolute paths."""
    try:
        lines = read_bounded(listing, MAX_LIST_BYTES, "list of images").decode().splitlines()
    except UnicodeDecodeError as e:
        raise ValueError(f"{listing}: not a text file listing images (byte {e.start} is not "
                         f"UTF-8)") from None
    folder = Path(os.path.abspath(listing.parent))
    return [Path(os.path.abspath(folder / line.strip())) for line in lines  # `..` resolved
            if line.strip() and not line.lstrip().startswith("#")]


def glob_root(pattern: str) -> Path:
    """The folder a glob's matches are relative to: its parts before the first wildcard."""
    parts = Path(pattern).parts
    first = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts) - 1)
    return Path(*parts[:first]) if first else Path()


def output_paths(inputs: list[tuple[Path, Path]], outdir: Path) -> list[tuple[Path, str, Path]]:
    """(image, output relative to OUTDIR, output path) per input; refused when two inputs
    would write one output."""
    outputs, seen = [], {}
    for image, relative in inputs:
        name = relative.with_suffix(".png").as_posix()
        if name in seen:
            raise ValueError(f"{seen[name]} and {image} would both be written to "
                             f"{outdir / name}; rename one of them")
        seen[name] = image
        outputs.append((image, name, outdir / name))
    return outputs


def contained(outputs: list[tuple[Path, str, Path]], outdir: Path
              ) -> tuple[list[tuple[Path, str, Path]], list[tuple[str, str]]]:
    """The outputs that, resolved (`..`, symlinks), stay inside OUTDIR and are not their own
    image; and (image, why) for each refused one, which is not dreamed."""
    kept, refused = [], []
    for image, name, out in outputs:
        if not is_inside(out, outdir):
            refused.append((str(image), f"{image}: its output {out} resolves to "
                            f"{resolved(out)}, outside {outdir}; refused"))
        elif same_file(out, image):
            refused.append((str(image), f"{image}: its output {out} is the image itself; "
                            f"refused"))
        else:
            kept.append((image, name, out))
    return kept, refused


def outputs_to_dream(outputs: list[tuple[Path, str, Path]], record: Record,
                     overwrite: bool = False) -> list[tuple[Path, str, Path]]:
    """The outputs not finished yet; refused, before any work, if one is not ours (unless
    `overwrite`)."""
    status = {name: record.status(name, out) for _, name, out in outputs}
    if overwrite:
        status = {name: "ours" if s == "foreign" else s for name, s in status.items()}
    foreign = next((out for _, name, out in outputs if status[name] == "foreign"), None)
    if foreign is not None:
        raise ValueError(f"{foreign}: exists and is not an output of dreamzoo batch (or was "
                         f"changed since); refusing to replace it (move it, or give another "
                         f"OUTDIR)")
    return [entry for entry in outputs if status[entry[1]] != "finished"]


@dataclass
class Dream:
    """What every image of the batch is dreamed with."""

    network: Network
    plan: DreamPlan


def image_task(image: Path, name: str, out: Path, dream: Dream, record: Record) -> Task:
    """Read (and size-check) the image when it is sent; write its output when it is back."""
    def prepare() -> Still:
        rgb = load_rgb(image)
        check_image(dream.network, dream.plan, rgb)
        return Still(rgb, dream.plan)

    def finish(result) -> None:
        record.writing(name)
        out.parent.mkdir(parents=True, exist_ok=True)
        save_rgb(out, result)
        record.done(name, out)

    return Task(str(image), prepare, finish)
