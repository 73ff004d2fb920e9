"""Figures and tables for the notebooks' reports (matplotlib and seaborn).

Each function returns a matplotlib Figure or a pandas DataFrame; notebooks display them.
"""

from __future__ import annotations

import matplotlib

if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
    matplotlib.use("Agg")  # headless default; notebooks keep their inline backend

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import PercentFormatter

from fer_lib.data.dataset import Split
from fer_lib.data.exploration import BALANCED_RATIO
from fer_lib.evaluation.metrics import ORIGINAL_README
from fer_lib.labels import EMOTIONS

sns.set_theme(style="whitegrid", context="notebook")


def class_counts_figure(counts: pd.DataFrame) -> plt.Figure:
    """Bar chart of images per emotion, one bar colour per split (rows of `counts`)."""
    long = counts.drop(columns="total", errors="ignore").reset_index(names="split").melt(
        id_vars="split", var_name="emotion", value_name="images")
    fig, ax = plt.subplots(figsize=(9, 4))
    sns.barplot(data=long, x="emotion", y="images", hue="split", ax=ax)
    ax.set_title("Images per emotion and split")
    _legend_beside(ax)
    fig.tight_layout()
    return fig


def _legend_beside(ax) -> None:
    """Move the axes' legend to their right, where it cannot cover a bar (on balanced data every bar is full height)."""
    if ax.get_legend() is not None:
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def face_grid_figure(images: np.ndarray, titles: list[str], columns: int = 8, size: float = 1.3) -> plt.Figure:
    """A grid of 48x48 faces with a small title under each."""
    rows = max(1, int(np.ceil(len(images) / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * size, rows * (size + 0.3)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles):
        ax.imshow(image, cmap="gray", vmin=0, vmax=255)
        ax.set_title(title, fontsize=8)
    fig.set_label(f"{len(images)} faces titled " + ", ".join(dict.fromkeys(t for t in titles if t)))
    fig.tight_layout()
    return fig


def sample_grid_figure(split: Split, per_class: int = 8, seed: int = 0) -> plt.Figure:
    """`per_class` random faces of each emotion, one row per emotion."""
    rng = np.random.default_rng(seed)
    images, titles = [], []
    for label, emotion in enumerate(split.classes):
        members = np.flatnonzero(split.labels == label)
        chosen = rng.choice(members, size=min(per_class, len(members)), replace=False) if len(members) else []
        for i in range(per_class):
            images.append(split.images[chosen[i]] if i < len(chosen) else np.full((48, 48), 255, np.uint8))
            titles.append(emotion if i < len(chosen) else "")
    fig = face_grid_figure(np.stack(images), titles, columns=per_class)
    fig.set_label(f"Up to {per_class} random {split.name} faces of each emotion, one row each: {', '.join(split.classes)}")
    return fig


def mean_faces_figure(means: np.ndarray, classes=EMOTIONS) -> plt.Figure:
    """The mean face of each emotion, side by side."""
    fig, axes = plt.subplots(1, len(classes), figsize=(len(classes) * 1.6, 2.0))
    for ax, mean, emotion in zip(axes, means, classes):
        ax.imshow(np.nan_to_num(mean), cmap="gray", vmin=0, vmax=255)
        ax.set_title(emotion, fontsize=9)
        ax.axis("off")
    fig.suptitle("Mean face per emotion (train)")
    fig.tight_layout()
    return fig


def vote_shares_figure(shares: pd.DataFrame) -> plt.Figure:
    """FER+: heatmap of the mean vote shares per top-vote class (`exploration.mean_vote_shares`)."""
    fig, ax = plt.subplots(figsize=(9, 5.5))
    sns.heatmap(shares, annot=True, fmt=".2f", cmap="Blues", vmin=0, vmax=1, ax=ax, cbar=True)
    ax.set_xlabel("votes for")
    ax.set_ylabel("faces whose top vote is")
    ax.set_title("Mean share of the ten annotators' votes (train)")
    fig.tight_layout()
    return fig


def top_vote_share_figure(shares: np.ndarray, labels: np.ndarray, classes) -> plt.Figure:
    """FER+: how many of the ten annotators chose each face's top emotion, per top-vote class."""
    frame = pd.DataFrame({"share": np.round(np.asarray(shares) * 10) / 10, "emotion": np.asarray(classes)[labels]})
    table = pd.crosstab(frame["emotion"], frame["share"], normalize="index").reindex(list(classes))
    fig, ax = plt.subplots(figsize=(9, 4))
    table.plot(kind="barh", stacked=True, ax=ax, colormap="viridis", width=0.8)
    ax.set_xlabel("share of faces")
    ax.set_title("Annotators behind the top emotion (share of ten)")
    _legend_beside(ax)
    fig.tight_layout()
    return fig


def intensity_figure(split: Split, max_images: int = 3000, seed: int = 0) -> plt.Figure:
    """Pixel-intensity distribution per emotion (kernel density over a sample of images)."""
    rng = np.random.default_rng(seed)
    frames = []
    for label, emotion in enumerate(split.classes):
        members = np.flatnonzero(split.labels == label)
        chosen = rng.choice(members, size=min(max_images // len(split.classes), len(members)), replace=False)
        pixels = split.images[chosen].reshape(-1)
        pixels = rng.choice(pixels, size=min(20000, pixels.size), replace=False) if pixels.size else pixels
        frames.append(pd.DataFrame({"intensity": pixels.astype(np.int16), "emotion": emotion}))
    fig, ax = plt.subplots(figsize=(9, 3.5))
    sns.kdeplot(data=pd.concat(frames), x="intensity", hue="emotion", common_norm=False, ax=ax, clip=(0, 255))
    ax.set_title("Pixel-intensity distribution per emotion")
    fig.tight_layout()
    return fig


def trials_figure(trials: pd.DataFrame, chance: float | None = None) -> plt.Figure:
    """Validation accuracy of each tuner trial, best first and named by its id, coloured by optimizer (or
    recipe, or preset) where the trials differ in it; `chance` (1 / classes) drawn as a line."""
    fig, ax = plt.subplots(figsize=(max(4.0, min(9.0, 2.0 + 0.6 * len(trials))), 3.5))
    shown = trials.dropna(subset=["val_accuracy"])
    if "trial" not in shown:  # a table indexed by trial id, or one without ids: its rows in order
        shown = shown.reset_index(drop=shown.index.name != "trial")
        shown = shown if "trial" in shown else shown.assign(trial=range(len(shown)))
    shown = shown.reset_index(drop=True)
    hue = next((c for c in ("optimizer", "recipe", "preset") if c in shown and shown[c].nunique() > 1), None)
    sns.barplot(data=shown, x=shown["trial"].astype(str), y="val_accuracy", hue=hue, ax=ax, dodge=False,
                order=list(shown["trial"].astype(str)))
    if chance is not None:
        ax.axhline(chance, color="0.3", linestyle="--", linewidth=1, label=f"chance ({chance:.0%})")
        ax.legend()
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("trial (best first)")
    ax.set_ylabel("validation accuracy")
    ax.set_title("KerasTuner trials")
    _legend_beside(ax)
    fig.tight_layout()
    return fig


def training_curves_figure(history: pd.DataFrame) -> plt.Figure:
    """Loss, accuracy, top-2 accuracy and learning rate per epoch, train against validation."""
    panels = [("loss", "Loss"), ("accuracy", "Accuracy"), ("top2_accuracy", "Top-2 accuracy"), ("learning_rate", "Learning rate")]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    epochs = history["epoch"] + 1 if "epoch" in history else np.arange(1, len(history) + 1)
    for ax, (key, title) in zip(axes, panels):
        if key in history:
            ax.plot(epochs, history[key], marker="o", label="train" if key != "learning_rate" else "lr")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="o", label="validation")
        if key == "learning_rate":
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    return fig


def confusion_matrix_figure(matrix, classes=EMOTIONS, normalize: bool = False, labels: str = "") -> plt.Figure:
    """Seaborn heatmap of a confusion matrix (rows true); row-normalised when `normalize`; `labels` says
    where the true labels come from (e.g. FER+'s majority rule)."""
    matrix = np.asarray(matrix, dtype=float)
    if normalize:
        matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7 + len(classes) - 7, 6 + len(classes) - 7))
    sns.heatmap(matrix, annot=True, fmt=".2f" if normalize else ".0f", cmap="Blues", xticklabels=classes,
                yticklabels=classes, cbar=True, ax=ax, square=True)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix" + (" (row-normalised: recall per class)" if normalize else " (counts)")
                 + (f"\n{labels}" if labels else ""))
    fig.tight_layout()
    return fig


