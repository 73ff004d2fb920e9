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
class list in its metadata (METADATA_CLASSES), a TFLite file is read by its number of outputs.

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
"""

from __future__ import annotations

import importlib
import io
import json
import os
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_lib import paths
from fer_lib.errors import FerError, ModelFileError
from fer_lib.labels import EMOTIONS, FERPLUS_EMOTIONS, IMAGE_SIZE, classes_for

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
EXTRA_HINT = "pip install 'fer_lib[export]' (in a checkout: pip install -e '.[export]')"
PRECISION_NAMES = {"float32": "float32", None: "float32", "float16": "float16 weights", "int8": "int8"}


class ExportError(FerError):
    """A model that cannot be exported as asked, or an export that does not match its model."""


def _import(module: str, purpose: str):
    """Import `module`, or say in one line which extra brings it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExportError(f"{purpose} needs {module}, which is not installed; it comes with the `export` extra: "
                          f"{EXTRA_HINT}") from None


# ---------------------------------------------------------------------------------------------
# Checking a request before any work


def check_request(fmt: str | None, out: str | os.PathLike | None, quantize: str | None = None,
                  overwrite: bool = False) -> tuple[str, Path, str | None]:
    """The format, output path and quantization of an export, or one line saying what is wrong with them.

    Runs before any model or data is loaded. The output's folder is created if needed and
    proven writable; an existing output is refused unless `overwrite`; the converter and
    runtime that the format needs must be installed (ONNX: the `export` extra).
    """
    from fer_lib.artifacts import check_writable

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
    if out.is_dir():
        raise ExportError(f"{out} is a folder; give a file name ending in {SUFFIXES[fmt]}")
    if out.exists() and not overwrite:
        raise ExportError(f"{out} already exists; pass --overwrite to replace it or choose another name")
    if out.parent.exists() and not out.parent.is_dir():
        raise ExportError(f"{out.parent} is a file, not a folder; choose a writable output folder")
    check_writable(out.parent)
    if fmt == "onnx":
        _import("tf2onnx", "ONNX export")
        _import("onnxruntime", "the ONNX parity check")
    return fmt, out, quantize


def _check_backend() -> None:
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

    def clone(layer):
        config = layer.get_config()
        if "dtype" in config and _policy_name(layer) != "float32" and _is_float_policy(layer):
            config["dtype"] = "float32"
        kind = keras.layers.BatchNormalization if isinstance(layer, keras.layers.BatchNormalization) else layer.__class__
        return kind.from_config(config)

    try:
        plain = keras.models.clone_model(model, clone_function=clone, recursive=True)
    except ValueError as exc:  # a subclassed model, which clone_model cannot rebuild
        raise ExportError(f"{model.name}: cannot rebuild the model for export ({_first_line(exc)}); "
                          "only models built from Keras layers (all that fer saves) are exported") from None
    plain.set_weights(model.get_weights())
    inputs = keras.Input(shape=INPUT_SHAPE, name="pixels")
    exportable = keras.Model(inputs, plain(inputs, training=False), name=f"{model.name}_inference")
    exportable(np.zeros((1, *INPUT_SHAPE), np.float32))  # the ONNX exporter wants a model that has been called
    return exportable


def _policy_name(layer) -> str:
    policy = getattr(layer, "dtype_policy", None)
    return getattr(policy, "name", "float32")


def _is_float_policy(layer) -> bool:
    policy = getattr(layer, "dtype_policy", None)
    return getattr(policy, "compute_dtype", "float32") in ("float16", "bfloat16", "float32")


def served_precision(model) -> str | None:
    """The precision policies other than float32 that `model`'s layers compute in (e.g. 'mixed_bfloat16'), or None."""
    from fer_lib.models.stats import leaf_layers

    names = {_policy_name(layer) for layer in leaf_layers(model)} - {"float32"}
    return ", ".join(sorted(names)) or None


# ---------------------------------------------------------------------------------------------
# Converting


@contextmanager
def _native_output_captured():
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


