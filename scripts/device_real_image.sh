#!/usr/bin/env bash
# On a lent GPU machine: the bundled default's last fine-tune (README, step 13) at a larger base
# width, for ../shared/GPU.md item 4 and issue 13. The generator is the default widened to WIDTH
# (--widen: it starts computing exactly what the default computes), so every epoch kept must
# beat the default's Pommier validation Dice (--hold_pommier). Reads device_data/ (staged by
# scripts/device_stage.sh pack and named in the call's `carry`) and leaves in $OUT what comes
# back: the training log and the kept model as float16 shards under 16 MiB with its small files
# (python -m amfl.weight_shards join OUT_FILES/model FOLDER makes it a model folder here).
#
#   bash scripts/device_real_image.sh WIDTH EPOCHS [more trainer arguments, which win]
set -euo pipefail
cd "$(dirname "$0")/.."
width=${1:?usage: device_real_image.sh WIDTH EPOCHS [trainer arguments]}
epochs=${2:?usage: device_real_image.sh WIDTH EPOCHS [trainer arguments]}
shift 2
: "${OUT:?OUT must name the folder whose files come back (the device tool sets it)}"
export AMFL_CACHE=$PWD/device_data/cache AMFL_ADIR=$PWD/device_data/adir-mfish PYTHONUNBUFFERED=1
PYTHON=${PYTHON:-python3}
run=runs/device-w$width

"$PYTHON" train_accelerate.py --model amfl-small --base_width "$width" --widen --init_from space/model \
    --no-gan --batch_size 16 --channels_last --lr_generator 2e-5 \
    --augment scale flips rot90 gain_gamma blur background noise --clean_pommier --hold_pommier \
    --freeze_batchnorm --synthetic_count 1000 --real_repeats 12 --touching_repeats 8 --masked_repeats 4 \
    --masked_overlapping_repeats 8 --pair_naming free_overlapping --loss lovasz_both --benchmark_validation \
    --epochs "$epochs" --patience "$epochs" --num_workers 8 --quiet --output_dir "$run" "$@"
cp "$run/log.jsonl" "$OUT/"
"$PYTHON" -m amfl.weight_shards split "$run/model" "$OUT/model"
