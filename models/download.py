"""Downloading one file: progress bar, resume, checksum, atomic rename.

The bytes go to the hidden `.dreamzoo-part-<name>` beside `dest`; an interrupted
download leaves only that file, and the next call resumes it with an HTTP Range request.
Only a complete file whose checksum matches is synced and renamed to `dest`, so a file
under its real name is always a verified one.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

from converters.atomic import commit, partial_path, remove_stale
from converters.digest import file_digest
from converters.spec import ConversionError

USER_AGENT = "dreamzoo/0.1 (+https://github.com/; model zoo downloader)"
CHUNK = 1 << 16


class DownloadError(ConversionError):
    """A download that failed; the message is one line and says what to do."""


class HostUnreachable(DownloadError):
    """The server could not be reached at all (offline, DNS, refused)."""


def download(url: str, dest: Path, checksum: tuple[str, str] | None = None,
             quiet: bool = False, timeout: float = 60.0) -> Path:
    """Fetch `url` into `dest` (resuming `dest.part`), verify `checksum` = (algo, hex)."""
    dest = Path(dest)
    if dest.exists():
        return dest
    part = partial_path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"cannot create {dest.parent}: {e.strerror or e}") from None
    remove_stale(dest.parent)
    _fetch(url, part, dest.name, quiet, timeout)
    if checksum is not None:
        algorithm, expected = checksum
        found = file_digest(part, algorithm)
        if found != expected.lower():
            part.unlink()
            raise DownloadError(f"{dest.name} from {url}: {algorithm} {found} does not match the "
                                f"published {expected}; the download was deleted")
    commit(part, dest)
    return dest


def _fetch(url: str, part: Path, label: str, quiet: bool, timeout: float,
           retried: bool = False) -> None:
    start = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    host = urllib.parse.urlsplit(url).netloc or url
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                          timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start and not retried:  # the .part is no prefix of this file
            part.unlink()
            return _fetch(url, part, label, quiet, timeout, retried=True)
        raise DownloadError(f"cannot download {label}: HTTP {e.code} {e.reason} from {url}") \
            from None
    except urllib.error.URLError as e:
        reason = getattr(e.reason, "strerror", None) or e.reason
        raise HostUnreachable(f"cannot reach {host} to download {label} ({reason})") from None
    except (OSError, http.client.HTTPException) as e:
        raise HostUnreachable(f"cannot reach {host} to download {label} ({e})") from None
    with response:
        if start and not _resumes(response, start):
            start = 0  # the server sent the whole file
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        total = start + expected if expected is not None else None
        received = 0
        try:
            out = open(part, "ab" if start else "wb")
        except OSError as e:
            raise DownloadError(f"cannot write {part}: {e.strerror or e}") from None
        with out, tqdm(total=total, initial=start, unit="B", unit_scale=True,
                       unit_divisor=1024, desc=label, disable=quiet) as bar:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (OSError, http.client.HTTPException) as e:
                    raise _cut_off(label, host, start + received, total, e) from None
                if not chunk:
                    break
                try:
                    out.write(chunk)
                except OSError as e:
                    raise DownloadError(f"cannot write {part}: {e.strerror or e}") from None
                received += len(chunk)
                bar.update(len(chunk))
    if expected is not None and received < expected:
        raise _cut_off(label, host, start + received, total, "connection closed")


def _resumes(response: http.client.HTTPResponse, start: int) -> bool:
    """Whether the server answered our Range request with the rest of the file."""
    content_range = response.headers.get("Content-Range", "")
    return response.status == 206 and content_range.startswith(f"bytes {start}-")


def _cut_off(label: str, host: str, have: int, total: int | None, why: object) -> DownloadError:
    of = f" of {total}" if total is not None else ""
    return DownloadError(f"download of {label} from {host} stopped after {have}{of} bytes "
                         f"({why}); run the same command again to resume it")
