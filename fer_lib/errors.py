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


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, carrying the one line that says where it stopped and how to go on (the CLI prints it as it is).

    A KeyboardInterrupt still, so that whatever cleans up after Ctrl-C cleans up after it too.
    """
