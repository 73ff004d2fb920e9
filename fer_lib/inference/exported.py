"""Running exported files: ONNX and TFLite classifiers that answer `predict` and `predict_on_batch` like a
keras.Model, and how fast a classifier is."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np

from fer_lib.errors import FerError, ModelFileError
from fer_lib.inference.conversion import (
    METADATA_CLASSES,
    METADATA_TENCROP,
    PREDICT_BATCH_SIZE,
    UNRECORDED,
    first_line,
    import_extra,
    native_output_captured,
)
from fer_lib.labels import EMOTIONS, FERPLUS_EMOTIONS, IMAGE_SIZE, classes_for

# ---------------------------------------------------------------------------------------------
# Running exported files


class ExportedClassifier:
    """An exported file that classifies faces as the project asks of a keras.Model: `predict` and
    `predict_on_batch` on (N, 48, 48, 1) float32 pixels in 0-255, returning (N, len(classes)) float32
    probabilities; `classes` the emotions they are of, in order; `input_shape`, `output_shape` and
    `name` as Keras has them; `tencrop_crop` the central crop the model classifies, for ten-crop test-time
    augmentation. Code that takes a keras.Model can take any subclass (test
    `isinstance(model, (keras.Model, ExportedClassifier))`)."""

    runtime = ""
    input_shape = (None, IMAGE_SIZE, IMAGE_SIZE, 1)
    output_shape = (None, len(EMOTIONS))
    classes: tuple[str, ...] = EMOTIONS  # set from the file by `_check_shapes`
    _tencrop_crop: int | None | str = UNRECORDED  # an ONNX file's METADATA_TENCROP, when it has one

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

    @property
    def tencrop_crop(self) -> int | None:
        """The central crop (pixels) the exported model classifies, None for the whole face: what ten-crop test-time
        augmentation makes its views for (fer_lib.evaluation.prediction.tta_views). FerError when the file does not
        record it: a TFLite file, an ONNX file exported before it was recorded, or an ensemble of crop and
        whole-face models, whose members need ten views of their own."""
        if self._tencrop_crop == UNRECORDED:
            again = " (or re-export it with `fer export`)" if self.runtime == "onnx" else ""
            raise FerError(f"{self.path}: --tta tencrop needs the crop the model classifies, which this {self.runtime} "
                           f"file does not record; use the .keras model (--runtime keras){again} or --tta flip")
        return self._tencrop_crop

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
        ort = import_extra("onnxruntime", "the onnx runtime")
        if not self.path.is_file():
            raise ModelFileError(f"{self.path}: ONNX model file not found; make one with `fer export --format onnx`")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelFileError(f"{self.path}: not a readable ONNX model ({type(exc).__name__}: {first_line(exc)}); "
                                 "re-export it with `fer export --format onnx`") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelFileError(f"{self.path}: the ONNX model has {len(inputs)} inputs and {len(outputs)} outputs; "
                                 "expected one of each; export one with `fer export`")
        self._check_shapes(inputs[0].shape, outputs[0].shape, "the ONNX model", self._recorded_classes())
        self._tencrop_crop = self._recorded_tencrop_crop()
        if inputs[0].type != "tensor(float)":
            raise ModelFileError(f"{self.path}: the ONNX model takes {inputs[0].type}, not float32 pixels; "
                                 "export one with `fer export`")
        self.input_name, self.output_name = inputs[0].name, outputs[0].name

    def _recorded(self, key: str, usable, what: str):
        """The JSON value `fer export` recorded under `key` in the file's metadata, or UNRECORDED (a file from
        elsewhere or from before the key); ModelFileError when it is there but not `usable`."""
        text = self.session.get_modelmeta().custom_metadata_map.get(key)
        if text is None:
            return UNRECORDED
        try:
            value = json.loads(text)
        except ValueError:
            value = UNRECORDED
        if value is UNRECORDED or not usable(value):
            raise ModelFileError(f"{self.path}: its {key} metadata is not {what} ({text[:80]!r}); "
                                 "re-export it with `fer export`")
        return value

    def _recorded_classes(self) -> list[str] | None:
        """The class list `fer export` recorded in the file's metadata, or None (a file from elsewhere)."""
        classes = self._recorded(METADATA_CLASSES, lambda v: isinstance(v, list) and v and all(isinstance(c, str) for c in v),
                                 "a list of class names")
        return None if classes is UNRECORDED else classes

    def _recorded_tencrop_crop(self) -> int | None | str:
        """The crop `fer export` recorded (METADATA_TENCROP): pixels, None for the whole face, or UNRECORDED."""
        return self._recorded(METADATA_TENCROP, lambda v: v is None or (type(v) is int and 0 < v <= IMAGE_SIZE),
                              "a crop size in pixels or null")

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
    number of outputs. Nor does it record the crop the model classifies, so ten-crop test-time augmentation
    is refused (`tencrop_crop`); flip works."""

    runtime = "tflite"

    # OnnxClassifier.__init__ has the same steps (open the file, one input and one output, their shapes), kept
    # apart on purpose: each runtime's session, errors and shape fields differ, and what is common is already
    # shared (ExportedClassifier._check_shapes); one function over both would be a switch on the runtime.
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
            raise ModelFileError(f"{self.path}: not a readable TFLite model ({type(exc).__name__}: {first_line(exc)}); "
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
            with native_output_captured():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
                self.interpreter.allocate_tensors()
            self._batch = len(images)
        self.interpreter.set_tensor(self._input, images)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output).copy()


CLASSIFIERS = {"onnx": OnnxClassifier, "tflite": TfliteClassifier}


def faces_per_second(classifier, batch_size: int = PREDICT_BATCH_SIZE, batches: int = 8, repeats: int = 3) -> float:
    """Median faces classified per second by a keras.Model or an exported classifier, in batches, after a warm-up."""
    from fer_lib.models.stats import inference_images_per_second

    return inference_images_per_second(classifier, batch_size=batch_size, batches=batches, repeats=repeats)
