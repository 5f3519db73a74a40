"""dreamzoo's errors: each one line for the user, the command's exit status 2.

    DreamzooError
    ├── ConversionError   a model file or description that cannot be converted (and the
    │                     files read alongside it: images, outputs, downloads)
    └── UsageError        a setting or command line that cannot be used (also a ValueError,
                          as library callers of `dreamer.dream()` expect)
"""


class DreamzooError(Exception):
    """What the user can fix, in one line."""


class ConversionError(DreamzooError):
    """A model file or description that cannot be converted; the message is one line."""


class UsageError(DreamzooError, ValueError):
    """A setting or a command line that cannot be used; the message is one line."""
