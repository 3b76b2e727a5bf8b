"""Shared plumbing: atomic writes, figures (matplotlib, no display), the metric names runs carry,
the headline keys DVC tracks as metrics.

May import: nothing else of the project. The bottom layer (tests/test_layers.py).
"""
