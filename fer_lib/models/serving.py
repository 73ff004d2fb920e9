"""Serving a model in float32, whatever precision it was trained in.

A model trained in mixed bfloat16 (`fer train --precision auto` on a CPU with bf16
instructions) keeps that dtype policy in its .keras file, and Keras runs it so when it is
loaded. bfloat16 keeps 8 bits of mantissa: its probabilities differ from the float32 ONNX
and TFLite exports by up to a few hundredths, and from one CPU to another (oneDNN's bf16
kernels on Intel, emulation elsewhere). Inference (`predict_expression`, `fer predict`,
`fer evaluate`) therefore runs a float32 copy of the model by default: same weights, every
layer computing in float32, nested models and our own layers included. `precision="trained"`
keeps the policy the model was trained in. Training and resuming load models with
`fer_lib.models.saving.load_model`, which always keeps it.
"""

from __future__ import annotations

import weakref
from pathlib import Path

SERVING_PRECISIONS = ("float32", "trained")
DEFAULT_SERVING_PRECISION = "float32"
_FLOATS = ("float16", "bfloat16", "float32")
# serving_model's float32 copies of the models callers pass, while those models live.
_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def check_serving_precision(precision: str) -> str:
    """`precision` if it is one of SERVING_PRECISIONS, else a one-line FerError."""
    from fer_lib.errors import FerError

    if precision not in SERVING_PRECISIONS:
        raise FerError(f"unknown precision {precision!r}; choose one of {', '.join(SERVING_PRECISIONS)} "
                       "(float32 runs every layer in float32; trained keeps the precision the model was trained in)")
    return precision


def _policy(layer):
    return getattr(layer, "dtype_policy", None)


def lowered_precision(layer) -> bool:
    """True when `layer` computes in a float type below float32 (mixed bfloat16, float16...)."""
    policy = _policy(layer)
    compute = getattr(policy, "compute_dtype", "float32")
    return compute in _FLOATS and compute != "float32"


def float32_config(layer) -> dict:
    """`layer`'s config, with a float32 dtype policy where it computes in bfloat16 or float16.

    Its variables are float32 already (mixed policies keep them so), so the weights carry over.
    Quantized and integer policies are left alone.
    """
    config = layer.get_config()
    if lowered_precision(layer):
        config["dtype"] = "float32"
    return config


def is_float32(model) -> bool:
    """True when no layer of `model`, nested models included, computes below float32."""
    from fer_lib.models.stats import leaf_layers

    return not any(lowered_precision(layer) for layer in leaf_layers(model))


def float32_copy(model):
    """A copy of `model` whose every layer, nested models included, computes in float32; `model` itself when
    it does already. Same weights and class list (`fer_lib.models.saving.model_classes`); FusedBatchNormalization
    and our other layers stay what they are. Nothing is read from a file: the copy is rebuilt from the
    loaded model's config.
    """
    from fer_lib.backend import keras
    from fer_lib.errors import ModelFileError
    from fer_lib.models.saving import _remember_classes

    if is_float32(model):
        return model

    def clone(layer):
        return layer.__class__.from_config(float32_config(layer))

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")  # layers and wrappers built without an explicit dtype
    try:
        copy = keras.models.clone_model(model, clone_function=clone, recursive=True)
    except ValueError as exc:  # a subclassed model, which clone_model cannot rebuild
        raise ModelFileError(f"{model.name}: cannot rebuild the model in float32 ({str(exc).splitlines()[0][:160]}); "
                             "serve it in the precision it was trained in (precision='trained', --precision trained)") from None
    finally:
        keras.config.set_dtype_policy(previous)
    copy.set_weights(model.get_weights())
    recorded = getattr(model, "_fer_classes", None)
    return _remember_classes(copy, recorded) if recorded else copy


def serving_model(model, precision: str = DEFAULT_SERVING_PRECISION):
    """`model` as inference runs it: its float32 copy (`float32_copy`), or `model` itself for "trained".

    The copy of a model is built once and kept while `model` lives (a `predict_expression` call per photo
    does not rebuild it); its weights are copied from `model` again at every call, so a model trained
    further in between is served with its new weights.
    """
    check_serving_precision(precision)
    if precision == "trained" or is_float32(model):
        return model
    copy = _COPIES.get(model)
    if copy is None:
        copy = _COPIES[model] = float32_copy(model)
    else:
        copy.set_weights(model.get_weights())
    return copy


def load_for_inference(path: str | Path, classes=None, precision: str = DEFAULT_SERVING_PRECISION):
    """`fer_lib.models.saving.load_model(path, classes)` (safe mode, checked classes), served in `precision`:
    float32 by default (see the module's docstring), or "trained" for the precision saved in the file."""
    from fer_lib.models.saving import load_model

    check_serving_precision(precision)
    return serving_model(load_model(path, classes), precision)
