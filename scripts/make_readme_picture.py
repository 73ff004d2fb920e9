"""The README's picture: a photo with each face's box, emotion, scores and detection score drawn on it.

    python scripts/make_readme_picture.py            # writes docs/images/predict_expression.jpg

The photo is scikit-image's `astronaut` (Eileen Collins, NASA; public domain), which ships in
its wheel; the drawing is `fer_lib.inference.draw_faces`, what `fer predict --annotate` writes,
with the packaged default model and detector.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from PIL import Image  # noqa: E402

from fer_lib.artifacts import atomic_path  # noqa: E402
from fer_lib.inference import draw_faces, predict_expression  # noqa: E402

PICTURE = Path(__file__).resolve().parents[1] / "docs" / "images" / "predict_expression.jpg"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PICTURE)
    args = parser.parse_args(argv)
    from skimage import data

    photo = data.astronaut()
    faces = predict_expression(photo)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as temporary:
        Image.fromarray(draw_faces(photo, faces)).save(temporary, "JPEG", quality=88)
    for face in faces:
        print(f"{face['emotion']} {face['scores'][face['emotion']]:.0%}, detection score {face['detection_score']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
