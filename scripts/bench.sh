#!/usr/bin/env bash
# The numbers of BENCHMARKS.md, measured in one run on this machine (`make bench`):
#
#   1. raw graphs: every graph of samples/models through ONNX Runtime (Go, BenchmarkGraph) and the same
#      forward pass in PyTorch eager (python3 -m fgtrain bench), batch 1/8/32, same thread count;
#   2. the generator's whole call with and without fidelity scoring (BenchmarkGenerate);
#   3. the running system (test/bench live): end to end (HTTP submit -> images fetched) with 1, 2 and 4
#      worker processes on one redis-server vs the raw generator, API submit/status requests/s and
#      latency from a second process, cold start, resident memory of API and workers;
#   4. the queue alone vs redis-benchmark XADD (test/queuebench).
#
# The two runtimes alternate in ROUNDS rounds (one sample of each per round), so that both see the
# same load on a shared machine; each figure is the median over rounds with its min-max, and each
# ratio is taken within a round. Settings (environment):
#
#   THREADS      intra-op threads of ONNX Runtime = torch.set_num_threads   (default: nproc, as a worker)
#   ROUNDS       rounds                                                      (default 5)
#   SPIN_ROUNDS  rounds that also run the generator with ONNX Runtime's pool threads spinning
#                (ort.Config.Spin), to show what sleeping idle threads gain  (default 2)
#   BENCHTIME    go test -benchtime of one sample                            (default 0.2s)
#   TORCH_MIN    least seconds of one PyTorch sample                         (default 0.2)
#   MODELS       model directories                                           (default samples/models)
#   RUN          training checkpoints for PyTorch's weights; random init where missing
#                                                                            (default training/runs/birds)
#   OUT          report path without extension                               (default BENCHMARKS)
#   RESULTS      folder for the raw outputs                                  (default: a new temp folder)
#   PYTHON       Python with torch                                           (default /usr/bin/python3)
#   OMP_WAIT_POLICY  PyTorch's OpenMP threads: PASSIVE (default) sleeps when idle, as ONNX Runtime's
#                do in the studio (ort.Config.Spin false); ACTIVE busy-waits, which on a loaded
#                machine makes PyTorch slower and far noisier
#   ORT_LIB_PATH libonnxruntime.so                                           (default .deps/onnxruntime/...)
#   LIVE         1: run parts 3 and 4 (needs redis-server, redis-benchmark)  (default 1)
#   WORKERS      end-to-end configurations, N or NxL (N worker processes of L loops) (default 1,1x2,2,4)
#   LIVE_ARGS    more flags for `bench live` (e.g. -window 10s -runs 5)
#
# About 8 minutes on 2 busy cores with the defaults (make bench must stay under 15).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$PATH:/usr/local/go/bin"
GO=${GO:-go}
PYTHON=${PYTHON:-/usr/bin/python3}
THREADS=${THREADS:-$(nproc)}
ROUNDS=${ROUNDS:-5}
SPIN_ROUNDS=${SPIN_ROUNDS:-2}
TORCH_OMP_WAIT=${OMP_WAIT_POLICY:-PASSIVE}
BENCHTIME=${BENCHTIME:-0.2s}
TORCH_MIN=${TORCH_MIN:-0.2}
MODELS=$(realpath "${MODELS:-samples/models}")
RUN=${RUN:-training/runs/birds}
OUT=${OUT:-BENCHMARKS}
RESULTS=${RESULTS:-$(mktemp -d /tmp/fgbench.XXXXXX)}
export ORT_LIB_PATH=${ORT_LIB_PATH:-$ROOT/.deps/onnxruntime/lib/libonnxruntime.so}
mkdir -p "$RESULTS"
start=$SECONDS

log() { printf '[bench %4ds] %s\n' $((SECONDS - start)) "$*" >&2; }
load() { echo "$1 $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS/load.txt"; }

[ -f "$ORT_LIB_PATH" ] || { echo "bench: no ONNX Runtime at $ORT_LIB_PATH (run scripts/setup.sh)" >&2; exit 1; }
"$PYTHON" -c 'import torch' 2>/dev/null || { echo "bench: $PYTHON has no torch (run scripts/setup.sh test)" >&2; exit 1; }
run_arg=()
if [ -d "$RUN" ]; then
  run_arg=(--run "$(realpath --relative-to=training "$RUN")")
else
  log "no checkpoints in $RUN: PyTorch runs the same architectures with random weights"
fi

