"""Emotions over a video or a live camera: sampled frames, per-frame CSV, annotated mp4, summary.

A video is read with OpenCV, every Nth frame is sampled, and the face crops of a chunk of
sampled frames are classified together. Outputs for `clip.mp4` in the output folder:

- ``clip.frames.csv``: one row per face per sampled frame (frames without faces get one
  row with empty face fields): frame, time_s, face, x, y, w, h, emotion, a probability per
  class of the model (FER2013's seven, FER+'s eight).
- ``clip.summary.json`` and ``clip.summary.csv``: the share of faces showing each emotion
  per time bin and overall (the JSON also has the mean probabilities).
- ``clip.annotated.mp4`` (with an annotation folder): the sampled frames with boxes and
  labels, at the original frame rate divided by N.
"""

from __future__ import annotations

import csv
import io
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fer_lib.artifacts import atomic_path, write_json_atomic, write_text_atomic
from fer_lib.backend import keras
from fer_lib.data.preprocessing import VIDEO_EXTENSIONS, array_to_grayscale  # noqa: F401 - VIDEO_EXTENSIONS: importable from here too
from fer_lib.errors import DataError, FerError
from fer_lib.inference.drawing import draw_faces
from fer_lib.inference.photos import DecodedImage, check_min_face_score, check_tta, classifier_classes, classify_decoded
from fer_lib.labels import EMOTIONS

# FFmpeg prints several lines of decoder errors for a damaged file; we report it in one.
# Read when OpenCV first opens a video; set OPENCV_FFMPEG_LOGLEVEL yourself to see them.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

# Sampled frames held for one classification batch, and at most this many bytes of them.
FRAMES_PER_CHUNK = 32
CHUNK_BYTES = 256 * 2**20
FRAME_FIELDS = ["frame", "time_s", "face", "x", "y", "w", "h", "detection_score", "emotion"]
FRAME_CSV_FIELDS = [*FRAME_FIELDS, *EMOTIONS]  # a FER2013 model's; `frame_csv_fields` gives any model's


@dataclass
class FrameResult:
    """The faces found in one sampled frame."""

    frame: int
    time_s: float
    faces: list[dict]


@dataclass
class VideoResult:
    """A processed video: its sampled frames, what was written and anything that went wrong."""

    source: str
    fps: float
    frames_read: int = 0
    frames_expected: int | None = None
    frames: list[FrameResult] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    classes: tuple[str, ...] = EMOTIONS  # the model's, which name the score columns


def frame_csv_fields(classes=EMOTIONS) -> list[str]:
    """The per-frame CSV's columns for a model predicting `classes`."""
    return [*FRAME_FIELDS, *classes]


