"""Errors of writing outputs: a full disk named as such, with the file that could not be written.

>>> with disk_full_guard("data/processed/qg"):   # doctest: +SKIP
...     write_everything()

turns an ``OSError`` with ``errno.ENOSPC`` (or ``EDQUOT``) raised inside the block into :class:`DiskFullError`
naming the output and saying that the disk is full, also when a library raised another error while handling it
(pyarrow's ``RuntimeError: file metadata is only available after writer close``, torch's ``unexpected pos``);
other errors pass unchanged.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["DiskFullError", "disk_full_guard", "is_disk_full"]

_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


class DiskFullError(OSError):
    """No space left on the device (or quota exceeded) while writing an output."""


def is_disk_full(err: BaseException) -> bool:
    """True when ``err`` (or an error it was raised from) is an ``OSError`` for a full disk or quota."""
    seen = 0
    while err is not None and seen < 8:
        if isinstance(err, OSError) and err.errno in _FULL:
            return True
        if isinstance(err, OSError) and "no space left" in str(err).lower():
            return True
        err, seen = err.__cause__ or err.__context__, seen + 1
    return False


@contextmanager
def disk_full_guard(target: str | os.PathLike) -> Iterator[None]:
    """Re-raise a full-disk ``OSError`` of the block (or an error raised while handling one) as
    :class:`DiskFullError` naming ``target``."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as err:
        if not is_disk_full(err):
            raise
        raise DiskFullError(
            errno.ENOSPC,
            f"{os.fspath(target)}: the disk is full (no space left on device) while writing; nothing was kept, "
            f"free some space and run again ({err})",
        ) from err
