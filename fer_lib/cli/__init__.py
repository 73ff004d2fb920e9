"""The `fer` command line.

- `commands`: the parser and every subcommand but train and predict (`commands.main` runs one)
- `train`: `fer train`, its options and the run it starts or resumes
- `predict`: `fer predict`, on photos, folders, videos or a camera
- `shared`: what several subcommands print or take (the demo banner, the tracking options)
- `arguments`: argument types shared by the subcommands

This package imports none of them until it is used, so that a Ctrl-C while they load ends in
one line like any other (`main`).
"""

from __future__ import annotations

import signal
import sys

from fer_lib.lazy import package_attributes

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a command ended by Ctrl-C

EXPORTS = {"SEARCH_SPACES": "fer_lib.cli.commands", "build_parser": "fer_lib.cli.commands"}


def main(argv: list[str] | None = None) -> int:
    """The `fer` console script: run `fer` with `argv` (default: the command line); return its exit status.

    Ctrl-C at any moment ends it with one line on stderr and exit status 130, never a traceback.
    """
    try:
        from fer_lib.cli.commands import main as run
    except KeyboardInterrupt:
        print("fer: interrupted", file=sys.stderr, flush=True)
        status = EXIT_INTERRUPTED
    else:
        status = run(argv)
    if status == EXIT_INTERRUPTED and argv is None:
        # The program ends now: a second Ctrl-C while Python and TensorFlow shut down stops it at once,
        # silently. Only as the program, not for a caller of main([...]) whose own Ctrl-C must keep working.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        _forget_unhandled_interrupt()
    return status


def _forget_unhandled_interrupt() -> None:
    """Exit with status 130 rather than by killing ourselves with SIGINT, which CPython does at exit when it
    flagged a Ctrl-C as unhandled (seen about once in twenty Ctrl-Cs during TensorFlow's import, though `main`
    handled each: Python code run from C may set the flag). The flag is a C global up to CPython 3.11; where it
    is not, the shell still reports 130."""
    try:
        import ctypes

        ctypes.c_int.in_dll(ctypes.pythonapi, "_Py_UnhandledKeyboardInterrupt").value = 0
    except (ImportError, AttributeError, ValueError, OSError):
        pass


__all__ = ["EXIT_INTERRUPTED", "SEARCH_SPACES", "build_parser", "main"]
__getattr__, __dir__ = package_attributes(__name__, EXPORTS)
