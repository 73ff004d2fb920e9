"""Pack training faces to travel to a GPU machine, and bundle the trained run to come back.

FER2013's train JPEGs zip to about 56 MiB, which with the Keras wheels and the repository
is just over the 64 MiB that may travel to the lent GPU machines. Packed here as decoded
48x48 pixels with xz they take about 49 MiB, and unpacking writes lossless PNGs in the
Kaggle layout, so the machine trains on the same faces, pixel for pixel (the file order
differs, so its seeded validation split is a different stratified 10% of them).

    python scripts/gpu_data.py pack --data ../shared/datasets/fer2013 --out .carry/fer2013_train.npy.xz
    python scripts/gpu_data.py unpack .carry/fer2013_train.npy.xz --out /tmp/fer   # then: fer train --data /tmp/fer --no-eval

What comes back from the machine's $OUT is at most 8 files of 16 MiB, 64 MiB in all, so
`bundle` puts the run folder in one tar split into 15 MiB parts, with a manifest holding its
SHA-256. Its models are small enough because `save_model` leaves out the optimizer's state
(two thirds of an Adam model, not needed to evaluate); a stopped run's resume checkpoint
keeps it, and travels only if it fits. When the runs' models alone are too big (four
fer_cnn_crop_vgg models are 80 MB), their float32 weights travel as float16 and `unbundle`
turns them back into float32 files (the bits lost move a probability by well under 1e-2).

    python scripts/gpu_data.py bundle /tmp/run --out $OUT          # on the GPU machine
    python scripts/gpu_data.py unbundle FILES_AT --out runs/NAME   # here: checks, then extracts
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import lzma
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MANIFEST = "run.tar.json"
PART_BYTES = 15 * 2**20
RETURN_FILES = 8  # the device's limits on what comes back from $OUT
RETURN_BYTES = 60 * 2**20  # of its 64 MiB, leaving room for the manifest and the training log


def pack(data: str, out: str) -> None:
    from fer_lib.data.dataset import load_dataset

    dataset = load_dataset(data)
    # The GPU machine carves its own validation split from these, so send both.
    images = np.concatenate([dataset.train.images, dataset.val.images])
    labels = np.concatenate([dataset.train.labels, dataset.val.labels]).astype(np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, images=images, labels=labels)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_bytes(lzma.compress(buffer.getvalue(), preset=6))
    print(f"{out}: {len(images)} training faces, {Path(out).stat().st_size / 2**20:.1f} MiB")


def unpack(packed: str, out: str) -> None:
    from PIL import Image

    from fer_lib.labels import EMOTIONS

    arrays = np.load(io.BytesIO(lzma.decompress(Path(packed).read_bytes())))
    images, labels = arrays["images"], arrays["labels"]
    for emotion in EMOTIONS:
        (Path(out) / "train" / emotion).mkdir(parents=True, exist_ok=True)
    for i, (pixels, label) in enumerate(zip(images, labels)):
        Image.fromarray(pixels, "L").save(Path(out) / "train" / EMOTIONS[label] / f"{i:05d}.png")
    print(f"{out}/train: {len(images)} faces as PNG")


def _is_run(folder: Path) -> bool:
    from fer_lib.training.run_folder import CONFIG_FILE, MODEL_FILE, RESUME_DIR

    return any((folder / name).exists() for name in (MODEL_FILE, RESUME_DIR, CONFIG_FILE))


def _copy_run(run_dir: Path, staging: Path, one_of_several: bool = False) -> str:
    """Copy the run into `staging` as it will travel; returns what it holds: finished, resumable or failed.

    A run alone with no finished epoch is an error; one of several travels as failed, with its log.
    """
    from fer_lib.training.run_folder import MODEL_FILE, RESUME_DIR, STATE_FILE

    for source in sorted(run_dir.rglob("*")):
        relative = source.relative_to(run_dir)
        if not source.is_file() or any(part.startswith(".") and part != RESUME_DIR for part in relative.parts):
            continue  # temporaries of a save cut short are named ".NAME.xxxx"
        target = staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    if (staging / MODEL_FILE).is_file():
        return "finished"
    if not (staging / RESUME_DIR / STATE_FILE).is_file():  # no epoch finished, or it never started
        if one_of_several:
            return "failed"
        raise SystemExit(f"{run_dir}: holds no trained model and no resume checkpoint; see the training log")
    return "resumable"


HALVED = "fer_lib_float16_for_the_trip"  # marks a weight stored as float16 by `halve_keras_file`
KERAS_WEIGHTS = "model.weights.h5"  # inside a .keras file (a zip)


def _rewrite_keras_weights(path: Path, convert) -> int:
    """Rewrite the weights inside the .keras file `path`, each dataset through `convert`; returns how many changed."""
    import zipfile

    import h5py

    changed = 0
    with tempfile.TemporaryDirectory() as temporary:
        source, target = Path(temporary) / "in.h5", Path(temporary) / "out.h5"
        with zipfile.ZipFile(path) as archive:
            entries = {info.filename: archive.read(info) for info in archive.infolist()}
        source.write_bytes(entries[KERAS_WEIGHTS])
        with h5py.File(source, "r") as old, h5py.File(target, "w") as new:
            new.attrs.update(old.attrs)

            def copy(name, item):
                nonlocal changed
                if isinstance(item, h5py.Group):
                    new.require_group(name).attrs.update(item.attrs)
                    return
                data, attributes = convert(item[()], dict(item.attrs))
                changed += data.dtype != item.dtype
                dataset = new.create_dataset(name, data=data)
                dataset.attrs.update(attributes)

            old.visititems(copy)
        if not changed:
            return 0
        entries[KERAS_WEIGHTS] = target.read_bytes()
        staged = path.with_name(f".{path.name}.tmp")
        with zipfile.ZipFile(staged, "w", zipfile.ZIP_STORED) as archive:
            for name, data in entries.items():
                archive.writestr(name, data)
        staged.replace(path)
    return changed


def halve_keras_file(path: Path) -> int:
    """Store the float32 weights of the .keras file `path` as float16; returns how many were."""
    def halve(data, attributes):
        if data.dtype != np.float32:
            return data, attributes
        with np.errstate(over="ignore"):  # overflow is checked just below
            halved = data.astype(np.float16)
        if not np.array_equal(np.isfinite(halved), np.isfinite(data)):  # beyond float16's 65504: travels as it is
            return data, attributes
        return halved, {**attributes, HALVED: True}

    return _rewrite_keras_weights(path, halve)


def restore_keras_file(path: Path) -> int:
    """Turn the weights `halve_keras_file` stored as float16 back into float32; returns how many were."""
    def restore(data, attributes):
        if not attributes.pop(HALVED, False):
            return data, attributes
        return data.astype(np.float32), attributes

    return _rewrite_keras_weights(path, restore)


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def _leave_checkpoint_behind(run_dir: Path, staging: Path, total: int, limit: int) -> None:
    """Keep a stopped run's best model and history, not the weights it would resume from."""
    from fer_lib.training.run_folder import RESUME_DIR, STATE_FILE

    resume = staging / RESUME_DIR
    # The epoch's weights keep the optimizer's state for a faithful resume; too big, they stay behind.
    for file in sorted(resume.glob("epoch-*.weights.h5")) + [resume / STATE_FILE]:
        file.unlink(missing_ok=True)
    resume.rename(staging / "unfinished")
    print(f"warning: {run_dir} was stopped before its last epoch and its resume checkpoint is too big to come "
          f"back ({total / 2**20:.0f} MiB with the rest, {limit / 2**20:.0f} MiB may): bringing back its best model "
          "so far (unfinished/best.keras) and history, which cannot be resumed; give it fewer epochs next time")


