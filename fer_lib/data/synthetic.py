"""Synthetic cartoon faces in the Kaggle FER2013 image-folder layout.

The generated dataset is small and learnable, so demos and tests can run the
real loading/training code without the (licensed, 60k-image) FER2013 download:

    <out>/train/<emotion>/Training_<id>.png
    <out>/test/<emotion>/PublicTest_<id>.png
    <out>/SYNTHETIC_DATA.txt        (marker: JSON with the generation parameters)
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from fer_lib.labels import EMOTIONS

SYNTHETIC_MARKER = "SYNTHETIC_DATA.txt"
IMAGE_FORMATS = ("png", "jpg")

# Bump when rendering changes, so an old dataset is not mistaken for a fresh one.
_GENERATOR_VERSION = 1
_SUPERSAMPLE = 4
_SPLITS = (("train", "Training"), ("test", "PublicTest"))


def render_face(emotion: str, rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """One synthetic grayscale face (uint8, size x size) showing `emotion`."""
    if emotion not in EMOTIONS:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {EMOTIONS}")
    if size < 16:
        raise ValueError(f"size must be >= 16 pixels, got {size}")

    canvas = size * _SUPERSAMPLE

    # Gray levels: keep face/background and feature/skin contrast visible.
    skin = int(rng.integers(130, 200))
    bg_delta = int(rng.integers(35, 80))
    # Background on either side of the skin tone, as long as it stays in range.
    darker_bg = rng.random() < 0.5 or skin + bg_delta > 250
    bg = skin - bg_delta if darker_bg else skin + bg_delta
    ink = max(0, skin - int(rng.integers(85, 130)))
    sclera = min(255, skin + int(rng.integers(25, 60)))

    img = Image.new("L", (canvas, canvas), bg)
    draw = ImageDraw.Draw(img)

    scale = rng.uniform(0.8, 1.15)
    cx = canvas / 2 + rng.uniform(-0.07, 0.07) * canvas
    cy = canvas / 2 + rng.uniform(-0.06, 0.06) * canvas
    half_w = 0.35 * canvas * scale * rng.uniform(0.93, 1.07)
    half_h = 0.43 * canvas * scale * rng.uniform(0.93, 1.07)

    def pt(u: float, v: float) -> tuple[float, float]:
        """Face-relative coordinates (u, v in [-1, 1], v down) to canvas pixels."""
        return (cx + u * half_w, cy + v * half_h)

    def stroke(fraction: float) -> int:
        return max(1, int(round(fraction * half_w)))

    draw.ellipse([pt(-1, -1), pt(1, 1)], fill=skin)

    _draw_eyes(draw, emotion, rng, pt, stroke, ink, sclera)
    _draw_brows(draw, emotion, rng, pt, stroke, ink)
    if rng.random() < 0.7:
        nose_ink = (skin + ink) // 2
        nose_y = rng.uniform(0.12, 0.2)
        draw.line([pt(0, -0.02), pt(-0.08, nose_y), pt(0.04, nose_y)], fill=nose_ink, width=stroke(0.05))
    _draw_mouth(draw, emotion, rng, pt, stroke, ink, skin)

    # Rotate about the face centre; fill the exposed corners with background.
    angle = rng.uniform(-10, 10)
    img = img.rotate(angle, resample=Image.Resampling.BILINEAR, center=(cx, cy), fillcolor=bg)
    # Box-filter downsampling is exact supersampling: smooth, antialiased edges.
    img = img.resize((size, size), Image.Resampling.BOX)

    pixels = np.asarray(img, dtype=np.float32)
    contrast = rng.uniform(0.75, 1.25)
    brightness = rng.uniform(-20, 20)
    pixels = (pixels - pixels.mean()) * contrast + pixels.mean() + brightness
    pixels += rng.normal(0.0, rng.uniform(2.0, 8.0), pixels.shape)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def _draw_eyes(draw, emotion, rng, pt, stroke, ink, sclera) -> None:
    eye_v = rng.uniform(-0.22, -0.12)
    eye_u = rng.uniform(0.33, 0.42)
    for side in (-1, 1):
        ex, ey = side * eye_u, eye_v
        if emotion in ("surprise", "fear"):
            # Wide open: white all round the pupil.
            rx, ry = rng.uniform(0.17, 0.21), rng.uniform(0.14, 0.18)
            draw.ellipse([pt(ex - rx, ey - ry), pt(ex + rx, ey + ry)], fill=sclera, outline=ink, width=stroke(0.035))
            pr = rng.uniform(0.06, 0.08)
            draw.ellipse([pt(ex - pr, ey - pr * 1.2), pt(ex + pr, ey + pr * 1.2)], fill=ink)
        elif emotion in ("angry", "disgust"):
            # Narrowed to a slit.
            rx, ry = rng.uniform(0.13, 0.17), rng.uniform(0.025, 0.04)
            draw.ellipse([pt(ex - rx, ey - ry), pt(ex + rx, ey + ry)], fill=ink)
        else:
            rx, ry = rng.uniform(0.12, 0.15), rng.uniform(0.07, 0.09)
            draw.ellipse([pt(ex - rx, ey - ry), pt(ex + rx, ey + ry)], fill=sclera, outline=ink, width=stroke(0.03))
            pr = rng.uniform(0.05, 0.065)
            draw.ellipse([pt(ex - pr, ey - pr * 1.3), pt(ex + pr, ey + pr * 1.3)], fill=ink)


def _draw_brows(draw, emotion, rng, pt, stroke, ink) -> None:
    base = rng.uniform(-0.45, -0.38)
    inner_u, outer_u = rng.uniform(0.12, 0.18), rng.uniform(0.55, 0.65)
    width = stroke(rng.uniform(0.09, 0.11))
    lowered_side = 1 if rng.random() < 0.5 else -1
    for side in (-1, 1):
        # (inner v, middle v, outer v): smaller v is higher on the face.
        if emotion == "angry":
            tilt = rng.uniform(0.12, 0.18)
            shape = (base + tilt, base + tilt * 0.1, base - tilt * 0.6)
        elif emotion in ("sad", "fear"):
            tilt = rng.uniform(0.1, 0.16)
            shape = (base - tilt, base - tilt * 0.2, base + tilt * 0.3)
        elif emotion == "surprise":
            lift, arch = rng.uniform(0.12, 0.18), rng.uniform(0.06, 0.1)
            shape = (base - lift, base - lift - arch, base - lift + 0.01)
        elif emotion == "disgust" and side == lowered_side:
            drop = rng.uniform(0.1, 0.15)
            shape = (base + drop + 0.03, base + drop, base + drop - 0.02)
        else:
            wobble = rng.uniform(-0.02, 0.02)
            shape = (base + wobble, base - 0.015, base - wobble)
        inner_v, mid_v, outer_v = shape
        mid_u = (inner_u + outer_u) / 2
        draw.line(
            [pt(side * inner_u, inner_v), pt(side * mid_u, mid_v), pt(side * outer_u, outer_v)],
            fill=ink, width=width, joint="curve",
        )


def _draw_mouth(draw, emotion, rng, pt, stroke, ink, skin) -> None:
    mv = rng.uniform(0.45, 0.55)
    width = stroke(rng.uniform(0.08, 0.1))

    def curve(half_width: float, offset_fn, line_width: int) -> None:
        us = np.linspace(-half_width, half_width, 17)
        draw.line([pt(u, mv + offset_fn(u / half_width)) for u in us], fill=ink, width=line_width, joint="curve")

    if emotion == "happy":
        # Corners up, middle down (v grows downwards).
        depth = rng.uniform(0.15, 0.22)
        half_width = rng.uniform(0.36, 0.46)
        if rng.random() < 0.5:
            # Open grin: a filled half-moon with a band of teeth along the flat top.
            top = mv - depth * 0.6
            us = np.linspace(-half_width, half_width, 17)
            lower = [pt(u, top + depth * 1.3 * (1 - (u / half_width) ** 2)) for u in us]
            draw.polygon([pt(-half_width, top), pt(half_width, top)] + lower[::-1], fill=ink)
            teeth = (skin + 255) // 2
            draw.polygon(
                [pt(-half_width * 0.8, top), pt(half_width * 0.8, top), pt(half_width * 0.6, top + depth * 0.45),
                 pt(-half_width * 0.6, top + depth * 0.45)],
                fill=teeth,
            )
        else:
            curve(half_width, lambda t: depth * (1 - t * t) - depth * 0.6, width)
    elif emotion == "sad":
        depth = rng.uniform(0.11, 0.17)
        curve(rng.uniform(0.28, 0.38), lambda t: -depth * (1 - t * t) + depth * 0.6, width)
    elif emotion == "surprise":
        rx, ry = rng.uniform(0.11, 0.15), rng.uniform(0.15, 0.2)
        draw.ellipse([pt(-rx, mv - ry), pt(rx, mv + ry)], fill=ink)
    elif emotion == "fear":
        # Stretched open mouth with a hint of teeth.
        rx, ry = rng.uniform(0.3, 0.38), rng.uniform(0.08, 0.12)
        draw.ellipse([pt(-rx, mv - ry), pt(rx, mv + ry)], fill=ink)
        teeth = (skin + 255) // 2
        draw.rectangle([pt(-rx * 0.55, mv - ry * 0.75), pt(rx * 0.55, mv - ry * 0.25)], fill=teeth)
    elif emotion == "angry":
        # Pressed lips: a thick, short bar with slightly dropped corners.
        droop = rng.uniform(0.01, 0.05)
        curve(rng.uniform(0.2, 0.27), lambda t: droop * t * t, stroke(rng.uniform(0.13, 0.16)))
    elif emotion == "disgust":
        # One corner raised (sneer) plus a wave; side chosen at random.
        side = 1 if rng.random() < 0.5 else -1
        raise_amount = rng.uniform(0.1, 0.16)
        wave = rng.uniform(0.03, 0.05)
        curve(
            rng.uniform(0.28, 0.36),
            lambda t: -raise_amount * max(0.0, side * t) ** 2 + wave * math.sin(3 * math.pi * t),
            width,
        )
    else:  # neutral
        tilt = rng.uniform(-0.015, 0.015)
        curve(rng.uniform(0.25, 0.34), lambda t: tilt * t, width)


def _marker_params(train_per_class: int, test_per_class: int, seed: int, image_format: str) -> dict:
    return {
        "generator": "fer_lib.synthetic",  # its module's name when the first demo folders were made: markers must match
        "version": _GENERATOR_VERSION,
        "seed": seed,
        "train_per_class": train_per_class,
        "test_per_class": test_per_class,
        "image_format": image_format,
        "emotions": list(EMOTIONS),
    }


def _read_marker(root: Path) -> dict | None:
    try:
        return json.loads((root / SYNTHETIC_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_marker(root: Path, params: dict, complete: bool) -> None:
    content = {
        "note": (
            "Synthetic cartoon faces generated by fer_lib.data.synthetic for demos and tests. "
            "This is NOT FER2013; results on it say nothing about real facial expressions."
        ),
        "complete": complete,
        "params": params,
    }
    # Replace atomically so a crash never leaves a half-written marker.
    tmp = root / (SYNTHETIC_MARKER + ".tmp")
    tmp.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, root / SYNTHETIC_MARKER)


def is_synthetic_dataset(path) -> bool:
    """True if `path` (dataset root or a split folder) was written by generate_dataset."""
    path = Path(path)
    return (path / SYNTHETIC_MARKER).is_file() or (path.parent / SYNTHETIC_MARKER).is_file()


def is_complete_synthetic_dataset(path) -> bool:
    """True if `path` is a dataset root that generate_dataset finished writing."""
    marker = _read_marker(Path(path))
    return bool(marker and marker.get("complete"))


def generate_dataset(
    out_dir,
    train_per_class: int = 60,
    test_per_class: int = 20,
    seed: int = 0,
    image_format: str = "png",
) -> Path:
    """Write a synthetic FER dataset in the Kaggle layout; return out_dir as Path."""
    for name, count in (("train_per_class", train_per_class), ("test_per_class", test_per_class)):
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {count!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    fmt = str(image_format).lower().lstrip(".")
    fmt = "jpg" if fmt == "jpeg" else fmt
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {IMAGE_FORMATS}, got {image_format!r}")

    root = Path(out_dir)
    params = _marker_params(int(train_per_class), int(test_per_class), int(seed), fmt)
    if root.exists():
        if not root.is_dir():
            raise FileExistsError(f"{root} exists and is not a directory; pick another dataset path")
        if any(root.iterdir()):
            marker = _read_marker(root)
            if marker is None or marker.get("params") != params:
                raise FileExistsError(
                    f"{root} is not empty and is not a synthetic dataset with these parameters; "
                    "refusing to write into it (choose an empty or new folder)"
                )
            if marker.get("complete"):
                return root
            # Same parameters but an interrupted run: regenerate over it.
    root.mkdir(parents=True, exist_ok=True)
    _write_marker(root, params, complete=False)

    counts = {"train": params["train_per_class"], "test": params["test_per_class"]}
    for split_index, (split, prefix) in enumerate(_SPLITS):
        image_id = 0
        for class_index, emotion in enumerate(EMOTIONS):
            class_dir = root / split / emotion
            class_dir.mkdir(parents=True, exist_ok=True)
            for index in range(counts[split]):
                # Per-image seed: any one image is reproducible on its own.
                rng = np.random.default_rng([params["seed"], split_index, class_index, index])
                face = Image.fromarray(render_face(emotion, rng))
                image_id += 1
                path = class_dir / f"{prefix}_{image_id}.{fmt}"
                if fmt == "jpg":
                    face.save(path, format="JPEG", quality=95)
                else:
                    face.save(path, format="PNG")

    _write_marker(root, params, complete=True)
    return root


def generate_ferplus_dataset(out_dir, train_per_class: int = 24, valid_per_class: int = 8, seed: int = 0) -> Path:
    """Write synthetic faces in FER+'s PNG layout (FER2013Train/, FER2013Valid/, each with a label.csv of
    ten votes per face) for tests and demos of the FER+ code paths; return out_dir as Path.

    Most annotators of a face vote for its drawn emotion and the rest scatter, so the rules disagree
    on some faces; one face in twelve has most votes on unknown and is dropped. Contempt, which
    render_face does not draw, is a neutral face upside down.
    """
    from fer_lib.data.votes import CLASS_OF_COLUMN
    from fer_lib.labels import FERPLUS_EMOTIONS

    root = Path(out_dir)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty; refusing to write into it (choose an empty or new folder)")
    params = {"generator": "fer_lib.synthetic.ferplus", "version": _GENERATOR_VERSION, "seed": int(seed),
              "train_per_class": int(train_per_class), "test_per_class": int(valid_per_class),
              "emotions": list(FERPLUS_EMOTIONS)}
    root.mkdir(parents=True, exist_ok=True)
    _write_marker(root, params, complete=False)
    column_of = {int(c): column for column, c in enumerate(CLASS_OF_COLUMN)}
    row = 0
    for split_index, (folder, count) in enumerate((("FER2013Train", train_per_class), ("FER2013Valid", valid_per_class))):
        (root / folder).mkdir()
        lines = []
        for class_index, emotion in enumerate(FERPLUS_EMOTIONS):
            for index in range(count):
                rng = np.random.default_rng([int(seed), split_index, class_index, index, 7])
                face = render_face("neutral", rng)[::-1] if emotion == "contempt" else render_face(emotion, rng)
                votes = np.zeros(10, np.int64)
                top = 8 if index % 12 == 11 else column_of[class_index]  # 8: unknown
                votes[top] = rng.integers(5, 10)
                np.add.at(votes, rng.integers(0, 10, size=10 - votes[top]), 1)
                name = f"fer{row:07d}.png"
                row += 1
                Image.fromarray(face).save(root / folder / name, format="PNG")
                lines.append(f'{name},"(0, 0, 48, 48)",' + ",".join(map(str, votes)) + "\n")
        (root / folder / "label.csv").write_text("".join(lines))
    _write_marker(root, params, complete=True)
    return root
