"""What every tab of the studio's page shares: Gradio, the models, the work folder, the
upload bound and the Stop flags of the dreams running."""

from __future__ import annotations

import sys
import threading
import traceback
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
