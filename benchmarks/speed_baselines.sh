#!/usr/bin/env bash
# The speed checks of the four baselines in one go, for an idle machine (no sweep running):
# for each method, the authors' code per epoch (reference_epochs.py) and ours on the same data,
# stage lengths and mask (the bench_epochs.py command it prints, with --bare for the bare
# autoencoder floor), then DSIMVC's bi-level iteration against a plain step. One thread each, so
# both sides run alike.
#
#   REFCODE=/path/to/checkouts bash benchmarks/speed_baselines.sh [EPOCHS] > speed.log
#
# REFCODE holds one checkout per method, named gcfaggmvc, cvcl, proimp and dsimvc (the authors'
# repositories; see reference_epochs.py). Datasets and rates are those of the quality targets.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${REFCODE:?set REFCODE to the folder holding the authors checkouts (gcfaggmvc, cvcl, proimp, dsimvc)}"
EPOCHS=${1:-3}

compare() {
    local method=$1 dataset=$2
    shift 2
    echo "== $method on $dataset: the authors' code"
    local out
    out=$(python benchmarks/reference_epochs.py --method "$method" --reference-code "$REFCODE/$method" \
        --dataset "$dataset" --epochs "$EPOCHS" --threads 1 "$@")
    echo "$out"
    local ours
    ours=$(grep -o "python benchmarks/bench_epochs.py .*" <<<"$out" | tail -1)
    echo "== $method on $dataset: ours ($ours --bare)"
    $ours --bare
}

compare gcfaggmvc synthetic3d
compare cvcl msrcv1
compare proimp scene15 --missing-rate 0.5
compare dsimvc synthetic3d --missing-rate 0.5
echo "== dsimvc: one bi-level iteration against one plain step"
python benchmarks/quality_dsimvc.py --timing --threads 1
