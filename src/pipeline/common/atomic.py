"""Write-then-rename: a file a later stage reads is either the old one or the new one, whole.

A crash, a kill or a full disk in the middle of a write leaves only a hidden
temporary file, which is removed; `os.replace` within one folder is atomic.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FULL_DISK = (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix, so writers that infer the format work);
    when the block succeeds, it is flushed to disk and renamed over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())  # the data is on disk before the name points at it
        os.replace(tmp, path)
    except OSError as err:
        if err.errno in FULL_DISK and not err.filename:
            raise OSError(err.errno, os.strerror(err.errno), str(path)) from err
        raise
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> Path:
    with replacing(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | Path, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2) + "\n")


def full_disk_error(err: BaseException | None) -> OSError | None:
    """The "no space left" error behind `err` (libraries often wrap it), if any."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in FULL_DISK:
            return err
        err = err.__cause__ or err.__context__
    return None


def full_disk_message(err: OSError, fallback: str | Path) -> str:
    """Says that the disk is full, where, how much is free, and what to do."""
    where = Path(err.filename or fallback)
    folder = next((p for p in [where, *where.parents] if p.exists()), Path("."))
    try:
        free = f"{shutil.disk_usage(folder).free / 2**20:.1f} MiB free"
    except OSError:
        free = "free space unknown"
    return (
        f"the disk is full: writing {where} failed ({free} on the file system holding {folder}). "
        f"Free some space there and run the same command again"
    )
