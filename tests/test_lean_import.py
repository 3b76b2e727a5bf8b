"""Lightning imported with scipy and torchvision hidden from torchmetrics: neither loads, and every
availability check afterwards answers from the packages as installed."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
from pipeline.stages.lean_import import UNUSED_BY_TRAINING, packages_hidden_while_importing
from lightning_utilities.core import imports as lu
real_find = lu.find_spec
with packages_hidden_while_importing(*UNUSED_BY_TRAINING):
    import lightning
    from torchmetrics import MeanMetric
print(sorted(m for m in ("scipy.signal", "torchvision") if m in sys.modules))
from torchmetrics.utilities import imports as tm
from lightning.pytorch.utilities.imports import _TORCHVISION_AVAILABLE
print(bool(tm._TORCHVISION_AVAILABLE), bool(_TORCHVISION_AVAILABLE), lu.package_available("scipy"),
      lu.module_available("torchvision"), bool(lu.RequirementCache("torchvision")), lu.find_spec is real_find)
"""


def test_lightning_imports_without_them_and_later_checks_see_them():
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded, afterwards = done.stdout.strip().splitlines()[-2:]
    assert loaded == "[]"  # neither was imported
    assert afterwards == "True True True True True True"  # every check after the block tells the truth


def test_a_second_block_changes_nothing():
    import torchmetrics  # noqa: F401  (imported: the block has nothing left to spare)
    from lightning_utilities.core import imports as lu

    from pipeline.stages.lean_import import packages_hidden_while_importing

    real = lu.find_spec
    with packages_hidden_while_importing("scipy"):
        assert lu.find_spec is real and lu.package_available("scipy")
