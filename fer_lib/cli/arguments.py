"""argparse types shared by the `fer` subcommands: a bad value is a one-line usage error."""

from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be a positive integer")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or math.isinf(value):  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text} must be a positive number")
    return value


def unit_interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text} must be a number from 0 to 1")
    return value


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    """--precision for the commands that run a model (fer predict, fer evaluate): float32 unless asked otherwise."""
    from fer_lib.models.serving import DEFAULT_SERVING_PRECISION, SERVING_PRECISIONS

    parser.add_argument("--precision", choices=SERVING_PRECISIONS, default=DEFAULT_SERVING_PRECISION,
                        help="what a Keras model computes in: float32 (default), which gives the scores of its ONNX and "
                             "TFLite exports on any CPU, or trained, the precision it was trained in (e.g. mixed "
                             "bfloat16: faster on CPUs with bf16 instructions, scores a few hundredths apart)")