def per_class_figure(metrics: dict) -> plt.Figure:
    """Precision, recall and F1 of each emotion as grouped bars."""
    rows = [{"emotion": e, "metric": m, "value": v[m]} for e, v in metrics["per_class"].items() for m in ("precision", "recall", "f1")]
    fig, ax = plt.subplots(figsize=(9, 3.8))
    sns.barplot(data=pd.DataFrame(rows), x="emotion", y="value", hue="metric", ax=ax)
    ax.set_ylim(0, 1)
    for i, scores in enumerate(metrics["per_class"].values()):
        if not any(scores[m] for m in ("precision", "recall", "f1")):  # an empty slot would read as a missing bar
            ax.text(i, 0.03, "all 0", ha="center", va="bottom", fontsize=9, color="#b00020")
    ax.set_title("Per-class precision, recall and F1")
    _legend_beside(ax)
    fig.tight_layout()
    return fig


def rebalancing_note(priors, classes=EMOTIONS) -> str:
    """What rebalancing can do for this training data, in Markdown: little on balanced classes, more the
    further the most frequent class outnumbers the rarest."""
    priors = np.asarray(priors, float) / np.sum(priors)
    common, rare = int(np.argmax(priors)), int(np.argmin(priors))
    ratio = priors[common] / priors[rare]
    if ratio < BALANCED_RATIO:
        return (f"The training classes are about equally frequent ({priors[rare]:.1%} to {priors[common]:.1%} each), "
                "so the model has learned no lean towards some of them and there is nothing to correct: no strength "
                "is tried on this data.")
    return (f"In this training data **{classes[common]}** is {ratio:.1f}x as frequent as **{classes[rare]}** "
            f"({priors[common]:.1%} of the faces against {priors[rare]:.1%}); a model learns that and leans towards the "
            "frequent classes, which costs the rare ones recall.")