def _converter_error(log: str) -> str:
    """The most telling line of a converter's log: the last one that says error."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or [""])[-1][:200]


def _convert(exportable, fmt: str, target: Path, quantize: str | None, calibration: np.ndarray | None,
             classes=EMOTIONS) -> None:
    if fmt == "onnx":
        _import("tf2onnx", "ONNX export")
        exportable.export(str(target), format="onnx", verbose=False)
        _annotate_onnx(target, classes)
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


def _annotate_onnx(path: Path, classes=EMOTIONS) -> None:
    """Names the ONNX output 'probabilities' and the batch axis 'faces', and records the model's class list."""
    onnx = _import("onnx", "ONNX export")
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
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


# ---------------------------------------------------------------------------------------------
# Running exported files


class ExportedClassifier:
    """An exported file that classifies faces as the project asks of a keras.Model: `predict` and
    `predict_on_batch` on (N, 48, 48, 1) float32 pixels in 0-255, returning (N, len(classes)) float32
    probabilities; `classes` the emotions they are of, in order; `input_shape`, `output_shape` and
    `name` as Keras has them. Code that takes a keras.Model can take any subclass (test
    `isinstance(model, (keras.Model, ExportedClassifier))`)."""

    runtime = ""
    input_shape = (None, IMAGE_SIZE, IMAGE_SIZE, 1)
    output_shape = (None, len(EMOTIONS))
    classes: tuple[str, ...] = EMOTIONS  # set from the file by `_check_shapes`

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.name = self.path.stem

    def predict_on_batch(self, images) -> np.ndarray:
        raise NotImplementedError

    def predict(self, images, batch_size: int = PREDICT_BATCH_SIZE, verbose=0, **_ignored) -> np.ndarray:
        """(N, len(classes)) float32 probabilities for (N, 48, 48, 1) pixels in 0-255, like keras.Model.predict."""
        images = np.asarray(images, np.float32)
        if images.ndim == 3:
            images = images[..., None]
        if len(images) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        batch_size = max(1, int(batch_size or PREDICT_BATCH_SIZE))
        return np.concatenate([self.predict_on_batch(images[i:i + batch_size])
                               for i in range(0, len(images), batch_size)]).astype(np.float32, copy=False)

    def __call__(self, images, training=False):
        return self.predict_on_batch(images)

    def _check_shapes(self, input_shape, output_shape, what: str, recorded: list[str] | None = None) -> None:
        """Checks the file's shapes and sets `classes`: those `recorded` in the file, else FER2013's
        or FER+'s by its number of outputs."""
        input_shape, output_shape = [_plain_dim(d) for d in input_shape], [_plain_dim(d) for d in output_shape]
        outputs = output_shape[1] if len(output_shape) == 2 and isinstance(output_shape[1], int) and output_shape[1] > 0 else None
        try:
            classes = tuple(recorded) if recorded is not None else classes_for(outputs or 0)
        except ValueError:
            classes = None
        if input_shape[1:] != [IMAGE_SIZE, IMAGE_SIZE, 1] or outputs is None or classes is None:
            raise ModelFileError(f"{self.path}: {what} takes {input_shape} and returns {output_shape}; "
                                 f"expected (faces, {IMAGE_SIZE}, {IMAGE_SIZE}, 1) pixels and {len(EMOTIONS)} "
                                 f"probabilities (FER2013) or {len(FERPLUS_EMOTIONS)} (FER+); export one with `fer export`")
        if len(classes) != outputs:
            raise ModelFileError(f"{self.path}: refused, its metadata names {len(classes)} classes "
                                 f"({', '.join(classes)}) but {what} returns {outputs} probabilities; "
                                 "re-export it with `fer export`")
        self.classes, self.output_shape = classes, (None, outputs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"


def _plain_dim(dim):
    # TFLite gives numpy integers (-1 for a dynamic axis), onnxruntime ints or a symbolic axis' name.
    return int(dim) if isinstance(dim, (int, np.integer)) else dim


class OnnxClassifier(ExportedClassifier):
    """An ONNX file made by `fer export`, run by onnxruntime on the CPU.

    `predict(images, batch_size=256, verbose=0)` returns (N, len(classes)) float32 probabilities for
    (N, 48, 48, 1) float32 pixels in 0-255, as keras.Model.predict does; `predict_on_batch`
    runs one batch. `threads` sets onnxruntime's intra-op threads (default: its own choice,
    the physical cores).
    """

    runtime = "onnx"

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        super().__init__(path)
        ort = _import("onnxruntime", "the onnx runtime")
        if not self.path.is_file():
            raise ModelFileError(f"{self.path}: ONNX model file not found; make one with `fer export --format onnx`")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelFileError(f"{self.path}: not a readable ONNX model ({type(exc).__name__}: {_first_line(exc)}); "
                                 "re-export it with `fer export --format onnx`") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelFileError(f"{self.path}: the ONNX model has {len(inputs)} inputs and {len(outputs)} outputs; "
                                 "expected one of each; export one with `fer export`")
        self._check_shapes(inputs[0].shape, outputs[0].shape, "the ONNX model", self._recorded_classes())
        if inputs[0].type != "tensor(float)":
            raise ModelFileError(f"{self.path}: the ONNX model takes {inputs[0].type}, not float32 pixels; "
                                 "export one with `fer export`")
        self.input_name, self.output_name = inputs[0].name, outputs[0].name

    def _recorded_classes(self) -> list[str] | None:
        """The class list `fer export` recorded in the file's metadata, or None (a file from elsewhere)."""
        text = self.session.get_modelmeta().custom_metadata_map.get(METADATA_CLASSES)
        if text is None:
            return None
        try:
            classes = json.loads(text)
        except ValueError:
            classes = None
        if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
            raise ModelFileError(f"{self.path}: its {METADATA_CLASSES} metadata is not a list of class names "
                                 f"({text[:80]!r}); re-export it with `fer export`")
        return classes

    def predict_on_batch(self, images) -> np.ndarray:
        images = np.ascontiguousarray(images, np.float32)
        return self.session.run([self.output_name], {self.input_name: images})[0]


def _tflite_interpreter_class():
    """LiteRT's interpreter (ai_edge_litert, the `export` extra) where installed, else TensorFlow's tf.lite one."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        import tensorflow as tf

        return tf.lite.Interpreter


class TfliteClassifier(ExportedClassifier):
    """A TFLite file made by `fer export` (float32, float16 or int8), run by LiteRT's interpreter.

    A TFLite file records no class list: its classes are FER2013's seven or FER+'s eight by its
    number of outputs."""

    runtime = "tflite"

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        super().__init__(path)
        if not self.path.is_file():
            raise ModelFileError(f"{self.path}: TFLite model file not found; make one with `fer export --format tflite`")
        interpreter = _tflite_interpreter_class()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
                self.interpreter = interpreter(model_path=str(self.path), num_threads=threads or os.cpu_count() or 1)
        except Exception as exc:
            raise ModelFileError(f"{self.path}: not a readable TFLite model ({type(exc).__name__}: {_first_line(exc)}); "
                                 "re-export it with `fer export --format tflite`") from None
        inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelFileError(f"{self.path}: the TFLite model has {len(inputs)} inputs and {len(outputs)} outputs; "
                                 "expected one of each; export one with `fer export`")
        self._check_shapes(inputs[0]["shape_signature"], outputs[0]["shape_signature"], "the TFLite model")
        self._input, self._output = inputs[0]["index"], outputs[0]["index"]
        self._batch = None

    def predict_on_batch(self, images) -> np.ndarray:
        images = np.ascontiguousarray(images, np.float32)
        if self._batch != len(images):
            self.interpreter.resize_tensor_input(self._input, images.shape)
            with _native_output_captured():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
                self.interpreter.allocate_tensors()
            self._batch = len(images)
        self.interpreter.set_tensor(self._input, images)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output).copy()


CLASSIFIERS = {"onnx": OnnxClassifier, "tflite": TfliteClassifier}


def load_classifier(model=None, runtime: str = "keras", threads: int | None = None):
    """The model to classify faces with, run by `runtime`: "keras", "onnx" or "tflite".

    `model` is a packaged model's name ("fer2013", "ferplus"), a path (default: the packaged model)
    or a loaded keras.Model.
    "keras" loads a .keras file with `fer_lib.models.load_model`. "onnx" and "tflite" take a
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
            return model
        return CLASSIFIERS[runtime](_export_model_object(model, runtime), threads=threads)
    path = paths.resolve_model(model)
    if runtime == "keras":
        from fer_lib.models.saving import load_model

        return load_model(path)
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
    digest = hashlib.sha256(path.read_bytes() + f"fer_lib {__version__}".encode()).hexdigest()[:16]
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
# The parity check


@dataclass
class Parity:
    """How an exported file's probabilities compare with Keras'."""

    fmt: str
    quantize: str | None
    faces: int
    faces_source: str
    max_abs_diff: float  # against Keras running the same float32 graph
    same_class: float
    served_precision: str | None = None  # the policy Keras computes in when it is not float32
    served_max_abs_diff: float | None = None
    served_same_class: float | None = None
    test_top1: tuple[float, float] | None = None  # (Keras as loaded, exported) on the dataset's test split
    test_faces: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def gated(self) -> bool:
        return self.quantize is None

    @property
    def passed(self) -> bool:
        return not self.gated or (self.max_abs_diff <= PARITY_TOLERANCE and self.same_class >= PARITY_SAME_CLASS)

    @property
    def label(self) -> str:
        name = "ONNX" if self.fmt == "onnx" else "TFLite"
        return f"{name} {PRECISION_NAMES[self.quantize]}"

    def lines(self) -> list[str]:
        limits = (f" (limits {PARITY_TOLERANCE:g} and {PARITY_SAME_CLASS:.1%}): {'passed' if self.passed else 'FAILED'}"
                  if self.gated else " (quantized: measured, not gated)")
        lines = [f"Parity on {self.faces} {self.faces_source}, {self.label} against Keras float32: "
                 f"max |difference| {self.max_abs_diff:.2g}, same class {self.same_class:.2%}{limits}"]
        if self.served_precision:
            lines.append(f"Against Keras as loaded (computing in {self.served_precision}): max |difference| "
                         f"{self.served_max_abs_diff:.2g}, same class {self.served_same_class:.2%}")
        if self.test_top1 is not None:
            keras_top1, exported_top1 = self.test_top1
            lines.append(f"Top-1 on the test split ({self.test_faces} faces): Keras {keras_top1:.2%}, {self.label} "
                         f"{exported_top1:.2%} ({100 * (exported_top1 - keras_top1):+.2f} pt)")
        return lines + self.warnings

    def to_dict(self) -> dict:
        return {**{k: v for k, v in self.__dict__.items() if k != "warnings"}, "passed": self.passed,
                "warnings": list(self.warnings)}


def parity_faces(dataset=None, count: int = PARITY_FACES, seed: int = 0) -> tuple[np.ndarray, str]:
    """(N, 48, 48) uint8 faces to compare on, and what they are: a seeded sample of the dataset's test
    split, topped up from validation and train when it is smaller; generated faces when there is no dataset."""
    rng = np.random.default_rng(seed)
    if dataset is not None and len(dataset.test) + len(dataset.val) + len(dataset.train):
        parts, names = [], []
        for split in (dataset.test, dataset.val, dataset.train):
            wanted = min(count - sum(map(len, parts)), len(split))
            if wanted > 0:
                parts.append(split.images[np.sort(rng.choice(len(split), size=wanted, replace=False))])
                names.append(f"{wanted} {split.name}")
        what = f"{names[0].split(' ', 1)[1]} faces" if len(names) == 1 else f"faces ({', '.join(names)})"
        return np.concatenate(parts), f"{what} of {dataset.source}"
    from fer_lib.data.synthetic import render_face

    faces = np.stack([render_face(EMOTIONS[i % len(EMOTIONS)], rng) for i in range(count)])
    return faces, "generated faces (no dataset; pass --data for real ones)"


def calibration_faces(dataset, count: int = CALIBRATION_FACES, seed: int = 1) -> np.ndarray:
    """(N, 48, 48, 1) float32 training faces that set the int8 ranges."""
    if dataset is None or len(dataset.train) == 0:
        raise ExportError("int8 quantization is calibrated on training faces: pass --data (or set FER_DATA) "
                          "with the dataset the model was trained on")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(dataset.train), size=min(count, len(dataset.train)), replace=False))
    return dataset.train.images[chosen][..., None].astype(np.float32)


