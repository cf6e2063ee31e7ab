"""Atomic outputs: write to a temporary name beside the target, then rename.

A crash, a ``KeyboardInterrupt`` or an exception inside the ``with`` block never leaves a half-written file
or directory under the final name; the temporary is removed. ``os.replace`` is atomic on POSIX when both
names are on the same file system, which is why the temporary lives in the target's own directory.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _temporary_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")


def check_writable(target: str | os.PathLike) -> Path:
    """Create the parent of ``target`` and check that it is writable; raise ``PermissionError`` naming it."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PermissionError(f"cannot create output directory {target.parent}: {err}") from err
    if not os.access(target.parent, os.W_OK):
        raise PermissionError(f"output directory {target.parent} is not writable")
    return target


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path; on success it is renamed to ``target``, on failure removed.

    >>> with atomic_path("out.npz") as tmp:      # doctest: +SKIP
    ...     np.savez(tmp, x=x)
    """
    target = check_writable(target)
    tmp = _temporary_name(target)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces ``target`` (an old one is removed), else deleted."""
    target = check_writable(target)
    tmp = _temporary_name(target)
    tmp.mkdir()
    try:
        yield tmp
        if target.exists():
            old = _temporary_name(target)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(target: str | os.PathLike, text: str) -> Path:
    """Atomically write ``text`` to ``target``."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    return Path(target)


def write_json(target: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON (numpy scalars and paths converted)."""
    return write_text(target, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")
