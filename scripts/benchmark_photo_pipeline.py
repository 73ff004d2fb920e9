"""A photo end to end, and a batch of photos, with predict_expression: medians, interleaved.

    python scripts/benchmark_photo_pipeline.py --repeats 9 --json docs/benchmarks/photo_pipeline.json
    PYTHONPATH=OLD_CHECKOUT python scripts/benchmark_photo_pipeline.py --public-only   # the same figures for older code

The photo is skimage's astronaut as a 640x480 JPEG (one face), read from its file as a user's
photo is: decode, detect, verify, align, classify. The batch is 100 such files (each shifted,
so no two are alike) in one predict_expression call. The settings (alignment on or off, float32
or the trained precision) take turns within each repeat, so the machine's load touches them
alike; the stages of one photo are timed the same way. `--public-only` times only what older
versions of predict_expression also take (a path, a list of paths), to compare checkouts.
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import os
import shlex
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from benchmark_inference import interleaved_medians  # noqa: E402  (scripts/, beside this one)
from PIL import Image  # noqa: E402

from fer_lib.inference import predict_expression  # noqa: E402

PHOTO_SIZE = (640, 480)
BATCH = 100


def write_photos(folder: Path, count: int) -> list[Path]:
    """`count` 640x480 JPEGs of the astronaut, each shifted sideways a little more."""
    from skimage import data

    base = cv2.resize(np.pad(data.astronaut(), ((0, 0), (64, 64), (0, 0)), mode="edge"), PHOTO_SIZE,
                      interpolation=cv2.INTER_AREA)
    paths = []
    for i in range(count):
        path = folder / f"photo_{i:03d}.jpg"
        Image.fromarray(np.roll(base, 2 * i, axis=1)).save(path, quality=90)
        paths.append(path)
    return paths


def settings_runs(photo: Path, photos: list[Path], public_only: bool) -> dict[str, callable]:
    accepts = inspect.signature(predict_expression).parameters
    variants = {"default": {}}
    if not public_only:
        if "align" in accepts:
            variants["no_align"] = {"align": False}
        if "precision" in accepts:
            variants["trained_precision"] = {"precision": "trained"}
    runs = {}
    for name, options in variants.items():
        runs[f"photo_ms/{name}"] = lambda options=options: predict_expression(str(photo), **options)
        runs[f"batch_ms_per_photo/{name}"] = lambda options=options: predict_expression([str(p) for p in photos], **options)
    return runs


def stage_runs(photo: Path) -> dict[str, callable]:
    """One photo's stages as predict_expression runs them (this checkout's API)."""
    from fer_lib.inference.detection import find_faces
    from fer_lib.inference.photos import classify_faces, decode_image, face_input, load_model_or_default

    decoded = decode_image(str(photo))
    faces = find_faces(decoded.detect)
    model = load_model_or_default(None)
    inputs = np.stack([face_input(decoded.gray, face.box, face.eyes) for face in faces])
    return {
        "stage_ms/decode": lambda: decode_image(str(photo)),
        "stage_ms/detect_and_verify": lambda: find_faces(decoded.detect),
        "stage_ms/crop_and_align": lambda: [face_input(decoded.gray, face.box, face.eyes) for face in faces],
        "stage_ms/classify": lambda: classify_faces(model, inputs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--public-only", action="store_true", help="only what older predict_expression also takes")
    parser.add_argument("--json", metavar="PATH", help="write the figures here")
    args = parser.parse_args(argv)
    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        photos = write_photos(Path(folder), BATCH)
        runs = settings_runs(photos[0], photos, args.public_only)
        batch_runs = {name: run for name, run in runs.items() if name.startswith("batch")}
        single_runs = {name: run for name, run in runs.items() if not name.startswith("batch")}
        if not args.public_only:
            single_runs.update(stage_runs(photos[0]))
        seconds = interleaved_medians(single_runs, args.repeats)
        seconds.update({name: value / BATCH for name, value in interleaved_medians(batch_runs, max(3, args.repeats // 3)).items()})
    figures = {name: round(1000 * value, 2) for name, value in seconds.items()}
    for name, value in figures.items():
        print(f"{name:36s} {value:8.2f}")
    if args.json:
        from fer_lib.artifacts import write_json_atomic
        from fer_lib.models.stats import cpu_description

        write_json_atomic(args.json, {
            "date": datetime.date.today().isoformat(), "hardware": cpu_description(),
            "load_average": [round(load_at_start, 1), round(os.getloadavg()[0], 1)],
            "command": "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])]),
            "photo": f"{PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEG, one face", "batch": BATCH, "repeats": args.repeats,
            "figures_ms": figures})
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
