"""scripts/gpu_data.py: the training faces packed for a GPU machine come back pixel for pixel."""

from __future__ import annotations

import numpy as np

from fer_lib.data.dataset import load_dataset


def _rows(images, labels):
    return sorted((int(label), image.tobytes()) for image, label in zip(images, labels))


def test_pack_then_unpack_gives_the_same_training_faces(synthetic_root, tmp_path, load_script):
    gpu_data = load_script("gpu_data")
    packed = tmp_path / "carry" / "train.npy.xz"
    assert gpu_data.main(["pack", "--data", str(synthetic_root), "--out", str(packed)]) == 0
    assert gpu_data.main(["unpack", str(packed), "--out", str(tmp_path / "fer")]) == 0
    original = load_dataset(synthetic_root, use_cache=False)
    unpacked = load_dataset(tmp_path / "fer", use_cache=False, require_test=False)
    assert len(unpacked.test) == 0
    sent = _rows(np.concatenate([original.train.images, original.val.images]),
                 np.concatenate([original.train.labels, original.val.labels]))
    received = _rows(np.concatenate([unpacked.train.images, unpacked.val.images]),
                     np.concatenate([unpacked.train.labels, unpacked.val.labels]))
    assert received == sent
