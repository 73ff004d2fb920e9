"""Images for measuring false faces and recall of a face detector, and the counting.

People-free images are the photos and drawings that ship with scikit-image, scikit-learn
and matplotlib, none with a human face in it (PEOPLE_FREE says which, EXCLUDED why the
others are left out), each seen whole, as 2x2 tiles, as a 640x480 centre crop and upscaled
2x, in colour and in grayscale, losslessly and recompressed as JPEG at several qualities:
the ways a user's photo differs from the shipped file. Every face found in them is false.

The faces are the two portraits with a known face (skimage's astronaut, matplotlib's Grace
Hopper, framed by hand the way FER2013 frames its crops), and FER2013 test faces and LFW
faces (skimage's ``lfw_subset``) pasted into people-free scenes at several sizes with
`fer_lib.inference.detection.compose_face_scene`, whose boxes are their frames.

`count_detections` takes any ``detect(image) -> boxes`` callable, boxes as (x, y, w, h)
tuples or objects with a ``box`` attribute, so it outlives changes of the detection API.
scripts/benchmark_false_faces.py runs it on the detectors.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fer_lib.inference.detection import as_detection_rgb, box_inside, compose_face_scene, match_boxes

Box = tuple[int, int, int, int]

# skimage.data images without a human face, loadable without a download. `coins` holds Greek
# coins, a few with a head in profile: a relief, not a face to read an expression from.
PEOPLE_FREE_SKIMAGE = (
    "binary_blobs", "brick", "cell", "checkerboard", "chelsea", "clock", "coffee", "coins", "colorwheel", "grass",
    "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "logo", "microaneurysms", "moon", "page", "retina",
    "rocket", "shepp_logan_phantom", "stereo_motorcycle", "text",
)
# Files of other installed wheels, by package and path inside it.
PEOPLE_FREE_FILES = {
    "sklearn_china": ("sklearn", "datasets/images/china.jpg"),
    "sklearn_flower": ("sklearn", "datasets/images/flower.jpg"),
    "matplotlib_present": ("matplotlib", "mpl-data/sample_data/Minduka_Present_Blue_Pack.png"),
}
PEOPLE_FREE = PEOPLE_FREE_SKIMAGE + tuple(PEOPLE_FREE_FILES)
EXCLUDED = {
    "astronaut": "Eileen Collins' face (in the faces set)",
    "camera": "the cameraman, a person in profile",
    "cat": "the same picture as chelsea",
    "lfw_subset": "100 LFW faces (pasted into the faces set) and 100 patches of LFW photos' backgrounds, some with hair or ears",
    "brain, cells3d, eagle, human_mitosis, kidney, lily, nickel_solidification, palisades_of_vogt, protein_transport, "
    "skin, vortex": "not in the wheel: skimage downloads them with pooch",
}
# Known faces in shipped photos: FER2013-framed squares drawn by hand (between the detectors' boxes).
FACE_PHOTOS = {
    "astronaut": (("skimage", "astronaut"), ((170, 64, 106, 106),)),
    "grace_hopper": (("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"), ((155, 112, 220, 220),)),
}
JPEG_QUALITIES = (95, 90, 75, 50)
VIEW_QUALITY = 90  # the JPEG quality of the tiles, crops and upscales (all qualities would triple the set)
CROP_SIZE = (640, 480)
SCENE_SIZE = (640, 480)
# Sides in pixels the pasted faces are drawn from, one band per scene.
FACE_SIZE_BANDS = ((30, 60), (60, 120), (120, 240), (240, 400))
MIN_IOU_FOUND = 0.5  # a known face is found by a box with this IoU (benchmark_inference's bar)
MIN_IOU_NOT_FALSE = 0.3  # a box this close to a known face is not a false face (a loose frame)


@dataclass(frozen=True)
class BenchImage:
    """One image of the benchmark: its family (the source it was made from) and its known faces."""

    name: str
    family: str
    image: np.ndarray
    faces: tuple[Box, ...] = ()
    people_free: bool = True


@dataclass
class Counted:
    """What a detector found in one BenchImage."""

    name: str
    family: str
    people_free: bool
    faces: int
    found: int  # known faces matched at MIN_IOU_FOUND
    found_loose: int  # known faces matched at MIN_IOU_NOT_FALSE
    false_boxes: list[Box] = field(default_factory=list)  # matching no known face, outside pasted photos
    inside_boxes: list[Box] = field(default_factory=list)  # inside a pasted face's photo, not matching it
    matched_boxes: list[Box] = field(default_factory=list)


def box_of(detection) -> Box:
    """(x, y, w, h) of a detection given as a tuple or as an object with a ``box`` attribute."""
    box = getattr(detection, "box", detection)
    return tuple(int(round(float(v))) for v in box[:4])


def count_detections(item: BenchImage, boxes: Iterable) -> Counted:
    """Found, false and inside-pasted-face boxes among `boxes` detected in `item`."""
    found_boxes = [box_of(b) for b in boxes]
    truth = list(item.faces)
    strict = match_boxes(truth, found_boxes, MIN_IOU_FOUND)
    loose = match_boxes(truth, found_boxes, MIN_IOU_NOT_FALSE)
    matched = {j for _, j in loose}
    unmatched = [box for j, box in enumerate(found_boxes) if j not in matched]
    # A FER2013 or LFW image is a photo: a box inside a pasted one may be a face in that photo.
    inside = [box for box in unmatched if not item.people_free and any(box_inside(box, t) for t in truth)]
    return Counted(item.name, item.family, item.people_free, len(truth), len(strict), len(loose),
                   [box for box in unmatched if box not in inside], inside, [found_boxes[j] for j in sorted(matched)])


def run_benchmark(items: Iterable[BenchImage], detect: Callable[[np.ndarray], Iterable]) -> list[Counted]:
    """`count_detections` of `detect(item.image)` for each item."""
    return [count_detections(item, detect(item.image)) for item in items]


def summarize(results: list[Counted]) -> dict:
    """False faces per people-free family and in all, and recall on the faces."""
    families: dict[str, dict] = {}
    for r in results:
        if r.people_free:
            row = families.setdefault(r.family, {"images": 0, "false_faces": 0, "images_with_false": 0})
            row["images"] += 1
            row["false_faces"] += len(r.false_boxes)
            row["images_with_false"] += bool(r.false_boxes)
    faces = [r for r in results if not r.people_free]
    known = sum(r.faces for r in faces)
    people_free = [r for r in results if r.people_free]
    return {
        "people_free": {"images": len(people_free), "false_faces": sum(len(r.false_boxes) for r in people_free),
                        "images_with_false": sum(bool(r.false_boxes) for r in people_free),
                        "false_per_image": sum(len(r.false_boxes) for r in people_free) / max(1, len(people_free)),
                        "families": families},
        "faces": {"images": len(faces), "faces": known, "found": sum(r.found for r in faces),
                  "found_loose": sum(r.found_loose for r in faces),
                  "recall": sum(r.found for r in faces) / known if known else float("nan"),
                  "false_faces": sum(len(r.false_boxes) for r in faces),
                  "inside_pasted": sum(len(r.inside_boxes) for r in faces)},
    }


# --- Building the images


def _package_file(package: str, path: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package} is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / path


def load_source(name: str) -> np.ndarray:
    """A people-free or face photo by its name here, as HxW or HxWx3 uint8."""
    from PIL import Image

    package, path = PEOPLE_FREE_FILES.get(name) or FACE_PHOTOS.get(name, ((None, name),))[0]
    if package is not None and package != "skimage":
        with Image.open(_package_file(package, path)) as image:
            return np.asarray(image.convert("RGB"))
    from skimage import data

    image = getattr(data, path)()
    if path == "stereo_motorcycle":
        image = image[0]  # the left view
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    elif image.dtype != np.uint8:
        image = np.clip(np.round(255 * image), 0, 255).astype(np.uint8)
    if image.ndim == 3:
        image = image[:, :, :3]
        if np.array_equal(image[:, :, 0], image[:, :, 1]) and np.array_equal(image[:, :, 0], image[:, :, 2]):
            image = image[:, :, 0]
    return np.ascontiguousarray(image)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """`image` saved as a JPEG of `quality` with Pillow and read back, as a user's photo would be."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    with Image.open(io.BytesIO(buffer.getvalue())) as decoded:
        return np.asarray(decoded.convert("L" if image.ndim == 2 else "RGB"))


def gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def views(image: np.ndarray, tiles: bool = True) -> Iterator[tuple[str, np.ndarray, tuple[int, int], float]]:
    """(name, pixels, (x, y) offset of the view in `image`, scale) for the whole image and its crops.

    The 2x2 tiles, a 640x480 centre crop (when the image is larger) and a 2x upscale, when `tiles`.
    """
    yield "full", image, (0, 0), 1.0
    if not tiles:
        return
    height, width = image.shape[:2]
    for row in range(2):
        for column in range(2):
            y0, x0 = row * height // 2, column * width // 2
            yield f"tile{row}{column}", image[y0:y0 + height // 2, x0:x0 + width // 2], (x0, y0), 1.0
    crop_w, crop_h = CROP_SIZE
    if width > crop_w or height > crop_h:
        x0, y0 = max(0, (width - crop_w) // 2), max(0, (height - crop_h) // 2)
        yield "crop640x480", image[y0:y0 + crop_h, x0:x0 + crop_w], (x0, y0), 1.0
    yield "up2x", cv2.resize(image, (2 * width, 2 * height), interpolation=cv2.INTER_CUBIC), (0, 0), 2.0


def variants(name: str, image: np.ndarray, qualities=JPEG_QUALITIES, tiles: bool = True,
             faces: tuple[Box, ...] = ()) -> Iterator[BenchImage]:
    """Every view of `image` in colour and grayscale, lossless and as JPEG: the whole image at each of
    `qualities`, the tiles, crop and upscale at VIEW_QUALITY (when among `qualities`).

    Known `faces` are carried into each view, dropped from a view that cuts them.
    """
    colours = [("gray", gray(image))] if image.ndim == 2 else [("colour", image), ("gray", gray(image))]
    for colour, pixels in colours:
        for view, view_pixels, (x0, y0), scale in views(pixels, tiles):
            height, width = view_pixels.shape[:2]
            shifted = [tuple(int(round(v)) for v in (scale * (x - x0), scale * (y - y0), scale * w, scale * h))
                       for x, y, w, h in faces]
            inside = tuple(b for b in shifted if b[0] >= 0 and b[1] >= 0 and b[0] + b[2] <= width and b[1] + b[3] <= height)
            if faces and len(inside) < len(faces):
                continue  # a face cut by the view: neither found nor false
            for quality in (None, *(q for q in qualities if view == "full" or q == VIEW_QUALITY)):
                yield BenchImage(f"{name}/{colour}/{view}/{'png' if quality is None else f'q{quality}'}", name,
                                 view_pixels if quality is None else jpeg(np.ascontiguousarray(view_pixels), quality),
                                 inside, people_free=not faces)


def people_free_images(names: Iterable[str] = PEOPLE_FREE, qualities=JPEG_QUALITIES, tiles: bool = True) -> Iterator[BenchImage]:
    """Every people-free image in every variant."""
    for name in names:
        yield from variants(name, load_source(name), qualities, tiles)


def face_photos(qualities=JPEG_QUALITIES, tiles: bool = True) -> Iterator[BenchImage]:
    """The shipped portraits in their variants (those that keep the face whole)."""
    for name, (_, faces) in FACE_PHOTOS.items():
        yield from variants(name, load_source(name), qualities, tiles, faces)


def fer_faces(fer_root: Path | str, count: int, seed: int = 0) -> list[np.ndarray]:
    """`count` FER2013 PublicTest faces (48x48 grayscale) from the Kaggle layout under `fer_root`."""
    files = sorted(Path(fer_root).glob("test/*/PublicTest_*"))
    if not files:
        raise FileNotFoundError(f"no FER2013 PublicTest images under {fer_root}/test/<emotion>/")
    chosen = np.random.default_rng(seed).choice(len(files), size=min(count, len(files)), replace=False)
    return [cv2.imread(str(files[i]), cv2.IMREAD_GRAYSCALE) for i in chosen]


def lfw_faces() -> list[np.ndarray]:
    """skimage's 100 LFW faces (25x25 grayscale, framed much like FER2013's crops)."""
    from skimage import data

    return list((255 * data.lfw_subset()[:100]).round().astype(np.uint8))


def face_scenes(kind: str, faces: list[np.ndarray], backgrounds: list[str], faces_per_scene: int = 4,
                bands=FACE_SIZE_BANDS, seed: int = 0, jpeg_quality: int | None = 90) -> Iterator[BenchImage]:
    """`faces` pasted `faces_per_scene` at a time into 640x480 people-free scenes, each scene's faces
    drawn from one band of sides in turn; every other scene grayscale, and every scene a JPEG of
    `jpeg_quality` (None: lossless)."""
    rng = np.random.default_rng(seed)
    loaded = {name: cv2.resize(as_detection_rgb(load_source(name)), SCENE_SIZE, interpolation=cv2.INTER_AREA)
              for name in backgrounds}
    for i in range(0, len(faces), faces_per_scene):
        scene_number = i // faces_per_scene
        background_name = backgrounds[scene_number % len(backgrounds)]
        background = loaded[background_name]
        if scene_number % 2:
            background = gray(background)
        low, high = bands[scene_number % len(bands)]
        scene, boxes = compose_face_scene(faces[i:i + faces_per_scene], background, rng, min_side=low, max_side=high)
        if scene_number % 2:
            scene = gray(scene)
        if jpeg_quality is not None:
            scene = jpeg(scene, jpeg_quality)
        yield BenchImage(f"{kind}/{scene_number:03d}/{background_name}/{low}-{high}px", kind, scene, tuple(boxes),
                         people_free=False)
