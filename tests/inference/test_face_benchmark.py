"""The false-face benchmark's images and counting (fer_lib.inference.face_benchmark), with fake detectors."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("skimage")

from fer_lib.inference import detection, face_benchmark  # noqa: E402

SOURCES = ("coins", "rocket")  # one grayscale, one colour


@pytest.fixture(scope="module")
def people_free():
    return list(face_benchmark.people_free_images(SOURCES, qualities=(90,), tiles=False))


@pytest.fixture(scope="module")
def faces():
    lfw = face_benchmark.lfw_faces()[:8]
    return (list(face_benchmark.face_scenes("lfw_scenes", lfw, ["coffee"], faces_per_scene=4, seed=0))
            + list(face_benchmark.face_photos(qualities=(), tiles=False)))


def perfect(items):
    """A detector that returns each image's known faces, found by the image's identity."""
    truth = {id(item.image): item.faces for item in items}
    return lambda image: truth[id(image)]


def test_people_free_variants(people_free):
    names = [item.name for item in people_free]
    # coins is grayscale: one colour mode; rocket: colour and gray; each lossless and JPEG 90.
    assert names == ["coins/gray/full/png", "coins/gray/full/q90", "rocket/colour/full/png", "rocket/colour/full/q90",
                     "rocket/gray/full/png", "rocket/gray/full/q90"]
    assert all(item.people_free and not item.faces and item.image.dtype == np.uint8 for item in people_free)
    assert people_free[3].image.ndim == 3 and people_free[4].image.ndim == 2
    assert not np.array_equal(people_free[2].image, people_free[3].image)  # recompressed


def test_views_cover_tiles_crop_and_upscale():
    image = np.zeros((600, 800), np.uint8)
    shapes = {name: pixels.shape for name, pixels, _, _ in face_benchmark.views(image)}
    assert shapes == {"full": (600, 800), "tile00": (300, 400), "tile01": (300, 400), "tile10": (300, 400),
                      "tile11": (300, 400), "crop640x480": (480, 640), "up2x": (1200, 1600)}


def test_a_fixed_box_is_one_false_face_per_people_free_image(people_free, faces):
    results = face_benchmark.run_benchmark(people_free + faces, lambda image: [(1, 2, 30, 30)])
    summary = face_benchmark.summarize(results)
    assert summary["people_free"]["false_faces"] == len(people_free) == summary["people_free"]["images"]
    assert summary["people_free"]["images_with_false"] == len(people_free)
    assert summary["people_free"]["families"] == {
        "coins": {"images": 2, "false_faces": 2, "images_with_false": 2},
        "rocket": {"images": 4, "false_faces": 4, "images_with_false": 4}}
    assert summary["faces"]["found"] == 0 and summary["faces"]["recall"] == 0


def test_a_perfect_detector_has_recall_one_and_no_false_face(people_free, faces):
    items = people_free + faces
    summary = face_benchmark.summarize(face_benchmark.run_benchmark(items, perfect(items)))
    known = sum(len(item.faces) for item in faces)
    assert known == 8 + 2 + 2  # 8 pasted LFW faces; the astronaut and Grace Hopper in colour and gray
    assert summary["faces"] == {"images": len(faces), "faces": known, "found": known, "found_loose": known,
                                "recall": 1.0, "false_faces": 0, "inside_pasted": 0}
    assert summary["people_free"]["false_faces"] == 0


def test_detections_as_objects_with_a_box_count_the_same(faces):
    truth = {id(item.image): item.faces for item in faces}
    as_objects = face_benchmark.run_benchmark(
        faces, lambda image: [SimpleNamespace(box=np.array(box, float), score=0.9) for box in truth[id(image)]])
    assert face_benchmark.summarize(as_objects)["faces"]["recall"] == 1.0


def test_near_misses_inside_and_false_boxes_are_told_apart(faces):
    scene = faces[0]
    x, y, w, h = scene.faces[0]
    shifted = (x + w // 4, y, w, h)  # IoU 0.6: found
    loose = (x + w // 2, y, w, h)  # IoU 1/3: not found at 0.5, yet not false
    inside = (x + w // 4, y + h // 4, w // 2, h // 2)  # within the pasted photo
    far = next(box for box in [(0, 0, 30, 30), (610, 0, 30, 30), (0, 450, 30, 30), (610, 450, 30, 30)]
               if not any(detection.box_iou(box, t) or detection.box_inside(box, t) for t in scene.faces))
    counted = face_benchmark.count_detections(scene, [shifted, inside, far])
    assert (counted.found, counted.found_loose) == (1, 1)
    assert counted.inside_boxes == [inside] and counted.false_boxes == [far]
    counted = face_benchmark.count_detections(scene, [loose])
    assert (counted.found, counted.found_loose, counted.false_boxes) == (0, 1, [])


def test_face_scenes_paste_the_faces_in_their_size_bands(faces):
    scenes = [item for item in faces if item.family == "lfw_scenes"]
    assert [len(item.faces) for item in scenes] == [4, 4]
    for item, (low, high) in zip(scenes, face_benchmark.FACE_SIZE_BANDS):
        assert item.image.shape[:2] == (480, 640) and not item.people_free
        assert all(w == h and low <= w <= high for _, _, w, h in item.faces)
