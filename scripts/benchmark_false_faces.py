"""False faces on people-free images and recall on known faces, per detector (issue 53).

    FER_DATA=/path/to/fer2013 python scripts/benchmark_false_faces.py --json docs/benchmarks/false_faces.json
    python scripts/benchmark_false_faces.py --quick --detector yunet          # a minute: whole images, JPEG 90 only
    python scripts/benchmark_false_faces.py --detector yunet --yunet-max-side 512   # detection at a smaller size

The images are built by fer_lib.inference.face_benchmark: every people-free image shipped by
scikit-image, scikit-learn and matplotlib, whole, tiled, cropped and upscaled, in colour and
grayscale, lossless and as JPEG 95/90/75/50; the faces are the shipped portraits and FER2013
PublicTest and LFW faces pasted into people-free scenes at 30-400 px. Each detector is
measured through the public `detect_faces`; a box matching no known face (IoU < 0.3) is a
false face. For YuNet every candidate box from score 0.3 up is also scored by O-Net, and for
MTCNN its confidence is read back, so that false and true faces can be told apart by score
(the "diagnostics" of the JSON).
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

import numpy as np  # noqa: E402

from fer_lib.inference import detection, face_benchmark  # noqa: E402
from fer_lib.inference.face_benchmark import BenchImage  # noqa: E402

SCENE_BACKGROUNDS = ("coffee", "rocket", "chelsea", "hubble_deep_field", "immunohistochemistry", "sklearn_china", "gravel")
DIAGNOSTIC_MIN_YUNET = 0.3


def build_images(fer_root: Path | None, quick: bool, fer_count: int, seed: int) -> list[BenchImage]:
    qualities = (90,) if quick else face_benchmark.JPEG_QUALITIES
    tiles = not quick
    items = list(face_benchmark.people_free_images(qualities=qualities, tiles=tiles))
    items += face_benchmark.face_photos(qualities=qualities, tiles=tiles)
    lfw = face_benchmark.lfw_faces()[: 20 if quick else 100]
    items += face_benchmark.face_scenes("lfw_scenes", lfw, list(SCENE_BACKGROUNDS), seed=seed)
    if fer_root is not None:
        fer = face_benchmark.fer_faces(fer_root, 40 if quick else fer_count, seed)
        items += face_benchmark.face_scenes("fer_scenes", fer, list(SCENE_BACKGROUNDS), seed=seed + 1)
    return items


def _truth_kind(item: BenchImage, box, detector: str) -> str:
    """'true', 'inside' (in a pasted photo) or 'false' for a detector's raw box."""
    counted = face_benchmark.count_detections(item, [detection.frame_box(box, detection.FRAMING[detector])])
    return "true" if counted.matched_boxes else "inside" if counted.inside_boxes else "false"


def yunet_candidates(items: list[BenchImage]) -> list[dict]:
    """Every YuNet box scoring DIAGNOSTIC_MIN_YUNET or more, with its O-Net score and whether it is kept now."""
    from fer_lib.inference import verification

    rows = []
    for item in items:
        rgb, factor = detection._downscale(detection.as_detection_rgb(item.image), detection.YUNET_MAX_SIDE)
        found = detection._detect_yunet(rgb, min_score=DIAGNOSTIC_MIN_YUNET)
        onet = verification.onet_scores(rgb, [face.box for face in found])
        for face, onet_score in zip(found, onet):
            yunet, full = face.score, detection._unscale(face, factor).box
            rows.append({"image": item.name, "family": item.family, "people_free": item.people_free,
                         "kind": _truth_kind(item, full, "yunet"), "yunet": round(float(yunet), 2),
                         "onet": round(float(onet_score), 4), "box": list(full), "side_px": max(full[2:]),
                         "side_frac": round(max(full[2:]) / min(item.image.shape[:2]), 4),
                         "passes_scores": bool(yunet >= detection.YUNET_MIN_SCORE
                                               and verification.kept_by_onet(yunet, float(onet_score)))})
    return rows


def mtcnn_confidences(items: list[BenchImage]) -> list[dict]:
    """MTCNN's confidence of each box it finds in `items`, as true or false faces."""
    rows = []
    for item in items:
        for face in detection.detect_raw_faces_batch([item.image], "mtcnn")[0]:
            rows.append({"image": item.name, "people_free": item.people_free, "kind": _truth_kind(item, face.box, "mtcnn"),
                         "confidence": round(float(face.score), 4), "box": list(face.box), "side_px": max(face.box[2:])})
    return rows


def _yunet_rule() -> str:
    from fer_lib.inference import verification

    return (f"yunet >= {detection.YUNET_MIN_SCORE:g} and onet >= ({verification.ONET_MIN_SCORE:g} if yunet >= "
            f"{verification.YUNET_SURE:g} else {verification.ONET_MIN_SCORE_UNSURE:g})")


def quantiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    q = np.percentile(np.asarray(values, float), [0, 5, 25, 50, 75, 95, 100])
    return {"n": len(values), **{k: round(float(v), 4) for k, v in zip(("min", "p5", "p25", "median", "p75", "p95", "max"), q)}}


def distributions(rows: list[dict], keys: tuple[str, ...]) -> dict:
    """Quantiles of each of `keys` for true faces and false faces, all and those passing today's rule."""
    out = {}
    for kind in ("true", "false", "inside"):
        for scope in ("all", "passing"):
            chosen = [r for r in rows if r["kind"] == kind and (scope == "all" or r.get("passes_scores", True))]
            out[f"{kind}_{scope}"] = {key: quantiles([r[key] for r in chosen]) for key in keys}
    return out


def print_table(items: list[BenchImage], results: dict[str, list], seconds: dict[str, float]) -> None:
    names = list(results)
    summaries = {name: face_benchmark.summarize(rows) for name, rows in results.items()}
    families = list(dict.fromkeys(item.family for item in items if item.people_free))
    counts = {family: sum(item.family == family for item in items) for family in families}
    print("\nfalse faces per people-free family (images with a false face in brackets):")
    print(f"{'family':<22}{'images':>7}" + "".join(f"{name:>14}" for name in names))
    for family in families:
        cells = []
        for name in names:
            row = summaries[name]["people_free"]["families"][family]
            cells.append(f"{row['false_faces']} ({row['images_with_false']})" if row["false_faces"] else "0")
        print(f"{family:<22}{counts[family]:>7}" + "".join(f"{cell:>14}" for cell in cells))
    free = summaries[names[0]]["people_free"]["images"]
    print(f"{'total':<22}{free:>7}" + "".join(
        f"{summaries[n]['people_free']['false_faces']} ({summaries[n]['people_free']['false_per_image']:.3f}/im)".rjust(14)
        for n in names))
    faces = summaries[names[0]]["faces"]
    print(f"\nfaces: {faces['faces']} known in {faces['images']} images")
    for name in names:
        f = summaries[name]["faces"]
        by_kind = {}
        for r in results[name]:
            if not r.people_free:
                kind = r.family
                k = by_kind.setdefault(kind, [0, 0])
                k[0] += r.found
                k[1] += r.faces
        kinds = ", ".join(f"{kind} {a}/{b} = {a / b:.1%}" for kind, (a, b) in by_kind.items() if b)
        print(f"{name}: recall {f['found']}/{f['faces']} = {f['recall']:.1%} (IoU>=0.5; {f['found_loose']} at 0.3) "
              f"[{kinds}]; false in face images {f['false_faces']}, inside pasted photos {f['inside_pasted']}; "
              f"{seconds[name]:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", action="append", choices=detection.DETECTORS,
                        help="detector(s) to measure, repeatable (default: every installed one)")
    parser.add_argument("--fer-data", default=os.environ.get("FER_DATA"),
                        help="FER2013 in the Kaggle layout (default $FER_DATA); without it no FER2013 scenes")
    parser.add_argument("--fer-faces", type=int, default=400, help="FER2013 PublicTest faces to paste (default 400)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="whole images, JPEG 90 only, 20 LFW and 40 FER2013 faces")
    parser.add_argument("--no-diagnostics", action="store_true", help="skip the YuNet/O-Net and MTCNN scores")
    parser.add_argument("--yunet-max-side", type=int, metavar="PX",
                        help=f"downscale images to this longest side for YuNet (default {detection.YUNET_MAX_SIDE}): "
                             "what detecting at a lower resolution costs in recall")
    parser.add_argument("--json", metavar="OUT", help="write the results to OUT, e.g. docs/benchmarks/false_faces.json")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    detectors = args.detector or [d for d in detection.DETECTORS if detection.detector_available(d)]
    if args.yunet_max_side:
        detection.YUNET_MAX_SIDE = args.yunet_max_side
    for name in detectors:
        detection.resolve_detector(name)
    load_at_start = os.getloadavg()[0]
    start = time.perf_counter()
    items = build_images(Path(args.fer_data) if args.fer_data else None, args.quick, args.fer_faces, args.seed)
    free = sum(item.people_free for item in items)
    print(f"{len(items)} images ({free} people-free from {len(face_benchmark.PEOPLE_FREE)} sources, "
          f"{sum(len(i.faces) for i in items)} known faces in {len(items) - free}), built in "
          f"{time.perf_counter() - start:.0f} s; load average {load_at_start:.1f}", flush=True)
    results, seconds = {}, {}
    for name in detectors:
        detection.detect_faces(items[0].image, name)  # warm-up: loading the model is not what we time
        start = time.perf_counter()
        results[name] = face_benchmark.run_benchmark(items, lambda image, name=name: detection.detect_faces(image, name))
        seconds[name] = time.perf_counter() - start
        print(f"{name}: {seconds[name]:.0f} s", flush=True)
    print_table(items, results, seconds)
    diagnostics = {}
    if not args.no_diagnostics and "yunet" in detectors:
        rows = yunet_candidates(items)
        diagnostics["yunet"] = {"min_score": DIAGNOSTIC_MIN_YUNET, "rule": _yunet_rule(),
                                "distributions": distributions(rows, ("yunet", "onet", "side_px", "side_frac")),
                                "candidates": [r for r in rows if r["kind"] != "false" or r["yunet"] >= 0.5 or r["onet"] >= 0.05],
                                "false_candidates_under_0.5_with_onet_under_0.05": sum(
                                    r["kind"] == "false" and r["yunet"] < 0.5 and r["onet"] < 0.05 for r in rows)}
        print_diagnostics("yunet candidates (score >= 0.3)", diagnostics["yunet"]["distributions"], ("yunet", "onet", "side_px"))
    if not args.no_diagnostics and "mtcnn" in detectors:
        chosen = [item for item, r in zip(items, results["mtcnn"]) if r.false_boxes or not item.people_free]
        rows = mtcnn_confidences(chosen)
        diagnostics["mtcnn"] = {"images": "those with faces and those where MTCNN found a false face",
                                "distributions": distributions(rows, ("confidence", "side_px")),
                                "false": [r for r in rows if r["kind"] == "false"]}
        print_diagnostics("mtcnn boxes", diagnostics["mtcnn"]["distributions"], ("confidence", "side_px"))
    load_at_end = os.getloadavg()[0]
    if args.json:
        from fer_lib.artifacts import write_json_atomic

        write_json_atomic(args.json, benchmark_data(argv, args, items, results, seconds, diagnostics,
                                                    (load_at_start, load_at_end)))
        print(f"wrote {args.json}")
    return 0


def print_diagnostics(title: str, dist: dict, keys: tuple[str, ...]) -> None:
    print(f"\n{title}: median [p5-p95] (min-max)")
    for group, stats in dist.items():
        if stats[keys[0]]["n"]:
            print(f"  {group:<15} n={stats[keys[0]]['n']:<5}" + "  ".join(
                f"{key} {s['median']:.3g} [{s['p5']:.3g}-{s['p95']:.3g}] ({s['min']:.3g}-{s['max']:.3g})"
                for key, s in ((key, stats[key]) for key in keys)))


def benchmark_data(argv, args, items, results, seconds, diagnostics, load_average) -> dict:
    from fer_lib.models.stats import cpu_description

    command = [a for i, a in enumerate(argv) if a != "--json" and not a.startswith("--json=")
               and (i == 0 or argv[i - 1] != "--json")]
    # The data's folder is the machine's: said as $FER_DATA, like the other benchmark files.
    command = ["$FER_DATA" if i and command[i - 1] == "--fer-data" else "--fer-data=$FER_DATA" if a.startswith("--fer-data=")
               else a for i, a in enumerate(command)]
    detectors = {}
    for name, rows in results.items():
        summary = face_benchmark.summarize(rows)
        summary["seconds"] = round(seconds[name], 1)
        summary["false_boxes"] = [{"image": r.name, "boxes": [list(b) for b in r.false_boxes]} for r in rows if r.false_boxes]
        summary["missed"] = [r.name for r in rows if r.found < r.faces]
        detectors[name] = summary
    return {"date": datetime.date.today().isoformat(), "hardware": cpu_description(),
            "load_average": [round(v, 1) for v in load_average],
            "command": "python scripts/benchmark_false_faces.py" + "".join(f" {a if '$FER_DATA' in a else shlex.quote(a)}" for a in command),
            "images": {"people_free": sum(i.people_free for i in items), "faces_images": sum(not i.people_free for i in items),
                       "known_faces": sum(len(i.faces) for i in items), "people_free_sources": list(face_benchmark.PEOPLE_FREE),
                       "excluded": face_benchmark.EXCLUDED, "jpeg_qualities": [90] if args.quick else list(face_benchmark.JPEG_QUALITIES),
                       "face_size_bands": [list(b) for b in face_benchmark.FACE_SIZE_BANDS], "seed": args.seed},
            "yunet_max_side": detection.YUNET_MAX_SIDE,
            "min_iou_found": face_benchmark.MIN_IOU_FOUND, "min_iou_not_false": face_benchmark.MIN_IOU_NOT_FALSE,
            "detectors": detectors, "diagnostics": diagnostics}


if __name__ == "__main__":
    sys.exit(main())
