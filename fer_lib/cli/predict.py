"""`fer predict`: emotions of the faces in photos, folders, videos or a live camera.

Results go to stdout as JSON unless --json or --csv names a file; every message and the
progress bars go to stderr. A file that cannot be used, or has no face, is reported and
the rest are processed; the exit status is then 1 (0 when every input was read). With
--boxes the faces are the caller's boxes instead of detected ones; a box that cannot be
used is reported the same way. Scores (JSON and CSV) are one per class of the model used:
FER2013's seven emotions, or eight with contempt for a FER+ model.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from fer_lib import paths
from fer_lib.cli.arguments import add_precision_argument, positive_float, positive_int, unit_interval
from fer_lib.labels import EMOTIONS


def csv_fields(classes=EMOTIONS) -> list[str]:
    """The --csv columns for a model predicting `classes`: a score column per class."""
    return ["source", "frame", "time_s", "face", "x", "y", "w", "h", "detection_score", "emotion", "second", *classes,
            "error"]


CSV_FIELDS = csv_fields(EMOTIONS)  # a FER2013 model's columns
# fer_lib.evaluation.prediction.TTA_MODES, without importing Keras to check --tta (tests/cli/test_predict_tta.py checks they agree).
TTA_CHOICES = ("none", "flip", "tencrop")
BOXES_FORMAT = '{"photo.jpg": [[x, y, width, height], ...], ...} (or [[x, y, width, height], ...] for a single photo)'


def _camera_index(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a camera index (0, 1, ...)")
    return int(text)


def add_predict_parser(subparsers) -> argparse.ArgumentParser:
    """Add the `predict` command to the `fer` argparse subparsers."""
    from fer_lib.inference.detection import DETECTORS

    predict = subparsers.add_parser(
        "predict", help="emotions of the faces in photos, folders, videos or a webcam",
        description="Find the faces in images, folders (searched recursively) and videos and classify their "
                    "expressions. Prints JSON to stdout unless --json or --csv is given.")
    predict.add_argument("paths", nargs="*", metavar="PATH", help="image, folder or video files")
    output = predict.add_mutually_exclusive_group()
    output.add_argument("--json", dest="json_out", metavar="OUT", help="write the results as JSON to this file (missing folders are created)")
    output.add_argument("--csv", dest="csv_out", metavar="OUT",
                        help="write one row per face (and per photo without one) as CSV to this file (missing folders are created)")
    predict.add_argument("--annotate", metavar="DIR",
                         help="write copies of the images and videos with boxes and labels in this folder (missing folders are created)")
    predict.add_argument("--out", metavar="DIR", default="fer_output",
                         help="folder for each video's per-frame CSV and summaries, which stdout then leaves out (default: fer_output; created if missing)")
    predict.add_argument("--model", metavar="MODEL",
                         help=f"a packaged model ({', '.join(paths.PACKAGED_MODELS)}), a trained .keras model, or a "
                              f".onnx/.tflite file from fer export (default: {paths.DEFAULT_PACKAGED_MODEL})")
    predict.add_argument("--runtime", choices=("keras", "onnx", "tflite"), default="keras",
                         help="what runs the classifier: Keras (default), onnxruntime or TFLite (the export extra); "
                              "a .keras model is exported once and checked against Keras")
    add_precision_argument(predict)
    predict.add_argument("--every", type=positive_int, default=1, metavar="N", help="classify every Nth video frame (default: 1)")
    predict.add_argument("--bin-seconds", type=positive_float, default=1.0, metavar="S",
                         help="time bin of the video summaries (default: 1 s)")
    predict.add_argument("--webcam", type=_camera_index, nargs="?", const=0, default=None, metavar="N",
                         help="show camera N (default 0) live with emotions in a window (q, Esc or closing it quits); with --annotate DIR also records it")
    predict.add_argument("--detector", choices=DETECTORS, default=None,
                         help="face detector (default: yunet where its package yuface installs, else mtcnn)")
    predict.add_argument("--min-face-score", type=unit_interval, default=None, metavar="S",
                         help="leave out detected faces whose detection score (0-1, how sure the detector is) is under S")
    predict.add_argument("--no-align", dest="align", action="store_false",
                         help="crop faces as detected, without turning tilted ones so that their eyes are level")
    predict.add_argument("--boxes", metavar="BOXES.json", default=None,
                         help="classify these face boxes instead of detecting faces: a JSON file mapping each photo to "
                              f"its boxes, {BOXES_FORMAT}; photo paths as given here, or relative to the JSON file's "
                              "folder; each face's box in the output is the one given")
    predict.add_argument("--tta", default="none", metavar="{" + ",".join(TTA_CHOICES) + "}",
                         help="test-time augmentation, as fer evaluate --tta: none (default) classifies each face once; "
                              "flip averages the scores of the face and its mirror image (about twice the model's time); "
                              "tencrop those of four corner crops, the centre crop and their mirrors (about ten times; a "
                              "model trained on crops gets its own unresized crops). Usually a little more accurate, never "
                              "faster; detection, often most of a photo's time, is unchanged. A TFLite file takes none or "
                              "flip; an ONNX file takes tencrop when fer export recorded its crop")
    predict.add_argument("--quiet", action="store_true", help="no progress bars")
    return predict


def check_predict_request(args) -> None:
    """Every mistake in `fer predict`'s arguments that is known without the model, as one line (FerError).

    `fer` runs it before importing Keras, so a missing photo or an output that cannot be written is said in
    well under a second. The inputs found are kept on `args` (`inputs`: images, videos, problems and boxes).
    """
    from fer_lib.artifacts import check_output_file, check_output_folder
    from fer_lib.errors import FerError

    args.inputs = None
    if args.webcam is None and not args.paths:
        raise FerError("nothing to do: give image, folder or video paths, or --webcam")
    if args.webcam is not None and args.paths:
        raise FerError("--webcam takes no paths; run the files and the camera separately")
    if args.webcam is not None and getattr(args, "boxes", None):
        raise FerError("--boxes gives faces in photos, not in the --webcam stream; leave it out")
    tta = getattr(args, "tta", "none")
    if tta not in TTA_CHOICES:
        raise FerError(f"unknown test-time augmentation {tta!r} for --tta; choose one of {', '.join(TTA_CHOICES)}")
    if args.model:
        paths.check_model_file(args.model)  # a mistyped name or a missing file, before any work
    images, videos, problems = _collect_inputs(args.paths) if args.webcam is None else ([], [], [])
    if args.webcam is None and not images and not videos:  # nothing left to work on: no summary, just why
        if len(problems) == 1:
            raise FerError(problems[0][1])
        for _, message in problems:
            _say(message)
        raise FerError(f"none of the {len(problems)} inputs can be used")
    for option, value in (("--json", args.json_out), ("--csv", args.csv_out)):
        if value:
            check_output_file(value, option)
    if args.annotate:
        check_output_folder(args.annotate, "--annotate")
    if videos and args.out:
        check_output_folder(args.out, "--out")
    boxes = None
    if getattr(args, "boxes", None):
        if videos:
            raise FerError(f"--boxes gives faces in photos, not in videos ({videos[0][0]}); run the videos separately")
        boxes = load_boxes_file(args.boxes, [path for path, _ in images], [source for source, _ in problems])
    args.inputs = (images, videos, problems, boxes)


def run_predict(args) -> int:
    """Run `fer predict`; FerError for mistakes that stop everything, exit status otherwise."""
    from fer_lib.inference.detection import resolve_detector
    from fer_lib.inference.photos import check_tta, classifier_classes, load_model_or_default

    if not hasattr(args, "inputs"):  # called without `fer`'s main, which checks before importing Keras
        check_predict_request(args)
    detector = resolve_detector(args.detector) if not getattr(args, "boxes", None) else None
    if args.webcam is not None:
        from fer_lib.inference.video import open_camera, run_webcam

        open_camera(args.webcam).release()  # say "no camera" before loading the model
        model = load_model_or_default(args.model, args.runtime, getattr(args, "precision", "float32"))
        frames = run_webcam(args.webcam, model, detector, args.annotate, say=_say,
                            min_face_score=args.min_face_score, align=args.align, tta=_tta(args))
        _say(f"webcam: {frames} frame(s)")
        return 0

    images, videos, problems, boxes = args.inputs
    model = load_model_or_default(args.model, args.runtime, getattr(args, "precision", "float32"))
    check_tta(_tta(args), model)  # an exported file that cannot take ten crops: said before any photo is read
    _say(f"{len(images)} image(s), {len(videos)} video(s); " + (f"faces from {args.boxes}" if boxes is not None else f"detector {detector}"))
    records = [_error_record(source, message) for source, message in problems]
    for _, message in problems:
        _say(message)
    records += _predict_images(images, model, detector, args, boxes)
    for path, stem in videos:
        records += _predict_video(path, stem, model, detector, args)
    _write_records(records, args, classifier_classes(model))
    _say(summary_line(records, len(videos)))
    return 1 if any(record.get("error") or any("error" in face for face in record["faces"]) for record in records) else 0


def _tta(args) -> str:
    return getattr(args, "tta", "none")


def summary_line(records: list[dict], videos: int = 0) -> str:
    """`fer predict`'s last line: photos, faces, photos without a face, inputs that could not be used (and videos,
    and --boxes boxes that could not be used, when there are any)."""
    photos = [record for record in records if record["frame"] is None and not record.get("error")]
    frames = sum(1 for record in records if record["frame"] is not None)
    faces = sum(1 for record in records for face in record["faces"] if "error" not in face)
    without = sum(1 for record in photos if all("error" in face for face in record["faces"]))
    failed = sum(1 for record in records if record.get("error"))
    bad_boxes = sum(1 for record in records for face in record["faces"] if "error" in face)
    return (f"done: {len(photos)} photo(s), {faces} face(s), {without} photo(s) without a face, "
            f"{failed} input(s) could not be used" + (f"; {videos} video(s), {frames} frame(s) sampled" if videos else "")
            + (f"; {bad_boxes} box(es) could not be used" if bad_boxes else ""))


def _say(message: str) -> None:
    from tqdm import tqdm

    # Through tqdm, so that a progress bar on stderr is redrawn below the message instead of over it.
    tqdm.write(f"fer predict: {message}", file=sys.stderr)


def _collect_inputs(paths: list[str]) -> tuple[list[tuple[Path, str]], list[tuple[Path, str]], list[tuple[str, str]]]:
    """Images and videos under `paths` (folders recursively), each with an output stem, and problems.

    Files in folders with other extensions are skipped silently; a file named explicitly
    with an unknown extension, a path that is missing or unreadable, and a folder without
    any image or video are reported.
    """
    import os

    from fer_lib.data.preprocessing import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

    images, videos, problems, stems = [], [], [], set()

    def add(path: Path, root: Path | None):
        suffix = path.suffix.lower()
        if suffix not in IMAGE_EXTENSIONS and suffix not in VIDEO_EXTENSIONS:
            return False
        name = path.relative_to(root).with_suffix("") if root else Path(path.stem)
        stem, n = "__".join(name.parts), 1
        while stem in stems:  # same name from two places: keep both outputs
            n += 1
            stem = f"{'__'.join(name.parts)}_{n}"
        stems.add(stem)
        (images if suffix in IMAGE_EXTENSIONS else videos).append((path, stem))
        return True

    for text in paths:
        path = Path(text).expanduser()
        if (path.is_dir() or path.is_file()) and not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
            problems.append((str(path), f"{path}: cannot be read (Permission denied); check its permissions"))
        elif path.is_dir():
            found = [add(child, path) for child in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))]
            if not any(found):
                problems.append((str(path), f"{path}: no images or videos in this folder (searched recursively)"))
        elif path.is_file():
            if not add(path, None):
                problems.append((str(path), f"{path}: unsupported format {path.suffix or '(no extension)'}; "
                                            "give images (.jpg, .png, ...) or videos (.mp4, .avi, ...)"))
        else:
            problems.append((str(path), f"{path}: not found; check the path"))
    return images, videos, problems


def load_boxes_file(path_text: str, images: list[Path], missing: list[str] = ()) -> list:
    """The boxes for each of `images` from a --boxes JSON file; FerError in one line when it does not fit.

    Keys are photo paths as given on the command line or relative to the file's folder;
    every photo needs an entry and every entry a photo (`missing` are paths given that
    could not be found, reported on their own).
    """
    from fer_lib.errors import FerError

    path = Path(path_text).expanduser()
    if not path.is_file():
        raise FerError(f"{path}: boxes file not found; check the path")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FerError(f"{path}: not a JSON file ({detail}); expected {BOXES_FORMAT}") from None
    if isinstance(data, list):
        if len(images) != 1:
            raise FerError(f"{path}: holds one list of boxes, which fits exactly one photo, and {len(images)} were given; "
                           f"map each photo to its boxes: {BOXES_FORMAT}")
        return [data]
    if not isinstance(data, dict):
        raise FerError(f"{path}: holds a JSON {type(data).__name__}; expected {BOXES_FORMAT}")
    bases = [Path.cwd(), path.parent]
    keys_of: dict[Path, set[str]] = {}
    for key in data:
        for base in bases:
            keys_of.setdefault((base / Path(key).expanduser()).resolve(), set()).add(key)
    missing_paths = {Path(p).expanduser().resolve() for p in missing}
    used, without, twice, result = set(), [], [], []
    for image in images:
        keys = keys_of.get(image.resolve(), set())
        used |= keys
        if not keys:
            without.append(str(image))
        elif len(keys) > 1:
            twice.append(f"{image} ({', '.join(sorted(keys))})")
        else:
            result.append(data[next(iter(keys))])
    unknown = [key for key in data if key not in used
               and not any((base / Path(key).expanduser()).resolve() in missing_paths for base in bases)]
    problems = ([f"no boxes for {_some(without)}"] if without else []) + \
               ([f"two entries for {_some(twice)}"] if twice else []) + \
               ([f"no photo given for {_some(unknown)}"] if unknown else [])
    if problems:
        raise FerError(f"{path}: its photos do not match those given: {'; '.join(problems)} "
                       f"(keys are photo paths as given on the command line or relative to {path.parent})")
    return result


def _some(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _error_record(source: str, message: str) -> dict:
    return {"source": source, "frame": None, "time_s": None, "faces": [], "error": message}


def _predict_images(images: list[tuple[Path, str]], model, detector: str | None, args, boxes: list | None = None) -> list[dict]:
    from tqdm import tqdm

    from fer_lib.inference.photos import IMAGES_PER_CHUNK, classify_images

    records = []
    with tqdm(total=len(images), desc="images", unit="image", file=sys.stderr, disable=args.quiet or len(images) < 2,
              leave=False) as bar:
        for start in range(0, len(images), IMAGES_PER_CHUNK):
            chunk = images[start:start + IMAGES_PER_CHUNK]
            chunk_boxes = boxes[start:start + IMAGES_PER_CHUNK] if boxes is not None else None
            results = classify_images([path for path, _ in chunk], model, detector, boxes=chunk_boxes,
                                      min_face_score=args.min_face_score, align=args.align, tta=_tta(args))
            for (path, stem), result in zip(chunk, results):
                if result.error:
                    _say(result.error)
                    records.append(_error_record(str(path), result.error))
                    continue
                for face in result.faces:
                    if "error" in face:
                        _say(face["error"])
                if not result.faces and boxes is None:
                    _say(f"{path}: no face found")
                records.append({"source": str(path), "frame": None, "time_s": None, "faces": result.faces})
                if args.annotate:
                    _write_annotated_image(path, stem, result.faces, Path(args.annotate))
            bar.update(len(chunk))
    return records


def _write_annotated_image(path: Path, stem: str, faces: list[dict], folder: Path) -> None:
    import numpy as np
    from PIL import Image

    from fer_lib.artifacts import atomic_path
    from fer_lib.data.preprocessing import open_image
    from fer_lib.inference.drawing import draw_faces

    image = open_image(path)  # upright, so the boxes line up
    rgb = np.asarray(image.convert("RGB"))
    with atomic_path(folder / f"{stem}.annotated.jpg") as temporary:
        Image.fromarray(draw_faces(rgb, faces)).save(temporary, "JPEG", quality=90)


def _predict_video(path: Path, stem: str, model, detector: str, args) -> list[dict]:
    from fer_lib.errors import DataError
    from fer_lib.inference.video import process_video

    try:
        result = process_video(path, model, detector, every=args.every, out_dir=args.out, annotate_dir=args.annotate,
                               bin_seconds=args.bin_seconds, stem=stem, progress=not args.quiet,
                               min_face_score=args.min_face_score, align=args.align, tta=_tta(args))
    except DataError as exc:
        _say(str(exc))
        return [_error_record(str(path), str(exc))]
    for warning in result.warnings:
        _say(warning)
    with_faces = sum(1 for frame in result.frames if frame.faces)
    _say(f"{path}: {len(result.frames)} frame(s) sampled, {with_faces} with faces; wrote {', '.join(result.files.values())}")
    if not with_faces:
        _say(f"{path}: no face found")
    return [{"source": str(path), "frame": frame.frame, "time_s": frame.time_s, "faces": frame.faces} for frame in result.frames]


def _records_to_csv(records: list[dict], classes=EMOTIONS) -> str:
    """One row per face (a record without faces gets one row, with its error if any); a score column per class."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=csv_fields(classes), lineterminator="\n")
    writer.writeheader()
    for record in records:
        base = {"source": record["source"], "frame": record["frame"], "time_s": record["time_s"], "error": record.get("error")}
        if not record["faces"]:
            writer.writerow(base)
        for i, face in enumerate(record["faces"]):
            if "error" in face:  # a --boxes box that could not be used
                box = face["box"]
                place = dict(zip("xywh", box)) if isinstance(box, list) and len(box) == 4 else {}
                writer.writerow({**base, "face": i, **place, "error": face["error"]})
                continue
            x, y, w, h = face["box"]
            writer.writerow({**base, "face": i, "x": x, "y": y, "w": w, "h": h,
                             "detection_score": face.get("detection_score"), "emotion": face["emotion"],
                             "second": face["top2"][1], **{k: round(v, 6) for k, v in face["scores"].items()}})
    return buffer.getvalue()


def _write_records(records: list[dict], args, classes=EMOTIONS) -> None:
    from fer_lib.artifacts import write_json_atomic, write_text_atomic

    if args.csv_out:
        write_text_atomic(args.csv_out, _records_to_csv(records, classes))
        _say(f"wrote {args.csv_out}")
    elif args.json_out:
        write_json_atomic(args.json_out, records)
        _say(f"wrote {args.json_out}")
    else:
        if getattr(args, "out", None):
            # Videos' frames are in their files under --out already; a frame per JSON record drowned the rest.
            records = [record for record in records if record["frame"] is None]
            if not records:
                return
        json.dump(records, sys.stdout, indent=1)
        sys.stdout.write("\n")
        sys.stdout.flush()
