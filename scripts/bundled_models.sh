#!/usr/bin/env bash
# Train and export the three models that ship in ddim_tutorial/pretrained/bundled/ (see their model cards).
#   bash scripts/bundled_models.sh train flowers32     # 1 h 54 min on 2 CPU cores, in the background is fine
#   bash scripts/bundled_models.sh train flowers64     # the reference network: a GPU, or about 6 CPU hours
#   bash scripts/bundled_models.sh resume flowers64    # continue a stopped run (same command, --resume)
#   bash scripts/bundled_models.sh train species32     # flowers32 fine-tuned on the 12 species' labels (17 min)
#   bash scripts/bundled_models.sh train flow32        # flowers32's network and budget, by flow matching (--path linear)
#   bash scripts/bundled_models.sh export flowers32 "wall time" "hardware"
# The wall time starts with its duration ("1 h 54 min (...)", "about 17 min ..."): the card derives the
# images per second from it. SUMMARY overrides the card's one-line summary below; the data and split
# lines are pretrained.DATA and pretrained.SPLIT (flowers12 as it is now: 720 train, 217 test photographs).
# DATA defaults to ../shared/data/flowers12 (train/ and test/); RUNS to ../runs.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-$(cd ../shared/data/flowers12 && pwd)}
RUNS=${RUNS:-$(mkdir -p ../runs && cd ../runs && pwd)}
PY=${PY:-.venv/bin/python}
action=$1 name=$2

# The summaries' {fields} are filled in by export with the measured figures.
case $name in
    flowers32) args=(--epochs 45 --seed 0 --batch-size 32 --set image_size=32 'widths=[32,64,96]' block_depth=2
                     augment_flip=true validation_kid=false kid_weights=null)
               target=()
               summary="32x32 flowers: a {parameters:,}-parameter U-Net (widths 32/64/96) trained on 720 flower photographs for {images_seen:,} images ({optimizer_steps:,} steps); validation noise loss {validation_noise_loss:.3f}." ;;
    flowers64) args=(--epochs 140 --seed 0 --set augment_flip=true validation_kid=false kid_weights=null)
               target=(--target-images 500000)
               summary="64x64 flowers: the reference network ({parameters:,} parameters) after {images_seen:,} images ({epochs} epochs) on 2 CPU cores, the 500,000-image budget this project set for it (about a third of the reference's 50 epochs)" ;;
    flow32)    args=(--epochs 45 --seed 0 --batch-size 32 --path linear --set image_size=32 'widths=[32,64,96]'
                     block_depth=2 augment_flip=true validation_kid=false kid_weights=null)
               target=()
               summary="32x32 flowers by flow matching: the U-Net of flowers32 ({parameters:,} parameters) on the straight path, predicting the velocity noise - image, trained on 720 flower photographs for {images_seen:,} images ({optimizer_steps:,} steps); validation noise loss {validation_noise_loss:.3f}." ;;
    species32) args=(--epochs 30 --start-from flowers32 --set num_classes=12)
               target=()
               summary="32x32 flowers of 12 species: flowers32 with a class embedding ({parameters:,} parameters), fine-tuned on the species labels with 10 % label dropout for {images_seen:,} images ({optimizer_steps:,} steps); validation noise loss {validation_noise_loss:.3f}" ;;
    *) echo "unknown model $name (flowers32, flowers64, species32 or flow32)" >&2; exit 2 ;;
esac
preset=(--preset reference)
[ "$name" = species32 ] && preset=()  # its config is flowers32's, with labels
train_command="python -m ddim_tutorial --backend tensorflow train${preset[*]:+ ${preset[*]}} --data-dir flowers12 --out runs/$name ${args[*]}"

case $action in
    train)  exec "$PY" -m ddim_tutorial --backend tensorflow train "${preset[@]}" --data-dir "$DATA" \
                --out "$RUNS/$name" --verbose 2 "${args[@]}" ;;
    resume) exec "$PY" -m ddim_tutorial --backend tensorflow train --out "$RUNS/$name" --resume --verbose 2 \
                --epochs "${args[1]}" ;;
    export) summary=${SUMMARY:-$summary}
            card_data=$("$PY" -c 'from ddim_tutorial import pretrained; print(pretrained.DATA)')
            card_split=$("$PY" -c 'from ddim_tutorial import pretrained; print(pretrained.SPLIT)')
            exec "$PY" -m ddim_tutorial --backend tensorflow export --checkpoint "$RUNS/$name/${CHECKPOINT:-last}" \
                --name "$name" --data-dir "$DATA" --summary "$summary" --train-command "$train_command" \
                --data "$card_data" --split "$card_split" \
                --wall-time "$3" --hardware "$4" "${target[@]}" --script "bash scripts/bundled_models.sh {train,export} $name" --progress-note "${NOTE:-}" ;;
    *) echo "unknown action $action (train, resume or export)" >&2; exit 2 ;;
esac
