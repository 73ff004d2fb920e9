"""Saving models with their class list, and loading them safely (Keras safe mode, checked shapes and classes)."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

from fer_lib.artifacts import atomic_path
from fer_lib.backend import keras
from fer_lib.errors import ModelFileError
from fer_lib.labels import EMOTIONS, FERPLUS_EMOTIONS, INPUT_SHAPE, classes_for
from fer_lib.models.layers import with_fer_layers  # importing the layers registers them, so models using them load

# The zip member of a .keras file where `save_model` records the class list.
METADATA_MEMBER = "fer_lib.json"


def model_classes(model: keras.Model) -> tuple[str, ...]:
    """The classes `model` predicts, in output order: as loaded from its file, else by its number of outputs."""
    recorded = getattr(model, "_fer_classes", None)
    return tuple(recorded) if recorded else classes_for(int(model.output_shape[-1]))


def _remember_classes(model: keras.Model, classes) -> keras.Model:
    object.__setattr__(model, "_fer_classes", tuple(classes))  # plain attribute: Keras' tracking has no use for it
    return model


def save_model(model: keras.Model, path: str | Path, classes=None) -> Path:
    """Save `model` as a .keras file atomically, recording its class list inside the archive.

    The list travels with the file (an extra `fer_lib.json` member of the zip, which Keras
    ignores), so a copied or renamed model still says which classes it predicts. A compiled
    model is saved without its optimizer's state.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ModelFileError(f"{path}: models are saved as .keras files; give a path ending in .keras")
    classes = model_classes(model) if classes is None else tuple(classes)
    with atomic_path(path) as temporary:
        model.save(temporary)
        if getattr(model, "optimizer", None) is not None:
            # Keras 3 has no include_optimizer, and Adam's moments are two thirds of the file;
            # nothing resumes from a .keras file (resuming reads .resume/'s weights), so re-save
            # it uncompiled.
            keras.models.load_model(temporary, compile=False, safe_mode=True).save(temporary)
        with zipfile.ZipFile(temporary, "a") as archive:
            archive.writestr(METADATA_MEMBER, json.dumps({"classes": list(classes), "input_shape": list(INPUT_SHAPE)}))
    return path


def read_model_classes(path: str | Path) -> list[str] | None:
    """The class list recorded in a .keras file by `save_model`, or None when it has none."""
    try:
        with zipfile.ZipFile(path) as archive:
            if METADATA_MEMBER not in archive.namelist():
                return None
            classes = json.loads(archive.read(METADATA_MEMBER)).get("classes")
    except (OSError, ValueError, zipfile.BadZipFile, AttributeError):
        return None
    return [str(c) for c in classes] if isinstance(classes, list) else None


def load_model(path: str | Path, classes=None) -> keras.Model:
    """Load a saved `.keras` model with Keras' safe mode on; user errors become ModelFileError.

    The model carries its class list (`model_classes`): the one recorded in the file, else
    FER2013's seven or FER+'s eight by its number of outputs. Given `classes`, a model that
    predicts others (names or order) is refused.
    Keras' augmentation layers come back as fer_lib's, so that `model(x)` is inference, and Keras
    BatchNormalization layers as FusedBatchNormalization (same weights and outputs; `with_fer_layers`).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found; train one with `fer train` or pass --model")
    if path.suffix != ".keras":
        raise ModelFileError(f"{path}: only .keras model files are loaded (got {path.suffix or 'no suffix'}); re-save it with model.save('model.keras')")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: corrupt or not a Keras model file (a .keras file is a zip archive); re-download or retrain it")
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: corrupt model file, its config.json is not valid JSON ({exc}); re-download or retrain it") from None
    except ValueError as exc:
        if "lambda" in str(exc).lower() or "safe_mode" in str(exc):
            raise ModelFileError(
                f"{path}: refused, the model contains a Lambda layer that would run arbitrary code on loading; "
                "rebuild it without Lambda layers"
            ) from None
        raise ModelFileError(f"{path}: not a loadable Keras model ({_first_line(exc)}); check the file") from None
    except TypeError as exc:
        named = re.search(r"Could not locate (?:class|function) '([^']+)'", str(exc))
        detail = f" ({named.group(1)!r} is not one)" if named else ""
        raise ModelFileError(
            f"{path}: refused, its config names classes or functions that are not Keras layers{detail}; "
            "only models built from standard Keras layers are loaded"
        ) from None
    except Exception as exc:
        raise ModelFileError(f"{path}: corrupt or unreadable model file ({type(exc).__name__}: {_first_line(exc)}); re-download or retrain it") from None
    if tuple(model.input_shape[1:]) != INPUT_SHAPE:
        raise ModelFileError(f"{path}: model takes {model.input_shape[1:]} inputs; expected {INPUT_SHAPE} (48x48 grayscale faces)")
    recorded = read_model_classes(path)
    if recorded is None:
        try:
            recorded = list(classes_for(int(model.output_shape[-1])))
        except ValueError as exc:
            raise ModelFileError(f"{path}: {exc}") from None
    if tuple(recorded) not in (EMOTIONS, FERPLUS_EMOTIONS):
        raise ModelFileError(
            f"{path}: refused, the model predicts classes {', '.join(recorded)} (in that order), which are neither "
            f"FER2013's seven ({', '.join(EMOTIONS)}) nor FER+'s eight (contempt last); train one with `fer train`")
    if len(recorded) != model.output_shape[-1]:
        raise ModelFileError(f"{path}: its record names {len(recorded)} classes but the model has "
                             f"{model.output_shape[-1]} outputs; re-save it with fer_lib's save_model")
    if classes is not None and recorded != list(classes):
        raise ModelFileError(
            f"{path}: refused, the model predicts {len(recorded)} classes ({', '.join(recorded)}) but the data uses "
            f"{len(classes)} ({', '.join(classes)}); use a model trained on these classes or retrain with `fer train`"
        )
    return _remember_classes(with_fer_layers(model), recorded)  # older models (the packaged ones): direct calls infer, fused batch norm


def _first_line(exc: Exception, limit: int = 160) -> str:
    text = " ".join(str(exc).split("\n")[0].split())
    return text[:limit] + ("..." if len(text) > limit else "")