def open_video(path: str | Path) -> tuple[cv2.VideoCapture, float, int | None]:
    """An opened capture, its frame rate and its frame count (None when unknown)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the path")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise DataError(f"{path}: cannot open as a video (corrupt, truncated or unsupported format); re-export or convert it, e.g. to mp4")
    fps = capture.get(cv2.CAP_PROP_FPS)
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    return capture, fps if fps and fps > 0 and np.isfinite(fps) else 0.0, count if count > 0 else None


def process_video(path: str | Path, model: keras.Model, detector: str, every: int = 1, out_dir: str | Path = ".",
                  annotate_dir: str | Path | None = None, bin_seconds: float = 1.0, stem: str | None = None,
                  progress: bool = True, min_face_score: float | None = None, align: bool = True,
                  tta: str = "none") -> VideoResult:
    """Classify the faces of every `every`th frame of a video and write its outputs.

    `min_face_score`, `align` and `tta` as for `fer_lib.inference.photos.predict_expression`.

    A video that stops decoding midway keeps the frames read so far (with a warning); one
    with no decodable frame raises DataError.
    """
    from tqdm import tqdm

    faces_settings = {"min_face_score": check_min_face_score(min_face_score), "align": align, "tta": check_tta(tta, model)}
    path = Path(path)
    capture, fps, count = open_video(path)
    stem = stem or path.stem
    result = VideoResult(str(path), fps, frames_expected=count, classes=classifier_classes(model))
    out_dir, writer, annotated_path = Path(out_dir), None, None
    bar = tqdm(total=count, desc=path.name, unit="frame", file=sys.stderr, disable=not progress, leave=False)
    try:
        with _maybe_video_file(annotate_dir, stem) as annotated_path:
            pending: list[tuple[int, np.ndarray]] = []
            pending_bytes = 0
            while True:
                ok, frame_bgr = capture.read()
                if not ok:
                    break
                index = result.frames_read
                result.frames_read += 1
                bar.update(1)
                if index % every:
                    continue
                pending.append((index, cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)))
                pending_bytes += frame_bgr.nbytes
                if len(pending) >= FRAMES_PER_CHUNK or pending_bytes >= CHUNK_BYTES:
                    writer = _flush(pending, result, model, detector, fps, annotated_path, every, writer, faces_settings)
                    pending, pending_bytes = [], 0
            writer = _flush(pending, result, model, detector, fps, annotated_path, every, writer, faces_settings)
            if writer is not None:
                writer.release()
                writer = None
            if result.frames_read == 0:
                raise DataError(f"{path}: no frames could be read (empty, corrupt or unsupported codec)")
            if annotated_path is not None:
                result.files["annotated"] = str(Path(annotate_dir) / f"{stem}.annotated.mp4")
    finally:
        if writer is not None:
            writer.release()
        bar.close()
        capture.release()
    if count is not None and result.frames_read < count:
        # Container frame counts are estimates; only a clear shortfall means a broken file.
        if result.frames_read < 0.95 * count - 1:
            result.warnings.append(f"{path}: decoding stopped at frame {result.frames_read} of {count} "
                                   "(truncated or corrupt file); kept the frames read")
    write_video_tables(result, out_dir, stem, bin_seconds)
    return result


class _maybe_video_file:
    """Context giving a temporary mp4 path that becomes DIR/STEM.annotated.mp4, or None."""

    def __init__(self, annotate_dir, stem):
        self._context = atomic_path(Path(annotate_dir) / f"{stem}.annotated.mp4") if annotate_dir else None

    def __enter__(self):
        return self._context.__enter__() if self._context else None

    def __exit__(self, *exc_info):
        return self._context.__exit__(*exc_info) if self._context else False


def _flush(pending, result: VideoResult, model, detector, fps, annotated_path, every, writer, faces_settings: dict):
    """Classify a chunk of sampled frames together, record them and append them annotated."""
    if not pending:
        return writer
    decoded = [DecodedImage(f"{result.source}#{index}", rgb, array_to_grayscale(rgb)) for index, rgb in pending]
    for (index, rgb), faces in zip(pending, classify_decoded(decoded, model, detector, **faces_settings)):
        result.frames.append(FrameResult(index, frame_time(index, fps), faces))
        if annotated_path is not None:
            if writer is None:
                writer = _video_writer(annotated_path, fps / every if fps else 25.0 / every, rgb.shape)
            writer.write(cv2.cvtColor(draw_faces(rgb, faces), cv2.COLOR_RGB2BGR))
    return writer


def frame_time(index: int, fps: float) -> float:
    return round(index / fps, 3) if fps else 0.0


def _video_writer(path: Path, fps: float, shape) -> cv2.VideoWriter:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), max(fps, 1.0), (shape[1], shape[0]))
    if not writer.isOpened():
        raise FerError(f"{path}: OpenCV cannot write mp4 video here; choose another --annotate folder")
    return writer


def frame_rows(frames: list[FrameResult]) -> list[dict]:
    """Per-frame CSV rows: one per face, or one with empty face fields for a frame without."""
    rows = []
    for frame in frames:
        if not frame.faces:
            rows.append({"frame": frame.frame, "time_s": frame.time_s})
        for i, face in enumerate(frame.faces):
            x, y, w, h = face["box"]
            rows.append({"frame": frame.frame, "time_s": frame.time_s, "face": i, "x": x, "y": y, "w": w, "h": h,
                         "detection_score": face.get("detection_score"), "emotion": face["emotion"],
                         **{k: round(v, 6) for k, v in face["scores"].items()}})
    return rows


def summarize_video(frames: list[FrameResult], bin_seconds: float = 1.0, classes=None) -> dict:
    """Share of faces showing each emotion (top label) per time bin and overall.

    `classes` are the model's; by default those the faces' scores name (EMOTIONS without faces).
    """
    all_faces = [face for frame in frames for face in frame.faces]
    if classes is None:
        classes = tuple(all_faces[0]["scores"]) if all_faces else EMOTIONS
    classes = list(classes)

    def share(faces):
        counts = np.bincount([classes.index(f["emotion"]) for f in faces], minlength=len(classes))
        total = counts.sum()
        return {name: round(float(c / total), 4) if total else 0.0 for name, c in zip(classes, counts)}

    mean_scores = np.mean([[f["scores"][e] for e in classes] for f in all_faces], axis=0) if all_faces else np.zeros(len(classes))
    bins: dict[int, list[FrameResult]] = {}
    for frame in frames:
        bins.setdefault(int(frame.time_s // bin_seconds), []).append(frame)
    return {
        "frames_sampled": len(frames),
        "frames_with_faces": sum(1 for frame in frames if frame.faces),
        "faces": len(all_faces),
        "bin_seconds": bin_seconds,
        "classes": classes,
        "overall": {"share": share(all_faces), "mean_scores": {e: round(float(s), 4) for e, s in zip(classes, mean_scores)}},
        "bins": [
            {"start_s": round(b * bin_seconds, 3), "end_s": round((b + 1) * bin_seconds, 3), "frames": len(members),
             "faces": sum(len(m.faces) for m in members), "share": share([f for m in members for f in m.faces])}
            for b, members in sorted(bins.items())
        ],
    }


def _csv_text(fieldnames: list[str], rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_video_tables(result: VideoResult, out_dir: Path, stem: str, bin_seconds: float) -> None:
    """Write STEM.frames.csv, STEM.summary.json and STEM.summary.csv into `out_dir`."""
    summary = summarize_video(result.frames, bin_seconds, result.classes)
    summary = {"source": result.source, "fps": result.fps, "frames_read": result.frames_read,
               "frames_expected": result.frames_expected, "warnings": result.warnings, **summary}
    frames_csv, summary_json, summary_csv = (out_dir / f"{stem}.frames.csv", out_dir / f"{stem}.summary.json",
                                             out_dir / f"{stem}.summary.csv")
    write_text_atomic(frames_csv, _csv_text(frame_csv_fields(result.classes), frame_rows(result.frames)))
    write_json_atomic(summary_json, summary)
    bin_rows = [{"bin": i, "start_s": b["start_s"], "end_s": b["end_s"], "frames": b["frames"], "faces": b["faces"], **b["share"]}
                for i, b in enumerate(summary["bins"])]
    bin_rows.append({"bin": "overall", "start_s": 0.0, "end_s": frame_time(result.frames_read, result.fps),
                     "frames": summary["frames_sampled"], "faces": summary["faces"], **summary["overall"]["share"]})
    write_text_atomic(summary_csv, _csv_text(["bin", "start_s", "end_s", "frames", "faces", *result.classes], bin_rows))
    result.files.update(frames=str(frames_csv), summary=str(summary_json), summary_csv=str(summary_csv))


# --- Live camera


def open_camera(index: int) -> cv2.VideoCapture:
    """The opened camera `index`, or FerError in one line when there is none."""
    # OpenCV logs several lines of its own when a camera is missing; we say it in one.
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        capture = cv2.VideoCapture(index)
        opened = capture.isOpened() and capture.read()[0]
    finally:
        cv2.utils.logging.setLogLevel(previous)
    if not opened:
        capture.release()
        raise FerError(f"no camera found at index {index}; connect one or pick another with --webcam N")
    return capture


def recording_path(record_dir: str | Path) -> Path:
    """RECORD_DIR/webcam.annotated.mp4, or webcam-2, -3, ... so an earlier recording is never replaced."""
    record_dir = Path(record_dir)
    path, n = record_dir / "webcam.annotated.mp4", 1
    while path.exists():
        n += 1
        path = record_dir / f"webcam-{n}.annotated.mp4"
    return path


def run_webcam(index: int, model: keras.Model, detector: str, record_dir: str | Path | None = None,
               say=print, min_face_score: float | None = None, align: bool = True, tta: str = "none") -> int:
    """Show camera `index` live with each face's emotion until q, Esc or closing the window (Ctrl+C also stops).

    The window is OpenCV's when it has a GUI, else Tk's. With `record_dir` the annotated stream is
    also recorded to RECORD_DIR/webcam.annotated.mp4 (webcam-2... when that exists), which is the
    only output where no window can be opened. Returns the number of frames shown or recorded.
    `min_face_score`, `align` and `tta` as for `fer_lib.inference.photos.predict_expression`.
    """
    from fer_lib.inference import live_window

    min_face_score = check_min_face_score(min_face_score)
    tta = check_tta(tta, model)
    capture = open_camera(index)
    backend = live_window.window_backend()
    if backend is None and record_dir is None:
        capture.release()
        raise FerError(f"cannot open a live window: {live_window.no_window_reason()}; "
                       "pass --annotate DIR to record the annotated stream instead")
    recording = recording_path(record_dir) if record_dir is not None else None

    def say_recording(reason: str) -> None:
        say(f"no live window ({reason}); recording to {recording} until Ctrl+C")

    if backend is None:
        say_recording(live_window.no_window_reason())
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    window, writer, frames = None, None, 0
    try:
        if backend is not None:
            try:
                window = live_window.open_window(backend)
            except live_window.WindowError as exc:
                if record_dir is None:
                    raise FerError(f"{exc}; pass --annotate DIR to record the annotated stream instead") from None
                say_recording(str(exc))
        while True:
            ok, frame_bgr = capture.read()
            if not ok:
                break
            rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
            faces = classify_decoded([DecodedImage("webcam", rgb, array_to_grayscale(rgb))], model, detector,
                                     min_face_score=min_face_score, align=align, tta=tta)[0]
            annotated = draw_faces(rgb, faces)
            frames += 1
            if recording is not None:
                if writer is None:
                    recording.parent.mkdir(parents=True, exist_ok=True)
                    writer = _video_writer(recording, fps, rgb.shape)
                writer.write(cv2.cvtColor(annotated, cv2.COLOR_RGB2BGR))
            if window is not None and not window.show(annotated):
                break
    except KeyboardInterrupt:
        pass
    finally:
        capture.release()
        if writer is not None:
            writer.release()
        if window is not None:
            window.close()
    return frames
