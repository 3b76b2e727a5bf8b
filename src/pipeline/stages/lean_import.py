"""Importing Lightning without the optional packages training never uses.

Lightning imports torchmetrics, and torchmetrics imports what it finds installed: `scipy.signal`
in its package `__init__` (only to add an alias another library expects) and torchvision with its
model zoo for one image metric. This project computes neither kind of metric, yet a training command
paid for both at start-up: `import lightning` took 4.4 s against 3.4 s without them (2-core CPU).

`packages_hidden_while_importing("scipy", "torchvision")` makes lightning_utilities' availability
checks, by which torchmetrics and Lightning choose their optional imports, answer "not installed"
for those packages while the block runs, and afterwards forgets every answer given during it: a
later check (an image metric someone does compute) sees the packages as they are. `import` itself is
never touched: code that imports scipy or torchvision gets them. Where lightning_utilities has
changed shape, or torchmetrics is imported already, the block runs as usual.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError
from typing import Any

UNUSED_BY_TRAINING = ("scipy", "torchvision")


@contextlib.contextmanager
def packages_hidden_while_importing(*packages: str) -> Iterator[None]:
    """lightning_utilities answers "not installed" for `packages` inside the block, truthfully after it."""
    try:
        from lightning_utilities.core import imports as lu

        real_find, real_version = lu.find_spec, lu._version
        real_check = lu.RequirementCache._check_available
        caches = (lu.package_available.cache_clear, lu.module_available.cache_clear)
    except (ImportError, AttributeError):
        yield
        return
    if "torchmetrics" in sys.modules:  # its optional imports are done: nothing left to spare
        yield
        return
    hidden = set(packages)
    answered: list[Any] = []

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name.partition(".")[0] in hidden else real_find(name, *args, **kwargs)

    def version(distribution_name: str) -> str:
        if distribution_name in hidden:
            raise PackageNotFoundError(distribution_name)
        return real_version(distribution_name)

    def check_available(cache: lu.RequirementCache) -> None:
        answered.append(cache)
        real_check(cache)

    lu.find_spec, lu._version = find_spec, version
    lu.RequirementCache._check_available = check_available  # type: ignore[method-assign,assignment]  # undone below
    try:
        yield
    finally:
        lu.find_spec, lu._version = real_find, real_version
        lu.RequirementCache._check_available = real_check  # type: ignore[method-assign]
        for clear in caches:  # both remember their answers
            clear()
        for cache in answered:  # asked again later, each answers from the packages as installed
            cache.__dict__.pop("available", None)
            cache.__dict__.pop("message", None)
