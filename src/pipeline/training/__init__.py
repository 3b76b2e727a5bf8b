"""Lightning glue: the LightningModule, the datamodule, callbacks, checkpoint I/O, resuming.

May import: every package below it (common, nn, data, robustness, config, tracking) and Lightning.
"""
