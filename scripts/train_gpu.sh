#!/usr/bin/env bash
# The v2 generators of issue 13 (AttnGAN v2 at 32/64/128 px, CVAE-GAN v2 at 128 px) on one GPU: one
# scripted, checkpointed, resumable command sized for a 15-minute single-GPU lease (the device tool:
# one command of at most 10 minutes, files back of at most 16 MiB each). UNTESTED ON A GPU: written and
# dry-run end to end on the CPU (DEVICE=cpu); see training/README.md ("GPU run of the v2 generators").
#
#   scripts/train_gpu.sh [fit] [DATA] [RUN]     train on $DEVICE (default cuda; DATA=data/birds,
#                                                RUN=training/runs/gpu-v2)
#   scripts/train_gpu.sh unpack DIR [RUN]       copy what a device run brought back (DIR) into RUN
#   scripts/train_gpu.sh export [DATA] [RUN]    on the CPU: evaluate with CLASSIFIER and write the
#                                                candidate model dirs RUN/attngan-birds, RUN/cvaegan-birds
#
# fit runs, in order, each step skipped once RUN/<step>.done exists (rerun the same command to resume):
#   data      samples.cubmaker (the sample world, seed 0, WORKERS processes) if DATA has no images.txt
#   lossnet   a separate classifier (seed 1) whose trunk the generators' DAMSM starts from  } skipped with
#   damsm     the DAMSM AttnGAN trains against (trunk frozen from lossnet)                  } DAMSM=path.pt
#   attngan2  MIN_ATTNGAN2 minutes at batch BATCH_ATTNGAN2 (+ EXTRA_ATTNGAN2 flags, e.g. ablations)
#   cvaegan2  MIN_CVAEGAN2 minutes at batch BATCH_CVAEGAN2 (+ EXTRA_CVAEGAN2 flags)
# No network that grades images is trained or loaded here: the fidelity classifier and the judge stay on
# the CPU side (export), and the DAMSM's trunk comes from lossnet, never from classifier.pt or judge.pt.
#
# LIMIT_S (555) caps this call: the generators get --stop-at (start + LIMIT_S - PACK_S) and stop with a
# checkpoint; a step that would start with less than MIN_LEFT_S (60) left is left for the next call.
# The trainers write checkpoints every CKPT_MINUTES (1). After each step and at exit the files to bring
# back (4, each under 15 MiB) are copied to $OUT (set by the device tool) or PACK=dir: attngan2_ema.pt,
# cvaegan2_ema.pt (EMA generators, CVAE-GAN's encoder), damsm.pt (without optimizer state) and
# extras.tar.gz (logs, step outputs, .done marks, the last three sample grids of each kind).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cmd=fit
case "${1:-}" in fit|unpack|export) cmd=$1; shift ;; esac

DEVICE=${DEVICE:-cuda}
THREADS=${THREADS:-8}
WORKERS=${WORKERS:-16}
LIMIT_S=${LIMIT_S:-555}
PACK_S=${PACK_S:-20}
MIN_LEFT_S=${MIN_LEFT_S:-60}
CKPT_MINUTES=${CKPT_MINUTES:-1}
MIN_LOSSNET=${MIN_LOSSNET:-0.5}
MIN_DAMSM=${MIN_DAMSM:-0.8}
MIN_ATTNGAN2=${MIN_ATTNGAN2:-3.3}
MIN_CVAEGAN2=${MIN_CVAEGAN2:-2.5}
BATCH_ATTNGAN2=${BATCH_ATTNGAN2:-64}
BATCH_CVAEGAN2=${BATCH_CVAEGAN2:-64}
EXTRA_ATTNGAN2=${EXTRA_ATTNGAN2:-}
EXTRA_CVAEGAN2=${EXTRA_CVAEGAN2:-}
DAMSM=${DAMSM:-}
CLASSIFIER=${CLASSIFIER:-$root/training/runs/birds/classifier.pt}

log() { echo "train_gpu: $*" >&2; }

# the interpreter with torch: python3 on the GPU image, Debian's /usr/bin/python3 here
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    if ! "$PYTHON" -c 'import torch' 2>/dev/null; then PYTHON=/usr/bin/python3; fi
fi
fg() { (cd "$root/training" && PYTHONUNBUFFERED=1 "$PYTHON" -m fgtrain "$@"); }

