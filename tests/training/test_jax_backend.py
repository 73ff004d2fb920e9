"""The JAX backend that GPU runs use (docs/gpu.md): run where jax is installed, skipped elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("jax")

CHECK = textwrap.dedent("""
    import numpy as np, jax, keras
    from fer_lib.models.augmentation import augmentation_layers
    from fer_lib.models.registry import build_model
    from fer_lib.training.presets import preset_config
    from fer_lib.training.recipe import compile_for_training

    config = preset_config("fer_cnn_crop_vgg")
    model = compile_for_training(build_model(config.model, augment=config.augment, seed=1, **config.model_options), config)
    assert keras.backend.backend() == "jax" and model.jit_compile is True, model.jit_compile
    # Compiled, the random layers still draw new transforms every step: their seeds are state.
    augment = keras.Sequential([keras.Input((48, 48, 1)), *augmentation_layers(config.augment, seed=3)])
    step = jax.jit(lambda state, x: augment.stateless_call([], state, x, training=True))
    faces = np.random.default_rng(0).random((8, 48, 48, 1)).astype("float32")
    state = [v.value for v in augment.non_trainable_variables]
    first, state = step(state, faces)
    second, state = step(state, faces)
    assert np.abs(np.asarray(first) - np.asarray(second)).mean() > 1e-3
    print("ok")
""")


@pytest.mark.slow
def test_training_on_jax_is_compiled_and_still_augments_at_random():
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
