"""Training over several devices of one machine (keras.distribution.DataParallel on JAX), on 2 simulated CPU devices."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from fer_lib.errors import FerError

TRAIN = textwrap.dedent("""
    import json, sys
    import keras
    from keras.src.backend.jax import distribution_lib as jax_distribution
    from fer_lib.data.dataset import load_dataset
    from fer_lib.training.config import TrainConfig
    from fer_lib.training.trainer import train

    batches = []  # the layout of every batch the trainer hands the devices
    distribute = jax_distribution.distribute_data_input
    def recorded(*args, **kwargs):
        array = distribute(*args, **kwargs)
        batches.append((len(array.sharding.device_set), str(array.sharding.spec)))
        return array
    jax_distribution.distribute_data_input = recorded

    seen = {}
    class During(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            distribution = keras.distribution.distribution()
            seen["distribution"] = type(distribution).__name__
            seen["mesh"] = list(distribution.device_mesh.devices)
            seen["variables"] = sorted({len(v.value.sharding.device_set) for v in self.model.variables})

    import fer_lib.training.trainer as trainer
    make_callbacks = trainer.make_callbacks
    trainer.make_callbacks = lambda *a, **k: [*make_callbacks(*a, **k), During()]

    root, out = sys.argv[1], sys.argv[2]
    config = TrainConfig(model="cnn", model_options={"conv_filters": [8, 16], "dense_units": [16]}, epochs=1,
                         batch_size=16, max_train_images=91, precision="float32", data_parallel=True, out=out)
    result = train(config, load_dataset(root), verbose=0)
    print(json.dumps({**seen, "batches": sorted(set(map(tuple, batches))), "summary": result.summary,
                      "after": type(keras.distribution.distribution()).__name__}))
""")


@pytest.mark.slow
def test_data_parallel_training_lays_variables_and_batches_over_two_devices(synthetic_root, tmp_path):
    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    done = subprocess.run([sys.executable, "-c", TRAIN, str(synthetic_root), str(tmp_path / "run")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["distribution"] == "DataParallel" and result["mesh"] == ["cpu:0", "cpu:1"]
    assert result["variables"] == [2]  # every weight replicated on both devices
    # Faces and targets alike split by rows over the two devices.
    assert sorted(spec for _, spec in result["batches"]) == ["P('batch', None)", "P('batch', None, None, None)"]
    assert {devices for devices, _ in result["batches"]} == {2}
    summary = result["summary"]
    assert summary["data_parallel_devices"] == 2 and summary["epochs_run"] == 1
    assert summary["train_images"] % 2 == 0 and summary["val_images"] % 2 == 0  # whole batches on both devices
    assert result["after"] == "NoneType"  # the run's distribution does not outlive it
    assert (tmp_path / "run" / "model.keras").is_file()


def test_data_parallel_needs_jax(synthetic_root, tmp_path):
    from fer_lib.backend import keras
    from fer_lib.data.dataset import load_dataset
    from fer_lib.training.config import TrainConfig
    from fer_lib.training.trainer import train

    if keras.backend.backend() == "jax":
        pytest.skip("the tests run on JAX here")
    config = TrainConfig(model="cnn", epochs=1, data_parallel=True, out=str(tmp_path / "run"))
    with pytest.raises(FerError, match="needs the JAX backend"):
        train(config, load_dataset(synthetic_root), verbose=0)


def test_fer_train_takes_data_parallel():
    from fer_lib.cli.commands import build_parser

    assert build_parser().parse_args(["train", "--data-parallel"]).data_parallel is True
    assert build_parser().parse_args(["train"]).data_parallel is None
