"""What every tab of the studio's page shares: Gradio, the models, the work folder, the
upload bound and the Stop flags of the dreams running."""

from __future__ import annotations

import queue
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from converters.bounded import read_bounded
from converters.errors import DreamzooError
from converters.images import ImageError
from dreamer.studio.cache import ModelCache


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

    def checked_upload(self, upload: str | None, what: str = "image") -> Path:
        """The uploaded file, refused (as the CLI refuses an image file) over the bound."""
        if not upload:
            raise ValueError(f"upload an {what} first")
        read_bounded(upload, self.max_upload, what, ImageError)
        return Path(upload)


def message_of(error: BaseException) -> str:
    """One line for the page: our errors' text; anything else by its type (its traceback
    goes to the server's log)."""
    if isinstance(error, Stopped):
        return "stopped"
    if isinstance(error, (DreamzooError, ValueError)):
        return f"error: {error}"
    traceback.print_exception(error, file=sys.stderr)
    return f"error: the dream failed ({type(error).__name__}); see the studio's log"


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
