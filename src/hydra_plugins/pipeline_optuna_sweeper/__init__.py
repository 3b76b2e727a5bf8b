"""Optuna (>= 4) sweeper for Hydra with a persistent, shared study (`hydra/sweeper=optuna_study`)."""
