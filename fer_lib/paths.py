"""Where things live: one place resolves the project root, data, reports, notebooks and caches.

The same code runs from JupyterLab, papermill, pytest and the CLI, whatever the working
directory, so every default path is derived here.
"""

from __future__ import annotations

import os
from pathlib import Path

from fer_lib.errors import ModelFileError

PACKAGE_DIR = Path(__file__).resolve().parent
ASSETS_DIR = PACKAGE_DIR / "assets"
# The pretrained models shipped in the package, by the name `--model`/`model=` takes.
PACKAGED_MODELS = {
    "fer2013": ASSETS_DIR / "fer_model.keras",  # FER2013's 7 emotions
    "ferplus": ASSETS_DIR / "ferplus_model.keras",  # FER+'s 8 (contempt last); not in every install
}
# The packaged model used when no model is named: switching the default is this one line.
DEFAULT_PACKAGED_MODEL = "ferplus"  # README says why: it gives what people say about a face far more often
PRETRAINED_MODEL = PACKAGED_MODELS[DEFAULT_PACKAGED_MODEL]
MODEL_SUFFIXES = (".keras", ".onnx", ".tflite")


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


def resolve_model(model: str | os.PathLike | None = None) -> Path:
    """The model file `model` names: a packaged model's name ("fer2013", "ferplus"), None (the
    default packaged model) or a path, which is returned even if missing so the loader can name it.

    ModelFileError in one line for a packaged model this install lacks, or a string that is
    neither a name, nor an existing file, nor a .keras/.onnx/.tflite path.
    """
    if model is None:
        model = DEFAULT_PACKAGED_MODEL
    if isinstance(model, str) and model.strip().lower() in PACKAGED_MODELS:
        name = model.strip().lower()
        path = PACKAGED_MODELS[name]
        if not path.is_file():
            shipped = [other for other, other_path in PACKAGED_MODELS.items() if other_path.is_file()]
            instead = f"choose {', '.join(shipped)} or" if shipped else "pass"
            raise ModelFileError(f"packaged model {name!r} is not shipped in this install ({path} is missing); "
                                 f"{instead} a .keras/.onnx/.tflite file")
        return path
    path = Path(model).expanduser()
    # A PathLike is always meant as a file; a bare string that names nothing may be a mistyped name.
    if isinstance(model, str) and not path.is_file() and path.suffix.lower() not in MODEL_SUFFIXES:
        raise ModelFileError(f"unknown model {model!r}; choose {', '.join(PACKAGED_MODELS)} or a .keras/.onnx/.tflite file")
    return path


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


def check_model_file(model: str | os.PathLike | None = None) -> Path:
    """`resolve_model`, and for a path, one line when it names no file or one that cannot be read.

    Only what is known without opening the model (fer's commands check it before importing Keras);
    the loaders check the rest.
    """
    path = resolve_model(model)
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder; give a model file (.keras, .onnx or .tflite)")
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found; check the path")
    if not os.access(path, os.R_OK):
        raise ModelFileError(f"{path}: cannot be read (Permission denied); check its permissions")
    return path


def derived_model_path(model_path: Path, made: str) -> Path:
    """Where a model `made` from `model_path` (calibrated, rebalanced) goes by default: <model>_<made>.keras
    beside it, or in the working directory for a packaged model."""
    folder = Path.cwd() if model_path.resolve().parent == ASSETS_DIR.resolve() else model_path.parent
    return folder / f"{model_path.stem}_{made}.keras"
