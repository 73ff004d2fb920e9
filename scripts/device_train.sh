#!/usr/bin/env bash
# Train a preset on a lent GPU machine in one device run, and leave the run in $OUT to come back.
#
# The machine has no TensorFlow and no network and is handed back seconds after a command
# ends, so everything happens in this one command: install the carried Keras wheels, unpack
# the carried training faces, train on JAX within BUDGET seconds, and bundle the run folder
# into $OUT (scripts/gpu_data.py bundle: a tar in 15 MiB parts and a manifest). A run not
# finished by then is stopped; its resume checkpoint comes back if it fits (docs/gpu.md).
#
#   device run, carry [".whl", ".carry"], timeout_s 600:
#     bash scripts/device_train.sh fer_cnn_crop_vgg 60 500
#   back here:
#     python scripts/gpu_data.py unbundle FILES_AT --out runs/NAME
set -u

usage="usage: device_train.sh PRESET EPOCHS BUDGET_SECONDS [fer train options...]"
preset=${1:?$usage} epochs=${2:?$usage} budget=${3:?$usage}
shift 3
case $epochs$budget in *[!0-9]*) echo "device_train.sh: EPOCHS ($epochs) and BUDGET_SECONDS ($budget) must be whole numbers; $usage" >&2; exit 2 ;; esac
started=$(date +%s)
: "${OUT:?OUT must name the folder whose files come back}"
# The defaults are the device machine's; a test here points them elsewhere (WHEELS= skips the install).
run=${RUN_DIR:-/tmp/run} faces=${FACES_DIR:-/tmp/fer} packed=${PACKED_FACES:-.carry/fer2013_train.npy.xz}
wheels=${WHEELS-.whl}

if [ -n "$wheels" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$wheels"/*.whl || exit
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
export KERAS_BACKEND=${KERAS_BACKEND:-jax} PYTHONUNBUFFERED=1
python3 scripts/gpu_data.py unpack "$packed" --out "$faces" || exit
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null

setsid python3 -m fer_lib.cli train --data "$faces" --preset "$preset" --epochs "$epochs" \
    --no-eval --out "$run" "$@" > "$OUT/train.log" 2>&1 &
trainer=$!  # setsid does not fork here (a background job is no group leader), so this is the group
# If the device's own limit cuts this command short, stop training and still bundle what there is.
trap 'budget=0' TERM INT
while kill -0 "$trainer" 2>/dev/null && [ $(( $(date +%s) - started )) -lt "$budget" ]; do sleep 1; done
stopped=
if kill -0 "$trainer" 2>/dev/null; then
    # Every save is atomic (a temporary, then a rename), so a kill leaves the last complete epoch.
    kill -TERM -- "-$trainer" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$trainer" 2>/dev/null || break; sleep 1; done
    kill -KILL -- "-$trainer" 2>/dev/null
    stopped=yes
fi
wait "$trainer" 2>/dev/null
status=$?
tail -n 3 "$OUT/train.log"
if [ -n "$stopped" ]; then
    echo "device_train.sh: stopped the training after $(( $(date +%s) - started )) s (budget $budget s)"
elif [ "$status" -ne 0 ]; then
    echo "device_train.sh: the training failed (exit status $status); see train.log"
    python3 scripts/gpu_data.py bundle "$run" --out "$OUT"  # whatever it saved before failing
    exit "$status"
fi
python3 scripts/gpu_data.py bundle "$run" --out "$OUT" || exit
echo "device_train.sh: done after $(( $(date +%s) - started )) s"