def rebalancing_figure(scores: dict[float, tuple[float, float]], chosen: float) -> plt.Figure:
    """Validation top-1 and macro-F1 against the prior-correction strength, the chosen one marked."""
    strengths = sorted(scores)
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.plot(strengths, [scores[s][0] for s in strengths], marker="o", label="top-1")
    ax.plot(strengths, [scores[s][1] for s in strengths], marker="o", label="macro-F1")
    ax.axvline(chosen, color="grey", linestyle="--", label=f"chosen: {chosen:g}")
    ax.set_xlabel("strength (0: as trained, 1: uniform prior)")
    ax.set_title("Prior correction on the validation split")
    ax.legend()
    fig.tight_layout()
    return fig


def reliability_figure(labels, probabilities, bins: int = 10) -> plt.Figure:
    """Accuracy against the top score in `bins` confidence bins (a reliability diagram), with the faces in each.

    Bars on the diagonal mean a score of 0.7 is right 70% of the time; bars above it, an under-confident model.
    """
    from fer_lib.evaluation.metrics import confidence_bins, expected_calibration_error

    counts, accuracy, _ = confidence_bins(labels, probabilities, bins)
    edges = np.arange(bins) / bins
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 5.2), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.bar(edges, accuracy, width=1 / bins, align="edge", edgecolor="black", label="accuracy")
    top.plot([0, 1], [0, 1], color="grey", linestyle="--", label="calibrated")
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.set_title(f"Reliability: expected calibration error {expected_calibration_error(labels, probabilities):.3f}")
    top.legend(loc="upper left")
    bottom.bar(edges, counts, width=1 / bins, align="edge", edgecolor="black", color="grey")
    bottom.set_xlabel("top score")
    bottom.set_ylabel("faces")
    fig.tight_layout()
    return fig


