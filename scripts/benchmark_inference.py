"""Benchmark inference: crops/s in batch, ms per 640x480 photo, video frames/s; compare detectors.

    python scripts/benchmark_inference.py --model runs/seed_cnn/model.keras
    FER_DATA=... python scripts/benchmark_inference.py --detectors --scenes 100
    python scripts/benchmark_inference.py --detector yunet --detector mtcnn
    FER_DATA=... python scripts/benchmark_inference.py --detectors --scenes 100 --repeats 5 \
        --json docs/benchmarks/inference_detectors.json        # then: python scripts/results_table.py table
    python scripts/benchmark_inference.py --skip-speed --runtimes keras onnx tflite --repeats 5 \
        --json docs/benchmarks/inference_runtimes.json

Every installed detector (yunet, mtcnn, haar) is measured in the same run, side by side:
timings are medians over --repeats after one warm-up, and the detectors take turns in each
repeat so a change in the machine's load touches them all alike. --detectors also measures
each detector's recall on scenes composed from FER2013 test faces ($FER_DATA), its false
detections there and on people-free photos, and its framing against FER2013's crops. The
run ends with one table of all of it. --json saves what was measured, with the date, the
machine and the command, as the data file that scripts/results_table.py renders into
docs/inference.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from fer_lib.inference import (  # noqa: E402
    classify_faces,
    detection,  # noqa: E402
    load_model_or_default,
    predict_expression,
)
from fer_lib.inference.video import process_video  # noqa: E402

PHOTO_SIZE = (640, 480)
NEGATIVES = ("coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "coins", "brick", "grass", "gravel")
SCENE_BACKGROUNDS = ("coffee", "rocket", "chelsea", "hubble_deep_field")


def median_seconds(run, repeats: int) -> float:
    run()  # warm-up: graph tracing and lazy loading are not what we measure
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(runs: dict[str, callable], repeats: int) -> dict[str, float]:
    """Median seconds of each run, the runs taking turns in every repeat (after one warm-up each)."""
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def benchmark_runtimes(model: str | None, runtimes: list[str], repeats: int,
                       labels: dict[str, str] | None = None) -> dict[str, float]:
    """Median faces/s of the same model run by each runtime (keras, onnx, tflite), taking turns each repeat.

    `labels`, when given, is filled with what each runtime ran (runtime_label).
    """
    from fer_lib.inference.export import faces_per_second, load_classifier

    classifiers = {runtime: load_classifier(model, runtime) for runtime in runtimes}
    if labels is not None:
        labels.update({runtime: runtime_label(runtime, classifier, model) for runtime, classifier in classifiers.items()})
    rates: dict[str, list[float]] = {runtime: [] for runtime in runtimes}
    for _ in range(repeats):
        for runtime, classifier in classifiers.items():
            rates[runtime].append(faces_per_second(classifier, repeats=1))
    return {runtime: statistics.median(values) for runtime, values in rates.items()}


def runtime_label(runtime: str, classifier, model: str | None) -> str:
    """What ran, for the table: the runtime and its version, and the precision the model computes in."""
    exported = model is None or str(model).lower().endswith(".keras")  # exported here, in float32
    if runtime == "keras":
        import keras

        from fer_lib.inference.conversion import served_precision

        policy = served_precision(classifier) or "float32"  # float32 unless load_classifier was asked to keep it
        return f"Keras {keras.__version__}, the model as loaded ({policy.replace('_', ' ')})"
    if runtime == "onnx":
        import onnxruntime

        return f"onnxruntime {onnxruntime.__version__}, ONNX float32"
    interpreter = type(getattr(classifier, "interpreter", None)).__module__
    engine = "LiteRT" if interpreter.startswith("ai_edge_litert") else "tf.lite"
    return f"TFLite {'float32' if exported else Path(model).name} ({engine}, XNNPACK)"


def astronaut_photo() -> np.ndarray:
    """skimage's astronaut (one face) as a 640x480 RGB photo."""
    from skimage import data

    return cv2.resize(np.pad(data.astronaut(), ((0, 0), (64, 64), (0, 0)), mode="edge"), PHOTO_SIZE, interpolation=cv2.INTER_AREA)


