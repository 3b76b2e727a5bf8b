"""MNIST: sources, IDX files, checksums, uint8 tensors on disk."""
