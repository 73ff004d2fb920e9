"""What a model is trained towards: one-hot or distilled targets, face weights, and the batches `fit` reads.

With a teacher (knowledge distillation) the targets mix the labels with the teacher's
probabilities, predicted once per run and kept in the run folder for `--resume`; MixUp
and CutMix blend whole batches (`MixedBatches`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from fer_lib.artifacts import atomic_path
from fer_lib.backend import keras
from fer_lib.data.dataset import Split
from fer_lib.errors import FerError
from fer_lib.evaluation.prediction import predict_probabilities
from fer_lib.labels import NUM_CLASSES
from fer_lib.models.augmentation import mixing_layer
from fer_lib.models.saving import load_model
from fer_lib.training.config import TrainConfig


def training_targets(labels: np.ndarray, teacher_probabilities: np.ndarray | None = None,
                     distillation: float = 0.5) -> np.ndarray:
    """One-hot targets, mixed with a teacher's probabilities when given (knowledge distillation).

    The teacher's probabilities carry what one-hot labels cannot: which faces are ambiguous
    and between which emotions, the soft knowledge that lets one small model approach an ensemble.
    """
    onehot = keras.utils.to_categorical(labels, NUM_CLASSES).astype(np.float32)
    if teacher_probabilities is None:
        return onehot
    return ((1.0 - distillation) * onehot + distillation * teacher_probabilities).astype(np.float32)


def class_weights_for(labels: np.ndarray) -> dict[int, float]:
    """'Balanced' class weights (scikit-learn) for the classes present in `labels`."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    weights = compute_class_weight("balanced", classes=present, y=labels)
    return {int(c): float(w) for c, w in zip(present, weights)}


def targets_and_weights(config: TrainConfig, targets: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The training targets and face weights as `fit` takes them for `config`'s model.

    Class weights are given as each face's weight by its true label, not as Keras' class_weight,
    which weighs a face by its largest target: with a teacher or mixing that need not be its label.
    With several training crops per face the model gives one output per crop (CropGroup), so
    each crop gets its face's target and weight.
    """
    weights = None
    if config.class_weights:
        by_class = class_weights_for(labels)
        weights = np.array([by_class.get(c, 1.0) for c in range(NUM_CLASSES)], np.float32)[labels]
    crops = config.training_crops
    if crops > 1:
        targets = np.repeat(targets[:, None, :], crops, axis=1)
        weights = None if weights is None else np.repeat(weights[:, None], crops, axis=1)
    return targets, weights


class MixedBatches(keras.utils.PyDataset):
    """Shuffled training batches blended by a MixUp or CutMix layer: pixels, targets and face weights alike."""

    def __init__(self, images: np.ndarray, targets: np.ndarray, batch_size: int, layer, seed: int,
                 weights: np.ndarray | None = None):
        super().__init__()
        self.images, self.targets, self.batch_size, self.layer, self.weights = images, targets, batch_size, layer, weights
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(images))

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index: int):
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        labels = self.targets[rows]
        if self.weights is not None:  # an extra column, so a face's weight blends exactly as its target does
            labels = np.concatenate([labels, self.weights[rows, None]], axis=1)
        mixed = self.layer({"images": self.images[rows], "labels": labels}, training=True)
        images, labels = keras.ops.convert_to_numpy(mixed["images"]), keras.ops.convert_to_numpy(mixed["labels"])
        if self.weights is None:
            return images, labels
        return images, labels[:, :-1], labels[:, -1]

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.images))


def training_batches(config: TrainConfig, images: np.ndarray, targets: np.ndarray, labels: np.ndarray, seed: int) -> dict:
    """`fit` arguments for the training data: arrays, or MixedBatches when the config mixes faces."""
    targets, weights = targets_and_weights(config, targets, labels)
    if config.mixing == "none":
        return dict(x=images, y=targets, sample_weight=weights, batch_size=config.batch_size, shuffle=True)
    layer = mixing_layer(config.mixing, config.mixing_strength, seed=seed)
    return dict(x=MixedBatches(images, targets, config.batch_size, layer, seed, weights))


def load_teacher(config: TrainConfig) -> keras.Model:
    """The model of `config.teacher`, checked to exist (distillation)."""
    if not Path(config.teacher).is_file():
        raise FerError(f"{config.teacher}: teacher model not found; --teacher takes a trained .keras model "
                       "or an ensemble saved by `fer ensemble`")
    return load_model(config.teacher)


def teacher_probabilities(config: TrainConfig, teacher: keras.Model | None, train_split: Split, saved: Path,
                           verbose: int) -> np.ndarray | None:
    """The teacher's probabilities for the training faces: predicted once, then read back on --resume."""
    if not config.teacher:
        return None
    if teacher is None:
        probabilities = np.load(saved)
        if probabilities.shape == (len(train_split), NUM_CLASSES):
            return probabilities
        teacher = load_teacher(config)
    # Averaged with the mirror image, so the targets do not depend on a face's orientation,
    # which the flip augmentation changes at random anyway.
    probabilities = predict_probabilities(teacher, train_split.images, tta="flip")
    with atomic_path(saved) as temporary, open(temporary, "wb") as handle:
        np.save(handle, probabilities)
    if verbose:
        agreement = float(np.mean(np.argmax(probabilities, axis=1) == train_split.labels))
        print(f"Teacher {config.teacher}: agrees with {agreement:.2%} of the training labels; "
              f"targets are {1 - config.distillation:g} x labels + {config.distillation:g} x its probabilities", flush=True)
    return probabilities
