#!/usr/bin/env bash
# Train the sample networks and export them into model directories.
#
#   scripts/train.sh fit    [DATA] [RUN]     train on $DEVICE (cpu or cuda), one after another:
#       classifier.pt    the fidelity scorer (seed 0)            -> classifier-birds
#       damsm_scorer.pt  its DAMSM, trunk frozen from classifier  -> classifier-birds (text similarity)
#       judge.pt         the evaluation network (ResNet, seed 2) -> judge-birds (studio eval only)
#       lossnet.pt       a separate classifier (seed 1) whose trunk the generators' DAMSM uses
#       damsm.pt         the DAMSM AttnGAN trains against (trunk frozen from lossnet)
#       cvaegan.pt, attngan.pt
#     No network that grades images (scorer, judge) shares weights with anything in a generator's loss.
#   scripts/train.sh export [DATA] [RUN]    evaluate on the CPU and write
#       $MODELS/{classifier,judge,cvaegan,attngan}-birds
#
# Budgets in minutes (wall clock, each run resumable with --resume): MIN_CLASSIFIER, MIN_JUDGE,
# MIN_LOSSNET, MIN_DAMSM (each of the two), MIN_CVAEGAN, MIN_ATTNGAN. The defaults suit 2 CPU cores
# (about 70 minutes in all). ONLY=name[,name] runs only those steps (e.g. ONLY=cvaegan,attngan).
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
MIN_CLASSIFIER=${MIN_CLASSIFIER:-12}
MIN_JUDGE=${MIN_JUDGE:-10}
MIN_LOSSNET=${MIN_LOSSNET:-6}
MIN_DAMSM=${MIN_DAMSM:-4}
MIN_CVAEGAN=${MIN_CVAEGAN:-12}
MIN_ATTNGAN=${MIN_ATTNGAN:-14}
ONLY=${ONLY:-}
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
    want() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }
    step() {  # step NAME MINUTES fgtrain-args...
        local name=$1 min=$2
        shift 2
        want "$name" || return 0
        log "$name ($min min) on $DEVICE"
        fg "$@" "${common[@]}" --minutes "$min" >"$RUN/$name.out" 2>&1
    }
    step classifier "$MIN_CLASSIFIER" classifier --name classifier --seed 0
    step damsm_scorer "$MIN_DAMSM" damsm --name damsm_scorer --init-classifier "$RUN/classifier.pt"
    step judge "$MIN_JUDGE" classifier --name judge --arch resnet --width 24 --seed 2
    step lossnet "$MIN_LOSSNET" classifier --name lossnet --seed 1
    step damsm "$MIN_DAMSM" damsm --name damsm --init-classifier "$RUN/lossnet.pt"
    step cvaegan "$MIN_CVAEGAN" cvaegan --batch "$BATCH_GAN" --ckpt-minutes 2 --no-export
    step attngan "$MIN_ATTNGAN" attngan --batch "$BATCH_GAN" --ckpt-minutes 2 --damsm "$RUN/damsm.pt" \
        --no-export
    log "done: $RUN"
    ;;
export)
    mkdir -p "$MODELS"
    fg export --data "$DATA" --run "$RUN" --out "$MODELS/classifier-birds"
    fg export --judge --data "$DATA" --run "$RUN" --out "$MODELS/judge-birds"
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