def write_test_video(path: Path, frames: int, photo: np.ndarray) -> None:
    """A 25 fps mp4 of `photo` panning sideways, so the face moves from frame to frame."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, PHOTO_SIZE)
    for i in range(frames):
        writer.write(cv2.cvtColor(np.roll(photo, 3 * i, axis=1), cv2.COLOR_RGB2BGR))
    writer.release()


def benchmark_speed(model_path: str | None, detectors: list[str], repeats: int,
                    video_frames: int) -> tuple[float, dict[str, dict]]:
    """Classification crops/s, and per detector: ms per photo end to end and video frames/s."""
    model = load_model_or_default(model_path)
    crops = np.random.default_rng(0).integers(0, 256, (1024, 48, 48), dtype=np.uint8)
    seconds = median_seconds(lambda: classify_faces(model, crops), repeats)
    print(f"classification: {len(crops) / seconds:,.0f} crops/s (batch of {len(crops)}, median of {repeats})")
    photo = astronaut_photo()
    rows = {name: {} for name in detectors}
    for name in detectors:
        rows[name]["photo_faces"] = len(predict_expression(photo, model=model, detector=name))
    photo_seconds = interleaved_medians(
        {name: (lambda name=name: predict_expression(photo, model=model, detector=name)) for name in detectors}, repeats)
    for name in detectors:
        rows[name]["photo_ms"] = 1000 * photo_seconds[name]
        print(f"photo {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}, detector {name}: {rows[name]['photo_ms']:.0f} ms end to end "
              f"({rows[name]['photo_faces']} face)")
    with tempfile.TemporaryDirectory() as folder:
        video = Path(folder) / "pan.mp4"
        write_test_video(video, video_frames, photo)
        video_seconds = interleaved_medians(
            {name: (lambda name=name: process_video(video, model, name, out_dir=folder, annotate_dir=folder, progress=False))
             for name in detectors}, max(1, repeats // 2))
    for name in detectors:
        rows[name]["video_fps"] = video_frames / video_seconds[name]
        print(f"video {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}, detector {name}: {rows[name]['video_fps']:.1f} frames/s "
              f"(every frame, with CSV, summary and annotated mp4)")
    return len(crops) / seconds, rows


def compose_scenes(fer_root: Path, count: int, faces_per_scene: int, seed: int) -> list[tuple[np.ndarray, list]]:
    """`count` 640x480 scenes, each with up to `faces_per_scene` FER2013 test faces pasted in."""
    from skimage import data

    files = sorted((fer_root / "test").glob("*/*"))
    if not files:
        raise SystemExit(f"no FER2013 test images under {fer_root}/test; set FER_DATA")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(files), size=count * faces_per_scene, replace=False)
    scenes = []
    for i in range(count):
        background = cv2.resize(getattr(data, SCENE_BACKGROUNDS[i % len(SCENE_BACKGROUNDS)])(), PHOTO_SIZE)
        if background.ndim == 2 or i % 2:  # half the scenes grayscale, like many FER photos
            background = cv2.cvtColor(detection.as_detection_rgb(background), cv2.COLOR_RGB2GRAY)
        faces = [cv2.imread(str(files[j]), cv2.IMREAD_GRAYSCALE) for j in chosen[i * faces_per_scene:(i + 1) * faces_per_scene]]
        scenes.append(detection.compose_face_scene(faces, background, rng))
    return scenes


def count_detections(truth: list, raw: list, detector: str) -> tuple[int, int, int]:
    """Faces found, false detections and boxes inside pasted photos, for one scene's raw boxes."""
    framed = [detection.frame_box(box, detection.FRAMING[detector]) for box in raw]
    found = len(detection.match_boxes(truth, framed, min_iou=0.5))
    loose = {j for _, j in detection.match_boxes(truth, framed, min_iou=0.3)}
    unmatched = [box for j, box in enumerate(raw) if j not in loose]  # as the detector drew them
    # A FER2013 image is a photo: a box inside a pasted one may be a face in that photo
    # (a child's face behind foliage, say), so it is counted apart from the background's.
    inside = sum(any(detection.box_inside(box, t) for t in truth) for box in unmatched)
    return found, len(unmatched) - inside, inside


