"""What a batch's OUTDIR remembers: the settings its outputs were dreamed with
(`dreamzoo-batch.json`) and a log of the outputs written (`dreamzoo-batch.log`): a line
`["writing", settings digest, output]` before an output is written and `["done", settings
digest, output, its sha256]` once it is complete. From these, each output is new, finished
(with the current settings: a rerun skips it), ours to replace (other settings, or cut off
while being written), or foreign: not written by us, or changed since, and never replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from converters.atomic import OutputError, append_line, write_bytes
from converters.bounded import load_json, read_bounded, read_json
from converters.errors import ConversionError
from converters.network import Network
from dreamer.plan.plan import DreamPlan, changed
from models.download import file_digest

SETTINGS_FILE = "dreamzoo-batch.json"
LOG_FILE = "dreamzoo-batch.log"
FORMAT = "dreamzoo-batch/1"
MAX_SETTINGS_BYTES = 1 << 20
MAX_LOG_BYTES = 256 << 20  # two lines of about 130 bytes an output: a million outputs


def settings_of(network: Network, plan: DreamPlan) -> dict:
    """Everything that decides the outputs, as the file will hold it (tuples become lists)."""
    return json.loads(json.dumps(plan.record("batch", network)))


def settings_digest(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


class Record:
    """OUTDIR's record, read (and checked against `settings`) before any work."""

    def __init__(self, outdir: Path, settings: dict, force: bool) -> None:
        self.outdir, self.settings = outdir, settings
        self.digest = settings_digest(settings)
        if os.path.lexists(outdir) and not outdir.is_dir():
            raise OutputError(f"{outdir}: is a file, not a folder for the outputs")
        self.previous = read_settings(outdir)
        log = outdir / LOG_FILE
        if self.previous is None and os.path.lexists(log):
            raise OutputError(f"{log}: not a log of ours (there is no {SETTINGS_FILE}); "
                              f"give another OUTDIR")
        if self.previous is not None and self.previous != settings and not force:
            raise ValueError(f"{outdir}: its outputs were dreamed with other settings "
                             f"({differences(self.previous, settings)}); dream with those, "
                             f"give another OUTDIR, or --force to dream them again (only "
                             f"outputs of ours are replaced)")
        self.last = {entry[2]: entry for entry in read_log(log)}  # output -> its last line

    def status(self, name: str, path: Path) -> str:
        """`new`, `finished`, `ours` (to dream again) or `foreign`: what `path` is."""
        if not os.path.lexists(path):
            return "new"
        entry = self.last.get(name)
        if entry is None:
            return "foreign"
        if entry[0] == "writing":
            return "ours"  # cut off before its "done": the file is ours, old or new
        if entry[1] == self.digest:
            return "finished"
        return "ours" if plain_file_sha256(path) == entry[3] else "foreign"

    def save_settings(self) -> None:
        if self.previous != self.settings:
            text = json.dumps({"format": FORMAT, "settings": self.settings}, indent=1)
            write_bytes(self.outdir / SETTINGS_FILE, (text + "\n").encode())

    def writing(self, name: str) -> None:
        append_line(self.outdir / LOG_FILE, json.dumps(["writing", self.digest, name]))

    def done(self, name: str, path: Path) -> None:
        append_line(self.outdir / LOG_FILE,
                    json.dumps(["done", self.digest, name, plain_file_sha256(path)]))


def plain_file_sha256(path: Path) -> str | None:
    """The file's sha256; None if it is not a plain file."""
    if not path.is_file() or path.is_symlink():
        return None
    return file_digest(path, "sha256")


def read_settings(outdir: Path) -> dict | None:
    """The settings recorded in `outdir`, None if none; a file not ours is refused."""
    path = outdir / SETTINGS_FILE
    if not os.path.lexists(path):
        return None
    refused = OutputError(f"{path}: not a record of dreamzoo batch; refusing to use {outdir} "
                          f"(give another OUTDIR)")
    if not path.is_file() or path.is_symlink():
        raise refused
    try:
        data = read_json(path, MAX_SETTINGS_BYTES, "batch record")
    except ConversionError as e:
        raise OutputError(f"{e}; refusing to use {outdir} (give another OUTDIR)") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT \
            or not isinstance(data.get("settings"), dict):
        raise refused
    return data["settings"]


def read_log(path: Path) -> list[list[str]]:
    """The log's lines, in order; a line cut off by a crash is skipped."""
    if not path.is_file():
        return []
    entries = []
    text = read_bounded(path, MAX_LOG_BYTES, "batch log", OutputError)
    for line in text.decode(errors="replace").splitlines():
        try:
            entry = load_json(line, path, max_depth=1)  # a list of strings
        except ConversionError:
            continue  # the unfinished last line of a killed run
        if isinstance(entry, list) and all(isinstance(e, str) for e in entry) \
                and len(entry) == {"writing": 3, "done": 4}.get(entry[0] if entry else ""):
            entries.append(entry)
    return entries


def differences(old: dict, new: dict) -> str:
    """`name: old -> new` for the settings that differ (at most three)."""
    names = changed(old, new)
    shown = [f"{name}: {old.get(name)!r} -> {new.get(name)!r}" for name in names[:3]]
    return "; ".join(shown) + (f"; and {len(names) - 3} more" if len(names) > 3 else "")