def metrics_table(metrics: dict, name: str = "this model", more: dict[str, dict] | None = None,
                  reference: bool = True) -> pd.DataFrame:
    """Headline metrics, one row each (percentages as text), beside the original README's seed CNN
    when `reference` (FER2013 results only: `evaluation.compares_with_original`).

    `more` adds a column per extra set of metrics, e.g. {"with flip TTA": metrics}.
    """
    rows = {
        "Top-1 accuracy": "top1_accuracy", "Top-2 accuracy": "top2_accuracy",
        "Precision (macro)": "precision_macro", "Recall (macro)": "recall_macro", "F1 (macro)": "f1_macro",
        "Precision (weighted)": "precision_weighted", "Recall (weighted)": "recall_weighted",
        "F1 (weighted)": "f1_weighted", "Loss": "loss", "Calibration error": "expected_calibration_error",
    }

    if "votes" in metrics:  # FER+: the rows above use the official majority rule; the votes add these
        rows = {f"{title} (official rule)" if key in ("top1_accuracy", "top2_accuracy") else title: key
                for title, key in rows.items()}
        rows.update({"Top-1 (top-vote rule)": "top_vote.top1_accuracy", "F1 macro (top-vote rule)": "top_vote.f1_macro",
                     "Annotator share": "votes.annotator_share", "Vote cross-entropy": "votes.vote_crossentropy"})

    def value_of(values: dict, key: str):
        for part in key.split("."):
            values = values.get(part) if isinstance(values, dict) else None
        return values

    def shown(value, key):
        if value is None:
            return "\u2014"
        return f"{value:.4f}" if key.endswith(("loss", "expected_calibration_error", "crossentropy")) else f"{value:.2%}"

    columns = {name: metrics, **(more or {}), **({"original README (seed CNN)": ORIGINAL_README} if reference else {})}
    return pd.DataFrame({column: [shown(value_of(values, k), k) for k in rows.values()] for column, values in columns.items()},
                        index=list(rows))


# Settings that matter only with another one: shown only when `when` says so of the config's dict.
DEPENDENT_SETTINGS = {
    "distillation": lambda c: c.get("teacher"),
    "mixing_strength": lambda c: c.get("mixing") not in (None, "none"),
    "lr_factor": lambda c: c.get("lr_schedule") == "plateau",
    "lr_patience": lambda c: c.get("lr_schedule") == "plateau",
    "lr_monitor": lambda c: c.get("lr_schedule") == "plateau",
}
VOTE_SETTINGS = ("label_mode", "majority_rule")  # FER+ only


def config_table(config, votes: bool = False) -> pd.DataFrame:
    """A run's settings (a TrainConfig), one row each, nested ones as augment.flip etc.: readable where the
    dataclass's repr runs on for lines. Settings that are off or unset (no teacher, no weight averaging,
    no mixing, ...) and those that only matter with them (a distillation weight without a teacher) are left
    out, and FER+'s label settings on other data (`votes` False); config.json holds every one."""
    values = config.to_dict()
    rows = {}
    for key, value in values.items():
        if _off(value) or (key in DEPENDENT_SETTINGS and not DEPENDENT_SETTINGS[key](values)) \
                or (key in VOTE_SETTINGS and not votes):
            continue
        if isinstance(value, dict):
            # An augmentation of strength 0 is off too.
            rows.update({f"{key}.{inner}": _cell(v) for inner, v in value.items()
                         if not _off(v) and not (key == "augment" and v == 0)})
        else:
            rows[key] = _cell(value)
    return pd.DataFrame({"value": rows})