case "$cmd" in
unpack)
    src=${1:?usage: scripts/train_gpu.sh unpack DIR [RUN]}
    RUN=$(realpath -m "${2:-$root/training/runs/gpu-v2}")
    mkdir -p "$RUN"
    for f in attngan2_ema.pt cvaegan2_ema.pt damsm.pt; do
        if [ -f "$src/$f" ]; then cp "$src/$f" "$RUN/$f"; fi
    done
    if [ -f "$src/extras.tar.gz" ]; then tar -xzf "$src/extras.tar.gz" -C "$RUN"; fi
    # the slim checkpoints are what export reads when the full ones are absent
    rm -f "$RUN/attngan2.pt" "$RUN/cvaegan2.pt"
    ls -la "$RUN" "$RUN/samples" 2>/dev/null || true
    exit 0
    ;;
export)
    DATA=$(realpath -m "${1:-$root/data/birds}")
    RUN=$(realpath -m "${2:-$root/training/runs/gpu-v2}")
    common=(--data "$DATA" --out "$RUN" --eval-only --threads "${THREADS_CPU:-2}")
    eval_args=()
    if [ -f "$CLASSIFIER" ]; then eval_args=(--classifier "$CLASSIFIER"); else log "no $CLASSIFIER: export without metrics"; fi
    if [ -f "$RUN/attngan2_ema.pt" ] || [ -f "$RUN/attngan2.pt" ]; then
        fg attngan2 "${common[@]}" --damsm "$RUN/damsm.pt" "${eval_args[@]}" --model-dir "$RUN/attngan-birds"
    fi
    if [ -f "$RUN/cvaegan2_ema.pt" ] || [ -f "$RUN/cvaegan2.pt" ]; then
        fg cvaegan2 "${common[@]}" "${eval_args[@]}" --model-dir "$RUN/cvaegan-birds"
    fi
    log "candidates in $RUN/{attngan,cvaegan}-birds: compare with samples/models by studio eval before replacing them"
    exit 0
    ;;
esac

DATA=$(realpath -m "${1:-$root/data/birds}")
RUN=$(realpath -m "${2:-$root/training/runs/gpu-v2}")
START=$(date +%s)
DEADLINE=$((START + LIMIT_S - PACK_S))
mkdir -p "$RUN"

