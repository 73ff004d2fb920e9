"""Pack a dataset's training faces small enough to travel to a GPU machine, and unpack them there.

FER2013's train JPEGs zip to about 56 MiB, which with the Keras wheels and the repository
is just over the 64 MiB that may travel to the lent GPU machines. Packed here as decoded
48x48 pixels with xz they take about 49 MiB, and unpacking writes lossless PNGs in the
Kaggle layout, so the machine trains on the same faces, pixel for pixel (the file order
differs, so its seeded validation split is a different stratified 10% of them).

    python scripts/gpu_data.py pack --data ../shared/datasets/fer2013 --out .carry/fer2013_train.npy.xz
    python scripts/gpu_data.py unpack .carry/fer2013_train.npy.xz --out /tmp/fer   # then: fer train --data /tmp/fer --no-eval
"""

from __future__ import annotations

import argparse
import io
import lzma
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def pack(data: str, out: str) -> None:
    from fer_lib.data import load_dataset

    dataset = load_dataset(data)
    # The GPU machine carves its own validation split from these, so send both.
    images = np.concatenate([dataset.train.images, dataset.val.images])
    labels = np.concatenate([dataset.train.labels, dataset.val.labels]).astype(np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, images=images, labels=labels)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_bytes(lzma.compress(buffer.getvalue(), preset=6))
    print(f"{out}: {len(images)} training faces, {Path(out).stat().st_size / 2**20:.1f} MiB")


def unpack(packed: str, out: str) -> None:
    from PIL import Image

    from fer_lib.labels import EMOTIONS

    arrays = np.load(io.BytesIO(lzma.decompress(Path(packed).read_bytes())))
    images, labels = arrays["images"], arrays["labels"]
    for emotion in EMOTIONS:
        (Path(out) / "train" / emotion).mkdir(parents=True, exist_ok=True)
    for i, (pixels, label) in enumerate(zip(images, labels)):
        Image.fromarray(pixels, "L").save(Path(out) / "train" / EMOTIONS[label] / f"{i:05d}.png")
    print(f"{out}/train: {len(images)} faces as PNG")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    pack_args = commands.add_parser("pack", help="pack the train split (train + validation) of --data")
    pack_args.add_argument("--data", required=True)
    pack_args.add_argument("--out", required=True)
    unpack_args = commands.add_parser("unpack", help="write a packed file as train/<emotion>/*.png under --out")
    unpack_args.add_argument("packed")
    unpack_args.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.command == "pack":
        pack(args.data, args.out)
    else:
        unpack(args.packed, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
