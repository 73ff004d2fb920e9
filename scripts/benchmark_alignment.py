"""Tilted faces: the model's accuracy with and without eye alignment, per tilt angle.

    python scripts/benchmark_alignment.py --data ../shared/datasets/ferplus --faces 400 \
        --json docs/benchmarks/alignment.json

Each test face (48x48, upright as in FER2013) is upscaled and pasted into a 640x480 scene
(skimage's people-free photos), and the scene is turned about the face's centre by each
angle. The detector runs once per scene; the faces it finds are classified cropped upright
(`--no-align`) and turned so that their eyes are level, and, for the alignment threshold
sweep, with each smallest tilt that gets turned (`--min-degrees`). Accuracy counts a face
the detector missed as wrong; "found" says how many it found. The model defaults to the
packaged one that predicts the data's classes.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from fer_lib.artifacts import write_json_atomic  # noqa: E402
from fer_lib.data.dataset import dataset_classes, load_eval_split  # noqa: E402
from fer_lib.data.preprocessing import array_to_grayscale, to_face_array  # noqa: E402
from fer_lib.inference import alignment, detection  # noqa: E402
from fer_lib.inference.photos import classifier_classes, classify_faces, load_model_or_default  # noqa: E402
from fer_lib.models.stats import cpu_description  # noqa: E402

ANGLES = (0, 15, -15, 30, -30, 45, -45)
SCENE_BACKGROUNDS = ("coffee", "rocket", "chelsea", "hubble_deep_field")
SCENE_SIZE = (640, 480)


def backgrounds() -> list[np.ndarray]:
    from skimage import data

    return [cv2.resize(detection.as_detection_rgb(getattr(data, name)()), SCENE_SIZE, interpolation=cv2.INTER_AREA)
            for name in SCENE_BACKGROUNDS]


def tilted_scene(face: np.ndarray, background: np.ndarray, side: int, centre: tuple[int, int], degrees: float) -> np.ndarray:
    """`face` upscaled to `side` px at `centre` of `background`, the scene turned by `degrees` about that centre."""
    scene = background.copy()
    x, y = centre[0] - side // 2, centre[1] - side // 2
    scene[y:y + side, x:x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_LINEAR)[:, :, None]
    if degrees == 0:
        return scene
    turn = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), degrees, 1.0)
    return cv2.warpAffine(scene, turn, SCENE_SIZE, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def matching_face(faces: list[detection.Detection], centre: tuple[int, int], side: int) -> detection.Detection | None:
    """The detected face whose box centre lies within a third of the face's side of `centre`, nearest first."""
    def distance(face):
        x, y, w, h = face.box
        return np.hypot(x + w / 2 - centre[0], y + h / 2 - centre[1])

    near = [face for face in faces if distance(face) <= side / 3 and 0.5 <= face.box[2] / side <= 2.0]
    return min(near, key=distance) if near else None


def crop_inputs(gray: np.ndarray, face: detection.Detection, min_degrees: list[float]) -> dict[str, np.ndarray]:
    """The 48x48 input for each way of cropping: upright, and aligned with each threshold."""
    inputs = {"upright": to_face_array(alignment.rotated_crop(gray, face.box, 0.0))}
    for threshold in min_degrees:
        angle = alignment.alignment_angle(face.box, face.eyes, min_degrees=threshold)
        inputs[f"aligned_{threshold:g}"] = to_face_array(alignment.rotated_crop(gray, face.box, angle))
    return inputs


