"""A reproducible, experiment-tracked MNIST pipeline.

Stages (each a module with a `main`): data -> train -> evaluate.
Heavy libraries (torch, Lightning, MLflow) are imported inside functions so
that `--help` and configuration errors answer at once.
"""
