#!/usr/bin/env bash
# Run every claim preset (one Hydra sweep each, logged to MLflow and collected into
# reports/results/), then render the report. About 3 hours on a 2-core CPU.
#   bash scripts/reproduce-claims.sh                    # all presets
#   bash scripts/reproduce-claims.sh claim_mlp claim_linear   # some of them
# Extra Hydra overrides for every preset go in $OVERRIDES (e.g. OVERRIDES="trainer=gpu").
set -euo pipefail
cd "$(dirname "$0")/.."
presets=("$@")
if [ ${#presets[@]} -eq 0 ]; then
  presets=(claim_mlp claim_linear claim_activations claim_scaling claim_samples_mlp claim_mechanics claim_baselines
    claim_depth claim_techniques claim_composition optuna_mlp claim_cnn claim_samples_cnn claim_perturbation)
fi
# claim_perturbation measures the registered MLP, CNN and robust model: train and register any missing.
# shellcheck disable=SC2086
register_missing() {
  python -m pipeline.stages.registry mnist-mlp >/dev/null 2>&1 || python -m pipeline.stages.train tracking.register=true ${OVERRIDES:-}
  python -m pipeline.stages.registry mnist-cnn >/dev/null 2>&1 || python -m pipeline.stages.train experiment=cnn tracking.register=true ${OVERRIDES:-}
  python -m pipeline.stages.registry mnist-robust >/dev/null 2>&1 || python -m pipeline.stages.train +experiment=robust_pgd tracking.register=true ${OVERRIDES:-}
}
for preset in "${presets[@]}"; do
  module=pipeline.stages.train
  [ "$preset" = claim_baselines ] && module=pipeline.stages.baselines  # scikit-learn's classifiers
  [ "$preset" = claim_depth ] && module=pipeline.stages.depth  # small fits and region counts, not one classifier
  [ "$preset" = claim_composition ] && module=pipeline.stages.composition  # digit pairs, two models per split
  if [ "$preset" = claim_perturbation ]; then  # trained models' smallest adversarial changes
    module=pipeline.stages.perturbation
    register_missing
  fi
  echo "=== $preset: python -m $module experiment=$preset ${OVERRIDES:-}"
  # shellcheck disable=SC2086
  python -m "$module" "experiment=$preset" ${OVERRIDES:-}
done
dvc repro report
