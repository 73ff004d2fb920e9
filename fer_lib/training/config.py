"""Run configuration: one dataclass per training run, saved as JSON next to its outputs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from fer_lib.artifacts import write_text_atomic
from fer_lib.models.augmentation import MIXINGS, AugmentConfig

OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("plateau", "cosine", "none")
LOSSES = ("crossentropy", "focal")
LR_MONITORS = ("val_loss", "val_accuracy")


@dataclass
class TrainConfig:
    """Everything that determines a training run."""

    model: str = "seed_cnn"
    data: str | None = None
    out: str = "runs/seed_cnn"
    epochs: int = 30
    batch_size: int = 64
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    weight_decay: float | None = None  # None: the optimizer's default (1e-4 for adamw, none otherwise)
    label_smoothing: float = 0.0
    loss: str = "crossentropy"  # crossentropy | focal
    class_weights: bool = False
    lr_schedule: str = "plateau"  # plateau | cosine | none
    lr_factor: float = 0.5
    lr_patience: int = 2
    lr_monitor: str = "val_loss"  # what the plateau schedule watches: val_loss or val_accuracy
    early_stopping_patience: int = 5
    val_fraction: float = 0.1  # 0: no validation; train on every training face and keep the final epoch
    max_train_images: int | None = None
    precision: str = "auto"
    seed: int = 1234
    augment: AugmentConfig | None = None  # None: the model's default augmentation
    model_options: dict = field(default_factory=dict)
    init_from: str | None = None  # a .keras model whose weights start the run (fine-tuning)
    mixing: str = "none"  # none | mixup | cutmix: blend pairs of training faces and their targets
    mixing_strength: float | None = None  # MixUp's alpha (default 0.2) or CutMix's factor (default 1.0)
    ema_momentum: float | None = None  # weight averaging: validate, checkpoint and publish an EMA of the weights
    teacher: str | None = None  # a .keras model (or ensemble) whose predictions soften the training targets
    distillation: float = 0.5  # weight of the teacher's probabilities in the targets, against the labels
    time_budget: float | None = None  # seconds for the whole run: as many epochs as fit (at most `epochs`), schedule fitted to them
    label_mode: str = "majority"  # FER+ votes: majority | probability | crossentropy | multi_target (fer_lib.data.votes)
    majority_rule: str = "official"  # FER+ majority labels: official (microsoft/FERPlus) | top_vote (the paper's)
    data_parallel: bool = False  # JAX: every batch split over this machine's accelerators (keras.distribution.DataParallel)
    tensorboard: bool = True  # TensorBoard logs in <out>/tensorboard/ (fer_lib.training.tracking)
    mlflow_uri: str | None = None  # an MLflow tracking URI to log the run to (fer_lib.training.mlflow_tracking); None: none

    def validate(self) -> None:
        """Raise ValueError naming the first bad value."""
        from fer_lib.models.layers import CROPS_PER_FACE
        from fer_lib.models.registry import MODEL_BUILDERS
        from fer_lib.training.precision import PRECISIONS

        if self.model not in MODEL_BUILDERS:
            raise ValueError(f"unknown model {self.model!r}; choose one of {', '.join(sorted(MODEL_BUILDERS))}")
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.weight_decay is not None and self.weight_decay < 0:
            raise ValueError(f"weight_decay must be 0 or more, got {self.weight_decay}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.mixing not in MIXINGS:
            raise ValueError(f"unknown mixing {self.mixing!r}; choose one of {', '.join(MIXINGS)}")
        if self.mixing_strength is not None and self.mixing == "none":
            raise ValueError(f"mixing_strength {self.mixing_strength} given without mixing; choose mixing mixup or cutmix")
        if self.mixing_strength is not None and not 0 < self.mixing_strength <= (1 if self.mixing == "cutmix" else 10):
            raise ValueError(f"mixing_strength must be in (0, {1 if self.mixing == 'cutmix' else 10}] for {self.mixing}, "
                             f"got {self.mixing_strength}")
        if self.ema_momentum is not None and not 0 < self.ema_momentum < 1:
            raise ValueError(f"ema_momentum must be in (0, 1), e.g. 0.999, got {self.ema_momentum}")
        if not 0 < self.distillation <= 1:
            raise ValueError(f"distillation must be in (0, 1], got {self.distillation}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"unknown lr_schedule {self.lr_schedule!r}; choose one of {', '.join(LR_SCHEDULES)}")
        if not 0 <= self.val_fraction < 0.5:
            raise ValueError(f"val_fraction must be in [0, 0.5), got {self.val_fraction} (0: no validation split)")
        if self.val_fraction == 0 and self.lr_schedule == "plateau":
            raise ValueError("lr_schedule plateau watches the validation loss, and val_fraction 0 holds out none; "
                             "choose lr_schedule cosine or none, or a val_fraction above 0")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if self.lr_monitor not in LR_MONITORS:
            raise ValueError(f"unknown lr_monitor {self.lr_monitor!r}; choose one of {', '.join(LR_MONITORS)}")
        crops = self.augment.crops if self.augment else 1
        if crops not in CROPS_PER_FACE:
            raise ValueError(f"augment.crops must be one of {', '.join(map(str, CROPS_PER_FACE))}, got {crops}")
        if crops > 1 and not self.augment.crop:
            raise ValueError(f"augment.crops {crops} takes that many crops of each face: set augment.crop to their size (e.g. 40)")
        if crops > 1 and self.mixing != "none":
            raise ValueError(f"mixing {self.mixing} blends whole faces, augment.crops {crops} trains on crops of them; use one of the two")
        from fer_lib.data.votes import LABEL_MODES, MAJORITY_RULES

        if self.label_mode not in LABEL_MODES:
            raise ValueError(f"unknown label_mode {self.label_mode!r}; choose one of {', '.join(LABEL_MODES)}")
        if self.majority_rule not in MAJORITY_RULES:
            raise ValueError(f"unknown majority_rule {self.majority_rule!r}; choose one of {', '.join(MAJORITY_RULES)}")
        if self.label_mode == "probability" and self.mixing != "none":
            raise ValueError("label_mode probability draws each face's label per batch; it does not combine with mixing")
        if self.time_budget is not None and not self.time_budget > 0:
            raise ValueError(f"time_budget must be a positive number of seconds, got {self.time_budget}")
        if self.max_train_images is not None and self.max_train_images < 7:
            raise ValueError(f"max_train_images must be at least 7, got {self.max_train_images}")

    @property
    def training_crops(self) -> int:
        """The model's outputs per training face (AugmentConfig.training_crops; 1 without augmentation)."""
        return self.augment.training_crops if self.augment else 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config key(s): {', '.join(unknown)}")
        values = dict(values)
        if isinstance(values.get("augment"), dict):
            values["augment"] = AugmentConfig.from_dict(values["augment"])
        return cls(**values)

    def save(self, path: str | Path) -> None:
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))
