"""Hydra configuration: composing conf/, loading params.yaml, checking values."""
