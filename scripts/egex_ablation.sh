#!/usr/bin/env bash
# E-GEX ablation on the default synthetic data: the default recipe, then one change at a time, each
# trained with the same epochs, then one report. Usage: scripts/egex_ablation.sh [extra overrides...]
# Results: outputs/ablation/<time>/report.md (about 15 minutes on a 2-core CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
out=outputs/ablation/$(date +%Y-%m-%d_%H-%M-%S)

variant() {  # variant NAME OVERRIDES...
  local name=$1; shift
  "$PY" -m src.train model=egex logger=csv method="egex_$name" hydra.run.dir="$out/$name" "$@" "${EXTRA[@]}"
}
EXTRA=("$@")

variant default
variant no_pretraining "model.stages={autoencoder:0,latent:0,finetune:1}"
variant no_latent_stage "model.stages={autoencoder:0.3,latent:0,finetune:0.7}"
variant no_finetune "model.stages={autoencoder:0.5,latent:0.5,finetune:0}"
variant layernorm model.norm=layer
variant dropout0.1 model.dropout=0.1
variant gelu model.activation=gelu
variant denoising model.input_noise=0.3
variant latent64 model.latent=64
variant latent256 model.latent=256
"$PY" -m src.train model=lr logger=csv method=lr hydra.run.dir="$out/lr" "${EXTRA[@]}"
"$PY" -m src.report "$out"
