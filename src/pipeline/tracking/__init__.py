"""The only door to MLflow: the store, runs, model I/O and the registry."""
