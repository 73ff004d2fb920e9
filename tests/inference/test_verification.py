"""The O-Net check on YuNet's faces: crops as MTCNN makes them, the thresholds, duplicates, real photos."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from fer_lib.inference import detection, verification

needs_yunet = pytest.mark.skipif(not detection.detector_available("yunet"), reason="yuface has no wheel here")


def test_onet_inputs_match_the_crops_mtcnn_gives_its_onet():
    import tensorflow as tf
    from mtcnn.utils.bboxes import resize_to_square
    from mtcnn.utils.images import extract_patches

    rgb = data.astronaut()
    # a face, a tall box, and one reaching past the image's corner
    boxes = [(170, 62, 106, 130), (300, 200, 40, 90), (-20, -30, 80, 60)]
    ours = verification.onet_inputs(rgb, boxes)
    normalized = (tf.convert_to_tensor(rgb[None].astype(np.float32)) - 127.5) / 128.0
    square = resize_to_square(np.array([[0, x, y, x + w, y + h, 1.0] for x, y, w, h in boxes], np.float64))
    theirs = np.asarray(extract_patches(normalized, square, expected_size=(48, 48)))
    assert ours.shape == theirs.shape == (3, 48, 48, 3)
    # Both bilinear from the same square; they differ by sub-pixel placement, not content.
    assert np.median(np.abs(ours - theirs)) < 0.05
    assert np.all(np.abs(ours[2, 0, 0]) < 0.01)  # outside the image: mid-gray, 0 after scaling


def test_onet_scores_a_face_high_and_a_texture_low():
    rgb = data.astronaut()
    face, wall = (170, 62, 106, 130), (20, 300, 100, 120)
    scores = verification.onet_scores(rgb, [face, wall])
    assert scores[0] > 0.9 and scores[1] < 0.2
    assert verification.onet_scores(rgb, []).shape == (0,)


def test_the_batch_call_scores_each_image_as_alone():
    astronaut = data.astronaut()
    coffee = detection.as_detection_rgb(data.coffee())
    boxes = [[(170, 62, 106, 130)], [], [(100, 100, 80, 80), (200, 50, 60, 70)]]
    batch = verification.onet_scores_batch([astronaut, coffee, coffee], boxes)
    assert [len(s) for s in batch] == [1, 0, 2]
    np.testing.assert_allclose(batch[2], verification.onet_scores(coffee, boxes[2]), atol=1e-4)


@pytest.mark.parametrize("yunet_score,onet_score,kept", [
    (0.9, 0.25, True), (0.9, 0.15, False),  # a sure YuNet face needs O-Net's 0.2
    (0.6, 0.45, False), (0.6, 0.55, True),  # an unsure one needs 0.5
    (0.8, 0.2, True),
    (0.76, 0.21, False),  # the Hubble deep field as a JPEG of quality 90 gave YuNet 0.76, O-Net 0.21
])
def test_onet_must_agree_more_where_yunet_is_unsure(yunet_score, onet_score, kept):
    assert verification.kept_by_onet(yunet_score, onet_score) is kept


def test_a_box_around_a_smaller_kept_box_is_a_duplicate():
    face = (100, 100, 80, 100)
    loose = (80, 70, 130, 160)  # holds all of `face`
    beside = (170, 100, 80, 100)  # overlaps `face` by an eighth
    assert verification.drop_duplicates([loose, face, beside]) == [face, beside]
    assert verification.drop_duplicates([face, face]) == [face, face]  # neither is smaller
    assert verification.drop_duplicates([]) == []


@needs_yunet
def test_yunet_finds_no_faces_in_the_hubble_deep_field_and_keeps_the_astronaut():
    # Unchecked, YuNet scored two of its galaxies 0.6-0.7 as faces; O-Net gives them under 0.05.
    assert detection.detect_faces(detection.as_detection_rgb(data.hubble_deep_field()), "yunet") == []
    assert len(detection.detect_faces(data.astronaut(), "yunet")) == 1


@needs_yunet
def test_the_hubble_deep_field_saved_as_a_jpeg_holds_no_face(tmp_path):
    from PIL import Image

    path = tmp_path / "hubble.jpg"
    Image.fromarray(data.hubble_deep_field()).save(path, quality=90)
    rgb = np.asarray(Image.open(path).convert("RGB"))
    assert detection.detect_faces(rgb, "yunet") == []


@needs_yunet
def test_every_yunet_face_goes_through_the_check(monkeypatch):
    seen = []

    def refuse_all(rgbs, found):
        seen.append([len(image_found) for image_found in found])
        return [[] for _ in found]

    monkeypatch.setattr(verification, "verified_batch", refuse_all)
    frames = [data.astronaut(), np.roll(data.astronaut(), 50, axis=1)]
    assert detection.detect_faces_batch(frames, "yunet") == [[], []]
    assert seen == [[1, 1]]
