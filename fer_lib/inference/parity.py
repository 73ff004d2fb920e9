"""The parity check: an exported file's probabilities against Keras' on the same faces, and the faces it uses
(and the training faces that calibrate int8)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fer_lib.inference.conversion import (
    CALIBRATION_FACES,
    PARITY_FACES,
    PARITY_SAME_CLASS,
    PARITY_TOLERANCE,
    PRECISION_NAMES,
    PREDICT_BATCH_SIZE,
    ExportError,
    served_precision,
)
from fer_lib.labels import EMOTIONS

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
