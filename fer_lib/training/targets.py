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
from fer_lib.models.augmentation import mixing_layer
from fer_lib.models.saving import load_model
from fer_lib.training.config import TrainConfig


def training_targets(labels: np.ndarray, teacher_probabilities: np.ndarray | None = None,
                     distillation: float = 0.5, num_classes: int = 7, label_targets: np.ndarray | None = None) -> np.ndarray:
    """One-hot targets (or `label_targets`, FER+'s from its votes), mixed with a teacher's probabilities
    when given (knowledge distillation).

    The teacher's probabilities carry what one-hot labels cannot: which faces are ambiguous
    and between which emotions, the soft knowledge that lets one small model approach an ensemble.
    """
    targets = (keras.utils.to_categorical(labels, num_classes) if label_targets is None else label_targets).astype(np.float32)
    if teacher_probabilities is None:
        return targets
    return ((1.0 - distillation) * targets + distillation * teacher_probabilities).astype(np.float32)


def vote_targets(config: TrainConfig, split: Split) -> tuple[Split, np.ndarray | None]:
    """The training faces and their targets under `config.label_mode`: FER+'s votes make them,
    and the faces the mode drops are left out. Without votes (FER2013) the labels are the targets."""
    if split.votes is None:
        if config.label_mode != "majority":
            raise FerError(f"label_mode {config.label_mode} trains on annotators' votes, which this dataset has none of; "
                           "use FER+ (--data with FER2013Train/ and label.csv) or --label-mode majority")
        return split, None
    from fer_lib.data.votes import label_targets

    targets, kept = label_targets(split.votes, config.label_mode, config.majority_rule)
    kept_split = split.take(kept)
    kept_split.labels = np.argmax(targets[kept], axis=1)  # what class weights and the stratified subset count
    return kept_split, targets[kept]


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
        weights = np.array([by_class.get(c, 1.0) for c in range(targets.shape[-1])], np.float32)[labels]
    crops = config.training_crops
    if crops > 1:
        targets = np.repeat(targets[:, None, :], crops, axis=1)
        weights = None if weights is None else np.repeat(weights[:, None], crops, axis=1)
    return targets, weights


class ShuffledBatches(keras.utils.PyDataset):
    """Training batches of `images` in an order drawn afresh (from `seed`'s generator) every epoch; a subclass
    makes batch `index` of the faces `self.rows(index)`."""

    def __init__(self, images: np.ndarray, batch_size: int, seed: int):
        super().__init__()
        self.images, self.batch_size = images, batch_size
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(images))

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def rows(self, index: int) -> np.ndarray:
        return self.order[index * self.batch_size:(index + 1) * self.batch_size]

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.images))


class MixedBatches(ShuffledBatches):
    """Shuffled training batches blended by a MixUp or CutMix layer: pixels, targets and face weights alike."""

    def __init__(self, images: np.ndarray, targets: np.ndarray, batch_size: int, layer, seed: int,
                 weights: np.ndarray | None = None):
        super().__init__(images, batch_size, seed)
        self.targets, self.layer, self.weights = targets, layer, weights

    def __getitem__(self, index: int):
        rows = self.rows(index)
        labels = self.targets[rows]
        if self.weights is not None:  # an extra column, so a face's weight blends exactly as its target does
            labels = np.concatenate([labels, self.weights[rows, None]], axis=1)
        mixed = self.layer({"images": self.images[rows], "labels": labels}, training=True)
        images, labels = keras.ops.convert_to_numpy(mixed["images"]), keras.ops.convert_to_numpy(mixed["labels"])
        if self.weights is None:
            return images, labels
        return images, labels[:, :-1], labels[:, -1]


class DrawnLabels(ShuffledBatches):
    """Shuffled training batches whose one-hot targets are drawn afresh from each face's target distribution
    (FER+'s `probability` mode: over the epochs a face is labelled as often as its annotators chose each emotion)."""

    def __init__(self, images: np.ndarray, distributions: np.ndarray, batch_size: int, seed: int,
                 weights: np.ndarray | None = None, crops: int = 1):
        super().__init__(images, batch_size, seed)
        self.weights, self.crops = weights, crops
        self.cumulative = np.cumsum(distributions, axis=1)
        self.cumulative /= self.cumulative[:, -1:]

    def __getitem__(self, index: int):
        rows = self.rows(index)
        drawn = (self.rng.random((rows.size, 1)) > self.cumulative[rows]).sum(axis=1)
        targets = np.eye(self.cumulative.shape[1], dtype=np.float32)[np.minimum(drawn, self.cumulative.shape[1] - 1)]
        weights = None if self.weights is None else self.weights[rows]
        if self.crops > 1:
            targets = np.repeat(targets[:, None, :], self.crops, axis=1)
            weights = None if weights is None else np.repeat(weights[:, None], self.crops, axis=1)
        return (self.images[rows], targets) if weights is None else (self.images[rows], targets, weights)


def training_batches(config: TrainConfig, images: np.ndarray, targets: np.ndarray, labels: np.ndarray, seed: int) -> dict:
    """`fit` arguments for the training data: arrays, MixedBatches when the config mixes faces, or
    DrawnLabels for FER+'s `probability` label mode."""
    if config.label_mode == "probability":
        weights = targets_and_weights(config, targets[:, :1], labels)[1] if config.class_weights else None
        if weights is not None and weights.ndim > 1:
            weights = weights[:, 0]
        return dict(x=DrawnLabels(images, targets, config.batch_size, seed, weights, config.training_crops))
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
        if probabilities.shape == (len(train_split), len(train_split.classes)):
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
