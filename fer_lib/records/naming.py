"""The naming scheme: a record's name computed from its recipe (NAMING says it in words).
"""

from __future__ import annotations

from fer_lib.records.reading import (
    DEFAULT_SEED,
    STEP_TAGS,
    is_ferplus,
    on_gpu,
    recipe_of,
    run_overrides,
)

NAMING = (
    "Run names follow one scheme, computed from the record (`tests/records/test_repository_records.py` checks it): "
    "`[gpu_]<start>[_e<epochs>][_s<seed>][_<change>...][_<label>][_<step>...]`. `<start>` is the preset of a run "
    "trained from scratch, or `<record>_ft<N>` for N epochs fine-tuned from a recorded model (`--init-from`). "
    "`_e<N>` and `_s<N>` appear when a from-scratch run's epochs or seed differ from the preset's (seed 1234). The "
    "changes are `distilled` (`--teacher`), `balanced` (`--class-weights`), `mixup` or `cutmix` (`--mixing`), "
    "`ema` (`--ema`), `sgd` (`--optimizer sgd`), `focal` (`--loss focal`) and `all` (`--val-fraction 0`); a "
    "fine-tune names only what it changes. Steps after training are `rebalanced` (`fer rebalance`) and "
    "`calibrated` (`fer calibrate`). `gpu_` marks a run trained on a GPU within a time budget. Ensembles are "
    "`ensemble_<label>`, pipeline runs `pipeline_<label>`. Renamed records list their former names under Run details."
)

def scheme_name(e: dict, records: dict[str, dict]) -> str | None:
    """The name NAMING gives this record, or None when it lacks what the scheme needs."""
    r = recipe_of(e)
    label = r.get("label")
    steps = [STEP_TAGS.get(" ".join(step.split()[:2])) for step in r.get("after", [])]
    if None in steps:
        return None
    if r.get("derived_from"):
        return "_".join([r["derived_from"], *([label] if label else []), *steps])
    if "ensemble_of" in r or e.get("model") == "ensemble":
        return "_".join(["ensemble", label, *steps]) if label else None
    if r.get("command"):
        return "_".join([r["command"].split()[1], label, *steps]) if label else None
    if not r.get("preset"):
        return None
    changed, config = run_overrides(e), e["config"]
    parts = (["ferplus"] if is_ferplus(e) else []) + (["gpu"] if on_gpu(e) else [])
    teacher = r.get("teacher")
    if r.get("init_from"):
        parts.append(f"{r['init_from']}_ft{config['epochs']}")
        base = records.get(r["init_from"], {})
        if teacher and teacher == recipe_of(base).get("teacher"):
            teacher = None  # kept its starting point's teacher: not a change
    else:
        parts.append(r["preset"])
        if "epochs" in changed and not config.get("time_budget"):
            parts.append(f"e{config['epochs']}")
        if config.get("seed", DEFAULT_SEED) != DEFAULT_SEED:
            parts.append(f"s{config['seed']}")
    if is_ferplus(e):  # FER+ runs always name what their votes trained towards
        parts.append(config.get("label_mode", "majority"))
        parts += ["topvote"] if config.get("majority_rule") == "top_vote" else []
    parts += ["distilled"] if teacher else []
    parts += ["balanced"] if changed.get("class_weights") else []
    parts += [changed["mixing"]] if changed.get("mixing", "none") != "none" else []
    parts += ["ema"] if changed.get("ema_momentum") else []
    parts += [changed["optimizer"]] if "optimizer" in changed else []
    parts += [changed["loss"]] if changed.get("loss", "crossentropy") != "crossentropy" else []
    parts += ["all"] if "val_fraction" in changed and not changed["val_fraction"] else []
    return "_".join([*parts, *([label] if label else []), *steps])