def _off(value) -> bool:
    return value is None or value is False or value == "none" or (isinstance(value, (dict, list, tuple)) and not value)


def _cell(value) -> str:
    if value is None:
        return "\u2014"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


SUMMARY_ROWS = (
    ("model", "model", str), ("parameters", "parameters", "{:,}".format), ("precision", "precision", str),
    ("backend", "backend", str), ("hardware", "trained on", str), ("train_images", "training faces", "{:,}".format),
    ("val_images", "validation faces", "{:,}".format), ("epochs_run", "epochs run", str),
    ("resumed_after_epoch", "resumed after epoch", str), ("time_budget_seconds", "time budget (s)", "{:g}".format),
    ("best_epoch", "best epoch", str), ("best_val_accuracy", "best validation accuracy", "{:.2%}".format),
    ("wall_seconds", "wall time", lambda s: f"{s / 60:.1f} min"),
    ("images_per_second", "training speed", "{:.0f} faces/s, median epoch, fitting only".format),
    ("previous_model", "replaced model kept at", str),
)


def training_summary_table(summary: dict) -> pd.DataFrame:
    """train_summary.json as a two-column table: what a reader wants to know about the run, in words.

    The training speed is the median epoch's fitting rate; beside it the whole run's rate (training
    faces times epochs over the wall time, validation, compiling and checkpoints included), which
    is what the run's length follows.
    """
    rows = {label: show(summary[key]) for key, label, show in SUMMARY_ROWS if summary.get(key) is not None}
    overall = whole_run_rate(summary)
    if overall is not None:
        position = list(rows).index("training speed") + 1 if "training speed" in rows else len(rows)
        items = list(rows.items())
        items.insert(position, ("over the whole run", f"{overall:.0f} faces/s, validation and saving included"))
        rows = dict(items)
    return pd.DataFrame({"": rows})


def whole_run_rate(summary: dict) -> float | None:
    """Training faces per second of wall time over the whole run, or None without the figures."""
    faces, epochs, seconds = summary.get("train_images"), summary.get("epochs_run"), summary.get("wall_seconds")
    return faces * epochs / seconds if faces and epochs and seconds else None


def training_outcome(history: pd.DataFrame | dict, epochs: int, patience: int | None, time_budget=None) -> str:
    """How the training ended, in Markdown: early stopping (validation loss flat for `patience` epochs), the
    time budget, or all `epochs`; and whether validation accuracy was still climbing at the end, when more
    epochs would likely have helped."""
    val_loss = list(np.asarray(history.get("val_loss", []), float))
    val_accuracy = list(np.asarray(history.get("val_accuracy", []), float))
    run = len(val_accuracy) or len(val_loss)
    if not run:
        return "The run has no validation scores, so nothing stopped it early; it trained every epoch it was given."
    best = int(np.nanargmax(val_accuracy)) + 1 if val_accuracy else None
    kept = (f" The model kept is epoch {best}'s, the best validation accuracy ({val_accuracy[best - 1]:.1%})."
            if best else "")
    if run >= epochs:
        text = f"The run trained all {epochs} epochs it was given; early stopping did not end it."
    elif patience and val_loss and run - 1 - int(np.nanargmin(val_loss)) >= patience:
        text = (f"Early stopping ended the run after epoch {run} of {epochs}: validation loss had not improved "
                f"for {patience} epochs (its best was epoch {int(np.nanargmin(val_loss)) + 1}'s).")
    elif time_budget:
        text = f"The time budget ({time_budget:g} s) ended the run after epoch {run} of {epochs}."
    else:
        text = f"The run stopped after epoch {run} of {epochs}."
    if len(val_accuracy) >= 3:
        before, last = val_accuracy[-3], val_accuracy[-1]
        if last >= max(val_accuracy) - 0.005 and last - before >= 0.02:
            text += (f" Validation accuracy was still climbing at the end ({before:.0%} at epoch {run - 2}, {last:.0%} "
                     f"at epoch {run}), so more epochs would probably have helped: the epochs given ended it, not a "
                     "plateau.")
    return text + kept


