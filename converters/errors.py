"""The one error of the converters: a model file or description that cannot be converted."""


class ConversionError(Exception):
    """A model file or description that cannot be converted; the message is one line."""