def check_parity(model, exportable, exported, fmt: str, quantize: str | None, faces: np.ndarray, faces_source: str,
                 test_split=None) -> Parity:
    """Compare `exported` (a classifier) with Keras on `faces` and, for quantized files, on `test_split`."""
    pixels = faces[..., None].astype(np.float32)
    reference = np.asarray(exportable.predict(pixels, batch_size=PREDICT_BATCH_SIZE, verbose=0), np.float32)
    probabilities = exported.predict(pixels, batch_size=PREDICT_BATCH_SIZE)
    parity = Parity(fmt, quantize, len(faces), faces_source, float(np.abs(probabilities - reference).max()),
                    float(np.mean(probabilities.argmax(1) == reference.argmax(1))))
    if not np.all(np.isfinite(probabilities)):
        parity.max_abs_diff, parity.same_class = float("inf"), 0.0  # NaN would compare as neither pass nor fail
    parity.served_precision = served_precision(model)
    if parity.served_precision:
        served = np.asarray(model.predict(pixels, batch_size=PREDICT_BATCH_SIZE, verbose=0), np.float32)
        parity.served_max_abs_diff = float(np.abs(probabilities - served).max())
        parity.served_same_class = float(np.mean(probabilities.argmax(1) == served.argmax(1)))
    if quantize is not None and test_split is not None and len(test_split):
        test_pixels = test_split.images[..., None].astype(np.float32)
        keras_top1 = float(np.mean(np.asarray(model.predict(test_pixels, batch_size=PREDICT_BATCH_SIZE, verbose=0)).argmax(1)
                                   == test_split.labels))
        exported_top1 = float(np.mean(exported.predict(test_pixels).argmax(1) == test_split.labels))
        parity.test_top1, parity.test_faces = (keras_top1, exported_top1), len(test_split)
    if quantize is not None and parity.same_class < 0.95:
        parity.warnings.append(f"Warning: the {quantize} file picks another class than Keras for "
                               f"{1 - parity.same_class:.1%} of the faces; prefer float32 or float16")
    return parity