def compare_detectors(detectors: list[str], scenes_count: int, repeats: int, seed: int) -> dict[str, dict]:
    """Per detector: recall and false detections on composed scenes, false detections on people-free photos,
    detection-only ms per photo and framing ratios."""
    from skimage import data

    fer_root = Path(os.environ.get("FER_DATA", "data/fer2013"))
    scenes = compose_scenes(fer_root, scenes_count, 4, seed)
    photo = astronaut_photo()
    total = sum(len(truth) for _, truth in scenes)
    print(f"\ndetectors on {len(scenes)} scenes of {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} with {total} FER2013 test faces "
          f"(60-200 px), seed {seed}:")
    print("detector | recall IoU>=0.5 | false detections in scenes | inside pasted photos | on astronaut | false detections on "
          f"{', '.join(NEGATIVES)} | ms per scene | ms per 640x480 photo | framing: FER side/box height, dx, dy (median)")
    rows = {name: {"faces": total} for name in detectors}
    for name in detectors:
        detection.detect_faces(scenes[0][0], name)  # warm-up
    detect_seconds = interleaved_medians({name: (lambda name=name: detection.detect_faces(photo, name)) for name in detectors},
                                         repeats)
    for name in detectors:
        found_total, false_total, inside_total, ratios, times = 0, 0, 0, [], []
        for scene, truth in scenes:
            start = time.perf_counter()
            raw = detection.detect_raw_batch([scene], name)[0]
            times.append(time.perf_counter() - start)
            found, false, inside = count_detections(truth, raw, name)
            found_total += found
            inside_total += inside
            false_total += false
            ratios += detection.measure_framing(truth, raw)
        negatives = [len(detection.detect_faces(detection.as_detection_rgb(getattr(data, n)()), name)) for n in NEGATIVES]
        astronaut = len(detection.detect_faces(data.astronaut(), name))
        quartiles = np.percentile(np.array(ratios), [25, 50, 75], axis=0) if ratios else np.full((3, 3), np.nan)
        rows[name].update(found=found_total, false_scenes=false_total, inside_pasted=inside_total, false_negatives=sum(negatives),
                          false_negatives_by_photo={n: c for n, c in zip(NEGATIVES, negatives) if c},
                          detect_ms=1000 * detect_seconds[name])
        print(f"{name} | {found_total}/{total} = {found_total / total:.1%} | {false_total} | {inside_total} | {astronaut} | "
              f"{negatives} | {1000 * statistics.median(times):.0f} | {1000 * detect_seconds[name]:.0f} | "
              f"{quartiles[1, 0]:.3f} (IQR {quartiles[0, 0]:.3f}-{quartiles[2, 0]:.3f}), {quartiles[1, 1]:+.3f}, {quartiles[1, 2]:+.3f}",
              flush=True)
    return rows


def summary_table(rows: dict[str, dict]) -> str:
    """One markdown table of everything measured, a row per detector, speed-ups against mtcnn."""
    # fer_lib.records.inference_sections.detectors_section renders the same rows for docs/inference.md, from the
    # --json file (its date, machine and photos' names); this one is the terminal's view of a run not kept, so
    # both stay, the page's with the record's details and this one with nothing but the rows.
    columns = [
        ("recall (composed scenes)", lambda r: f"{r['found']}/{r['faces']} = {r['found'] / r['faces']:.1%}" if "found" in r else ""),
        ("false detections in scenes", lambda r: str(r.get("false_scenes", ""))),
        ("boxes inside pasted photos", lambda r: str(r.get("inside_pasted", ""))),
        (f"false detections on {len(NEGATIVES)} people-free photos", lambda r: str(r.get("false_negatives", ""))),
        ("ms per photo, detection", lambda r: f"{r['detect_ms']:.0f}" if "detect_ms" in r else ""),
        ("ms per photo, end to end", lambda r: f"{r['photo_ms']:.0f}" if "photo_ms" in r else ""),
        ("video frames/s", lambda r: f"{r['video_fps']:.1f}" if "video_fps" in r else ""),
    ]
    base = rows.get("mtcnn", {})
    lines = ["| detector | " + " | ".join(title for title, _ in columns) + " | photo speed-up vs mtcnn | video speed-up vs mtcnn |",
             "|---" * (len(columns) + 3) + "|"]
    for name, row in rows.items():
        photo_up = f"{base['photo_ms'] / row['photo_ms']:.1f}x" if "photo_ms" in base and "photo_ms" in row else ""
        video_up = f"{row['video_fps'] / base['video_fps']:.1f}x" if "video_fps" in base and "video_fps" in row else ""
        lines.append(f"| {name} | " + " | ".join(cell(row) for _, cell in columns) + f" | {photo_up} | {video_up} |")
    return "\n".join(lines)


