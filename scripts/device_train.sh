#!/usr/bin/env bash
# Train one preset, or several models at once, on a lent GPU machine in one device run, and
# leave the runs in $OUT to come back.
#
# The machine has no TensorFlow and no network and is handed back seconds after a command
# ends, so everything happens in this one command: install the carried Keras wheels, unpack
# the carried training faces, train on JAX with --no-eval, and bundle the run folders into
# $OUT (scripts/gpu_data.py bundle: a tar in 15 MiB parts and a manifest). Whatever is still
# training when BUDGET_SECONDS are spent is stopped; its resume checkpoint comes back if it
# fits, else its best model so far (docs/gpu.md).
#
# One model, EPOCHS of its preset:
#     bash scripts/device_train.sh fer_cnn_crop_vgg 60 500 [fer train options...]
# Several models side by side on the one GPU, one line of MEMBERS_FILE each
# (NAME PRESET [fer train options...]; # starts a comment); each gets an equal share of the
# GPU's memory and a --time-budget that ends its training, its cosine schedule annealed,
# in time to bundle everything:
#     bash scripts/device_train.sh --members scripts/gpu_members/crop_trio.txt 550
# Back here:
#     python scripts/gpu_data.py unbundle FILES_AT --out runs/NAME
set -u

usage="usage: device_train.sh PRESET EPOCHS BUDGET_SECONDS [fer train options...]
   or: device_train.sh --members MEMBERS_FILE BUDGET_SECONDS"
started=$(date +%s)
if [ "${1-}" = --members ]; then
    members=${2:?$usage} budget=${3:?$usage}
    [ -f "$members" ] || { echo "device_train.sh: $members: no such members file; $usage" >&2; exit 2; }
    epochs=0
else
    members= preset=${1:?$usage} epochs=${2:?$usage} budget=${3:?$usage}
    shift 3
fi
case $epochs$budget in *[!0-9]*) echo "device_train.sh: EPOCHS ($epochs) and BUDGET_SECONDS ($budget) must be whole numbers; $usage" >&2; exit 2 ;; esac
: "${OUT:?OUT must name the folder whose files come back}"
# The defaults are the device machine's; a test here points them elsewhere (WHEELS= skips the install).
run=${RUN_DIR:-/tmp/run} faces=${FACES_DIR:-/tmp/fer} packed=${PACKED_FACES:-.carry/fer2013_train.npy.xz}
wheels=${WHEELS-.whl}
# Loading the faces (before fer train's clock starts), publishing and bundling happen outside
# the members' time budgets.
margin=${MEMBER_MARGIN_SECONDS:-60}

if [ -n "$wheels" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$wheels"/*.whl || exit
    export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
else
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
export KERAS_BACKEND=${KERAS_BACKEND:-jax} PYTHONUNBUFFERED=1
python3 scripts/gpu_data.py unpack "$packed" --out "$faces" || exit
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null
# How busy the GPU was, every 10 s, to say what limited the run (one small file back).
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 10 > "$OUT/gpu_utilization.csv" 2>/dev/null &
    monitor=$!
fi

names=() trainers=() logs=()
if [ -z "$members" ]; then
    setsid python3 -m fer_lib.cli train --data "$faces" --preset "$preset" --epochs "$epochs" \
        --no-eval --out "$run" "$@" > "$OUT/train.log" 2>&1 &
    names+=(.) trainers+=($!) logs+=("$OUT/train.log")
else
    mapfile -t lines < <(grep -v '^[[:space:]]*\(#\|$\)' "$members")
    [ ${#lines[@]} -gt 0 ] || { echo "device_train.sh: $members names no members" >&2; exit 2; }
    # JAX takes 75% of the GPU's memory by default: one process would leave the others none.
    share=$(( 90 / ${#lines[@]} ))
    seconds=$(( budget - ($(date +%s) - started) - margin ))
    [ "$seconds" -gt 0 ] || { echo "device_train.sh: BUDGET_SECONDS $budget leaves no time to train after unpacking and a $margin s margin" >&2; exit 2; }
    mkdir -p "$run"
    for line in "${lines[@]}"; do
        read -r -a words <<< "$line"
        name=${words[0]}
        case $name in *[!A-Za-z0-9_.-]*|.*) echo "device_train.sh: member name '$name' must be letters, digits, '_', '-' and '.'" >&2; exit 2 ;; esac
        [ ${#words[@]} -ge 2 ] || { echo "device_train.sh: $members: member '$name' names no preset" >&2; exit 2; }
        mkdir -p "$run/$name"
        XLA_PYTHON_CLIENT_MEM_FRACTION=0.$(printf %02d "$share") setsid python3 -m fer_lib.cli train --data "$faces" \
            --preset "${words[1]}" --time-budget "$seconds" --no-eval --out "$run/$name" "${words[@]:2}" \
            > "$run/$name/train.log" 2>&1 &
        names+=("$name") trainers+=($!) logs+=("$run/$name/train.log")
        echo "device_train.sh: $name: fer train --preset ${words[*]:1} --time-budget $seconds"
    done
fi
# setsid does not fork here (a background job is no group leader), so each trainer's pid is its group.
running() { local pid; for pid in "${trainers[@]}"; do kill -0 "$pid" 2>/dev/null && return 0; done; return 1; }
# If the device's own limit cuts this command short, stop training and still bundle what there is.
trap 'budget=0' TERM INT
while running && [ $(( $(date +%s) - started )) -lt "$budget" ]; do sleep 1; done
stopped=
if running; then
    # Every save is atomic (a temporary, then a rename), so a kill leaves the last complete epoch.
    for pid in "${trainers[@]}"; do kill -TERM -- "-$pid" 2>/dev/null; done
    for _ in 1 2 3 4 5 6 7 8 9 10; do running || break; sleep 1; done
    for pid in "${trainers[@]}"; do kill -KILL -- "-$pid" 2>/dev/null; done
    stopped=yes
fi
failed=0
for i in "${!trainers[@]}"; do
    wait "${trainers[$i]}" 2>/dev/null
    status=$?
    [ -z "$members" ] || echo "== ${names[$i]}"
    tail -n 3 "${logs[$i]}"
    if [ -z "$stopped" ] && [ "$status" -ne 0 ]; then
        echo "device_train.sh: the training of ${names[$i]} failed (exit status $status); see its train.log"
        failed=$status
    fi
done
if [ -n "$stopped" ]; then
    echo "device_train.sh: stopped the training after $(( $(date +%s) - started )) s (budget $budget s)"
fi
[ -z "${monitor-}" ] || kill "$monitor" 2>/dev/null
python3 scripts/gpu_data.py bundle "$run" --out "$OUT" || exit  # a failed run brings back what it saved
[ "$failed" -eq 0 ] || exit "$failed"
echo "device_train.sh: done after $(( $(date +%s) - started )) s"
