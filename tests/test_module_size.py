"""No Python file in fer_lib/ or scripts/ is over 600 lines (docs/development.md says why)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 600


def test_no_module_is_over_600_lines():
    sizes = {path.relative_to(ROOT): len(path.read_text().splitlines())
             for folder in ("fer_lib", "scripts") for path in sorted((ROOT / folder).rglob("*.py"))}
    too_long = {str(path): lines for path, lines in sizes.items() if lines > MAX_LINES}
    assert not too_long, f"split these by job (docs/development.md, Size of a module): {too_long}"
