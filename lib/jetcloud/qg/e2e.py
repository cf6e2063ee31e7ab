"""The E2E quark/gluon HDF5 file: layout, a streaming atomic writer, a reader and a layout check.

The layout is that of ``Quark_Gluon.h5`` of the E2E project (docs/e2e-format.md), so notebooks 07+ read
a simulated file and the real one the same way:

==============  ==========================  =========  ====================================================
key             shape                       dtype      content
==============  ==========================  =========  ====================================================
``train_jet``   (N_train, 125, 125, 3)      float32    images, HWC: axis 1 = eta (rows), axis 2 = phi
                                                       (columns); channels (track pT, ECAL, HCAL) in GeV
``train_meta``  (N_train, 3)                float32    columns (pt, m0, label): jet pT and mass in GeV,
                                                       label quark (u, d, s) = 1, gluon = 0
``test_jet``    (N_test, 125, 125, 3)       float32    as train_jet
``test_meta``   (N_test, 3)                 float32    as train_meta
==============  ==========================  =========  ====================================================

Storage: images in chunks of one jet (1, 125, 125, 3) and meta in chunks of up to 4096 rows, gzip (level 4)
with the shuffle filter; no attributes and no other keys (provenance goes to the manifest beside the file).
:class:`E2EWriter` streams blocks of jets into a temporary file beside the target and renames it only when
every row has been written, so a failure never leaves a partial file under the final name.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from jetcloud.io.atomic import atomic_path, check_writable

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
KEYS = ("train_jet", "train_meta", "test_jet", "test_meta")
META_COLUMNS = ("pt", "m0", "label")
IMAGE_SHAPE = (125, 125, 3)
CHANNELS = ("track_pt", "ecal_energy", "hcal_energy")
META_CHUNK_ROWS = 4096


def check_output(path: str | os.PathLike, overwrite: bool) -> Path:
    """Raise before any work if ``path`` exists (and not ``overwrite``) or its directory is not writable."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"output {path} is a directory, expected a file name")
    if path.exists() and not overwrite:
        raise FileExistsError(f"output {path} exists; pass overwrite=True (notebook parameter overwrite) to replace it")
    return check_writable(path)


class E2EWriter:
    """Write an E2E file block by block (bounded memory), atomically.

    >>> with E2EWriter("quark_gluon.h5", n_train=900, n_test=100) as w:   # doctest: +SKIP
    ...     w.append("train", images, meta)     # (n, 125, 125, 3) float32, (n, 3) [pt, m0, label]

    Rows are appended in order; on leaving the ``with`` block every split must be full, else ``ValueError``
    and no file is left behind.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        n_train: int,
        n_test: int,
        *,
        overwrite: bool = False,
        compression: str | None = "gzip",
        compression_opts: int | None = 4,
    ) -> None:
        if n_train < 0 or n_test < 0:
            raise ValueError(f"n_train and n_test must be >= 0, got {n_train}, {n_test}")
        self.path = check_output(path, overwrite)
        self.sizes = {"train": int(n_train), "test": int(n_test)}
        self.filled = {"train": 0, "test": 0}
        self._compression = (compression, compression_opts if compression == "gzip" else None)
        self._atomic = None
        self._file = None

    def __enter__(self) -> E2EWriter:
        import h5py

        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        try:
            self._file = h5py.File(tmp, "w", track_order=False)
            comp, level = self._compression
            for split, n in self.sizes.items():
                self._file.create_dataset(
                    f"{split}_jet",
                    shape=(n, *IMAGE_SHAPE),
                    dtype="float32",
                    chunks=(1, *IMAGE_SHAPE) if n else None,
                    compression=comp if n else None,
                    compression_opts=level if n else None,
                    shuffle=bool(comp and n),
                    track_times=False,
                )
                self._file.create_dataset(
                    f"{split}_meta",
                    shape=(n, len(META_COLUMNS)),
                    dtype="float32",
                    chunks=(min(n, META_CHUNK_ROWS), len(META_COLUMNS)) if n else None,
                    compression=comp if n else None,
                    compression_opts=level if n else None,
                    shuffle=bool(comp and n),
                    track_times=False,
                )
        except BaseException:
            self._abort()
            raise
        return self

    def append(self, split: str, images: np.ndarray, meta: np.ndarray) -> None:
        """Append ``images`` (n, 125, 125, 3) and ``meta`` (n, 3) = (pt, m0, label) to ``split``."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        images = np.asarray(images, dtype=np.float32)
        meta = np.asarray(meta, dtype=np.float32)
        n = len(images)
        if images.shape[1:] != IMAGE_SHAPE or meta.shape != (n, len(META_COLUMNS)):
            raise ValueError(f"expected images (n, 125, 125, 3) and meta (n, 3), got {images.shape} and {meta.shape}")
        start = self.filled[split]
        if start + n > self.sizes[split]:
            raise ValueError(f"{split}: {start + n} rows exceed the declared {self.sizes[split]}")
        if n:
            self._file[f"{split}_jet"][start : start + n] = images
            self._file[f"{split}_meta"][start : start + n] = meta
        self.filled[split] = start + n

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self._abort(exc)
            return  # the exception propagates
        if self.filled != self.sizes:
            self._abort()
            raise ValueError(f"{self.path}: wrote {self.filled} rows, declared {self.sizes}; file discarded")
        self._file.close()
        self._file = None
        self._atomic.__exit__(None, None, None)  # rename into place
        self._atomic = None
        log.info("wrote %s (%d train, %d test jets)", self.path, self.sizes["train"], self.sizes["test"])

    def _abort(self, exc: BaseException | None = None) -> None:
        """Close and delete the temporary file (nothing appears under the final name)."""
        if self._file is not None:
            try:
                self._file.close()
            except Exception:  # noqa: BLE001 - the original error is the one to report
                log.debug("closing the aborted HDF5 file failed", exc_info=True)
            self._file = None
        if self._atomic is not None:
            error = exc if exc is not None else RuntimeError("aborted")
            try:
                self._atomic.__exit__(type(error), error, error.__traceback__)  # removes the temporary
            except BaseException:  # noqa: BLE001 - re-raised by the caller
                pass
            self._atomic = None


