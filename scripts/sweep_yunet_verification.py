"""How YuNet's score threshold and the O-Net check trade found faces for false detections.

Scores every YuNet box (from a low bar) with O-Net once, per seed of composed FER2013 scenes
and on the people-free photos, then counts faces found, false detections and boxes inside
pasted photos for each rule of the grid, beside MTCNN on the same scenes. The rule
`fer_lib.inference.verification` uses was chosen on the design seeds (1 and 2); the
others (the benchmark's seed 0, and 3 and 4) check it.

    FER_DATA=... python scripts/sweep_yunet_verification.py --seeds 1:150 2:150 0:100 3:150 4:150 --design 1 2 \\
        --json docs/benchmarks/yunet_verification.json     # then: python scripts/results_table.py table
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import os
import shlex
import sys
from pathlib import Path

import numpy as np
from benchmark_inference import NEGATIVES, compose_scenes, count_detections

from fer_lib.inference import detection, verification

LOWEST_SCORE = 0.4
YUNET_MIN_SCORES = (0.5, 0.55, 0.6)
ONET_MIN_SCORES = (0.0, 0.1, 0.2)
ONET_MIN_SCORES_UNSURE = (None, 0.5)  # None: no stricter bar under YUNET_SURE


def scored_boxes(rgb: np.ndarray) -> list[tuple[float, float, tuple]]:
    """(YuNet score, O-Net score, box) for every YuNet box scoring LOWEST_SCORE or more."""
    found = detection._detect_yunet(rgb, detection._yunet_image_threads, min_score=LOWEST_SCORE)
    onet = verification.onet_scores(rgb, [face.box for face in found])
    return [(face.score, float(o), face.box) for face, o in zip(found, onet)]


def apply_rule(boxes, yunet_min: float, onet_min: float, onet_unsure: float | None, duplicates: bool) -> list:
    kept = [box for yunet, onet, box in boxes if yunet >= yunet_min and onet >= onet_min
            and not (onet_unsure is not None and yunet < verification.YUNET_SURE and onet < onet_unsure)]
    return verification.drop_duplicates(kept) if duplicates else kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", default=["1:150", "2:150", "0:100"], help="SEED:SCENES per set of scenes")
    parser.add_argument("--design", nargs="+", default=["1", "2"], help="the seeds the rule is chosen on; the others check it")
    parser.add_argument("--json", metavar="PATH", help="write the grid to PATH (docs/benchmarks/yunet_verification.json)")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    from skimage import data

    fer_root = Path(os.environ.get("FER_DATA", "data/fer2013"))
    detection.resolve_detector("yunet")
    sets = {}
    for spec in args.seeds:
        seed, _, count = spec.partition(":")
        scenes = compose_scenes(fer_root, int(count or 100), 4, int(seed))
        yunet = [(truth, scored_boxes(detection.as_detection_rgb(scene))) for scene, truth in scenes]
        mtcnn = [count_detections(truth, detection.detect_raw_batch([scene], "mtcnn")[0], "mtcnn") for scene, truth in scenes]
        sets[seed] = {"scenes": len(scenes), "faces": sum(len(t) for _, t in scenes), "yunet": yunet,
                      "mtcnn": [sum(column) for column in zip(*mtcnn)]}
        print(f"seed {seed}: {len(scenes)} scenes scored", flush=True)
    people_free, mtcnn_people_free = {}, 0
    for name in NEGATIVES:
        rgb = detection.as_detection_rgb(getattr(data, name)())
        people_free[name] = scored_boxes(detection._downscale(rgb, detection.YUNET_MAX_SIDE)[0])
        mtcnn_people_free += len(detection.detect_faces(rgb, "mtcnn"))
    rules = []
    for yunet_min, onet_min, onet_unsure, duplicates in itertools.product(
            YUNET_MIN_SCORES, ONET_MIN_SCORES, ONET_MIN_SCORES_UNSURE, (False, True)):
        rule = {"yunet_min": yunet_min, "onet_min": onet_min, "onet_min_unsure": onet_unsure, "drop_duplicates": duplicates,
                "seeds": {}}
        for seed, found in sets.items():
            counts = [count_detections(truth, apply_rule(boxes, yunet_min, onet_min, onet_unsure, duplicates), "yunet")
                      for truth, boxes in found["yunet"]]
            rule["seeds"][seed] = dict(zip(("found", "false", "inside"), (sum(c) for c in zip(*counts))))
        rule["people_free"] = sum(len(apply_rule(b, yunet_min, onet_min, onet_unsure, duplicates)) for b in people_free.values())
        rules.append(rule)
        print(f"yunet >= {yunet_min}, onet >= {onet_min}, unsure onet >= {onet_unsure}, duplicates dropped {duplicates}: "
              + " | ".join(f"seed {s}: {r['found']} found, {r['false']} false, {r['inside']} inside" for s, r in rule["seeds"].items())
              + f" | people-free {rule['people_free']}", flush=True)
    for seed, found in sets.items():
        print(f"mtcnn, seed {seed}: {found['mtcnn'][0]}/{found['faces']} found, {found['mtcnn'][1]} false, "
              f"{found['mtcnn'][2]} inside")
    print(f"mtcnn, people-free photos: {mtcnn_people_free}")
    if args.json:
        from fer_lib.artifacts import write_json_atomic
        from fer_lib.models.stats import cpu_description

        command = [a for i, a in enumerate(argv) if a != "--json" and (i == 0 or argv[i - 1] != "--json")]
        write_json_atomic(args.json, {
            "date": datetime.date.today().isoformat(), "hardware": cpu_description(),
            "command": "python scripts/sweep_yunet_verification.py" + "".join(f" {shlex.quote(a)}" for a in command),
            "design_seeds": [s for s in sets if s in args.design], "check_seeds": [s for s in sets if s not in args.design],
            "chosen": {"yunet_min": detection.YUNET_MIN_SCORE, "onet_min": verification.ONET_MIN_SCORE,
                       "onet_min_unsure": verification.ONET_MIN_SCORE_UNSURE, "yunet_sure": verification.YUNET_SURE,
                       "drop_duplicates": True},
            "scenes": {seed: {"scenes": found["scenes"], "faces": found["faces"]} for seed, found in sets.items()},
            "mtcnn": {seed: dict(zip(("found", "false", "inside"), found["mtcnn"])) for seed, found in sets.items()},
            "mtcnn_people_free": mtcnn_people_free,
            "people_free_photos": list(NEGATIVES), "rules": rules})
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
