"""MNIST: its sources, the IDX format, the official checksums, uint8 tensors on disk.

May import: pipeline.common and pipeline.nn; no framework (Lightning, MLflow, Hydra, OmegaConf).
"""
