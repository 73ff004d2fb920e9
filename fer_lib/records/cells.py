"""The pieces every page is made of: wrapped paragraphs, percentages, the recipe in words, a training cell.
"""

from __future__ import annotations

import json

from fer_lib.records.reading import (
    FLAGS,
    has_teacher,
    minutes,
    recipe_of,
    run_overrides,
    runs_of,
    teacher_runs,
)


def wrap(text: str, width: int = 110) -> str:
    """A generated paragraph as lines of about `width` characters, words (and links) unbroken."""
    import textwrap

    return textwrap.fill(text, width, break_long_words=False, break_on_hyphens=False)


def pct(value: float | None) -> str:
    return "" if value is None else f"{value:.2%}"


def short_hardware(text: str | None) -> str:
    text = (text or "unknown").split(", beside")[0]
    return text.replace("(R)", "").replace(" Processor", "").replace("  ", " ")


def tta_cell(e: dict, key: str = "top1_accuracy") -> str:
    tta = e.get("test_tta")
    if not tta:
        return ""
    kind = tta.get("tta", "?")
    return pct(tta[key]) + ("" if kind == "tencrop" else f" ({kind})")


def f1_cell(e: dict) -> str:
    tta = e.get("test_tta")
    return f"{e['test']['f1_macro']:.3f}" + (f" / {tta['f1_macro']:.3f}" if tta else "")


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ": "))
    return str(value)


def option_text(key: str, value) -> str:
    if key in FLAGS:
        if key == "class_weights":
            return "--class-weights" if value else "--no-class-weights"
        return f"{FLAGS[key]} {_value(value)}"
    return f"{key}={_value(value)}"  # a TrainConfig field with no fer train option of its own


def teacher_text(e: dict) -> str:
    teacher = recipe_of(e).get("teacher")
    if not teacher:
        return ""
    if isinstance(teacher, list):
        return "teacher: `fer ensemble` of " + and_list([f"`{t}`" for t in teacher])
    return f"teacher: `{teacher}`" if " " not in teacher else f"teacher: {teacher}"


def and_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def step_text(step: str) -> str:
    """A step after training, "fer rebalance --tta tencrop (strength 0.2)", as "then `fer rebalance --tta tencrop` (strength 0.2)"."""
    command, _, why = step.partition(" (")
    return f"then `{command}`" + (f" ({why}" if why else "")


def recipe_text(e: dict) -> str:
    """The recipe, computed from the record: preset plus overrides (seed aside), fine-tune start, teacher, steps."""
    r = recipe_of(e)
    steps = [step_text(step) for step in r.get("after", [])]
    if r.get("derived_from"):
        return "; ".join([f"the model of `{r['derived_from']}`", *steps])
    if "ensemble_of" in r:
        members = and_list([f"`{m}`" for m in r["ensemble_of"]]) if r["ensemble_of"] else "its members"
        return "; ".join([f"`fer ensemble` of {members}", *steps])
    if r.get("command"):
        return "; ".join([f"`{r['command']}`", *steps])
    if not r.get("preset"):
        return "; ".join([f"model `{e.get('model')}` (no preset recorded)", *steps])
    changed = {k: v for k, v in run_overrides(e).items() if k != "seed"}
    text = f"`{r['preset']}`" + "".join(f" `{option_text(k, v)}`" for k, v in changed.items())
    if r.get("init_from"):
        text = f"fine-tuned from `{r['init_from']}`: {text}"
    return "; ".join(filter(None, [text, teacher_text(e), *steps]))


def training_cell(name: str, records: dict[str, dict]) -> str:
    e = records[name]
    runs = runs_of(name, records)
    text = f"{minutes(runs, records):.0f} min" if all(r in records for r in runs) else \
        f"{e['training']['wall_seconds'] / 60:.0f} min"
    text += f", {short_hardware(e.get('training_hardware'))}"
    taught = teacher_runs(name, records)
    if "search_minutes" in e:
        text += f" (+ {e['search_minutes']} min for the search)"
    if taught:
        text += f" (+ {minutes(taught, records):.0f} min for the teacher)"
    elif has_teacher(name, records):
        text += " (+ the teacher's training)"
    return text


def record_link(name: str, prefix: str) -> str:
    return f"[`{name}`]({prefix}{name}.json)"


def number_text(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def share_text(part: int, whole: int) -> str:
    return "100%" if part == whole else f"{part / whole:.1%}"