# ---------------------------------------------------------------------------------------------
# The export


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
    _check_backend()
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
    test_faces, faces_source = parity_faces(dataset, faces)
    started = time.perf_counter()
    if progress:
        progress(f"Converting {source} to {fmt}{f' ({quantize})' if quantize else ''}...")
    exportable = inference_model(loaded)
    with atomic_path(out) as temporary:
        with _native_output_captured() as log:
            try:
                _convert(exportable, fmt, temporary, quantize, calibration, classes)
            except (FerError, KeyboardInterrupt):
                raise
            except Exception as exc:
                detail = _converter_error(log()) or _first_line(exc)
                raise ExportError(f"{source}: the {fmt} converter failed ({type(exc).__name__}: "
                                  f"{_first_line(exc, 120)}; {detail}); nothing was written") from None
        exported = CLASSIFIERS[fmt](temporary)
        parity = check_parity(loaded, exportable, exported, fmt, quantize, test_faces, faces_source,
                              dataset.test if dataset is not None else None)
        if not parity.passed:
            raise ExportError(f"parity check failed, nothing was written: {parity.lines()[0]}")
        size = temporary.stat().st_size
    return ExportResult(out, fmt, quantize, parity, time.perf_counter() - started, size, source)


def faces_per_second(classifier, batch_size: int = PREDICT_BATCH_SIZE, batches: int = 8, repeats: int = 3) -> float:
    """Median faces classified per second by a keras.Model or an exported classifier, in batches, after a warm-up."""
    from fer_lib.models.stats import inference_images_per_second

    return inference_images_per_second(classifier, batch_size=batch_size, batches=batches, repeats=repeats)


def _first_line(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split("\n")[0].split())
    return text[:limit] + ("..." if len(text) > limit else "")
