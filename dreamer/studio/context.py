"""What every tab of the studio's page shares: Gradio, the models, the work folder, the
upload bound and the Stop flags of the dreams running."""

from __future__ import annotations

import os
import queue
import re
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from converters.bounded import read_bounded
from converters.errors import DreamzooError
from converters.images import ImageError
from dreamer.studio.cache import ModelCache

# The studio's work folders (`--work` may be anywhere): cut from the page's messages.
WORK_FOLDERS: set[str] = set()


class Stopped(Exception):
    """The page asked the work to stop (raised from the step callback)."""


@dataclass
class Studio:
    """The page's shared state. `folder`: the studio's work folder (outputs, jobs);
    `models_folder`: the folder the studio was started with (shown in commands), or None;
    `stops`: the Stop flag of each browser session's running work."""

    gr: ModuleType
    cache: ModelCache
    folder: Path
    models_folder: Path | None
    max_upload: int
    stops: dict[str, threading.Event] = field(default_factory=dict)
    mirror: Path | None = None  # where the Zoo tab takes files from (None: download)

    def __post_init__(self) -> None:
        WORK_FOLDERS.add(str(self.folder))

    @contextmanager
    def stop_flag(self, key: str) -> Iterator[threading.Event]:
        """The Stop flag of the work `key` names (a browser session's dream, gallery, zoom)
        while the work runs; `halt(key)` sets it."""
        stop = self.stops[key] = threading.Event()
        try:
            yield stop
        finally:
            if self.stops.get(key) is stop:
                del self.stops[key]

    def halt(self, key: str) -> None:
        """Stop the work `key` names, if it runs."""
        stop = self.stops.get(key)
        if stop is not None:
            stop.set()

    def checked_upload(self, upload: str | None, what: str = "image") -> Path:
        """The uploaded file, refused (as the CLI refuses an image file) over the bound."""
        if not upload:
            raise ValueError(f"upload an {what} first")
        read_bounded(upload, self.max_upload, what, ImageError)
        return Path(upload)


def message_of(error: BaseException) -> str:
    """One line for the page: our errors' text, naming a file by its name only (never the
    server's folders); anything else by its type (its traceback goes to the server's log)."""
    if isinstance(error, Stopped):
        return "stopped"
    if isinstance(error, (DreamzooError, ValueError)):
        return f"error: {without_server_folders(str(error))}"
    traceback.print_exception(error, file=sys.stderr)
    return f"error: the dream failed ({type(error).__name__}); see the studio's log"


def without_server_folders(text: str) -> str:
    """`text` with the folders of the server's temporary files (uploads, work folders) cut
    from the paths in it: "/tmp/gradio/1f…/cat.jpg: …" becomes "cat.jpg: …"."""
    for root in {tempfile.gettempdir(), os.environ.get("GRADIO_TEMP_DIR"), *WORK_FOLDERS}:
        if root:
            text = re.sub(re.escape(str(root).rstrip("/")) + r"(/[^/\s]+)*/", "", text)
    return text


def stopper(stop: threading.Event) -> Callable[[], None]:
    """A step callback that ends the work (raises Stopped) once `stop` is set."""
    def on_step() -> None:
        if stop.is_set():
            raise Stopped
    return on_step


def threaded(work: Callable[[Callable[[tuple], None]], object], stop: threading.Event,
             name: str) -> Iterator[tuple]:
    """The events `work(put)` puts as it runs in a worker thread, then ("done", what it
    returned), or ("error", exception) when it fails. Closing the iterator (the page's
    Stop, or the page gone) sets `stop`, which the work heeds at its next step."""
    events: queue.Queue = queue.Queue()

    def run() -> None:
        try:
            events.put(("done", work(events.put)))
        except Exception as e:  # handed to the page, which shows it
            events.put(("error", e))

    threading.Thread(target=run, name=name, daemon=True).start()
    try:
        while True:
            event = events.get()
            yield event
            if event[0] in ("done", "error"):
                return
    finally:
        stop.set()