def open_h5(path: str | os.PathLike) -> Any:
    """``h5py.File(path, "r")``; a missing, truncated or non-HDF5 file raises an error naming ``path``."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"HDF5 file {path} does not exist")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise OSError(f"{path}: cannot open as HDF5 (truncated, empty or not an HDF5 file; rewrite it): {err}") from err


def check_layout(path: str | os.PathLike) -> dict[str, int]:
    """Check that ``path`` has the E2E layout; returns ``{"train": N_train, "test": N_test}``.

    Raises ``FileNotFoundError`` or ``ValueError`` naming the file, the key and what was expected.
    """

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"E2E file {path} does not exist")
    sizes = {}
    with open_h5(path) as f:
        missing = [k for k in KEYS if k not in f]
        if missing:
            raise ValueError(f"{path}: missing keys {missing}; an E2E file has {list(KEYS)}")
        for split in SPLITS:
            jet, meta = f[f"{split}_jet"], f[f"{split}_meta"]
            if jet.ndim != 4 or jet.shape[1:] != IMAGE_SHAPE:
                raise ValueError(f"{path}: {split}_jet has shape {jet.shape}, expected (N, 125, 125, 3)")
            if meta.ndim != 2 or meta.shape[0] != jet.shape[0] or meta.shape[1] < len(META_COLUMNS):
                raise ValueError(
                    f"{path}: {split}_meta has shape {meta.shape}, expected ({jet.shape[0]}, >= 3) with columns "
                    f"(pt, m0, label)"
                )
            for key, ds in ((f"{split}_jet", jet), (f"{split}_meta", meta)):
                if ds.dtype.kind != "f":
                    raise ValueError(f"{path}: {key} has dtype {ds.dtype}, expected floating point (float32)")
            sizes[split] = int(jet.shape[0])
    return sizes


def read_e2e(
    path: str | os.PathLike, split: str = "train", start: int = 0, stop: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 125, 125, 3) and meta (n, 3) of jets ``start..stop-1`` of ``split`` (float32)."""

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    with open_h5(path) as f:
        missing = [k for k in (f"{split}_jet", f"{split}_meta") if k not in f]
        if missing:
            raise KeyError(f"{path}: missing key(s) {missing}; an E2E file has {list(KEYS)}")
        jet, meta = f[f"{split}_jet"], f[f"{split}_meta"]
        stop = jet.shape[0] if stop is None else min(stop, jet.shape[0])
        try:
            return np.asarray(jet[start:stop], np.float32), np.asarray(meta[start:stop], np.float32)
        except OSError as err:
            raise OSError(
                f"{path}: cannot read {split}_jet / {split}_meta[{start}:{stop}] (truncated?): {err}"
            ) from err


def iter_e2e(path: str | os.PathLike, split: str = "train", block: int = 512):
    """Yield ``(images, meta)`` blocks of ``block`` jets of ``split`` (bounded memory)."""
    with open_h5(path) as f:
        n = f[f"{split}_jet"].shape[0]
        for start in range(0, n, block):
            yield (
                np.asarray(f[f"{split}_jet"][start : start + block], np.float32),
                np.asarray(f[f"{split}_meta"][start : start + block], np.float32),
            )
