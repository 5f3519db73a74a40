"""The checksum of a file, read in blocks: downloads are verified with it, and records
name the files they were made from by it."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_digest(path: str | Path, algorithm: str) -> str:
    """The hex digest of the file `path` by hashlib's `algorithm` ("sha256", "md5", ...)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
