"""Eye alignment before the crop (fer_lib.inference.alignment) and the detection score."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer_lib.errors import DataError
from fer_lib.inference import alignment
from fer_lib.inference.detection import Detection, crop_face, detector_available


def _ramp(height: int = 120, width: int = 160) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    return ((xs * 3 + ys * 7) % 256).astype(np.uint8)


def test_eye_angle_is_clockwise_in_image_coordinates_whatever_the_order():
    assert alignment.eye_angle(((10, 10), (20, 10))) == 0.0
    assert alignment.eye_angle(((10, 10), (20, 20))) == pytest.approx(45.0)  # right eye lower: clockwise
    assert alignment.eye_angle(((20, 20), (10, 10))) == pytest.approx(45.0)
    assert alignment.eye_angle(((10, 20), (20, 10))) == pytest.approx(-45.0)


@pytest.mark.parametrize(("eyes", "angle"), [
    (((40, 50), (70, 50 + 30 * np.tan(np.radians(20)))), 20.0),  # turned
    (((40, 50), (70, 51)), 0.0),  # under MIN_ALIGN_DEGREES: left upright
    (((40, 50), (70, 50 + 30 * np.tan(np.radians(70)))), 0.0),  # beyond MAX_ALIGN_DEGREES: ambiguous, upright
    (((40, 50), (42, 51)), 0.0),  # eyes 2 px apart on a 100 px face: a landmark failure
    (((40, 50), (float("nan"), 50)), 0.0),
    (None, 0.0),  # no landmarks (haar)
])
def test_alignment_angle_turns_only_plausible_tilts(eyes, angle):
    assert alignment.alignment_angle((10, 10, 100, 100), eyes) == pytest.approx(angle)


def test_an_unturned_crop_is_exactly_the_upright_crop_even_past_the_border():
    image = _ramp()
    for box in [(20, 10, 50, 50), (-15, -10, 60, 60), (130, 90, 50, 50), (30, 20, 40, 60)]:
        np.testing.assert_array_equal(alignment.rotated_crop(image, box, 0.0), crop_face(image, box))
        np.testing.assert_array_equal(alignment.face_crop(image, box, ((0, 0), (10, 5)), align=False), crop_face(image, box))


def test_turning_the_crop_undoes_a_turned_image():
    image = np.zeros((200, 200), np.uint8)
    cv2.rectangle(image, (70, 90), (130, 110), 255, -1)  # a level bar through the centre
    turned = cv2.warpAffine(image, cv2.getRotationMatrix2D((99.5, 99.5), -25, 1.0), (200, 200))  # now tilted clockwise
    box = (50, 50, 100, 100)
    assert np.abs(alignment.rotated_crop(turned, box, 25.0).astype(int) - crop_face(image, box)).mean() < 6
    assert np.abs(crop_face(turned, box).astype(int) - crop_face(image, box)).mean() > 15


def test_a_face_at_the_edge_is_turned_with_the_border_repeated_not_cut():
    image = _ramp()
    crop = alignment.rotated_crop(image, (-30, -30, 80, 80), 30.0)
    assert crop.shape == (80, 80)
    assert crop.min() >= image.min() and crop.max() <= image.max()


def test_detection_eyes_are_ordered_left_to_right():
    face = Detection((0, 0, 10, 10), 0.9, ((8.0, 3.0), (2.0, 3.0), (5, 5), (3, 8), (7, 8)))
    assert face.eyes == ((2.0, 3.0), (8.0, 3.0))
    assert Detection((0, 0, 10, 10), 0.9).eyes is None


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "high", True])
def test_min_face_score_outside_0_to_1_is_one_clear_error(bad):
    from fer_lib.inference.photos import check_min_face_score

    with pytest.raises(DataError, match="min_face_score must be a number from 0 to 1"):
        check_min_face_score(bad)
    assert check_min_face_score(None) is None and check_min_face_score(0) == 0.0 and check_min_face_score(1) == 1.0


needs_yunet = pytest.mark.skipif(not detector_available("yunet"), reason="yuface has no wheel here")


def _turned_astronaut(degrees: float) -> np.ndarray:
    from skimage import data

    photo = data.astronaut()
    turn = cv2.getRotationMatrix2D((220.0, 120.0), degrees, 1.0)  # about her face
    return cv2.warpAffine(photo, turn, photo.shape[1::-1], borderMode=cv2.BORDER_REFLECT)


@needs_yunet
def test_the_eyes_of_a_turned_face_are_found_turned():
    from fer_lib.inference.detection import find_faces

    for degrees in (0, 25, -25):
        [face] = find_faces(_turned_astronaut(degrees), "yunet")
        # cv2 turns counter-clockwise for positive degrees; her eyes tilt about 1 degree upright.
        assert alignment.eye_angle(face.eyes) == pytest.approx(1.2 - degrees, abs=6)


@needs_yunet
@pytest.mark.slow
def test_the_astronaut_upright_and_turned_25_degrees_gives_one_emotion():
    from fer_lib.inference.photos import predict_expression

    upright = predict_expression(_turned_astronaut(0))
    for degrees in (25, -25):
        [turned] = predict_expression(_turned_astronaut(degrees))
        assert turned["emotion"] == upright[0]["emotion"] == "happy"
        assert abs(turned["scores"]["happy"] - upright[0]["scores"]["happy"]) < 0.05
        assert 0.5 <= turned["detection_score"] <= 1


def test_draw_faces_draws_each_box_and_its_detection_score():
    from fer_lib.inference import draw_faces

    image = np.full((120, 160), 128, np.uint8)
    face = {"box": [20, 30, 60, 60], "emotion": "happy", "scores": {"happy": 0.9, "sad": 0.1}, "top2": ["happy", "sad"],
            "detection_score": 0.87}
    drawn = draw_faces(image, [face, {"box": [0, 0, 5, 5], "error": "unusable"}])
    assert drawn.shape == (120, 160, 3) and image.shape == (120, 160)  # a copy, in RGB
    assert (drawn[60, 20] == (0, 220, 0)).all()  # the box's left edge
    assert (drawn[100:, 100:] == 128).all()  # nothing drawn away from the face
    without_score = draw_faces(image, [{**face, "detection_score": None}])
    assert (drawn != without_score).any()  # the score's text widens the label
