"""Errors a user can cause; the CLI prints them as one line, never as a stack trace."""


class FerError(Exception):
    """A problem with the user's input or environment, stated with what to do about it."""


class DataError(FerError):
    """A dataset folder, image or CSV row that cannot be used.

    `reason` is a short category ("truncated", "empty file", ...) for counting skips.
    """

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason


class ModelFileError(FerError):
    """A model file that is missing, corrupt, unsafe or made for other classes."""
