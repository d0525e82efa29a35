#!/usr/bin/env bash
# D-GEX configurations trained for the same wall-clock budget as the default E-GEX run, on the default
# synthetic data, then one report. Usage: scripts/dgex_budget.sh [BUDGET (DD:HH:MM:SS)] [overrides...]
# Results: outputs/dgex_budget/<time>/report.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
budget=${1:-00:00:01:30}
shift || true
out=outputs/dgex_budget/$(date +%Y-%m-%d_%H-%M-%S)

run() {  # run NAME OVERRIDES...
  local name=$1; shift
  "$PY" -m src.train logger=csv method="$name" hydra.run.dir="$out/$name" "$@"
}
for widths in "[3000]" "[3000,3000]" "[3000,3000,3000]" "[6000,6000]"; do
  depth=$(echo "$widths" | tr -cd ',' | wc -c); depth=$((depth + 1))
  width=$(echo "$widths" | tr -d '[]' | cut -d, -f1)
  run "dgex_${depth}x${width}" model=dgex "model.widths=$widths" trainer.max_time="$budget" trainer.max_epochs=200 "$@"
done
run dgex_3x3000_unsplit model=dgex model.n_splits=1 trainer.max_time="$budget" trainer.max_epochs=200 "$@"
run egex model=egex "$@"
run lr model=lr "$@"
"$PY" -m src.report "$out"
