"""Choosing Keras' compute precision: mixed bfloat16 on CPUs with native bf16, else float32."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

PRECISIONS = ("auto", "bfloat16", "float32")


def cpu_supports_bf16() -> bool:
    """True when the CPU has AVX-512 BF16 or AMX instructions (Linux /proc/cpuinfo)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(choice: str = "auto") -> str:
    """'bfloat16' or 'float32' for a user's choice of auto/bfloat16/float32."""
    if choice not in PRECISIONS:
        raise ValueError(f"unknown precision {choice!r}; choose one of {', '.join(PRECISIONS)}")
    if choice != "auto":
        return choice
    import keras

    if keras.backend.backend() == "jax":
        import jax

        if jax.default_backend() in ("gpu", "tpu"):
            return "bfloat16"
    return "bfloat16" if cpu_supports_bf16() else "float32"


def set_precision(choice: str = "auto") -> str:
    """Set Keras' global dtype policy for models built next; returns the precision used."""
    import keras

    precision = resolve_precision(choice)
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    return precision


@contextmanager
def precision_policy(choice: str = "auto"):
    """`set_precision(choice)` for a with-block (yields the precision used), then the previous policy again."""
    import keras

    previous = keras.config.dtype_policy()
    try:
        yield set_precision(choice)
    finally:
        keras.config.set_dtype_policy(previous)
