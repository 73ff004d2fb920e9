"""Stage 3, training: from a recipe to a trained model in a run folder.

- `config`: `TrainConfig`, everything that determines a run, saved as config.json
- `presets`: named recipes (`fer presets` lists them)
- `recipe`: the optimizer, loss, metrics and compiled step of a config
- `targets`: one-hot or distilled targets, face weights, mixed batches
- `callbacks`: throughput, epoch lines, time budget, best checkpoint, resume state
- `run_folder`: the files a run publishes and the resume state while it runs
- `trainer`: `train`, one run from config to published model; `finished_run`, a finished one read back; `start_data_parallel` (JAX, every accelerator)
- `precision`: mixed bfloat16 or float32
- `tuning`, `distributed_search`: the KerasTuner search, in one process or several
- `search_space`: the spaces a search draws from, their hypermodels, and the TrainConfig of a point
"""

from fer_lib.lazy import package_attributes

EXPORTS = {
    "MODEL_FILE": "fer_lib.training.run_folder",
    "PREVIOUS_MODEL_FILE": "fer_lib.training.run_folder",
    "METRICS_FILE": "fer_lib.training.run_folder",
    "PREVIOUS_METRICS_FILE": "fer_lib.training.run_folder",
    "HISTORY_FILE": "fer_lib.training.run_folder",
    "CONFIG_FILE": "fer_lib.training.run_folder",
    "DATA_FILE": "fer_lib.training.run_folder",
    "SUMMARY_FILE": "fer_lib.training.run_folder",
    "RESUME_DIR": "fer_lib.training.run_folder",
    "STATE_FILE": "fer_lib.training.run_folder",
    "BEST_CHECKPOINT": "fer_lib.training.run_folder",
    "TEACHER_FILE": "fer_lib.training.run_folder",
    "REPLACED_DIR": "fer_lib.training.run_folder",
    "PREVIOUS_NAMES": "fer_lib.training.run_folder",
    "history_csv": "fer_lib.training.run_folder",
    "read_resume_state": "fer_lib.training.run_folder",
    "check_out_dir": "fer_lib.training.run_folder",
    "prepare_out_dir": "fer_lib.training.run_folder",
    "NO_DECAY_VARIABLES": "fer_lib.training.recipe",
    "make_optimizer": "fer_lib.training.recipe",
    "make_loss": "fer_lib.training.recipe",
    "jit_compile_choice": "fer_lib.training.recipe",
    "compile_for_training": "fer_lib.training.recipe",
    "ThroughputMeter": "fer_lib.training.callbacks",
    "EpochLines": "fer_lib.training.callbacks",
    "TimeBudget": "fer_lib.training.callbacks",
    "BestCheckpoint": "fer_lib.training.callbacks",
    "TrainingState": "fer_lib.training.callbacks",
    "restore_callbacks": "fer_lib.training.callbacks",
    "make_callbacks": "fer_lib.training.callbacks",
    "MixedBatches": "fer_lib.training.targets",
    "targets_and_weights": "fer_lib.training.targets",
    "training_batches": "fer_lib.training.targets",
    "training_targets": "fer_lib.training.targets",
    "class_weights_for": "fer_lib.training.targets",
    "TrainConfig": "fer_lib.training.config",
    "preset_config": "fer_lib.training.presets",
    "TrainResult": "fer_lib.training.trainer",
    "train": "fer_lib.training.trainer",
    "start_data_parallel": "fer_lib.training.trainer",
    "finished_run": "fer_lib.training.trainer",
}
MOVED = {
    "as_model_input": "fer_lib.data.preprocessing",
    "subset": "fer_lib.data.splits",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = package_attributes(__name__, EXPORTS, MOVED)
