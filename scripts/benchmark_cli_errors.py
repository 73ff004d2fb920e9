"""How long `fer` takes to say that a path is wrong: the median of 3 fresh processes per mistake.

Each mistake runs as `python -m fer_lib.cli ...` in a scratch folder; `--source DIR` times another checkout
of fer_lib (e.g. a worktree of the commit before the checks, `--label before`) on the same mistakes. Results
are merged into docs/benchmarks/cli_errors.json under the label, so "before" and "after" sit side by side.

    python scripts/benchmark_cli_errors.py --source /path/to/old/checkout --label before
    python scripts/benchmark_cli_errors.py --label after
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "benchmarks" / "cli_errors.json"
MISTAKES = {
    "predict missing photo": ["predict", "missing.jpg"],
    "predict empty folder": ["predict", "empty"],
    "predict --csv a folder": ["predict", "photo.jpg", "--csv", "empty"],
    "predict --json under a file": ["predict", "photo.jpg", "--json", "afile/x.json"],
    "predict --annotate a file": ["predict", "photo.jpg", "--annotate", "afile"],
    "predict --model missing": ["predict", "photo.jpg", "--model", "nope.keras"],
    "evaluate --data missing": ["evaluate", "--data", "missing"],
    "evaluate --json a folder": ["evaluate", "--data", "data", "--json", "empty"],
    "export --out under a file": ["export", "--format", "tflite", "--out", "afile/m.tflite"],
    "train --data empty": ["train", "--data", "empty"],
    "train --out a file": ["train", "--data", "data", "--out", "afile"],
    "ensemble member missing": ["ensemble", "m.keras", "nope.keras", "--out", "e.keras"],
    "rebalance --model missing": ["rebalance", "--model", "nope.keras"],
}


def scratch_folder(folder: Path) -> None:
    (folder / "afile").write_text("x")
    (folder / "empty").mkdir()
    (folder / "photo.jpg").write_bytes(b"x")
    (folder / "m.keras").write_bytes(b"x")
    (folder / "data" / "train" / "happy").mkdir(parents=True)


def time_mistake(argv: list[str], source: Path, folder: Path, repeats: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(source)}
    seconds, done = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "fer_lib.cli", *argv], cwd=folder, env=env, capture_output=True,
                              text=True, timeout=600)
        seconds.append(time.perf_counter() - start)
    lines = done.stderr.strip().splitlines()
    return {"argv": argv, "median_s": round(statistics.median(seconds), 3), "runs_s": [round(s, 3) for s in seconds],
            "exit": done.returncode, "stderr_lines": len(lines), "last_line": lines[-1] if lines else ""}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT, help="checkout whose fer_lib runs (default: this one)")
    parser.add_argument("--label", default="after", help="key of these results in the JSON file (default: after)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch_folder(Path(scratch))
        for name, mistake in MISTAKES.items():
            results[name] = time_mistake(mistake, args.source.resolve(), Path(scratch), args.repeats)
            print(f"{name:30s} {results[name]['median_s']:6.2f} s  exit {results[name]['exit']}  "
                  f"{results[name]['last_line'][:90]}", flush=True)
    document = json.loads(args.out.read_text()) if args.out.is_file() else {}
    document.setdefault("note", "seconds from process start to exit of `python -m fer_lib.cli ...`, median of "
                                f"{args.repeats} fresh processes per mistake; written by scripts/benchmark_cli_errors.py")
    commit = subprocess.run(["git", "-C", str(args.source), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    document[args.label] = {"machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, python {platform.python_version()}",
                            "commit": commit.stdout.strip() or None, "mistakes": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
