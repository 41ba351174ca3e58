"""Exception types for problems a user can cause and fix.

The CLI prints these without a traceback and exits with status 2. Every message says what is
wrong and what to do about it.
"""


class MotordecodeError(Exception):
    """Base class of all user-facing errors. Messages name settings as the Python API does;
    ``setting`` (optional) names the one to change, which the CLI turns into its flag."""

    def __init__(self, *args, setting: str | None = None):
        super().__init__(*args)
        self.setting = setting


class DataFormatError(MotordecodeError, ValueError):
    """A data file is missing, unreadable, truncated or does not have the expected layout."""


class ChecksumError(MotordecodeError):
    """A downloaded or local file does not match its known MD5 sum."""


class DownloadError(MotordecodeError):
    """A file could not be downloaded (offline, HTTP error, interrupted transfer)."""


class ConfigError(MotordecodeError, ValueError):
    """An option or parameter has an invalid value."""


class MetricError(MotordecodeError, RuntimeError):
    """A metric cannot be computed; the message names the layer and the reason."""
