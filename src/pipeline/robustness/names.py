"""The names of the attacks, MNIST-C corruptions and severity shifts, defined once.

Torch-free, so that config validation checks a name without loading torch; the
registries in attacks.py, corruptions.py and shifts.py are built from these lists. The
severity grids the stage sweeps live in conf/robustness/ (full.yaml, quick.yaml).
"""

from __future__ import annotations

ATTACKS = ("fgsm", "pgd")
# In MNIST-C's order (Mu & Gilmer 2019); the full profile runs all 15.
CORRUPTIONS = (
    "shot_noise",
    "impulse_noise",
    "glass_blur",
    "motion_blur",
    "shear",
    "scale",
    "rotate",
    "brightness",
    "translate",
    "stripe",
    "fog",
    "spatter",
    "dotted_line",
    "zigzag",
    "canny_edges",
)
SEVERITY_SHIFTS = ("rotate", "gaussian_noise", "gaussian_blur", "contrast", "translate")
