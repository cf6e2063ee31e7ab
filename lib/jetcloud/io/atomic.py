"""Atomic outputs: write to a temporary name beside the target, then rename.

A crash, a ``KeyboardInterrupt`` or an exception inside the ``with`` block never leaves a half-written file
or directory under the final name; the temporary is removed. ``os.replace`` is atomic on POSIX when both
names are on the same file system, which is why the temporary lives in the target's own directory.

**Owned output directories.** :func:`atomic_dir` replaces a directory only when it is empty or holds a previous
output of the same stage, recognised by the marker file :data:`OUTPUT_MARKER` that every ``atomic_dir`` output
carries (``{"stage": ...}``). Anything else (a user's files, another stage's output) is refused with an error
naming the directory and nothing is deleted. Temporary names are ``.<name>.tmp-<pid>-<random>``: a later call
for the same target removes the debris of killed runs (temporaries whose process is gone), never a live run's.
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

#: Marker file of an :func:`atomic_dir` output: JSON ``{"stage": <stage>}``.
OUTPUT_MARKER = ".jetcloud-output.json"


class NotOwnedError(FileExistsError):
    """An output directory holds files that are not a previous output of the same stage (nothing was deleted)."""


def _temporary_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_debris(target: str | os.PathLike) -> list[Path]:
    """Remove the temporaries of ``target`` left by killed runs (their process is gone); return what was removed.

    Only names of the form ``.<name>.tmp-<pid>-<random>`` beside ``target`` are considered, and only those whose
    ``pid`` is not a running process, so a live run's temporary is never touched.
    """
    target = Path(target)
    removed = []
    if not target.parent.is_dir():
        return removed
    for path in target.parent.glob(f".{target.name}.tmp-*"):
        pid = path.name[len(f".{target.name}.tmp-") :].split("-", 1)[0]
        if not pid.isdigit() or _pid_alive(int(pid)):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def check_owned(target: str | os.PathLike, stage: str) -> None:
    """Raise :class:`NotOwnedError` unless ``target`` is absent, empty, or a previous output of ``stage``."""
    target = Path(target)
    if not target.exists():
        return
    if not target.is_dir():
        raise NotOwnedError(f"output location {target} is a file, not a directory; nothing was changed")
    entries = sorted(p.name for p in target.iterdir())
    if not entries:
        return
    owner = _read_stage(target / OUTPUT_MARKER)
    if owner is None and _is_legacy_output(target / "manifest.json"):
        return  # written by a jetcloud stage before the marker existed
    if owner != stage:
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        what = f"the output of stage {owner!r}" if owner else f"files that are not an output of {stage!r} ({shown})"
        raise NotOwnedError(
            f"output directory {target} holds {what}; it is replaced only when empty or holding a previous output "
            f"of the same stage. Choose another output directory (nothing was deleted)."
        )


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


def _read_stage(marker: Path) -> str | None:
    try:
        return json.loads(marker.read_text()).get("stage")
    except (OSError, ValueError, AttributeError):
        return None


def _is_legacy_output(manifest: Path) -> bool:
    """A jetcloud run manifest (``jetcloud.io.manifest``) without an output marker."""
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"created_utc", "git"} <= set(data)


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
def atomic_dir(target: str | os.PathLike, stage: str) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces ``target``, on failure it is deleted.

    ``target`` must be absent, empty, or a previous output of ``stage`` (:func:`check_owned`, checked before any
    work and again before the swap); the output gets the marker :data:`OUTPUT_MARKER`. Debris of killed runs of
    the same target is removed first (:func:`remove_debris`).
    """
    target = check_writable(target)
    check_owned(target, stage)
    remove_debris(target)
    tmp = _temporary_name(target)
    tmp.mkdir()
    try:
        yield tmp
        (tmp / OUTPUT_MARKER).write_text(json.dumps({"stage": stage}) + "\n")
        check_owned(target, stage)
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
