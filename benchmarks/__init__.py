"""Benchmarks of the pipeline's speed choices: `python -m benchmarks` (see benchmarks/README.md)."""
