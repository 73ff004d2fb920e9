"""Where things live: one place resolves the project root, data, reports, notebooks and caches.

The same code runs from JupyterLab, papermill, pytest and the CLI, whatever the working
directory, so every default path is derived here.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ASSETS_DIR = PACKAGE_DIR / "assets"
# The pretrained model shipped in the package, used when no model is named.
PRETRAINED_MODEL = ASSETS_DIR / "fer_model.keras"


def project_root() -> Path:
    """The checkout holding pyproject.toml, or the working directory for an installed package."""
    candidate = PACKAGE_DIR.parent
    if (candidate / "pyproject.toml").is_file():
        return candidate
    return Path.cwd()


ROOT = project_root()
DATA_DIR = ROOT / "data"
DEFAULT_DATA_DIR = DATA_DIR / "fer2013"
DEMO_DATA_DIR = DATA_DIR / "demo"
REPORTS_DIR = ROOT / "reports"
NOTEBOOKS_DIR = ROOT / "notebooks"


def cache_dir() -> Path:
    """Decoded-array cache: $FER_CACHE, else $XDG_CACHE_HOME/fer_lib, else ~/.cache/fer_lib."""
    if os.environ.get("FER_CACHE"):
        return Path(os.environ["FER_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "fer_lib"


def resolve_data_dir(explicit: str | os.PathLike | None = None) -> Path | None:
    """The dataset location: `explicit` (--data) first, then $FER_DATA, then data/fer2013.

    Returns None when neither FER_DATA nor data/fer2013 exists and nothing was given;
    an explicit path is returned even if missing so the loader can name it in its error.
    """
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("FER_DATA")
    if env:
        return Path(env).expanduser()
    if DEFAULT_DATA_DIR.exists():
        return DEFAULT_DATA_DIR
    return None
