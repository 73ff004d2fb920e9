"""Stage 2, the models: Keras networks that map a 48x48 face to seven emotion probabilities.

- `registry`: every architecture by name (`build_model("fer_cnn")`)
- `architectures`: the seed CNN and its plain-CNN family, fer_cnn, EfficientNet-Lite
- `layers`: our own Keras layers (ten crops, prior correction, fused batch norm)
- `augmentation`: augmentation as layers inside the model; MixUp and CutMix
- `saving`: saving with the class list inside, and safe loading
- `serving`: the float32 copy that inference runs, whatever precision a model was trained in
- `ensemble`: several saved models averaged as one
- `pretrained`, `efficientnet_lite`, `torch_checkpoint`: ImageNet backbones from PyTorch checkpoints
- `stats`: parameters, multiply-adds and speed
"""

from fer_lib.lazy import package_attributes

EXPORTS = {
    "METADATA_MEMBER": "fer_lib.models.saving",
    "MODEL_BUILDERS": "fer_lib.models.registry",
    "register_model": "fer_lib.models.registry",
    "model_names": "fer_lib.models.registry",
    "build_model": "fer_lib.models.registry",
    "build_cnn": "fer_lib.models.architectures",
    "build_seed_cnn": "fer_lib.models.architectures",
    "FER_CNN_HEADS": "fer_lib.models.architectures",
    "build_fer_cnn": "fer_lib.models.architectures",
    "build_efficientnet_lite": "fer_lib.models.architectures",
    "save_model": "fer_lib.models.saving",
    "read_model_classes": "fer_lib.models.saving",
    "load_model": "fer_lib.models.saving",
    "load_for_inference": "fer_lib.models.serving",
    "float32_copy": "fer_lib.models.serving",
    "serving_model": "fer_lib.models.serving",
}
MOVED = {
    "INPUT_SHAPE": "fer_lib.labels",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = package_attributes(__name__, EXPORTS, MOVED)
