"""A model's probabilities for a batch of faces, with test-time augmentation (flip, ten crops) averaged."""

from __future__ import annotations

import numpy as np

from fer_lib.backend import keras
from fer_lib.data.preprocessing import as_model_input
from fer_lib.errors import FerError
from fer_lib.models.ensemble import ensemble_members
from fer_lib.models.layers import TrainingCrop
from fer_lib.models.stats import leaf_layers

TTA_MODES = ("none", "flip", "tencrop")
TENCROP_SIZE = 42  # crops of 42 of the 48 pixels: the shifts training augmentation covers


def tta_views(images: np.ndarray, mode: str = "none", model_crop: int | None = None) -> list[np.ndarray]:
    """The views of (N, 48, 48) uint8 faces averaged by test-time augmentation.

    flip: the face and its mirror image. tencrop: four corner crops and the centre crop,
    each resized back to 48x48, and their mirror images. For a model that classifies the
    central `model_crop` pixels (a TrainingCrop layer), tencrop instead moves each face so
    that this central crop is one of the five `model_crop`-pixel crops, unresized: the
    crops it was trained on, at their scale.
    """
    if mode not in TTA_MODES:
        raise ValueError(f"unknown test-time augmentation {mode!r}; choose one of {', '.join(TTA_MODES)}")
    if mode == "none":
        return [images]
    if mode == "flip":
        return [images, images[:, :, ::-1]]
    if model_crop:
        return _shifted_crop_views(images, model_crop)
    size, crop = images.shape[1], TENCROP_SIZE
    offsets = [(0, 0), (0, size - crop), (size - crop, 0), (size - crop, size - crop), ((size - crop) // 2, (size - crop) // 2)]
    views = []
    for top, left in offsets:
        # One batched resize per crop position, not a Python loop over faces.
        cropped = images[:, top:top + crop, left:left + crop, None].astype(np.float32)
        resized = keras.ops.convert_to_numpy(keras.ops.image.resize(cropped, (size, size), interpolation="bilinear"))
        resized = np.clip(np.rint(resized[..., 0]), 0, 255).astype(np.uint8)
        views += [resized, resized[:, :, ::-1]]
    return views


def _shifted_crop_views(images: np.ndarray, crop: int) -> list[np.ndarray]:
    """Ten views whose central `crop` pixels (as TrainingCrop takes them) are the corner and centre crops, and of the mirrors."""
    size = images.shape[1]
    low = (size - crop) // 2  # where TrainingCrop's central crop starts
    # Edge-padded, so a model without the crop layer (in a rebalanced ensemble) sees shifted faces, not wrapped ones.
    pad = ((0, 0), (low, size - crop - low), (low, size - crop - low))
    # A view cut at (top, left) of the padded face has the face's crop at (top, left) in its centre.
    offsets = [(0, 0), (0, size - crop), (size - crop, 0), (size - crop, size - crop), (low, low)]
    padded, mirrored = np.pad(images, pad, mode="edge"), np.pad(images[:, :, ::-1], pad, mode="edge")
    return [p[:, top:top + size, left:left + size] for top, left in offsets for p in (padded, mirrored)]


def _crop_sizes(model: keras.Model) -> set[int]:
    """The sizes of the TrainingCrop layers in `model` and everything nested in it."""
    return {layer.size for layer in leaf_layers(model) if isinstance(layer, TrainingCrop)}


def model_crop_size(model: keras.Model) -> int | None:
    """The central crop a model classifies (its TrainingCrop layer, in any member), or None.

    A classifier that is not a keras.Model (an exported file, fer_lib.inference.exported) has no layers to
    look in: its `tencrop_crop` says the crop its file records, or raises FerError when it records none.
    """
    if not isinstance(model, keras.Model):
        return model.tencrop_crop
    found = _crop_sizes(model)
    if len(found) > 1:
        raise FerError(f"{model.name}: it joins models that classify central crops of different sizes "
                       f"({', '.join(map(str, sorted(found)))} pixels) behind one output, so no ten crops suit them all; "
                       "use --tta flip or none")
    return found.pop() if found else None


def predict_views(model: keras.Model, images: np.ndarray, batch_size: int = 256, tta: str = "none",
                  predict=None) -> list[np.ndarray]:
    """The model's probabilities (N, classes) for each TTA view of (N, 48, 48) uint8 images, not yet averaged.

    `predict(model, faces)` gives a model's (or an ensemble member's) probabilities for (N, 48, 48) uint8
    faces; by default `model.predict` in batches of `batch_size`. Inference passes its own (batched
    `predict_on_batch`, which is faster for a photo's few faces), so photos get these very views and means.
    """
    if predict is None:
        def predict(classifier, faces):
            return classifier.predict(as_model_input(faces), batch_size=batch_size, verbose=0)

    members = ensemble_members(model) if tta == "tencrop" and isinstance(model, keras.Model) else None
    if members and _crop_sizes(model):
        # Each member gets its own ten crops (a crop model its unresized crops, the others resized ones),
        # averaged view by view: the ensemble's mean, without giving whole-face members shifted faces.
        per_member = [predict_views(member, images, batch_size, tta, predict) for member in members]
        return [sum(views) / len(members) for views in zip(*per_member)]
    crop = model_crop_size(model) if tta == "tencrop" else None
    views = tta_views(images, tta, model_crop=crop)
    # One call for all views: a photo's face then costs one model call, not ten.
    return np.split(np.asarray(predict(model, np.concatenate(views)), np.float64), len(views))


def one_graph_tencrop_crop(model: keras.Model) -> int | None:
    """The crop tencrop's views of `model` are made for (`model_crop_size`), when the whole model can take the
    same ten views, as a file exported from it must; FerError for an ensemble that joins members classifying a
    central crop with others that take the whole face, which `predict_views` gives ten views of their own each."""
    crop = model_crop_size(model)
    members = ensemble_members(model)
    if members and crop is not None:
        for member in members:
            if model_crop_size(member) != crop:
                raise FerError(f"{model.name}: it joins models that classify a {crop}-pixel central crop with "
                               "models that take the whole face, which ten-crop gives views of their own each")
            one_graph_tencrop_crop(member)
    return crop


def predict_probabilities(model: keras.Model, images: np.ndarray, batch_size: int = 256, tta: str = "none",
                          predict=None) -> np.ndarray:
    """Softmax probabilities (N, classes) for (N, 48, 48) uint8 images, averaged over the TTA views
    (`predict` as for `predict_views`)."""
    if len(images) == 0:
        return np.zeros((0, int(model.output_shape[-1])), np.float32)
    views = predict_views(model, images, batch_size, tta, predict)
    return (sum(views) / len(views)).astype(np.float32)
