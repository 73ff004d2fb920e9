"""The README runs as written (issue 54): its fenced blocks, in order, as a user runs them after `make run`.

The fast tests keep the README runnable on the base install (what `make run` installs) and keep this file's tables in
step with it; the slow test runs every block in a temporary folder, with small stand-ins for the user's own files.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```\s*$", re.M | re.S)
INSTALL = re.compile(r'^pip install -e "\.\[([\w,]+)\]"$')

# Lines a test cannot run, with why.
SKIPPED = {
    "make run": "the base install the test stands in for; its pipeline is the README's `fer pipeline` line",
    "make test": "the whole test suite, this test included",
    "fer predict --webcam": "needs a camera and a window",
}
# Full recipes and searches take hours: the test gives them small budgets. Their reports folders default to the
# checkout's reports/ (fer_lib.paths.REPORTS_DIR), which a test must not write into, so --out keeps them in its folder.
APPENDED = {
    "fer pipeline --data D": "--profile smoke --trials 1 --epochs 1 --out reports",
    "fer train --data D --preset fer_cnn_crop --out runs/crop": "--epochs 1",
    "fer tune --data D --workers 2": "--trials 1 --epochs 1 --search-space demo --out reports/tuning",
}
PYTHON_REPLACED = {'preset_config("fer_cnn", out="runs/fer_cnn")': 'preset_config("fer_cnn", out="runs/fer_cnn", epochs=1)'}


def command(line: str) -> str:
    """A README line without its trailing comment."""
    return re.sub(r"\s+#.*$", "", line).strip()


def readme_steps(text: str) -> list[tuple[str, str]]:
    """("bash", line) for each command in the README's bash blocks and ("python", block) for each python block, in order."""
    steps = []
    for language, code in FENCE.findall(text):
        if language == "python":
            steps.append(("python", code))
        elif language == "bash":
            steps += [("bash", command(line)) for line in code.splitlines() if command(line)]
        else:
            raise AssertionError(f"README block of language {language!r}: only bash and python blocks are run; "
                                 f"make it one of them, or prose:\n{code}")
    return steps


def extras_needed(line: str) -> set[str]:
    """The optional extras a README `fer` line needs, where fer_lib checks for them: ONNX files
    (inference.conversion.import_extra), --mlflow (cli.shared.tracking_uri), ImageNet weights (models.pretrained)."""
    from fer_lib.cli.commands import build_parser
    from fer_lib.training.presets import get_preset

    argv = shlex.split(line)[1:]
    if "--help" in argv:
        return set()
    args = build_parser().parse_args(argv)
    needed = set()
    if getattr(args, "mlflow", None):
        needed.add("tracking")
    models = [getattr(args, "model", None), *getattr(args, "models", [])]
    if getattr(args, "export_format", None) == "onnx" or any(str(m).endswith(".onnx") for m in models if m):
        needed.add("export")
    settings = get_preset(args.preset).settings if getattr(args, "preset", None) else {}
    if (settings.get("model") or getattr(args, "model", None)) == "efficientnet_lite" \
            and settings.get("model_options", {}).get("pretrained", True):
        needed.add("transfer")
    return needed


def missing_extras(steps: list[tuple[str, str]]) -> list[str]:
    """Each `fer` line that needs an extra no earlier `pip install -e ".[extra]"` line installed."""
    installed, problems = set(), []
    for language, line in steps:
        if language != "bash" or line in SKIPPED:
            continue
        if found := INSTALL.match(line):
            installed.update(found.group(1).split(","))
        elif line.startswith("fer ") and (missing := extras_needed(line) - installed):
            problems.append(f"{line!r} needs the {', '.join(sorted(missing))} extra; no earlier README line installs it")
    return problems


def base_distributions() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {canonicalize_name(Requirement(r).name) for r in project["dependencies"]} | {canonicalize_name(project["name"])}


def imports_outside_base(code: str) -> list[str]:
    """Top-level modules `code` imports that neither the standard library nor a base dependency provides."""
    tree = ast.parse(code)
    names = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 0}
    providers = importlib.metadata.packages_distributions()
    base = base_distributions()
    return sorted(name for name in names - set(sys.stdlib_module_names)
                  if not base & {canonicalize_name(d) for d in providers.get(name, ["fer_lib"] if name == "fer_lib" else [])})


# ---------------------------------------------------------------------------------------------
# Fast: the README against the base install, and the tables above against the README


def test_every_readme_block_is_bash_or_python_and_every_table_entry_is_a_readme_line():
    steps = readme_steps(README.read_text())
    lines = {line for language, line in steps if language == "bash"}
    python = "\n".join(code for language, code in steps if language == "python")
    assert not (stale := [k for k in [*SKIPPED, *APPENDED] if k not in lines]), f"not README lines (any more): {stale}"
    assert not (stale := [k for k in PYTHON_REPLACED if k not in python]), f"not in the README's python (any more): {stale}"
    with pytest.raises(AssertionError, match="language 'console'"):
        readme_steps("```console\n$ fer --help\n```\n")


def test_every_readme_fer_line_is_a_valid_command():
    from fer_lib.cli.commands import build_parser

    for language, line in readme_steps(README.read_text()):
        if language == "bash" and line.startswith("fer "):
            try:
                build_parser().parse_args(shlex.split(line)[1:])
            except SystemExit as exc:
                assert exc.code == 0, f"fer rejects the README line {line!r}"  # fer --help exits 0


