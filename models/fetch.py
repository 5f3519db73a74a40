"""Finding a zoo model's files: in a local mirror, or downloaded into the cache.

A mirror is laid out like shared/models: one folder per model (`ZooModel.folder`, or
`Source.folder` for a file several models share). In that folder the file named by the
registry is used if present, else the one file of the same kind. The download cache has
the same layout, so a filled cache is itself a mirror.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from converters.atomic import replacing
from converters.digest import file_digest
from converters.spec import ConversionError
from converters.store import PROTOTXT_SUFFIXES

from .download import DownloadError, download
from .registry import Source, ZooModel

SUFFIXES = {
    "prototxt": PROTOTXT_SUFFIXES,
    "weights": (".caffemodel",),
    "mean": (".binaryproto", ".npy"),
}


@dataclass
class Found:
    """A file ready to use, and what is known about it being the official one."""

    source: Source
    path: Path
    status: str  # "verified", "differs", "unverifiable", "doubtful" or "unavailable"
    digest: str = ""  # the file's digest when it was computed
    problem: str = ""  # why an "unavailable" file (a class list) could not be fetched


def folder_of(model: ZooModel, source: Source) -> str:
    return source.folder or model.folder


def where(model: ZooModel, source: Source) -> str:
    """The official location of a file, for messages."""
    inside = f" (inside {source.url})" if source.archive else f" ({source.url})"
    return f"{folder_of(model, source)}/{source.name}{inside}"


# --- mirror ----------------------------------------------------------------------------------

def in_mirror(mirror: Path, model: ZooModel, source: Source) -> Path | None:
    """The mirror's file for `source`: the registry's name, else one of its `mirror_names`,
    else the only file of its kind."""
    folder = mirror / folder_of(model, source)
    named = folder / source.name
    if named.is_file():
        return named
    other = next((mirror / n for n in source.mirror_names if (mirror / n).is_file()), None)
    if other is not None or source.kind not in SUFFIXES:
        return other
    if not folder.is_dir():
        return None
    candidates = sorted(p for p in folder.iterdir()
                        if p.is_file() and p.suffix.lower() in SUFFIXES[source.kind])
    if len(candidates) > 1:
        raise ConversionError(f"{folder}: two {source.kind} files could be {source.name}: "
                              f"{candidates[0].name} and {candidates[1].name}; keep one, or "
                              f"name it {source.name}")
    return candidates[0] if candidates else None


def from_mirror(mirror: Path, model: ZooModel) -> list[Found]:
    """Every file of `model` from the mirror (its class list if there); one error naming
    all files that are missing."""
    found, missing = [], []
    for source in (*model.sources, *model.classes):
        path = in_mirror(mirror, model, source)
        if path is None:
            if source.kind != "classes":
                missing.append(source)
        else:
            found.append(check(source, path))
    if missing:
        files = "; ".join(where(model, s) for s in missing)
        raise ConversionError(f"{model.name}: not in the mirror {mirror}: {files}")
    return found


def check(source: Source, path: Path) -> Found:
    """Compare a file with the official checksum."""
    other_form = source.kind == "classes" and path.name != source.name  # a mirror's form
    if source.checksum is None or other_form:
        return Found(source, path, "unverifiable")
    algorithm, expected = source.checksum
    digest = file_digest(path, algorithm)
    if digest == expected:
        return Found(source, path, "verified", digest)
    return Found(source, path, "doubtful" if source.checksum_doubt else "differs", digest)


# --- download cache --------------------------------------------------------------------------

def from_cache(cache: Path, model: ZooModel, quiet: bool = False) -> list[Found]:
    """Every file of `model`, downloading into the cache what is not there yet."""
    found = []
    for source in model.sources:
        found.append(check(source, _fetch_into(cache, model, source, quiet)))
    for source in model.classes:  # the net works without names: their loss only warns
        try:
            found.append(check(source, _fetch_into(cache, model, source, quiet)))
        except DownloadError as e:
            found.append(Found(source, cache / folder_of(model, source) / source.name,
                               "unavailable", problem=str(e)))
    return found


def _fetch_into(cache: Path, model: ZooModel, source: Source, quiet: bool) -> Path:
    dest = cache / folder_of(model, source) / source.name
    if not dest.exists():
        if source.archive:
            _from_archive(cache / folder_of(model, source), source, quiet)
        else:
            # A doubtful published checksum is compared afterwards, not enforced.
            checksum = None if source.checksum_doubt else source.checksum
            download(source.url, dest, checksum, quiet=quiet)
    return dest


def _from_archive(folder: Path, source: Source, quiet: bool) -> None:
    """Download `source.archive` and take the member `source.name` out of it."""
    assert source.archive is not None
    archive = download(source.url, folder / source.archive, quiet=quiet)
    dest = folder / source.name
    try:
        with tarfile.open(archive, "r:*") as tar:
            member = next((m for m in tar if m.isfile()
                           and os.path.basename(m.name) == source.name), None)
            if member is None:
                raise DownloadError(f"{archive}: has no file named {source.name}")
            data = tar.extractfile(member)
            assert data is not None
            algorithm, expected = source.checksum or ("sha256", None)
            digest = hashlib.new(algorithm)
            with replacing(dest) as out:  # verified before it takes the real name
                while block := data.read(1 << 20):
                    out.write(block)
                    digest.update(block)
                if expected is not None and digest.hexdigest() != expected:
                    raise DownloadError(f"{archive}: {source.name} does not match the "
                                        f"published {algorithm} {expected}")
    except (tarfile.TarError, EOFError) as e:
        raise DownloadError(f"{archive}: not a readable .tar.gz ({e}); delete it to download "
                            f"it again") from None