pack() {
    local dst=${PACK:-${OUT:-}}
    [ -n "$dst" ] || return 0
    mkdir -p "$dst"
    local f
    for f in attngan2_ema.pt cvaegan2_ema.pt; do
        if [ -f "$RUN/$f" ]; then cp "$RUN/$f" "$dst/$f"; fi
    done
    # logs, step outputs and the last three sample grids of each kind, in one file
    local extras=()
    for f in "$RUN"/*.log.jsonl "$RUN"/*.out "$RUN"/*.done; do [ -f "$f" ] && extras+=("${f#"$RUN"/}"); done
    for pat in "attngan2_[0-9]" "attngan2_words_" "cvaegan2_[0-9]" "cvaegan2_morph_"; do
        while read -r f; do [ -n "$f" ] && extras+=("${f#"$RUN"/}"); done \
            < <(ls -1 "$RUN"/samples/${pat}*.png 2>/dev/null | sort | tail -3)
    done
    if [ ${#extras[@]} -gt 0 ]; then tar -czf "$dst/extras.tar.gz" -C "$RUN" "${extras[@]}"; fi
    if [ -f "$RUN/damsm.pt" ] && [ ! -f "$dst/damsm.pt" ]; then
        # without its optimizer state, so that it stays under the 16 MiB a returned file may have
        "$PYTHON" - "$RUN/damsm.pt" "$dst/damsm.pt" <<'EOF'
import sys, torch
ck = torch.load(sys.argv[1], map_location="cpu", weights_only=False)
ck.pop("opt", None)
torch.save(ck, sys.argv[2])
EOF
    fi
}
trap pack EXIT

left() { echo $((DEADLINE - $(date +%s))); }
done_() { [ -f "$RUN/$1.done" ]; }
room() {  # room STEP: is there time to start it?
    if [ "$(left)" -lt "$MIN_LEFT_S" ]; then
        log "$1: $(left) s left in this call, leaving it for the next call of the same command"
        return 1
    fi
}

"$PYTHON" - "$DEVICE" <<'EOF'
import sys, torch
dev = sys.argv[1]
print("train_gpu: torch %s, device %s%s" % (torch.__version__, dev,
      (": " + torch.cuda.get_device_name(0)) if dev.startswith("cuda") and torch.cuda.is_available() else ""),
      file=sys.stderr)
if dev.startswith("cuda") and not torch.cuda.is_available():
    sys.exit("train_gpu: DEVICE=%s but torch sees no GPU (DEVICE=cpu for a dry run)" % dev)
EOF

# data: the sample world (same maker, seed and arguments as data/birds here)
if [ ! -f "$DATA/images.txt" ]; then
    log "making the sample data set in $DATA ($WORKERS workers)"
    (cd "$root" && "$PYTHON" -m samples.cubmaker --out "$DATA" --workers "$WORKERS")
fi
log "data ready after $(( $(date +%s) - START )) s"
common=(--data "$DATA" --out "$RUN" --device "$DEVICE" --threads "$THREADS")

# the DAMSM AttnGAN trains against: given, or lossnet + damsm here
if [ -n "$DAMSM" ]; then
    [ "$(realpath -m "$DAMSM")" = "$RUN/damsm.pt" ] || cp "$DAMSM" "$RUN/damsm.pt"
    touch "$RUN/lossnet.done" "$RUN/damsm.done"
fi
fgt() { local t=$1; shift; (cd "$root/training" && PYTHONUNBUFFERED=1 timeout "$t" "$PYTHON" -m fgtrain "$@"); }
if ! done_ lossnet && room lossnet; then
    log "lossnet ($MIN_LOSSNET min)"
    if fgt "$(left)" classifier --name lossnet --seed 1 "${common[@]}" --minutes "$MIN_LOSSNET" >"$RUN/lossnet.out" 2>&1; then
        touch "$RUN/lossnet.done"
    else
        log "lossnet failed or cut: see $RUN/lossnet.out"; tail -5 "$RUN/lossnet.out" >&2
    fi
fi
if done_ lossnet && ! done_ damsm && room damsm; then
    log "damsm ($MIN_DAMSM min)"
    if fgt "$(left)" damsm --name damsm --init-classifier "$RUN/lossnet.pt" "${common[@]}" --minutes "$MIN_DAMSM" \
        >"$RUN/damsm.out" 2>&1; then
        touch "$RUN/damsm.done"
    else
        log "damsm failed or cut: see $RUN/damsm.out"; tail -5 "$RUN/damsm.out" >&2
    fi
fi
pack

gen() {  # gen NAME MINUTES BATCH EXTRA...
    local name=$1 min=$2 batch=$3
    shift 3
    done_ "$name" && { log "$name: done"; return 0; }
    room "$name" || return 0
    local resume=()
    [ -f "$RUN/$name.pt" ] && resume=(--resume)
    log "$name ($min min, batch $batch, stops by $(date -d "@$DEADLINE" +%T 2>/dev/null || echo "$DEADLINE"))"
    if fg "$name" "${common[@]}" --minutes "$min" --batch "$batch" --ckpt-minutes "$CKPT_MINUTES" \
        --stop-at "$DEADLINE" --no-export "${resume[@]}" "$@" >"$RUN/$name.out" 2>&1; then
        log "$name: $(grep -c '"event": "checkpoint"' "$RUN/$name.log.jsonl" 2>/dev/null || echo 0) checkpoints"
    else
        log "$name failed: see $RUN/$name.out"
        tail -20 "$RUN/$name.out" >&2
    fi
    pack
}

if done_ damsm; then
    # shellcheck disable=SC2086
    gen attngan2 "$MIN_ATTNGAN2" "$BATCH_ATTNGAN2" --damsm "$RUN/damsm.pt" $EXTRA_ATTNGAN2
else
    log "attngan2: no finished damsm.pt yet (rerun to continue)"
fi
# shellcheck disable=SC2086
gen cvaegan2 "$MIN_CVAEGAN2" "$BATCH_CVAEGAN2" $EXTRA_CVAEGAN2

"$PYTHON" - "$RUN" <<'EOF'
import json, os, sys
run = sys.argv[1]
for name in ("attngan2", "cvaegan2"):
    p = os.path.join(run, name + ".log.jsonl")
    if not os.path.exists(p):
        continue
    recs = [json.loads(l) for l in open(p) if l.strip()]
    steps = [r for r in recs if "step" in r and "event" not in r]
    ck = [r for r in recs if r.get("event") == "checkpoint"]
    last = steps[-1] if steps else {}
    print("train_gpu: %s: step %s, %s s trained, %s s/step, done=%s; last losses %s" % (
        name, ck[-1]["step"] if ck else "-", ck[-1]["s"] if ck else "-", last.get("sec_per_step"),
        os.path.exists(os.path.join(run, name + ".done")),
        {k: v for k, v in last.items() if k not in ("t", "step", "s", "sec_per_step")}), file=sys.stderr)
EOF
log "finished in $(( $(date +%s) - START )) s; run dir $RUN"
