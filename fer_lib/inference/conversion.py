"""Turning a Keras model into an ONNX or TFLite file: the formats and their settings, the request checked before
any work, the float32 inference graph that is converted, the converters themselves.

fer_lib.inference.export (`export_model`) runs these, then the parity check, before a file is published.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import sys
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from fer_lib.errors import FerError
from fer_lib.labels import EMOTIONS, IMAGE_SIZE

FORMATS = ("onnx", "tflite")
SUFFIXES = {"onnx": ".onnx", "tflite": ".tflite"}
QUANTIZATIONS = ("float16", "int8")
RUNTIMES = ("keras", "onnx", "tflite")
PARITY_FACES = 300
PARITY_TOLERANCE = 1e-3  # largest difference of any probability, float32 exports
PARITY_SAME_CLASS = 0.995  # least share of faces given the same class, float32 exports
CALIBRATION_FACES = 500  # training faces that set int8's activation ranges
PREDICT_BATCH_SIZE = 256
ONNX_OUTPUT = "probabilities"
METADATA_CLASSES = "fer_lib.classes"  # ONNX metadata: the class list, as fer_lib.json records it in a .keras file
# ONNX metadata: the central crop (JSON: pixels, or null for the whole face) that ten-crop test-time augmentation
# makes its views for (fer_lib.evaluation.prediction); left out for a model whose ten crops cannot be one set of views.
METADATA_TENCROP = "fer_lib.tencrop_crop"
UNRECORDED = "unrecorded"  # the crop of a model whose ten crops are not one set of views (see METADATA_TENCROP)
EXTRA_HINT = "pip install 'fer_lib[export]' (in a checkout: pip install -e '.[export]')"
PRECISION_NAMES = {"float32": "float32", None: "float32", "float16": "float16 weights", "int8": "int8"}


class ExportError(FerError):
    """A model that cannot be exported as asked, or an export that does not match its model."""


def import_extra(module: str, purpose: str):
    """Import `module`, or say in one line which extra brings it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExportError(f"{purpose} needs {module}, which is not installed; it comes with the `export` extra: "
                          f"{EXTRA_HINT}") from None


# ---------------------------------------------------------------------------------------------
# Checking a request before any work


def check_request(fmt: str | None, out: str | os.PathLike | None, quantize: str | None = None,
                  overwrite: bool = False, extras: bool = True) -> tuple[str, Path, str | None]:
    """The format, output path and quantization of an export, or one line saying what is wrong with them.

    Runs before any model or data is loaded, and creates nothing: the output must not be a folder, nor exist
    unless `overwrite`, and its nearest existing folder must be writable (missing folders are created on
    writing). With `extras`, the converter and runtime that the format needs must be installed (ONNX: the
    `export` extra; importing them starts TensorFlow, so `fer export` checks them after the paths).
    """
    from fer_lib.artifacts import check_output_file

    if not fmt:
        raise ExportError(f"no format: pass --format {' or --format '.join(FORMATS)}")
    fmt = str(fmt).lower()
    if fmt not in FORMATS:
        raise ExportError(f"unsupported format {fmt!r}; choose one of {', '.join(FORMATS)} "
                          "(TensorRT and other runtimes take the ONNX file)")
    if quantize is not None:
        quantize = str(quantize).lower()
        if quantize in ("none", "float32", "fp32"):
            quantize = None
        elif quantize not in QUANTIZATIONS:
            raise ExportError(f"unsupported quantization {quantize!r}; choose one of {', '.join(QUANTIZATIONS)} "
                              "(or leave --quantize out for float32)")
        elif fmt != "tflite":
            raise ExportError(f"--quantize {quantize} is for --format tflite; ONNX files are exported in float32")
    if not out:
        raise ExportError(f"no output file: pass --out FILE{SUFFIXES[fmt]}")
    out = Path(out).expanduser()
    if out.suffix.lower() != SUFFIXES[fmt]:
        raise ExportError(f"{out}: a {fmt} model is written to a {SUFFIXES[fmt]} file; give a name ending in {SUFFIXES[fmt]}")
    check_output_file(out, "--out", overwrite)  # missing folders are created when the file is written
    if extras and fmt == "onnx":
        import_extra("tf2onnx", "ONNX export")
        import_extra("onnxruntime", "the ONNX parity check")
    return fmt, out, quantize


def check_backend() -> None:
    from fer_lib.backend import keras

    if keras.backend.backend() != "tensorflow":
        raise ExportError(f"export converts through TensorFlow, but Keras runs on {keras.backend.backend()}; "
                          "run it with KERAS_BACKEND=tensorflow (the default)")


# ---------------------------------------------------------------------------------------------
# The graph that is exported