def _stage(run_dir: Path, staging: Path, limit: int) -> dict[str, str]:
    """Copy the run, or each run in a folder of runs, into `staging`; returns each one's state by name ('.' alone).

    A state is finished, resumable or unfinished: stopped runs' resume checkpoints are left
    behind, largest first, until everything fits in `limit`.
    """
    if _is_run(run_dir):
        runs = {".": run_dir}
    else:
        runs = {folder.name: folder for folder in sorted(run_dir.iterdir()) if folder.is_dir()}
        if not runs:
            raise SystemExit(f"{run_dir}: holds no run and no folder of runs; see the training log")
    states = {name: _copy_run(folder, staging / name, one_of_several=name != ".") for name, folder in runs.items()}
    if _size(staging) > limit:
        models = sorted(staging.rglob("*.keras"))
        for model in models:
            halve_keras_file(model)
        print(f"{len(models)} model file(s) travel with float16 weights, to fit in {limit / 2**20:.0f} MiB; "
              "unbundle restores them to float32")
    stopped = sorted((name for name, state in states.items() if state == "resumable"),
                     key=lambda name: _size(staging / name), reverse=True)
    for name in stopped:
        total = _size(staging)
        if total <= limit:
            break
        _leave_checkpoint_behind(runs[name], staging / name, total, limit)
        states[name] = "unfinished"
    return states


