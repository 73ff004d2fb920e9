"""Ensembles of saved models as one Keras model that averages the members' probabilities.

The result is an ordinary `.keras` file: `fer evaluate`, `predict_expression`, TTA and the
results table treat it like any other model.
"""

from __future__ import annotations

from pathlib import Path

from fer_lib.artifacts import check_output_file
from fer_lib.backend import keras
from fer_lib.errors import FerError
from fer_lib.labels import INPUT_SHAPE
from fer_lib.models.saving import load_model, save_model


def build_ensemble(members: list[keras.Model], name: str = "ensemble") -> keras.Model:
    """One model whose output is the mean of `members`' softmax outputs (all take 48x48x1 pixels)."""
    if len(members) < 2:
        raise FerError(f"an ensemble needs at least 2 models, got {len(members)}")
    inputs = keras.Input(shape=INPUT_SHAPE, name="pixels")
    outputs = []
    for i, member in enumerate(members, start=1):
        # Wrapping gives each member a unique name, which the saved file needs; layers are shared, not copied.
        renamed = keras.Model(member.input, member.output, name=f"member{i}_{member.name}")
        outputs.append(renamed(inputs))
    mean = keras.layers.Average(dtype="float32", name="emotion")(outputs)
    return keras.Model(inputs, mean, name=name)


def ensemble_members(model: keras.Model) -> list[keras.Model] | None:
    """The members of a model made by `build_ensemble` (saved and loaded too), or None for any other model."""
    members = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    others = [layer for layer in model.layers if not isinstance(layer, (keras.Model, keras.layers.InputLayer))]
    if len(members) >= 2 and len(others) == 1 and isinstance(others[0], keras.layers.Average):
        return members
    return None


def ensemble_files(model_paths: list[str | Path], out: str | Path, overwrite: bool = False) -> Path:
    """Load the saved models (each checked like any model file), average them and save the ensemble to `out`."""
    out = Path(out)
    if out.suffix != ".keras":
        raise FerError(f"{out}: the ensemble is saved as a .keras file; give a name ending in .keras")
    if out.resolve() in {Path(p).resolve() for p in model_paths}:
        raise FerError(f"{out} is one of the ensemble's members; save the ensemble under another name")
    check_output_file(out, "--out", overwrite)
    if len({Path(p).resolve() for p in model_paths}) != len(model_paths):
        raise FerError("the same model file is listed twice; an ensemble of copies only repeats one model")
    members = [load_model(p) for p in model_paths]
    return save_model(build_ensemble(members), out)
