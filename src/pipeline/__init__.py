"""A reproducible, experiment-tracked MNIST pipeline.

One package per concern, listed bottom up (docs/architecture.md): common, nn and data,
robustness, config, tracking, training, claims, stages. The stages (pipeline.stages, each
a module with a `main`): data -> train -> evaluate -> robustness -> report.
Heavy libraries (torch, Lightning, MLflow) are imported inside functions so
that `--help` and configuration errors answer at once.
"""
