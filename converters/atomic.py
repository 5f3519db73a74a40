"""Writing outputs: a file or a folder appears complete or not at all, and nothing we did
not write is ever deleted or overwritten.

Every temporary is a hidden entry beside its target, `.dreamzoo-tmp-<pid>-<token>-<name>`
(`-old-` for a folder moved aside while its replacement moves in). A process killed during
a write cannot clean up after itself, so every write first removes the temporaries whose
process is gone (`remove_stale`); nothing else is ever removed. Used by every writer:
converted networks, ONNX files, images, arrays, downloads; logs only ever grow
(`append_line`).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import re
import secrets
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from .spec import ConversionError

PREFIX = ".dreamzoo-"
_TEMPORARY = re.compile(r"\.dreamzoo-(tmp|old)-(\d+)-[0-9a-f]{8}-(.+)", re.DOTALL)
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


class OutputError(ConversionError):
    """An output that cannot be written, or may not be replaced; the message is one line."""


def temporary_path(target: Path, kind: str = "tmp") -> Path:
    """A new hidden name beside `target`, owned by this process."""
    token = secrets.token_hex(4)
    return target.with_name(f"{PREFIX}{kind}-{os.getpid()}-{token}-{target.name}")


def partial_path(target: Path) -> Path:
    """Where a download of `target` collects its bytes; kept when cut off, to resume."""
    return target.with_name(f"{PREFIX}part-{target.name}")


def is_temporary(name: str) -> bool:
    """Whether a folder entry is one of our temporaries (of a live process or not)."""
    return _TEMPORARY.fullmatch(name) is not None


def remove_stale(folder: Path) -> None:
    """Remove the temporaries in `folder` whose process has exited; a folder that was
    moved aside and whose replacement never arrived is moved back instead."""
    try:
        names = os.listdir(folder)
    except OSError:
        return  # no folder yet, so nothing of ours in it
    for name in names:
        match = _TEMPORARY.fullmatch(name)
        if match is None or _alive(int(match[2])):
            continue
        path, target = Path(folder, name), Path(folder, match[3])
        try:
            if match[1] == "old" and not os.path.lexists(target):
                os.rename(path, target)
            else:
                _remove(path)
        except OSError:
            pass  # another process cleaned it up first


def check_file_target(path: Path) -> Path:
    """Refuse, before any work, an output file path that names a folder or a device."""
    path = Path(path)
    if os.path.lexists(path) and (path.is_dir() or (path.exists() and not path.is_file())):
        what = "a folder" if path.is_dir() else "not a regular file"
        raise OutputError(f"{path}: is {what}; refusing to replace it with a file")
    return path


@contextmanager
def _discarded_on_error(temporary: Path, shown: Path) -> Iterator[None]:
    """Remove `temporary` when the block fails; an OSError becomes an OutputError naming `shown`."""
    try:
        yield
    except BaseException as e:
        _discard(temporary)
        if isinstance(e, OSError):
            raise _error(shown, e) from None
        raise


@contextmanager
def replacing(path: Path) -> Iterator[BinaryIO]:
    """A hidden file to write `path`'s new content into; when the block ends without an
    exception it is synced and renamed over `path` in one step, else removed."""
    path = check_file_target(Path(path))
    temporary = _prepare(path)
    with _discarded_on_error(temporary, path):
        with open(temporary, "xb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        _sync(path.parent)


def write_bytes(path: Path, data: bytes) -> Path:
    """Replace the file `path` by `data`, whole."""
    with replacing(path) as file:
        file.write(data)
    return Path(path)


def append_line(path: Path, line: str) -> None:
    """Add one line to the end of a log file (created if missing), synced. A process killed
    meanwhile leaves at most a last line without its newline: readers skip it, and the next
    line starts on a line of its own."""
    path = check_file_target(Path(path))
    try:
        with open(path, "a+b") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(size - 1, 0))
            torn = size > 0 and file.read(1) != b"\n"
            file.write((b"\n" if torn else b"") + line.encode() + b"\n")
            file.flush()
            os.fsync(file.fileno())
    except OSError as e:
        raise _error(path, e) from None


def commit(temporary: Path, path: Path) -> None:
    """Sync a completely written file and rename it over `path` in one step."""
    try:
        with open(temporary, "rb+") as file:
            os.fsync(file.fileno())
        os.replace(temporary, path)
        _sync(path.parent)
    except OSError as e:
        raise _error(path, e) from None


@contextmanager
def replacing_folder(target: Path) -> Iterator[Path]:
    """A hidden folder to fill with `target`'s new content; when the block ends without an
    exception it takes `target`'s place in one step and the old folder is removed.
    Whether the old folder may be replaced is the caller's decision, made beforehand."""
    shown, target = Path(target), Path(target).resolve()  # "." is swapped as its real path
    staging = _prepare(target)
    with _discarded_on_error(staging, shown):
        os.mkdir(staging)
        yield staging
        _sync_files(staging)
        old = _swap_in(staging, target)
        _sync(target.parent)
    if old is not None:
        _discard(old)


def _swap_in(staging: Path, target: Path) -> Path | None:
    """Put `staging` at `target`; the old folder's new (temporary) name, if there was one."""
    if not os.path.lexists(target):
        os.rename(staging, target)
        return None
    if _exchange(staging, target):
        return staging
    # Without an atomic exchange there is a moment with no `target`; a process killed
    # then leaves the old folder `-old-`, and remove_stale puts it back.
    aside = temporary_path(target, "old")
    os.rename(target, aside)
    os.rename(staging, target)
    return aside


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step (Linux renameat2); False where unsupported."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


@functools.cache
def _renameat2():
    if sys.platform != "linux":
        return None
    function = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if function is not None:
        function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                             ctypes.c_uint]
    return function


def _prepare(target: Path) -> Path:
    """Create the target's folder if needed, clean it of stale temporaries, name a new one."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _error(target, e) from None
    remove_stale(target.parent)
    return temporary_path(target)


def _sync_files(folder: Path) -> None:
    """fsync every file of a staged folder and the folder; give files the umask's mode
    (safetensors creates private ones)."""
    mode = 0o666 & ~_umask()
    for entry in folder.iterdir():
        entry.chmod(mode)
        with open(entry, "rb+") as file:
            os.fsync(file.fileno())
    _sync(folder)


def _sync(folder: Path) -> None:
    """fsync a folder, so that a rename in it survives a power cut."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process, or not a pid we can ask about: keep it
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _discard(path: Path) -> None:
    """Remove our own temporary, if it is there."""
    if os.path.lexists(path):
        try:
            _remove(path)
        except OSError:
            pass  # left for remove_stale once this process has exited


def _error(path: Path, e: OSError) -> OutputError:
    return OutputError(f"cannot write {path}: {e.strerror or e}")