def most_confused_pairs(matrix, classes=EMOTIONS, n: int = 6) -> pd.DataFrame:
    """The `n` largest off-diagonal cells, numbered from 1: the true emotion, what it was predicted as, how
    many faces, and their share of the true emotion's faces (as text)."""
    matrix = np.asarray(matrix)
    rows = []
    for t in range(len(classes)):
        for p in range(len(classes)):
            if t != p and matrix[t, p] > 0:
                rows.append({"true emotion": classes[t], "predicted as": classes[p], "faces": int(matrix[t, p]),
                             "share": matrix[t, p] / max(matrix[t].sum(), 1)})
    table = pd.DataFrame(rows, columns=["true emotion", "predicted as", "faces", "share"])
    table = table.sort_values("faces", ascending=False, kind="stable").head(n).reset_index(drop=True)
    table["share of the true emotion's faces"] = [f"{v:.0%}" for v in table.pop("share")]
    table.index = pd.RangeIndex(1, len(table) + 1)  # unnamed: a named index adds a header row of its own
    return table


def misclassified_gallery_figure(images, labels, probabilities, n: int = 24, seed: int = 0, classes=EMOTIONS) -> plt.Figure:
    """Up to `n` misclassified faces titled 'true -> predicted (confidence)'."""
    predicted = np.asarray(probabilities).argmax(axis=1)
    wrong = np.flatnonzero(predicted != np.asarray(labels))
    chosen = np.random.default_rng(seed).choice(wrong, size=min(n, len(wrong)), replace=False) if len(wrong) else []
    titles = [f"{classes[labels[i]]}\u2192{classes[predicted[i]]} {probabilities[i].max():.0%}" for i in chosen]
    if not len(chosen):
        fig, ax = plt.subplots(figsize=(4, 1))
        ax.text(0.5, 0.5, "no misclassified images", ha="center")
        ax.axis("off")
        return fig
    fig = face_grid_figure(np.asarray(images)[chosen], titles, columns=8, size=1.5)
    fig.set_label(f"{len(chosen)} misclassified test faces, each titled true \u2192 predicted emotion and the model's score")
    return fig


def metrics_intro(reference: bool, votes: bool = False, tta: str = "none") -> str:
    """What the metrics table's rows and columns mean, in Markdown, naming only the columns it has."""
    text = ["Top-1 accuracy counts the faces whose highest-scoring emotion is the true one; top-2, those whose true "
            "emotion is among the two highest. Precision is how often a predicted emotion is right, recall how many "
            "of an emotion's faces are found, F1 their harmonic mean; *macro* averages the classes equally, *weighted* "
            "by their number of faces. The loss is the cross-entropy of the model's probabilities; the calibration "
            "error is how far, on average, the top score (the probability of the predicted emotion) is from how "
            "often it is right (below)."]
    if tta != "none":
        how = ("the face and its mirror image" if tta == "flip"
               else "ten crops of the face (corners and centre, and their mirror images)")
        text.append(f"The *with {tta} TTA* column is test-time augmentation: the model scores {how} and the "
                    "probabilities are averaged; the figures below are without it.")
    if reference:
        text.append("The last column is the original README's seed CNN on FER2013's test split.")
    if votes:
        text.append("On FER+ the true label is the majority of ten annotators under the official rule (single votes "
                    "dropped, the top emotion holds more than half of the rest); the table adds top-1 under the paper's "
                    "top-vote rule, the mean share of annotators who chose the model's top emotion, and the "
                    "cross-entropy from the votes' distribution to the model's probabilities.")
    return "\n\n".join(text)


FEW_PREDICTIONS = 3  # a class predicted this often or less has a precision resting on a face or two