def inference_model(model):
    """The float32 inference graph of `model`, as a new model with the same weights.

    FusedBatchNormalization layers become Keras' BatchNormalization (a TensorFlow fused op is
    not every converter's friend), layers computing in (mixed) bfloat16 or float16 compute in
    float32, and the model is called with training=False, so augmentation, dropout and
    CropGroup are identity and TrainingCrop takes the central crop.
    """
    from fer_lib.backend import keras
    from fer_lib.labels import INPUT_SHAPE
    from fer_lib.models.serving import float32_config

    def clone(layer):
        config = float32_config(layer)  # what inference runs by default too (fer_lib.models.serving)
        kind = keras.layers.BatchNormalization if isinstance(layer, keras.layers.BatchNormalization) else layer.__class__
        return kind.from_config(config)

    try:
        plain = keras.models.clone_model(model, clone_function=clone, recursive=True)
    except ValueError as exc:  # a subclassed model, which clone_model cannot rebuild
        raise ExportError(f"{model.name}: cannot rebuild the model for export ({first_line(exc)}); "
                          "only models built from Keras layers (all that fer saves) are exported") from None
    plain.set_weights(model.get_weights())
    inputs = keras.Input(shape=INPUT_SHAPE, name="pixels")
    exportable = keras.Model(inputs, plain(inputs, training=False), name=f"{model.name}_inference")
    exportable(np.zeros((1, *INPUT_SHAPE), np.float32))  # the ONNX exporter wants a model that has been called
    return exportable


def _policy_name(layer) -> str:
    policy = getattr(layer, "dtype_policy", None)
    return getattr(policy, "name", "float32")


def served_precision(model) -> str | None:
    """The precision policies other than float32 that `model`'s layers compute in (e.g. 'mixed_bfloat16'), or None."""
    from fer_lib.models.stats import leaf_layers

    names = {_policy_name(layer) for layer in leaf_layers(model)} - {"float32"}
    return ", ".join(sorted(names)) or None


# ---------------------------------------------------------------------------------------------
# Converting


@contextmanager
def native_output_captured():
    """Collects what TensorFlow's converters print on stderr (C++ logs, absl, Python warnings), for error messages."""
    sys.stderr.flush()
    saved_fd = os.dup(2)
    saved_stream = sys.stderr
    python_log = io.StringIO()
    with tempfile.TemporaryFile() as native_log:
        os.dup2(native_log.fileno(), 2)
        sys.stderr = python_log
        try:
            def log() -> str:
                native_log.flush()
                native_log.seek(0)
                return native_log.read().decode(errors="replace") + python_log.getvalue()

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield log
        finally:
            sys.stderr = saved_stream
            try:
                os.dup2(saved_fd, 2)
            finally:
                os.close(saved_fd)


def converter_error(log: str) -> str:
    """The most telling line of a converter's log: the last one that says error."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or [""])[-1][:200]


def convert(exportable, fmt: str, target: Path, quantize: str | None, calibration: np.ndarray | None,
             classes=EMOTIONS, tencrop_crop: int | None | str = UNRECORDED) -> None:
    """Writes `exportable` as a `fmt` file to `target`; an ONNX file records `classes` and, unless it is
    UNRECORDED, `tencrop_crop` (a TFLite file records neither)."""
    if fmt == "onnx":
        import_extra("tf2onnx", "ONNX export")
        exportable.export(str(target), format="onnx", verbose=False)
        _annotate_onnx(target, classes, tencrop_crop)
        return
    import tensorflow as tf

    # Builtin TFLite ops only: a file that needs TensorFlow's "flex" ops would not run on a phone's LiteRT.
    options: dict = {"target_spec": {"supported_ops": {tf.lite.OpsSet.TFLITE_BUILTINS}}}
    if quantize == "float16":
        options["optimizations"] = [tf.lite.Optimize.DEFAULT]
        options["target_spec"]["supported_types"] = [tf.float16]
    elif quantize == "int8":
        # Weights and activations in int8 where TFLite has int8 kernels; inputs and outputs stay float32,
        # so the file takes 0-255 pixels and returns probabilities like the others.
        def representative_faces():
            for face in calibration:
                yield [face[None]]

        options["optimizations"] = [tf.lite.Optimize.DEFAULT]
        options["representative_dataset"] = representative_faces
    exportable.export(str(target), format="litert", verbose=False, **options)


def _annotate_onnx(path: Path, classes=EMOTIONS, tencrop_crop: int | None | str = UNRECORDED) -> None:
    """Names the ONNX output 'probabilities' and the batch axis 'faces', and records the model's class list and
    the crop its ten-crop views are made for."""
    onnx = import_extra("onnx", "ONNX export")
    proto = onnx.load(str(path))
    old = proto.graph.output[0].name
    for node in proto.graph.node:
        node.output[:] = [ONNX_OUTPUT if name == old else name for name in node.output]
        node.input[:] = [ONNX_OUTPUT if name == old else name for name in node.input]
    proto.graph.output[0].name = ONNX_OUTPUT
    for value in (proto.graph.input[0], proto.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = "faces"
    metadata = {METADATA_CLASSES: json.dumps(list(classes)),
                "fer_lib.input": f"(faces, {IMAGE_SIZE}, {IMAGE_SIZE}, 1) float32 grayscale pixels, 0-255",
                "fer_lib.output": f"(faces, {len(classes)}) float32 probabilities in the order of {METADATA_CLASSES}"}
    if tencrop_crop != UNRECORDED:
        metadata[METADATA_TENCROP] = json.dumps(tencrop_crop)
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))




def first_line(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split("\n")[0].split())
    return text[:limit] + ("..." if len(text) > limit else "")
