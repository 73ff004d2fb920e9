"""How a model learns: the optimizer, the loss, the metrics and the compiled training step of a TrainConfig."""

from __future__ import annotations

from fer_lib.backend import keras
from fer_lib.training.config import TrainConfig

NO_DECAY_VARIABLES = ["gamma", "beta", "bias"]  # batch-norm scale/offset, layer biases


def make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    # Keras keeps the moving average itself; SwapEMAWeights (make_callbacks) puts it in the model.
    ema = dict(use_ema=True, ema_momentum=config.ema_momentum) if config.ema_momentum else {}
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(config.learning_rate, momentum=0.9, nesterov=True,
                                         weight_decay=config.weight_decay or None, **ema)
    elif config.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(config.learning_rate,
                                           weight_decay=1e-4 if config.weight_decay is None else config.weight_decay, **ema)
    else:
        optimizer = keras.optimizers.Adam(config.learning_rate, weight_decay=config.weight_decay or None, **ema)
    if optimizer.weight_decay:
        # Decay only kernels: shrinking batch-norm scales/offsets and biases regularises nothing
        # and, at the large decays AdamW needs (its decay is multiplied by the learning rate), hurts.
        optimizer.exclude_from_weight_decay(var_names=NO_DECAY_VARIABLES)
    return optimizer


@keras.saving.register_keras_serializable(package="fer_lib")
class MultiTargetLoss(keras.losses.Loss):
    """FER+'s multi_target mode: -log of the probability the model puts on any emotion the annotators
    chose (30% of the votes or more), so that any of them counts as right (Barsoum et al. 2016)."""

    def __init__(self, name: str = "multi_target", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        chosen = keras.ops.cast(y_true > 0, y_pred.dtype)
        return -keras.ops.log(keras.ops.clip(keras.ops.sum(chosen * y_pred, axis=-1), 1e-7, 1.0))


def make_loss(config: TrainConfig) -> keras.losses.Loss:
    if config.label_mode == "multi_target":
        return MultiTargetLoss()
    if config.loss == "focal":
        # gamma 2 down-weights the easy, confident faces (mostly happy and neutral); alpha 1 because
        # Keras' default 0.25 is a binary-detection balance that here only scales the loss down.
        return keras.losses.CategoricalFocalCrossentropy(gamma=2.0, alpha=1.0, label_smoothing=config.label_smoothing)
    return keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)


def jit_compile_choice() -> bool | str:
    """`model.compile`'s jit_compile: always XLA on JAX, whose steps otherwise run op by op
    (`augmentation_layers` says why Keras' "auto" would not); Keras' choice elsewhere."""
    return True if keras.backend.backend() == "jax" else "auto"


def compile_for_training(model: keras.Model, config: TrainConfig) -> keras.Model:
    """Compile with the config's optimizer and loss and the project's metrics (accuracy, top-2)."""
    model.compile(
        optimizer=make_optimizer(config),
        loss=make_loss(config),
        metrics=["accuracy", keras.metrics.TopKCategoricalAccuracy(k=2, name="top2_accuracy")],
        jit_compile=jit_compile_choice(),
    )
    if config.training_crops > 1:
        _build_for_training_crops(model, config.training_crops)
    return model


def _build_for_training_crops(model: keras.Model, crops: int) -> None:
    """Build a ten-crop model's loss and metrics for its training output, one row per crop.

    Keras builds them on the first fit from the model's inference output (one row per face),
    which the per-crop targets do not match; on JAX that fails. Built here, symbolically, from
    the training output, fit finds them built and leaves them.
    """
    from keras.src.backend import compute_output_spec

    x = keras.KerasTensor((1, *model.input_shape[1:]), "float32")
    y = keras.KerasTensor((1, crops, model.output_shape[-1]), "float32")
    y_pred = compute_output_spec(model, x, training=True)
    compute_output_spec(model.compute_metrics, x, y, y_pred, sample_weight=None)
    compute_output_spec(model._compute_loss, x, y, y_pred, sample_weight=None, training=False)
