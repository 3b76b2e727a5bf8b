"""Lightning glue: the LightningModule, the datamodule, callbacks, checkpoints."""
