#!/usr/bin/env bash
# Train a preset on a lent GPU machine in one device run, and bring the model back in $OUT.
#
# The machine has no TensorFlow and no network and is handed back seconds after a command
# ends, so everything happens in this one command: install the carried Keras wheels, unpack
# the carried training faces, train on JAX within BUDGET seconds, and copy the results to
# $OUT in parts under 16 MiB. A run that has not finished by then is stopped and its resume
# checkpoint comes back instead, to be continued here on the CPU (docs/gpu.md).
#
#   device run, carry [".whl", ".carry"], timeout_s 600:
#     bash scripts/device_train.sh fer_cnn_crop_vgg 200 540
#   back here:  bash scripts/device_train.sh --join FILES_AT runs/NAME
set -u

# Files come back flat: .resume/best.keras travels as resume__best.keras.
restore_path() { local name=${2//__//}; case $name in resume/*) name=.$name ;; esac; echo "$1/$name"; }

if [ "${1:-}" = "--join" ]; then  # reassemble the parts that came back into a run folder
    from=${2:?--join FROM OUT_DIR} to=${3:?--join FROM OUT_DIR}
    mkdir -p "$to" || exit
    for part in "$from"/*.part-aa; do
        [ -e "$part" ] || continue
        name=$(basename "$part" .part-aa)
        target=$(restore_path "$to" "$name")
        mkdir -p "$(dirname "$target")" && cat "$from/$name".part-* > "$target" || exit
    done
    for file in "$from"/*; do
        case $file in *.part-*) continue ;; esac
        target=$(restore_path "$to" "$(basename "$file")")
        mkdir -p "$(dirname "$target")" && cp "$file" "$target" || exit
    done
    echo "joined $from into $to"
    exit 0
fi

preset=${1:?usage: device_train.sh PRESET EPOCHS [BUDGET_SECONDS] [fer train options...]}
epochs=${2:?usage: device_train.sh PRESET EPOCHS [BUDGET_SECONDS]}
budget=${3:-540}
shift $(( $# < 3 ? $# : 3 ))
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
trainer=$!
while kill -0 "$trainer" 2>/dev/null && [ $(( $(date +%s) - started )) -lt "$budget" ]; do sleep 2; done
if kill -0 "$trainer" 2>/dev/null; then
    # Out of time: stop between epochs' saves (they are atomic), and bring the checkpoint back.
    kill -TERM -- "-$trainer" 2>/dev/null; sleep 5; kill -KILL -- "-$trainer" 2>/dev/null
    echo "stopped after $(( $(date +%s) - started )) s; continue with: fer train --resume --out DIR --data DATA"
fi
wait "$trainer" 2>/dev/null
echo "training exit status $? after $(( $(date +%s) - started )) s"

# Flatten the run folder into $OUT, splitting big files into 15 MiB parts; temporaries
# of a save cut short (".NAME.xxxx") stay behind.
(cd "$run" && find . -type f ! -name '.*') | while read -r file; do
    name=${file#./} && name=${name#.} && name=${name//\//__}
    if [ "$(stat -c %s "$run/$file")" -gt 15000000 ]; then
        split -b 15M "$run/$file" "$OUT/$name.part-"
    else
        cp "$run/$file" "$OUT/$name"
    fi
done
tail -n 3 "$OUT/train.log"
