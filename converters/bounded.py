"""Reading input files with bounds: a size limit before reading, a depth limit before parsing.

Every file a user names (an image, a class list, a network.json, a record of ours) is read
here: only a regular file (never a device or fifo, which could be endless or block), and
only up to a limit stated per kind, so that a huge file is a one-line error, not a
MemoryError. JSON is checked for its nesting depth before it is parsed, without recursion,
so that `[[[[...` is a one-line error, not a RecursionError.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConversionError

MAX_JSON_DEPTH = 64  # far above any file of ours (network.json: under 10)

_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")


def read_bounded(path: str | Path, limit: int, what: str,
                 error: type[Exception] = ConversionError) -> bytes:
    """The bytes of the regular file `path` (`what` it is, for messages: "image", "class
    list"), refused with `error` if it is missing, not a regular file, or over `limit`
    bytes."""
    path = Path(path)
    try:
        # O_NONBLOCK: opening a fifo does not wait for a writer; no effect on a file.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as e:
        raise error(f"{path}: cannot read the {what} ({e.strerror or e})") from None
    try:
        return _read_open(fd, path, limit, what, error)
    finally:
        os.close(fd)


def _read_open(fd: int, path: Path, limit: int, what: str, error: type[Exception]) -> bytes:
    """`read_bounded` on the open `fd`."""
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        raise error(f"{path}: is {_kind_name(status.st_mode)}, not a file; give the {what} "
                    f"as a regular file")
    too_large = error(f"{path}: too large for {_article(what)} {what} (over {limit} bytes)")
    if status.st_size > limit:
        raise too_large
    chunks, size, wanted = [], 0, status.st_size + 1  # os.read allocates what is asked
    try:
        while size <= limit:  # a file still growing stops here too
            chunk = os.read(fd, min(limit + 1 - size, wanted))
            if not chunk:
                break
            chunks.append(chunk)
            size, wanted = size + len(chunk), 1 << 20
    except OSError as e:
        raise error(f"{path}: cannot read the {what} ({e.strerror or e})") from None
    data = b"".join(chunks)
    if len(data) > limit:
        raise too_large
    return data


def _kind_name(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a fifo"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else "not a regular file"


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def json_depth(text: bytes | str) -> int:
    """How deeply the JSON `text` nests arrays and objects (brackets in strings are not
    counted), found without recursion; for invalid JSON, a depth its brackets reach."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    brackets = _NOT_BRACKET.sub(b"", _JSON_STRING.sub(b"", data))
    codes = np.frombuffer(brackets, np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1)
    return int(np.cumsum(steps).max(initial=0))


def load_json(text: bytes | str, source: str | Path, max_depth: int = MAX_JSON_DEPTH,
              error: type[Exception] = ConversionError) -> Any:
    """The JSON value of `text` (bytes: UTF-8), refused with `error` naming `source` if it
    is not JSON or nests deeper than `max_depth`."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise error(f"{source}: not UTF-8 text (byte {e.start})") from None
    depth = json_depth(text)
    if depth > max_depth:
        raise error(f"{source}: JSON nested {depth} levels deep (at most {max_depth})")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{source}: invalid JSON (line {e.lineno}: {e.msg})") from None


def read_json(path: str | Path, limit: int, what: str, max_depth: int = MAX_JSON_DEPTH,
              error: type[Exception] = ConversionError) -> Any:
    """The JSON value of the file `path`, read with `read_bounded` and `load_json`."""
    return load_json(read_bounded(path, limit, what, error), path, max_depth, error)