def run(args) -> dict:
    classes = dataset_classes(args.data)
    model = load_model_or_default(args.model or ("ferplus" if len(classes) == 8 else "fer2013"))
    if tuple(classifier_classes(model)) != tuple(classes):
        raise SystemExit(f"{args.model}: predicts {len(classifier_classes(model))} classes, the data {len(classes)}; "
                         "give a model trained on these classes")
    split = load_eval_split(args.data, "test").split
    rng = np.random.default_rng(args.seed)
    rows = rng.permutation(len(split))[:args.faces]
    scenes_background = backgrounds()
    detector = detection.resolve_detector(args.detector)
    ways = ["upright", *(f"aligned_{t:g}" for t in args.min_degrees)]
    table = {}
    started = time.perf_counter()
    for degrees in args.angles:
        plans = []
        for row in rows:
            side = int(rng.integers(args.min_side, args.max_side + 1))
            margin = side  # room for the turned face inside the scene
            centre = (int(rng.integers(margin, SCENE_SIZE[0] - margin)), int(rng.integers(margin, SCENE_SIZE[1] - margin)))
            background = scenes_background[int(rng.integers(len(scenes_background)))]
            plans.append((row, side, centre, tilted_scene(split.images[row], background, side, centre, degrees)))
        found_faces = []
        for start in range(0, len(plans), 16):
            chunk = plans[start:start + 16]
            found_faces += detection.find_faces_batch([scene for *_, scene in chunk], detector)
        inputs = {way: [] for way in ways}
        labels = []
        for (row, side, centre, scene), faces in zip(plans, found_faces):
            face = matching_face(faces, centre, side)
            if face is None:
                continue
            gray = array_to_grayscale(scene)
            for way, face_input in crop_inputs(gray, face, args.min_degrees).items():
                inputs[way].append(face_input)
            labels.append(int(split.labels[row]))
        labels = np.array(labels, int)
        entry = {"faces": len(plans), "found": len(labels)}
        for way in ways:
            predicted = classify_faces(model, np.stack(inputs[way])).argmax(axis=1) if len(labels) else np.zeros(0, int)
            entry[way] = round(float(np.sum(predicted == labels)) / len(plans), 4)
        table[str(degrees)] = entry
        print(f"{degrees:+4d} deg  found {entry['found']}/{entry['faces']}  "
              + "  ".join(f"{way} {entry[way]:.2%}" for way in ways), flush=True)
    return {"angles": table, "seconds": round(time.perf_counter() - started, 1), "detector": detector,
            "model": str(args.model or ("ferplus" if len(classes) == 8 else "fer2013")), "classes": list(classes),
            "labels": "top-vote majority" if len(classes) == 8 else "FER2013's labels",
            "ways": {"upright": "cropped as detected (--no-align)",
                     **{f"aligned_{t:g}": f"eyes levelled when they tilt {t:g} degrees or more" for t in args.min_degrees}},
            "default_min_degrees": alignment.MIN_ALIGN_DEGREES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("FER_DATA"), help="dataset root (default: $FER_DATA)")
    parser.add_argument("--model", default=None, help="model (default: the packaged one for the data's classes)")
    parser.add_argument("--detector", default=None, help="face detector (default: the library's)")
    parser.add_argument("--faces", type=int, default=400, help="test faces per angle (default 400)")
    parser.add_argument("--angles", type=int, nargs="+", default=list(ANGLES))
    parser.add_argument("--min-degrees", type=float, nargs="+", default=[0.0, alignment.MIN_ALIGN_DEGREES, 5.0, 8.0],
                        help="smallest tilts that alignment turns, compared side by side")
    parser.add_argument("--min-side", type=int, default=90)
    parser.add_argument("--max-side", type=int, default=160)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args(argv)
    if not args.data:
        parser.error("give --data or set FER_DATA")
    args.min_degrees = sorted(set(args.min_degrees))
    load_at_start = os.getloadavg()[0]
    result = run(args)
    if args.json:
        record = {"date": datetime.date.today().isoformat(), "hardware": cpu_description(),
                  "load_average": [round(load_at_start, 1), round(os.getloadavg()[0], 1)],
                  "command": "python " + " ".join(shlex.quote(a) for a in sys.argv), "data": str(Path(args.data).name),
                  **result}
        write_json_atomic(args.json, record)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
