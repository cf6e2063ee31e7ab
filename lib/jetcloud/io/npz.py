"""Memory maps of the members of uncompressed ``.npz`` files (``np.savez``), with clear errors.

``np.load`` cannot memory-map a member of an ``.npz``; :func:`npz_memmap` does it for *uncompressed* archives:
the zip central directory gives each member's local-header offset, the local header its name and extra-field
lengths, the ``.npy`` header the dtype, shape and order, and the array is an ``np.memmap`` at the offset that
follows. A compressed member (``np.savez_compressed``) cannot be mapped: an error, or with
``compressed="load"`` an ordinary in-memory array. Used by the point-cloud stage (:mod:`jetcloud.atlas.pointcloud`)
and the training data (:mod:`jetcloud.train.data`).
"""

from __future__ import annotations

import os
import struct
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PointCloudFormatError", "npz_memmap"]

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # zip local file header, 30 bytes
_LOCAL_SIGNATURE = b"PK\x03\x04"


class PointCloudFormatError(ValueError):
    """A point-cloud file or its meta file does not have the expected keys, shapes or encoding."""


def _member_array(path: Path, handle: Any, info: zipfile.ZipInfo) -> np.ndarray:
    key = info.filename[: -len(".npy")]
    if info.compress_type != zipfile.ZIP_STORED:
        raise PointCloudFormatError(
            f"{path}: member {key!r} is compressed (zip method {info.compress_type}); memory-mapping needs an "
            f"uncompressed npz (np.savez, not np.savez_compressed): rebuild the point clouds without compression"
        )
    handle.seek(info.header_offset)
    raw = handle.read(_LOCAL_HEADER.size)
    if len(raw) != _LOCAL_HEADER.size or raw[:4] != _LOCAL_SIGNATURE:
        raise PointCloudFormatError(f"{path}: member {key!r}: no zip local header at offset {info.header_offset}")
    name_len, extra_len = _LOCAL_HEADER.unpack(raw)[-2:]
    data_start = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
    handle.seek(data_start)
    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise ValueError(f".npy format version {version} is not supported")
    except ValueError as err:
        raise PointCloudFormatError(f"{path}: member {key!r} is not a readable .npy array: {err}") from err
    if dtype.hasobject:
        raise PointCloudFormatError(f"{path}: member {key!r} holds Python objects (dtype {dtype}); not mappable")
    offset = handle.tell()
    n_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if offset - data_start + n_bytes != info.file_size:
        raise PointCloudFormatError(
            f"{path}: member {key!r} is truncated or inconsistent: header says {shape} {dtype} "
            f"({n_bytes} bytes) but the member holds {info.file_size - (offset - data_start)} bytes"
        )
    if n_bytes == 0:
        return np.zeros(shape, dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=shape, offset=offset, order="F" if fortran else "C")


def npz_memmap(
    path: str | os.PathLike, keys: Iterable[str] | None = None, *, compressed: str = "error"
) -> dict[str, np.ndarray]:
    """Read-only memory maps of the members of an uncompressed ``.npz`` file.

    ``keys`` selects members (all by default); a missing key is a :class:`PointCloudFormatError` naming the file
    and the keys it has; so is an object array or a truncated member, and a compressed member unless
    ``compressed="load"`` (then it is read into memory with ``allow_pickle=False``).
    """
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such point-cloud file: {path}") from None
    except zipfile.BadZipFile as err:
        raise PointCloudFormatError(f"{path}: not an npz (zip) file: {err}") from err
    with archive:
        members = {info.filename[: -len(".npy")]: info for info in archive.infolist() if info.filename.endswith(".npy")}
    wanted = list(members) if keys is None else list(keys)
    missing = [k for k in wanted if k not in members]
    if missing:
        raise PointCloudFormatError(f"{path}: missing key(s) {missing}; the file has {sorted(members)}")
    if compressed not in ("error", "load"):
        raise ValueError(f"compressed must be 'error' or 'load', got {compressed!r}")
    packed = [k for k in wanted if members[k].compress_type != zipfile.ZIP_STORED]
    out: dict[str, np.ndarray] = {}
    if packed and compressed == "load":
        with np.load(path, allow_pickle=False) as npz:
            out.update({k: npz[k] for k in packed})
    with open(path, "rb") as handle:
        out.update({k: _member_array(path, handle, members[k]) for k in wanted if k not in out})
    return {k: out[k] for k in wanted}
