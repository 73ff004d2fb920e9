"""Errors a user can cause; the CLI prints them as one line, never as a stack trace."""


class FerError(Exception):
    """A problem with the user's input or environment, stated with what to do about it."""


class DataError(FerError):
    """A dataset folder, image or CSV row that cannot be used."""


class ModelFileError(FerError):
    """A model file that is missing, corrupt, unsafe or made for other classes."""
