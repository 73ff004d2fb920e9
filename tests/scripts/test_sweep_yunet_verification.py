"""scripts/sweep_yunet_verification.py: the rules of the grid, applied to scored boxes."""

from __future__ import annotations

from pathlib import Path

import pytest

from fer_lib.inference import verification


@pytest.fixture(scope="module")
def sweep(load_script):
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "scripts"))  # it imports benchmark_inference
        yield load_script("sweep_yunet_verification")


FACE, LOOSE, GALAXY, UNSURE = (100, 100, 80, 100), (80, 70, 130, 160), (300, 300, 40, 50), (400, 50, 60, 70)
# (YuNet score, O-Net score, box)
BOXES = [(0.9, 0.99, FACE), (0.62, 0.95, LOOSE), (0.65, 0.01, GALAXY), (0.55, 0.3, UNSURE)]


def test_unchecked_rules_keep_every_box_over_the_yunet_bar(sweep):
    assert sweep.apply_rule(BOXES, 0.5, 0.0, None, False) == [FACE, LOOSE, GALAXY, UNSURE]
    assert sweep.apply_rule(BOXES, 0.6, 0.0, None, False) == [FACE, LOOSE, GALAXY]


def test_onet_bars_and_duplicates(sweep):
    assert sweep.apply_rule(BOXES, 0.5, 0.2, None, False) == [FACE, LOOSE, UNSURE]
    assert sweep.apply_rule(BOXES, 0.5, 0.2, 0.5, False) == [FACE, LOOSE]  # UNSURE: YuNet under 0.7, O-Net under 0.5
    assert sweep.apply_rule(BOXES, 0.5, 0.2, 0.5, True) == [FACE]  # LOOSE holds all of FACE


def test_the_chosen_rule_is_what_the_detector_applies(sweep):
    kept = [box for yunet, onet, box in BOXES if verification.kept_by_onet(yunet, onet)]
    chosen = sweep.apply_rule(BOXES, 0.5, verification.ONET_MIN_SCORE, verification.ONET_MIN_SCORE_UNSURE, True)
    assert verification.drop_duplicates(kept) == chosen
