#!/usr/bin/env bash
# centaur vs fastai on data/emoji, side by side, one run after the other (never in parallel:
# each side needs the whole CPU). Run from the repository root by `make bench`.
#
# Writes bench/out/{machine,fastai_emoji_white,centaur_emoji,centaur_emoji_scratch}.json,
# then bench/report.py prints the markdown tables and writes docs/benchmarks.md.
# Settings can be overridden from the environment, e.g. `THREADS=4 make bench`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DATA="${DATA:-data/emoji}"
SIZE="${SIZE:-128}"
BS="${BS:-32}"
THREADS="${THREADS:-2}"
EPOCHS="${EPOCHS:-3}"
SEED="${SEED:-42}"
OUT="${OUT:-bench/out}"
PY=.venv/bin/python
BPY=.bench-venv/bin/python
VALID="$OUT/valid_emoji_seed${SEED}.txt"
COMMON=(--size "$SIZE" --bs "$BS" --threads "$THREADS" --epochs "$EPOCHS" --seed "$SEED")

mkdir -p "$OUT"
log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }

log "fastai venv"
bash bench/setup_fastai.sh

if [[ ! -s "$VALID" ]]; then
  log "writing the validation list $VALID"
  "$BPY" bench/fastai_side.py --data "$DATA" --write-valid-list "$VALID" --seed "$SEED"
fi

log "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (threads $THREADS; figures are noisy above $THREADS.5)"

log "machine: matmul GFLOP/s, model FLOPs"
"$PY" bench/machine.py --threads "$THREADS" --size "$SIZE" --out "$OUT/machine.json" >/dev/null

log "fastai (transparent pixels on white, as centaur does)"
"$BPY" bench/fastai_side.py --data "$DATA" --valid-list "$VALID" "${COMMON[@]}" --alpha white \
  --out "$OUT/fastai_emoji_white.json" >/dev/null

log "centaur"
"$PY" bench/centaur_side.py --data "$DATA" --valid-list "$VALID" "${COMMON[@]}" \
  --out "$OUT/centaur_emoji.json" >/dev/null

log "centaur from scratch (random weights, same split, fine_tune phase only)"
"$PY" bench/centaur_side.py --data "$DATA" --valid-list "$VALID" "${COMMON[@]}" --scratch --phases finetune \
  --out "$OUT/centaur_emoji_scratch.json" >/dev/null

log "report"
"$PY" bench/report.py --out-dir "$OUT" --md docs/benchmarks.md

log "serving: load test of centaur serve on loopback (SOAK=${SOAK:-300} s soak)"
"$PY" bench/serve_load.py --model models/emoji --threads "$THREADS" --seconds "${SERVE_SECONDS:-20}" \
  --soak "${SOAK:-300}" --out "$OUT/serve.json" --md docs/benchmarks_serve.md >/dev/null

log "distributed: training on 1 vs 2 processes, batch prediction with 1 vs 2 workers"
"$PY" bench/distributed_scaling.py --data "$DATA" --size "$SIZE" --bs "$BS" --out "$OUT/distributed.json" \
  --md docs/benchmarks_distributed.md >/dev/null

log "labeling workbench: embedding, layouts, find similar, training, the page with 50,000 images"
"$PY" bench/label_bench.py --threads "$THREADS" --out "$OUT/label.json" --md docs/benchmarks_label.md >/dev/null
