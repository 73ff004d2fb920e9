"""Starting the Keras backend without TensorFlow's native start-up chatter.

TensorFlow's C++ layer logs oneDNN and missing-CUDA notices at import and device set-up
before TF_CPP_MIN_LOG_LEVEL takes effect; in a terminal they bury our one-line messages
and in an executed notebook they end up in the HTML report.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def import_backend_quietly() -> None:
    """Import TensorFlow (when it is the Keras backend) with native stderr muted."""
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow" or "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow as tf

        tf.config.list_physical_devices()
        tf.constant(0.0).numpy()  # the first op initialises devices, which logs too
    except Exception:
        pass  # a broken install is reported by the real import that follows
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def __getattr__(name):
    # `from fer_lib.backend import keras`: the modules that need Keras import it this way, so that
    # whichever a user imports first (fer_lib.models, predict_expression, ...) starts TensorFlow
    # quietly; `fer --help` and other light paths import neither.
    if name == "keras":
        import_backend_quietly()
        import keras

        return keras
    raise AttributeError(f"module 'fer_lib.backend' has no attribute {name!r}")


def setup_notebook() -> None:
    """Quiet backend, crisp inline figures and wide tables for the project's notebooks."""
    import_backend_quietly()
    import logging

    import pandas as pd

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    pd.set_option("display.precision", 4)
    pd.set_option("display.max_columns", 40)
    pd.set_option("display.width", 160)
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("png")
    except ImportError:
        pass
