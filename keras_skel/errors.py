"""Exceptions that carry a message meant for the user.

The CLI prints these as a one-line error (no traceback): every message names the file, key or
model that was wrong, what was found and what is expected.
"""


class KerasSkelError(Exception):
    """Base class of all errors keras-skel raises on purpose."""


class DataError(KerasSkelError, ValueError):
    """A data file or dataset folder is missing, unreadable or malformed."""


class ConfigError(KerasSkelError, ValueError):
    """A config key or value is unknown or invalid."""


class ModelNotFoundError(KerasSkelError, LookupError):
    """A model name, path or URL does not resolve to a model."""