def prediction_notes(metrics: dict, more: dict[str, dict] | None = None, classes=None) -> str:
    """Markdown on what the macro scores hide: emotions the model never predicts (an empty confusion-matrix
    column, an empty bar slot, recall 0) and, beside each of `more`'s columns, a class predicted so rarely
    that a prediction or two moves the macro precision by points. Empty when there is nothing to say."""
    classes = list(classes or metrics.get("classes") or EMOTIONS)
    matrix = np.asarray(metrics["confusion_matrix"])
    predicted, support = matrix.sum(axis=0), matrix.sum(axis=1)
    notes = []
    never = [classes[i] for i in range(len(classes)) if predicted[i] == 0 and support[i] > 0]
    if never:
        names = _and_list([f"**{c}**" for c in never])
        notes.append(f"The model never predicts {names} on these test faces: {'its' if len(never) == 1 else 'their'} "
                     "column in the confusion matrix is empty, the per-class bars have nothing to show and recall is 0. "
                     f"{'Its' if len(never) == 1 else 'Their'} precision counts as 0 in the macro average.")
        chosen = [classes[i] for i in range(len(classes)) if predicted[i] > 0]
        if len(chosen) <= 2:
            notes[-1] += f" It predicts only {_and_list([f'**{c}**' for c in chosen])}: it has not learned the task yet."
    for name, other in (more or {}).items():
        other_matrix = np.asarray(other.get("confusion_matrix", []))
        if other_matrix.shape != matrix.shape:
            continue
        other_predicted = other_matrix.sum(axis=0)
        for i, emotion in enumerate(classes):
            if support[i] == 0 or min(predicted[i], other_predicted[i]) > FEW_PREDICTIONS:
                continue
            before = matrix[i, i] / predicted[i] if predicted[i] else 0.0
            after = other_matrix[i, i] / other_predicted[i] if other_predicted[i] else 0.0
            shift = (after - before) / max(int((support > 0).sum()), 1)
            if abs(shift) >= 0.02:
                notes.append(f"{name[:1].upper() + name[1:]}, **{emotion}** is predicted {_times(other_predicted[i])} "
                             f"({_times(other_matrix[i, i], 'right')}) against {_times(predicted[i])} without; its "
                             f"precision goes from {before:.0%} to {after:.0%}, which alone moves the macro precision by "
                             f"{shift * 100:+.1f} points. A change that rests on so few faces is luck, not skill.")
    return "\n\n".join(notes)


def _times(n, word: str = "") -> str:
    n = int(n)
    text = "once" if n == 1 else ("never" if n == 0 else f"{n} times")
    return f"{word} {text}".strip() if word and n else (f"never {word}".strip() if word else text)


def _and_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def worth_rebalancing(priors) -> bool:
    """Whether the training classes are unequal enough for a prior correction to change anything."""
    priors = np.asarray(priors, float)
    return bool(priors.max() / max(priors.min(), 1e-12) >= BALANCED_RATIO)


def intensity_table(statistics: pd.DataFrame, classes) -> pd.DataFrame:
    """`exploration.intensity_statistics` as one row per emotion in the classes' order and a mean and a standard
    deviation column per split, train, val, test, in grey levels (0 black to 255 white), one decimal."""
    from fer_lib.data.dataset import SPLIT_NAMES

    table = pd.DataFrame(index=list(classes))
    for split in SPLIT_NAMES:
        part = statistics[statistics["split"] == split].set_index("emotion")
        table[f"{split} mean"] = part["mean"].reindex(table.index)
        table[f"{split} SD"] = part["std"].reindex(table.index)
    table.columns.name = "emotion"  # in the corner cell: one header row, each heading over its column
    return table.round(1)


def figure_description(fig) -> str:
    """A figure's label (the face grids set one), else its titles as one line: its alternative text in the HTML reports."""
    if fig.get_label():
        return fig.get_label()
    titles = [fig._suptitle.get_text()] if getattr(fig, "_suptitle", None) is not None else []
    titles += [ax.get_title() for ax in fig.axes if ax.get_title()]
    titles += [t.get_text() for ax in fig.axes for t in ax.texts if not ax.get_title() and t.get_text()][:1]
    return " ".join(" ".join(dict.fromkeys(t.replace("\n", " ") for t in titles if t)).split()) or "Figure"
