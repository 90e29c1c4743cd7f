#!/usr/bin/env bash
# Train the four sample graphs and export them into model directories.
#
#   scripts/train.sh fit    [DATA] [RUN]     train on $DEVICE (cpu or cuda): classifier and CVAE-GAN in
#                                           parallel, then DAMSM (trunk from the classifier), then AttnGAN
#   scripts/train.sh export [DATA] [RUN]    evaluate on the CPU and write $MODELS/{classifier,cvaegan,attngan}-birds
#
# Budgets in minutes (wall clock, each run resumable with --resume): MIN_CLASSIFIER, MIN_DAMSM,
# MIN_CVAEGAN, MIN_ATTNGAN. Defaults suit a CPU with a few cores (about 95 minutes in all; the two
# GANs dominate). On one GPU a few minutes each are enough: see training/MODELS.md for the budgets the
# committed models were trained with.
set -euo pipefail

cmd=${1:?usage: scripts/train.sh fit|export [DATA] [RUN]}
root=$(cd "$(dirname "$0")/.." && pwd)
DATA=$(realpath -m "${2:-$root/data/birds}")
RUN=$(realpath -m "${3:-$root/training/runs/birds}")
MODELS=$(realpath -m "${MODELS:-$root/samples/models}")
PYTHON=${PYTHON:-/usr/bin/python3}
DEVICE=${DEVICE:-cpu}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-2}
MIN_CLASSIFIER=${MIN_CLASSIFIER:-15}
MIN_DAMSM=${MIN_DAMSM:-10}
MIN_CVAEGAN=${MIN_CVAEGAN:-45}
MIN_ATTNGAN=${MIN_ATTNGAN:-45}
BATCH_GAN=${BATCH_GAN:-32}

fg() { (cd "$root/training" && PYTHONUNBUFFERED=1 "$PYTHON" -m fgtrain "$@"); }
log() { echo "train: $*" >&2; }

case "$cmd" in
fit)
    if [ ! -f "$DATA/images.txt" ]; then
        log "making the sample data set in $DATA"
        (cd "$root" && "$PYTHON" -m samples.cubmaker --out "$DATA" --workers "$WORKERS")
    fi
    mkdir -p "$RUN"
    common=(--data "$DATA" --out "$RUN" --device "$DEVICE" --threads "$THREADS")
    log "classifier ($MIN_CLASSIFIER min) and CVAE-GAN ($MIN_CVAEGAN min) on $DEVICE"
    fg cvaegan "${common[@]}" --minutes "$MIN_CVAEGAN" --batch "$BATCH_GAN" --ckpt-minutes 2 \
        --no-export >"$RUN/cvaegan.out" 2>&1 &
    cvae=$!
    fg classifier "${common[@]}" --minutes "$MIN_CLASSIFIER" >"$RUN/classifier.out" 2>&1
    log "DAMSM ($MIN_DAMSM min), image trunk from the classifier"
    fg damsm "${common[@]}" --minutes "$MIN_DAMSM" >"$RUN/damsm.out" 2>&1
    log "AttnGAN ($MIN_ATTNGAN min)"
    fg attngan "${common[@]}" --minutes "$MIN_ATTNGAN" --batch "$BATCH_GAN" --ckpt-minutes 2 \
        --damsm "$RUN/damsm.pt" --no-export >"$RUN/attngan.out" 2>&1
    wait "$cvae"
    log "done: $RUN"
    ;;
export)
    mkdir -p "$MODELS"
    fg export --data "$DATA" --run "$RUN" --out "$MODELS/classifier-birds"
    fg cvaegan --data "$DATA" --out "$RUN" --eval-only --classifier "$RUN/classifier.pt" \
        --model-dir "$MODELS/cvaegan-birds"
    fg attngan --data "$DATA" --out "$RUN" --eval-only --damsm "$RUN/damsm.pt" \
        --classifier "$RUN/classifier.pt" --model-dir "$MODELS/attngan-birds"
    log "wrote $MODELS"
    ;;
*)
    echo "usage: scripts/train.sh fit|export [DATA] [RUN]" >&2
    exit 2
    ;;
esac
