"""Writing artifacts atomically: a temporary file in the same folder, then a rename.

A crash, a full disk or a kill never leaves a half-written metrics file or model behind,
and the previous version stays intact until the new one is complete.
"""

from __future__ import annotations

import json
import os
import shutil
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
        # mkstemp makes the file private (0600); the artifact gets the mode any new file of the user gets.
        os.fchmod(handle, 0o666 & ~_umask())
        os.close(handle)
    except OSError as exc:
        raise FerError(f"{path.parent}: cannot write there ({exc.strerror}); choose a writable output folder") from None
    temporary = Path(temporary)
    try:
        yield temporary
        _flush_to_disk(temporary)
        os.replace(temporary, path)
    except OSError as exc:
        raise FerError(f"{path}: could not be written ({exc.strerror or exc}); free some space or choose another folder. "
                       "The previous file is unchanged") from None
    finally:
        try:
            temporary.unlink(missing_ok=True)
        except OSError:
            pass


def _umask() -> int:
    """The process's umask (reading it means setting it; it is put straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _flush_to_disk(path: Path) -> None:
    """fsync a finished temporary file so that the rename never publishes an empty file after a power cut."""
    try:
        handle = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass  # some file systems do not support fsync; the rename is still atomic
    finally:
        os.close(handle)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def write_json_atomic(path: str | Path, data) -> None:
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def copy_atomic(source: str | Path, target: str | Path) -> None:
    """Copy `source` to `target` so that `target` is either the old file or a complete copy."""
    with atomic_path(target) as temporary:
        shutil.copyfile(source, temporary)


def check_writable(folder: str | Path) -> None:
    """Create `folder` if needed and prove a file can be written in it, before any old artifact is touched."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test."):
            pass
    except OSError as exc:
        raise FerError(f"{folder}: cannot write there ({exc.strerror or exc}); choose a writable output folder") from None


# Output paths, checked before any work and without creating anything. The rule for every `fer` output:
# missing folders on its path are created when it is written (as mkdir -p does), provided the nearest
# existing one is a folder that can be written in.


def check_output_file(path: str | Path, option: str, overwrite: bool = True) -> Path:
    """Refuse, in one line and changing nothing, an output file `option` names that could not be written.

    Refused: an existing folder, an existing file unless `overwrite`, a path through a file, and a path
    whose nearest existing folder cannot be written in. Missing folders are left to be created on writing.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise FerError(f"{path} is a folder; {option} takes a file name")
    if path.exists() and not overwrite:
        raise FerError(f"{path} already exists; pass --overwrite to replace it or choose another name")
    _check_creatable(path.parent, option)
    return path


def check_output_folder(path: str | Path, option: str) -> Path:
    """Refuse, in one line and changing nothing, an output folder `option` names that could not be written in."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise FerError(f"{path} is a file; {option} takes a folder (created if missing)")
    _check_creatable(path, option)
    return path


def _check_creatable(folder: Path, option: str) -> None:
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise FerError(f"{existing} is a file, not a folder; choose another {option} path")
    if not os.access(existing, os.W_OK | os.X_OK):
        read_only = hasattr(os, "statvfs") and os.statvfs(existing).f_flag & os.ST_RDONLY
        why = "Read-only file system" if read_only else "Permission denied"
        raise FerError(f"{existing}: cannot write there ({why}); choose a writable folder for {option}")


def check_derived_model_path(model_path: Path, out: Path, overwrite: bool, made: str) -> None:
    """Refuse, in one line, an `out` for a model `made` from `model_path` that is no .keras file, is the original,
    lies among the packaged models, exists or cannot be written."""
    from fer_lib import paths

    if out.suffix != ".keras":
        raise FerError(f"{out}: the {made} model is saved as a .keras file; give a name ending in .keras")
    if out.resolve() == model_path.resolve():
        raise FerError(f"{out} is the model being {made}; save the result under another name so the original is kept")
    if out.resolve().parent == paths.ASSETS_DIR.resolve():  # even with --overwrite: an update would undo it
        raise FerError(f"{out}: {out.resolve().parent} holds fer_lib's packaged models; save the {made} model "
                       "elsewhere (--out)")
    check_output_file(out, "--out", overwrite)