def test_the_readme_python_imports_only_what_the_base_install_provides():
    blocks = [code for language, code in readme_steps(README.read_text()) if language == "python"]
    assert blocks and not (outside := {m for code in blocks for m in imports_outside_base(code)}), \
        f"README python imports {sorted(outside)}, which `make run` (pip install -e .) does not install"
    assert imports_outside_base("import os\nimport numpy as np\nimport skimage\nfrom fer_lib import x\n") == ["skimage"]


def test_every_readme_fer_line_needing_an_extra_comes_after_its_install_line():
    assert not (problems := missing_extras(readme_steps(README.read_text()))), "\n".join(problems)
    onnx = [("bash", "fer export --format onnx --out m.onnx")]
    assert missing_extras(onnx) and not missing_extras([("bash", 'pip install -e ".[export]"'), *onnx])
    assert extras_needed("fer train --preset transfer_lite0 --mlflow") == {"transfer", "tracking"}
    assert extras_needed("fer export --format tflite --out m.tflite") == set()


# ---------------------------------------------------------------------------------------------
# Slow: every block, run


def user_files(folder: Path) -> None:
    """Small stand-ins for what the README's lines take as the user's own: datasets, two trained runs, photos, a video."""
    import cv2
    import numpy as np
    from matplotlib.cbook import get_sample_data

    from fer_lib.data.synthetic import generate_dataset
    from fer_lib.paths import PACKAGED_MODELS

    generate_dataset(folder / "D", train_per_class=40, test_per_class=10, seed=7)
    generate_dataset(folder / "data" / "fer2013", train_per_class=40, test_per_class=10, seed=8)
    for run in ("a", "b"):
        (folder / "runs" / run).mkdir(parents=True)
        shutil.copy(PACKAGED_MODELS["fer2013"], folder / "runs" / run / "model.keras")
    # A portrait matplotlib ships (Grace Hopper), so the base install has a face to find.
    photo = cv2.imread(str(get_sample_data("grace_hopper.jpg", asfileobj=False)))
    cv2.imwrite(str(folder / "photo.jpg"), photo)
    (folder / "holiday").mkdir()
    cv2.imwrite(str(folder / "holiday" / "hopper.jpg"), photo)
    cv2.imwrite(str(folder / "holiday" / "mirrored.png"), photo[:, ::-1])
    face = cv2.resize(photo, (160, 200))
    video = cv2.VideoWriter(str(folder / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 240))
    for i in range(10):
        frame = np.full((240, 320, 3), 180, np.uint8)
        frame[20:220, 40 + 8 * i:200 + 8 * i] = face
        video.write(frame)
    video.release()


def extra_installed(extra: str) -> bool:
    """Whether every requirement of fer_lib's `extra` is installed here."""
    wanted = [Requirement(r) for r in importlib.metadata.requires("fer_lib") or []]
    wanted = [r for r in wanted if r.marker and r.marker.evaluate({"extra": extra}) and not r.marker.evaluate({"extra": ""})]
    try:
        return bool(wanted) and all(importlib.metadata.version(r.name) for r in wanted)
    except importlib.metadata.PackageNotFoundError:
        return False


def run_step(language: str, code: str, folder: Path, env: dict) -> subprocess.CompletedProcess | str:
    """Run one README step in `folder`, as the table above says; a string says why it was not run."""
    if language == "python":
        for old, new in PYTHON_REPLACED.items():
            code = code.replace(old, new)
        return subprocess.run([sys.executable, "-c", code], cwd=folder, env=env, capture_output=True, text=True, timeout=900)
    if code in SKIPPED:
        return SKIPPED[code]
    cwd = folder
    if found := INSTALL.match(code):
        if all(extra_installed(extra) for extra in found.group(1).split(",")):
            # Reinstalling would point this environment's editable install at this checkout.
            return "installed already"
        cwd = ROOT  # `-e .` names the checkout
    line = f"{code} {APPENDED[code]}" if code in APPENDED else code
    return subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_the_readme_runs_as_written(tmp_path):
    user_files(tmp_path)
    env = {name: value for name, value in os.environ.items() if name not in ("FER_DATA", "FER_MLFLOW_URI")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # .venv/bin first, as after `source .venv/bin/activate`
    timings = []
    try:
        for language, code in readme_steps(README.read_text()):
            start = time.perf_counter()
            done = run_step(language, code, tmp_path, env)
            label = code if language == "bash" else f"python: {code.splitlines()[0]} ..."
            timings.append(f"{time.perf_counter() - start:6.1f} s  {label}" + (f"  (not run: {done})" if isinstance(done, str) else ""))
            if not isinstance(done, str):
                assert done.returncode == 0, (f"README {language} step failed (exit {done.returncode}):\n{code}\n"
                                              f"--- stdout ---\n{done.stdout[-3000:]}\n--- stderr ---\n{done.stderr[-3000:]}")
    finally:
        print("\n".join(timings))  # pytest -s shows each step's time
    for made in ("runs/crop/model.keras", "metrics.json", "ensemble.keras", "fer_model.onnx", "faces.csv", "runs/fer_cnn/model.keras"):
        assert (tmp_path / made).is_file(), f"{made} was not written"
