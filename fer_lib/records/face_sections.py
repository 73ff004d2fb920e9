"""docs/inference.md's generated sections on faces in photos: false faces and recall per detector
(docs/benchmarks/false_faces.json) and accuracy on tilted faces with and without eye alignment
(docs/benchmarks/alignment.json).
"""

from __future__ import annotations

from fer_lib.records.cells import wrap
from fer_lib.records.inference_sections import _machine


def _share(found: int, total: int) -> str:
    return f"{found}/{total} = {found / total:.1%}" if total else "-"


def false_faces_section(data: dict) -> str:
    """false_faces.json (benchmark_false_faces.py --json): false faces on people-free images, recall on known faces."""
    images = data["images"]
    lines = [wrap(f"Measured {data['date']} on {_machine(data)}: `{data['command']}`. {images['people_free']} people-free "
                  f"images from {len(images['people_free_sources'])} photos and drawings shipped in scikit-image, scikit-learn "
                  f"and matplotlib (whole, tiled, cropped, upscaled, colour and gray, JPEG quality "
                  f"{'/'.join(str(q) for q in images['jpeg_qualities'])}); {images['known_faces']} known faces in "
                  f"{images['faces_images']} images (the astronaut and Grace Hopper, LFW faces and FER2013 PublicTest faces "
                  "pasted into people-free scenes at 30-400 px). A face is found at IoU 0.5 or more with its known box; a box "
                  "that matches no known face (IoU under 0.3) is false."), "",
             "| detector | false faces on people-free images | images with one | families with one | recall on known faces |",
             "|---|---|---|---|---|"]
    for name, row in data["detectors"].items():
        free, faces = row["people_free"], row["faces"]
        families = [family for family, counts in free["families"].items() if counts["false_faces"]]
        lines.append(f"| {name} | {free['false_faces']} ({free['false_faces'] / free['images']:.3f} per image) | "
                     f"{free['images_with_false']} of {free['images']} | {', '.join(f'`{f}`' for f in families) or '-'} | "
                     f"{_share(faces['found'], faces['faces'])} |")
    before = data.get("before")
    if before:
        old = before["yunet"]
        old_families = [family for family, counts in old["people_free"]["families"].items() if counts["false_faces"]]
        lines += ["", wrap(f"The first run ({before['date']}, `{before['command']}`) had YuNet's earlier rule, "
                           f"`{before['yunet_rule']}`: {old['people_free']['false_faces']} false faces "
                           f"({', '.join(f'`{f}`' for f in old_families)}), recall "
                           f"{_share(old['faces']['found'], old['faces']['faces'])}. The mtcnn and haar rows are from that "
                           "run; the rule does not touch them.")]
    rule = data.get("diagnostics", {}).get("yunet", {}).get("rule")
    if rule:
        lines += ["", f"YuNet's rule now: `{rule}`."]
    return "\n".join(lines)


def alignment_section(data: dict) -> str:
    """alignment.json (benchmark_alignment.py --json): accuracy per tilt, cropped upright and eye-levelled."""
    ways = list(data["ways"])
    default = data["default_min_degrees"]

    def heading(way: str) -> str:
        if way == "upright":
            return "upright (`--no-align`)"
        degrees = float(way.split("_")[1])
        return f"levelled from {degrees:g} deg" + (" (default)" if degrees == default else "")

    lines = [wrap(f"Measured {data['date']} on {_machine(data)}: `{data['command']}` (detector {data['detector']}, "
                  f"model `{data['model']}` against {data['labels']}; each test face pasted into a 640x480 scene and the "
                  "scene turned about it; accuracy counts a face the detector missed as wrong, and every way of cropping "
                  "classifies the same detections; the best of each row in bold)."), "",
             "| tilt | faces found | " + " | ".join(heading(way) for way in ways) + " |", "|---" * (len(ways) + 2) + "|"]
    for angle, row in data["angles"].items():
        best = max(row[way] for way in ways)
        cells = [f"**{row[way]:.2%}**" if row[way] == best else f"{row[way]:.2%}" for way in ways]
        lines.append(f"| {int(angle):+d} deg | {_share(row['found'], row['faces'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
