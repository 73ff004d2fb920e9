"""scripts/results_table.py: the thin entry the Makefile, the docs and earlier notes call; fer_lib.records is the tool
(tests/records/ tests it)."""

from __future__ import annotations

from fer_lib.records import commands


def test_the_script_runs_the_records_commands(load_script, capsys):
    script = load_script("results_table")
    assert script.main is commands.main
    assert script.main(["check"]) == 0 and capsys.readouterr().out == ""
