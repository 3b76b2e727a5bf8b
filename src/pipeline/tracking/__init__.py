"""The only door to MLflow: the store, runs (one Run API), run.json, sweeps' parent runs, model
I/O and the registry's champion.

May import: pipeline.common, nn, data, robustness and config; the only package that imports mlflow.
"""