def benchmark_data(argv: list[str], args, rows: dict[str, dict], crops_per_second: float | None,
                   runtimes: dict[str, float] | None, runtime_labels: dict[str, str],
                   load_average: tuple[float, float]) -> dict:
    """What --json writes: docs/benchmarks/inference_*.json, which scripts/results_table.py renders."""
    from fer_lib.models.stats import cpu_description
    from fer_lib.training.precision import cpu_supports_bf16

    command = []
    skip = False
    for arg in argv:  # the command as run, less where it saved the results
        if skip or arg == "--json":
            skip = not skip
            continue
        if not arg.startswith("--json="):
            command.append(arg)
    data = {"date": datetime.date.today().isoformat(), "hardware": cpu_description(), "cpu_bf16": cpu_supports_bf16(),
            "load_average": [round(value, 1) for value in load_average],
            "command": "python scripts/benchmark_inference.py" + "".join(f" {shlex.quote(a)}" for a in command),
            "model": args.model or "packaged", "repeats": args.repeats}
    if crops_per_second is not None:
        data.update(photo=f"{PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}", video_frames=args.video_frames,
                    classification_crops_per_second=round(crops_per_second, 1))
    if args.detectors:
        data["scenes"] = {"count": args.scenes, "faces": next(iter(rows.values()))["faces"] if rows else 0,
                          "seed": args.seed, "people_free_photos": list(NEGATIVES)}
    rounding = {"detect_ms": 1, "photo_ms": 1, "video_fps": 2}
    measured = {name: {key: round(value, rounding[key]) if key in rounding else value for key, value in row.items()}
                for name, row in rows.items() if row}
    if measured:
        data["detectors"] = measured
    if runtimes:
        data["runtime_batch_size"] = 256
        data["runtimes"] = {runtime: {"label": runtime_labels.get(runtime, runtime), "faces_per_second": round(rate, 1)}
                            for runtime, rate in runtimes.items()}
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a .keras model (default: the packaged model)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--video-frames", type=int, default=50)
    parser.add_argument("--detector", action="append", choices=detection.DETECTORS,
                        help="detector(s) to measure, repeatable (default: every installed one)")
    parser.add_argument("--detectors", action="store_true", help="also compare detectors on composed FER2013 scenes")
    parser.add_argument("--scenes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-speed", action="store_true", help="only the detector comparison")
    parser.add_argument("--runtimes", nargs="+", choices=("keras", "onnx", "tflite"), default=None,
                        help="also measure faces/s in batches of the model run by each of these (the export extra)")
    parser.add_argument("--json", metavar="PATH",
                        help="also write what was measured to PATH, e.g. docs/benchmarks/inference_detectors.json "
                             "(then scripts/results_table.py table renders it into docs/inference.md)")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    detectors = args.detector or [d for d in detection.DETECTORS if detection.detector_available(d)]
    for name in detectors:
        detection.resolve_detector(name)  # says what is missing before anything runs
    load_at_start = os.getloadavg()[0]
    print(f"model: {args.model or 'packaged'}; detectors: {', '.join(detectors)}; {os.cpu_count()} CPU(s); "
          f"load average {load_at_start:.1f}", flush=True)
    rows = {name: {} for name in detectors}
    crops_per_second, rates, labels = None, None, {}
    if not args.skip_speed:
        crops_per_second, speed = benchmark_speed(args.model, detectors, args.repeats, args.video_frames)
        for name, row in speed.items():
            rows[name].update(row)
    if args.detectors:
        for name, row in compare_detectors(detectors, args.scenes, args.repeats, args.seed).items():
            rows[name].update(row)
    if args.runtimes:
        rates = benchmark_runtimes(args.model, args.runtimes, args.repeats, labels)
        first = args.runtimes[0]
        for runtime, rate in rates.items():
            print(f"runtime {runtime}: median {rate:.0f} faces/s in batches ({rate / rates[first]:.2f}x {first})", flush=True)
    load_at_end = os.getloadavg()[0]
    print(f"\nside by side (load average at the end {load_at_end:.1f}):\n{summary_table(rows)}")
    if args.json:
        from fer_lib.artifacts import write_json_atomic

        write_json_atomic(args.json, benchmark_data(argv, args, rows, crops_per_second, rates, labels,
                                                    (load_at_start, load_at_end)))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
