"""Artifacts are written atomically and readable as any file the user makes."""

from __future__ import annotations

import os
import stat

import pytest

from fer_lib.artifacts import copy_atomic, write_json_atomic, write_text_atomic


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_users_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "report.html", "<p>ok</p>")
        write_json_atomic(tmp_path / "metrics.json", {"top1_accuracy": 0.5})
        copy_atomic(tmp_path / "report.html", tmp_path / "copy.html")
    finally:
        os.umask(previous)
    for name in ("report.html", "metrics.json", "copy.html"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
    assert os.umask(previous) == previous  # and the process's umask is as it was
