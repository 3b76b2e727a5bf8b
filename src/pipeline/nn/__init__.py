"""Plain torch: nn.Modules, the builders that make them from config, tensors in and out."""
