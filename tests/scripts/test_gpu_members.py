"""scripts/gpu_members/*.txt: every prepared GPU command names members that `fer train` would take."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fer_lib.cli.commands import build_parser
from fer_lib.training.presets import preset_names

MEMBERS_FILES = sorted((Path(__file__).resolve().parents[2] / "scripts" / "gpu_members").glob("*.txt"))


def members(path: Path) -> list[list[str]]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line.split() for line in lines if line and not line.startswith("#")]


def test_there_are_prepared_members_files():
    assert len(MEMBERS_FILES) >= 3


@pytest.mark.parametrize("path", MEMBERS_FILES, ids=lambda p: p.name)
def test_each_member_has_a_unique_name_a_known_preset_and_options_fer_train_takes(path):
    lines = members(path)
    names = [words[0] for words in lines]
    assert lines and len(set(names)) == len(names)
    for name, preset, *options in lines:
        assert re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*", name), name  # device_train.sh's rule
        assert preset in preset_names(), preset
        args = build_parser().parse_args(["train", "--preset", preset, "--time-budget", "100", "--no-eval", *options])
        assert args.preset == preset
