#!/usr/bin/env bash
# Train and export the two models that ship in ddim_tutorial/bundled/ (see their model cards).
#   bash scripts/bundled_models.sh train flowers32     # ~1.5 h on 2 CPU cores, in the background is fine
#   bash scripts/bundled_models.sh train flowers64     # the reference network: a GPU, or many CPU hours
#   bash scripts/bundled_models.sh resume flowers64    # continue a stopped run (same command, --resume)
#   bash scripts/bundled_models.sh train species32     # flowers32 fine-tuned on the 12 species' labels
#   bash scripts/bundled_models.sh export flowers32 "wall time" "hardware"
# DATA defaults to ../shared/data/flowers12 (train/ and test/); RUNS to ../runs.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-$(cd ../shared/data/flowers12 && pwd)}
RUNS=${RUNS:-$(mkdir -p ../runs && cd ../runs && pwd)}
PY=${PY:-.venv/bin/python}
action=$1 name=$2

case $name in
    flowers32) args=(--epochs 45 --seed 0 --batch-size 32 --set image_size=32 'widths=[32,64,96]' block_depth=2
                     augment_flip=true validation_kid=false kid_weights=null)
               target=() ;;
    flowers64) args=(--epochs 140 --seed 0 --set augment_flip=true validation_kid=false kid_weights=null)
               target=(--target-images 500000) ;;
    species32) args=(--epochs 30 --start-from flowers32 --set num_classes=12)
               target=() ;;
    *) echo "unknown model $name (flowers32, flowers64 or species32)" >&2; exit 2 ;;
esac
preset=(--preset reference)
[ "$name" = species32 ] && preset=()  # its config is flowers32's, with labels
train_command="python -m ddim_tutorial --backend tensorflow train${preset[*]:+ ${preset[*]}} --data-dir flowers12 --out runs/$name ${args[*]}"

case $action in
    train)  exec "$PY" -m ddim_tutorial --backend tensorflow train "${preset[@]}" --data-dir "$DATA" \
                --out "$RUNS/$name" --verbose 2 "${args[@]}" ;;
    resume) exec "$PY" -m ddim_tutorial --backend tensorflow train --out "$RUNS/$name" --resume --verbose 2 \
                --epochs "${args[1]}" ;;
    export) summary=${SUMMARY:?set SUMMARY to the one-line summary}
            exec "$PY" -m ddim_tutorial --backend tensorflow export --checkpoint "$RUNS/$name/${CHECKPOINT:-last}" \
                --name "$name" --data-dir "$DATA" --summary "$summary" --train-command "$train_command" \
                --wall-time "$3" --hardware "$4" "${target[@]}" --script "bash scripts/bundled_models.sh {train,export} $name" --progress-note "${NOTE:-}" ;;
    *) echo "unknown action $action (train, resume or export)" >&2; exit 2 ;;
esac
