"""Hydra configuration: composing conf/, loading params.yaml, checking values and overrides,
which runs register their model.

May import: pipeline.common, nn, data and robustness (its names); Hydra and OmegaConf; never torch.
"""
