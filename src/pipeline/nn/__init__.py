"""Plain torch: the networks (nn.Modules), the builders that make them and their optimisers from
config, the model files a registered version holds, metrics on tensors.

May import: pipeline.common and pipeline.data; no framework (Lightning, MLflow, Hydra, OmegaConf).
"""
