"""Export for deployment: saved models as ONNX or TFLite files, checked against Keras before they are written.

Every kind of model the project saves (plain and crop models, ensembles, rebalanced and
calibrated ones) is converted by the maintained converters: Keras 3's `model.export`,
which runs tf2onnx for ONNX and TensorFlow's TFLite converter for TFLite. What is
converted is the inference graph in float32 (`inference_model`): augmentation layers are
identity, dropout is off, TrainingCrop takes the central crop, batch normalisation is
Keras' own layer (folded into the convolutions by both converters) and a model trained
in mixed bfloat16 computes in float32. The exported model takes what the Keras model
takes, (N, 48, 48, 1) float32 pixels in 0-255, and returns the same probabilities, one per
class of the model in its order (FER2013's seven or FER+'s eight); an ONNX file records the
class list in its metadata (METADATA_CLASSES), a TFLite file is read by its number of outputs. An ONNX file
also records the central crop the model classifies (METADATA_TENCROP), which ten-crop test-time augmentation
needs (`predict_expression(..., tta="tencrop")`); a TFLite file does not, so it takes --tta none or flip.

Before the file is published (written to a temporary file beside it and renamed), its
probabilities on a few hundred faces are compared with Keras' for the same float32 graph:
a float32 export must agree within PARITY_TOLERANCE on every probability and pick the same
class for PARITY_SAME_CLASS of the faces, or nothing is written. Quantized TFLite files
(float16 weights, or int8 calibrated on training faces) are measured, not gated: the
differences and, with a dataset, the top-1 of Keras and of the quantized file on its test
split are printed.

`OnnxClassifier` and `TfliteClassifier` run exported files with `predict(images,
batch_size, verbose)` and `predict_on_batch(images)` like a keras.Model, so they serve
where the project calls a model, and carry the model's `classes`; `load_classifier(model, runtime)`
picks one by name.

This module is the export (`export_model`) and the choice of a runtime (`load_classifier`, with
`exported_copy`); its steps are modules of their own, whose names are importable from here as
before: `conversion` (the request, the inference graph, the converters), `parity` (the check
against Keras) and `exported` (the classifiers that run the files).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fer_lib import paths
from fer_lib.errors import FerError, ModelFileError

# The names of the modules this one was split into (conversion, exported, parity), importable from here as before.
from fer_lib.inference.conversion import (
    CALIBRATION_FACES,
    EXTRA_HINT,
    FORMATS,
    METADATA_CLASSES,
    METADATA_TENCROP,
    ONNX_OUTPUT,
    PARITY_FACES,
    PARITY_SAME_CLASS,
    PARITY_TOLERANCE,
    PRECISION_NAMES,
    PREDICT_BATCH_SIZE,
    QUANTIZATIONS,
    RUNTIMES,
    SUFFIXES,
    UNRECORDED,
    ExportError,
    check_backend,
    check_request,
    convert,
    converter_error,
    first_line,
    inference_model,
    native_output_captured,
    served_precision,
)
from fer_lib.inference.exported import CLASSIFIERS, ExportedClassifier, OnnxClassifier, TfliteClassifier, faces_per_second
from fer_lib.inference.parity import Parity, calibration_faces, check_parity, parity_faces

__all__ = [
    "CALIBRATION_FACES", "CLASSIFIERS", "EXTRA_HINT", "ExportError", "ExportResult", "ExportedClassifier",
    "FORMATS", "METADATA_CLASSES", "METADATA_TENCROP", "ONNX_OUTPUT", "OnnxClassifier", "PARITY_FACES", "PARITY_SAME_CLASS",
    "PARITY_TOLERANCE", "PRECISION_NAMES", "PREDICT_BATCH_SIZE", "Parity", "QUANTIZATIONS", "RUNTIMES",
    "SUFFIXES", "TfliteClassifier", "calibration_faces", "check_parity", "check_request", "export_model",
    "exported_copy", "faces_per_second", "inference_model", "load_classifier", "parity_faces",
    "served_precision",
]

def load_classifier(model=None, runtime: str = "keras", threads: int | None = None, precision: str = "float32"):
    """The model to classify faces with, run by `runtime`: "keras", "onnx" or "tflite".

    `model` is a packaged model's name ("fer2013", "ferplus"), a path (default: the packaged model)
    or a loaded keras.Model.
    "keras" loads a .keras file with `fer_lib.models.load_model` and runs it in float32 like the exports
    (`fer_lib.models.serving`; `precision` "trained" keeps the precision it was trained in). "onnx" and "tflite" take a
    file exported by `fer export`, or a .keras file (or a keras.Model), which is exported
    once, checked for parity and kept in the cache folder (`paths.cache_dir() / "exported"`).
    Every result has `predict(images, batch_size=..., verbose=0)` and `predict_on_batch`.
    """
    runtime = str(runtime).lower()
    if runtime not in RUNTIMES:
        raise FerError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    if model is not None and not isinstance(model, (str, os.PathLike)):
        from fer_lib.backend import keras

        if not isinstance(model, keras.Model):
            raise FerError(f"model must be a path or a keras.Model, got {type(model).__name__}")
        if runtime == "keras":
            from fer_lib.models.serving import serving_model

            return serving_model(model, precision)
        return CLASSIFIERS[runtime](_export_model_object(model, runtime), threads=threads)
    path = paths.resolve_model(model)
    if runtime == "keras":
        from fer_lib.models.serving import load_for_inference

        return load_for_inference(path, precision=precision)
    if path.suffix.lower() == SUFFIXES[runtime]:
        return CLASSIFIERS[runtime](path, threads=threads)
    if path.suffix.lower() == ".keras":
        return CLASSIFIERS[runtime](exported_copy(path, runtime), threads=threads)
    raise ModelFileError(f"{path}: the {runtime} runtime runs a {SUFFIXES[runtime]} file from `fer export` "
                         f"or a .keras model (exported on first use); got {path.suffix or 'no suffix'}")


def exported_copy(path: str | os.PathLike, fmt: str) -> Path:
    """`path` (a .keras file) exported to `fmt` in the cache folder, once per file content."""
    import hashlib

    from fer_lib.version import __version__

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found; train one with `fer train` or pass --model")
    # Salted with what an exported file records beyond the model (METADATA_TENCROP), so copies made before it are redone.
    digest = hashlib.sha256(path.read_bytes() + f"fer_lib {__version__} {METADATA_TENCROP}".encode()).hexdigest()[:16]
    cached = paths.cache_dir() / "exported" / f"{path.stem}.{digest}{SUFFIXES[fmt]}"
    if not cached.is_file():
        export_model(path, fmt, cached, overwrite=True)
    return cached


def _export_model_object(model, fmt: str) -> Path:
    """A keras.Model exported to a temporary file that lives as long as the process."""
    folder = Path(tempfile.mkdtemp(prefix="fer_export."))
    out = folder / f"model{SUFFIXES[fmt]}"
    export_model(model, fmt, out, overwrite=True)
    return out




# ---------------------------------------------------------------------------------------------
# The export


def _tencrop_crop(model):
    """The crop an exported `model`'s ten-crop views are made for (None: the whole face), or UNRECORDED when no one
    set of views suits the whole graph (an ensemble of crop and whole-face members)."""
    from fer_lib.evaluation.prediction import one_graph_tencrop_crop

    try:
        return one_graph_tencrop_crop(model)
    except FerError:
        return UNRECORDED


@dataclass
class ExportResult:
    path: Path
    fmt: str
    quantize: str | None
    parity: Parity
    seconds: float
    bytes: int
    source: str

    def describe(self) -> str:
        return (f"Exported {self.source} to {self.path} ({self.parity.label}, {self.bytes / 1e6:.1f} MB) "
                f"in {self.seconds:.1f} s")


def export_model(model=None, fmt: str = "onnx", out: str | os.PathLike | None = None, *, quantize: str | None = None,
                 dataset=None, overwrite: bool = False, faces: int = PARITY_FACES, source: str | None = None,
                 progress=None) -> ExportResult:
    """Export a saved model (a .keras path or packaged model name, default the packaged model, or a
    keras.Model) to `out`; an ONNX file records the model's class list.

    The file is written only if the float32 parity check passes (see the module's docstring);
    `dataset` (a FerDataset) gives the faces of the parity check, the int8 calibration faces and
    the test split on which a quantized file's top-1 is measured; `source` names a given keras.Model
    in messages (default: its name). Every user mistake raises a
    one-line FerError before anything is written; no partial file is ever left.
    """
    fmt, out, quantize = check_request(fmt, out, quantize, overwrite)
    check_backend()
    from fer_lib.artifacts import atomic_path
    from fer_lib.backend import keras
    from fer_lib.models.saving import load_model, model_classes

    if isinstance(model, keras.Model):
        loaded, source = model, source or model.name
    else:
        path = paths.resolve_model(model)
        loaded, source = load_model(path), source or str(path)
    try:
        classes = model_classes(loaded)
    except ValueError as exc:
        raise ExportError(f"{source}: {exc}; save it with fer_lib's save_model, which records its classes") from None
    calibration = calibration_faces(dataset) if quantize == "int8" else None
    tencrop_crop = _tencrop_crop(loaded)
    test_faces, faces_source = parity_faces(dataset, faces)
    started = time.perf_counter()
    if progress:
        progress(f"Converting {source} to {fmt}{f' ({quantize})' if quantize else ''}...")
    exportable = inference_model(loaded)
    with atomic_path(out) as temporary:
        with native_output_captured() as log:
            try:
                convert(exportable, fmt, temporary, quantize, calibration, classes, tencrop_crop)
            except (FerError, KeyboardInterrupt):
                raise
            except Exception as exc:
                detail = converter_error(log()) or first_line(exc)
                raise ExportError(f"{source}: the {fmt} converter failed ({type(exc).__name__}: "
                                  f"{first_line(exc, 120)}; {detail}); nothing was written") from None
        exported = CLASSIFIERS[fmt](temporary)
        parity = check_parity(loaded, exportable, exported, fmt, quantize, test_faces, faces_source,
                              dataset.test if dataset is not None else None)
        if not parity.passed:
            raise ExportError(f"parity check failed, nothing was written: {parity.lines()[0]}")
        size = temporary.stat().st_size
    return ExportResult(out, fmt, quantize, parity, time.perf_counter() - started, size, source)