def bundle(run_dir: str, out: str, limit: int = RETURN_BYTES, max_files: int = RETURN_FILES - 2) -> None:
    run_dir, out = Path(run_dir), Path(out)
    with tempfile.TemporaryDirectory() as temporary:
        staging, archive = Path(temporary) / "run", Path(temporary) / "run.tar"
        states = _stage(run_dir, staging, limit)
        with tarfile.open(archive, "w") as tar:
            tar.add(staging, arcname=".")
        size = archive.stat().st_size
        parts = -(-size // PART_BYTES)
        if size > limit or parts > max_files:
            raise SystemExit(f"{run_dir}: the bundled run is {size / 2**20:.0f} MiB in {parts} parts, more than can "
                             f"come back ({limit / 2**20:.0f} MiB in {max_files}); train a smaller model")
        out.mkdir(parents=True, exist_ok=True)
        digest, names = hashlib.sha256(), []
        with archive.open("rb") as stream:
            while chunk := stream.read(PART_BYTES):
                names.append(f"run.tar.part-{len(names):02d}")
                (out / names[-1]).write_bytes(chunk)
                digest.update(chunk)
    runs = {"state": states["."]} if list(states) == ["."] else {"runs": states}
    (out / MANIFEST).write_text(json.dumps({"parts": names, "bytes": size, "sha256": digest.hexdigest(), **runs}))
    described = ", ".join(f"{name} {state}" for name, state in states.items()) if "runs" in runs else f"{states['.']} run"
    print(f"{out}: {described} ({run_dir}) in {len(names)} part(s), {size / 2**20:.1f} MiB")


def unbundle(source: str, out: str) -> None:
    source, out = Path(source), Path(out)
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError):
        raise SystemExit(f"{source / MANIFEST}: missing or unreadable; is {source} what a device run of "
                         "scripts/device_train.sh brought back?") from None
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out}: already exists and is not empty; choose a new folder for the run")
    missing = [name for name in manifest["parts"] if not (source / name).is_file()]
    if missing:
        raise SystemExit(f"{source / missing[0]}: missing, the run cannot be put back together; "
                         "was it left out of what came back (files_left_out)?")
    with tempfile.TemporaryDirectory() as temporary:
        archive, digest = Path(temporary) / "run.tar", hashlib.sha256()
        with archive.open("wb") as stream:
            for name in manifest["parts"]:
                chunk = (source / name).read_bytes()
                digest.update(chunk)
                stream.write(chunk)
        if digest.hexdigest() != manifest["sha256"]:
            raise SystemExit(f"{source}: its parts do not add up to the bundled run (SHA-256 differs); fetch them again")
        out.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(out, filter="data")
    restored = [model for model in sorted(out.rglob("*.keras")) if restore_keras_file(model)]
    if restored:
        print(f"{len(restored)} model file(s) came back with float16 weights; restored to float32 files "
              "(their probabilities within about 1e-2 of the models as trained)")
    what = {"finished": "evaluate model.keras", "resumable": "continue it with fer train --resume",
            "unfinished": "unfinished/best.keras is the best model before it was stopped",
            "failed": "it finished no epoch; its train.log says why"}
    if "runs" not in manifest:
        print(f"{out}: the {manifest['state']} run, {manifest['bytes'] / 2**20:.1f} MiB; {what[manifest['state']]}")
        return
    print(f"{out}: {len(manifest['runs'])} runs, {manifest['bytes'] / 2**20:.1f} MiB")
    for name, state in manifest["runs"].items():
        print(f"  {out / name}: {state}; {what[state]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    pack_args = commands.add_parser("pack", help="pack the train split (train + validation) of --data")
    pack_args.add_argument("--data", required=True)
    pack_args.add_argument("--out", required=True)
    unpack_args = commands.add_parser("unpack", help="write a packed file as train/<emotion>/*.png under --out")
    unpack_args.add_argument("packed")
    unpack_args.add_argument("--out", required=True)
    bundle_args = commands.add_parser("bundle", help="put a run folder into --out as parts that may come back")
    bundle_args.add_argument("run_dir")
    bundle_args.add_argument("--out", required=True)
    unbundle_args = commands.add_parser("unbundle", help="check and extract the parts in a folder into the run folder --out")
    unbundle_args.add_argument("parts_dir")
    unbundle_args.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.command == "pack":
        pack(args.data, args.out)
    elif args.command == "unpack":
        unpack(args.packed, args.out)
    elif args.command == "bundle":
        bundle(args.run_dir, args.out)
    else:
        unbundle(args.parts_dir, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
