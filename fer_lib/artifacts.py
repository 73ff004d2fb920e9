"""Writing artifacts atomically: a temporary file in the same folder, then a rename.

A crash, a full disk or a kill never leaves a half-written metrics file or model behind,
and the previous version stays intact until the new one is complete.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from fer_lib.errors import FerError


@contextmanager
def atomic_path(path: str | Path, suffix: str = ""):
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix, dir=path.parent)
        os.close(handle)
    except OSError as exc:
        raise FerError(f"{path.parent}: cannot write there ({exc.strerror}); choose a writable output folder") from None
    temporary = Path(temporary)
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as exc:
        raise FerError(f"{path}: could not be written ({exc.strerror}); free some space or choose another folder. The previous file is unchanged") from None
    finally:
        if temporary.exists():
            temporary.unlink()


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def write_json_atomic(path: str | Path, data) -> None:
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")
