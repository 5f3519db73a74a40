"""What every command line of dreamzoo does the same way at its edge: Ctrl-C and a closed
output pipe end it with one line at most, never a traceback.

    try:
        return flushed(run(args))
    except KeyboardInterrupt:
        return interrupted(resumable=True)
    except BrokenPipeError:
        return broken_pipe()
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process Ctrl-C ended
BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports the `cat` of `cat big | head`


def flushed(status: int) -> int:
    """`status`, once stdout is flushed: a pipe closed early (`| head`) fails here, inside
    the command's handlers, not in the interpreter's exit."""
    sys.stdout.flush()
    return status


def interrupted(resumable: bool = False) -> int:
    """Ctrl-C: one line, and 130. Every output is atomic, so nothing partial stays; a
    command that resumes says so."""
    print("interrupted; run the same command to resume" if resumable else "interrupted",
          file=sys.stderr)
    return INTERRUPTED


def broken_pipe() -> int:
    """The reader of stdout stopped reading: end silently with 141. The interpreter flushes
    stdout again at exit; it goes to /dev/null so that this flush cannot fail (the Python
    docs' recipe for SIGPIPE)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return BROKEN_PIPE


@contextmanager
def warnings_held() -> Iterator[None]:
    """The warnings raised inside shown only once the block has succeeded, each once: a
    refused file is one line, not the warnings its reading raised and then the error."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    shown = set()
    for w in caught:
        if (str(w.message), w.category) not in shown:
            shown.add((str(w.message), w.category))
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def shown_once(show: Callable) -> Callable:
    """`warnings.showwarning` showing each message once: the same warning about the
    settings comes with every item."""
    shown: set[str] = set()

    def show_once(message, *args, **kwargs) -> None:
        if str(message) not in shown:
            shown.add(str(message))
            show(message, *args, **kwargs)

    return show_once