log "results in $RESULTS; threads $THREADS, rounds $ROUNDS, benchtime $BENCHTIME"
: >"$RESULTS/load.txt"
load "start"
"$GO" test -c -o "$RESULTS/generator.test" ./generator
"$GO" build -o "$RESULTS/benchtool" ./test/bench
load "build"

for r in $(seq 1 "$ROUNDS"); do
  log "round $r/$ROUNDS: ONNX Runtime (BenchmarkGraph, BenchmarkGenerate)"
  (cd generator && STUDIO_TEST_MODELS="$MODELS" STUDIO_TEST_THREADS="$THREADS" \
    "$RESULTS/generator.test" -test.run '^$' -test.bench '^(BenchmarkGraph|BenchmarkGenerate)$' \
    -test.benchtime "$BENCHTIME" -test.count 1) >"$RESULTS/go-$r.txt"
  load "round $r onnxruntime"
  if [ "$r" -le "$SPIN_ROUNDS" ]; then
    log "round $r/$ROUNDS: ONNX Runtime with spinning pool threads (BenchmarkGenerate, batch 1 and 8)"
    (cd generator && STUDIO_TEST_MODELS="$MODELS" STUDIO_TEST_THREADS="$THREADS" STUDIO_TEST_SPIN=1 \
      "$RESULTS/generator.test" -test.run '^$' -test.bench '^BenchmarkGenerate$/.*/.*/batch=(1|8)$' \
      -test.benchtime "$BENCHTIME" -test.count 1) >"$RESULTS/go-spin-$r.txt"
    load "round $r onnxruntime, spinning"
  fi
  log "round $r/$ROUNDS: PyTorch eager"
  (cd training && OMP_WAIT_POLICY=$TORCH_OMP_WAIT "$PYTHON" -m fgtrain bench --models "$MODELS" "${run_arg[@]}" --threads "$THREADS" \
    --batches 1,8,32 --repeats 1 --min-seconds "$TORCH_MIN" --json "$RESULTS/torch-$r.json" 2>>"$RESULTS/torch.log")
  load "round $r pytorch"
done

LIVE=${LIVE:-1}
WORKERS=${WORKERS:-1,1x2,2,4}
note=""
if [ "$LIVE" = 1 ]; then
  for tool in redis-server redis-cli redis-benchmark; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found (run scripts/setup.sh test, or LIVE=0)" >&2; exit 1; }
  done
  log "live: end to end with $WORKERS worker(s), API, cold start, memory"
  "$GO" build -o "$RESULTS/studio" ./cmd/studio
  # shellcheck disable=SC2086 # LIVE_ARGS is a list of flags
  "$RESULTS/benchtool" live -dir "$RESULTS" -studio "$RESULTS/studio" -models "$MODELS" -ort-lib "$ORT_LIB_PATH" \
    -threads "$THREADS" -workers "$WORKERS" ${LIVE_ARGS:-}
  load "live"
  log "queue: test/queuebench"
  "$GO" test -run '^$' -bench '^(BenchmarkRedisQueue|BenchmarkEmbeddedQueue)$' -benchtime 3000x -count 3 \
    ./test/queuebench/ >"$RESULTS/queue.txt"
  load "queue"
else
  note="LIVE=0: the end-to-end, API, cold-start, memory and queue parts were skipped."
fi

"$RESULTS/benchtool" report -dir "$RESULTS" -out "$OUT" -benchtime "$BENCHTIME" -seconds $((SECONDS - start)) \
  -commit "$(git describe --always --dirty 2>/dev/null || echo unknown)" -note "$note"
log "wrote $OUT.md and $OUT.json"

# Serving under pressure (test/bench/pressure.go): uploads, a Redis outage, a killed worker, bytes per
# image, 1,000 watchers, the reference-shape model's cold start, scoring cost; its own section of $OUT.md.
if [ "$LIVE" = 1 ] && [ "${PRESSURE:-1}" = 1 ]; then
  log "pressure: uploads, Redis outage, worker kill, bytes per image, watchers, cold reference, scoring"
  ref="$RESULTS/reference"
  (cd training && "$PYTHON" -m fgtrain attngan --export-reference "$ref/attngan-reference" --no-verify) \
    >>"$RESULTS/reference.log" 2>&1 || log "no reference-shape export (see reference.log): its cold start is skipped"
  "$RESULTS/benchtool" pressure -dir "$RESULTS" -studio "$RESULTS/studio" -models "$MODELS" -ort-lib "$ORT_LIB_PATH" \
    -generator-test "$RESULTS/generator.test" -reference "$ref" -out "$OUT"
  load "pressure"
  log "added the pressure section to $OUT.md and $OUT.json"
fi
