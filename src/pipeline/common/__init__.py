"""Shared plumbing: atomic writes, figures, metric names. Imports nothing else of the project."""
