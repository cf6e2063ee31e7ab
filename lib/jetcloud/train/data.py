"""Training data: the npz point-cloud chunks of notebook 02, memory-mapped, with no processing in the loader.

Layout (written by :mod:`jetcloud.atlas.pointcloud`)::

    <root>/point_cloud_meta.json          length L, features (names), n_features, labels, files per split, ...
    <root>/<split>/<part>.npz             feats [N, L, F] float32, frac_labels / tot_labels / tot_truth_e /
                                          focus_labels [N, L] float32 (-1 on track points and padding),
                                          per-sample scalars (eventNumber, trackID, track_pt, ...)

The chunks are memory-mapped with :func:`jetcloud.io.npz.npz_memmap` (uncompressed npz members; a compressed
member is a clear error).

The datasets return, per sample, a dict of tensors: ``inputs`` (the feature key), ``target`` (the label key),
``weight`` (optional) and any extra keys under their own names. Reading a batch is a fancy index into the
memory maps, grouped by file (``__getitems__``); nothing else happens in the loader (the warning of the
original author: keep processing in the preprocessing, not in the generator).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torch.utils.data._utils.collate import default_collate

from jetcloud.io.npz import PointCloudFormatError, npz_memmap

__all__ = [
    "META_NAME",
    "PointCloudFormatError",
    "npz_memmap",
    "load_meta",
    "meta_length_and_features",
    "feature_index",
    "model_inputs_from_meta",
    "split_files",
    "ArrayDataset",
    "PointCloudDataset",
    "collate_batch",
]

log = logging.getLogger(__name__)

META_NAME = "point_cloud_meta.json"


# --------------------------------------------------------------------------------------------------------------
# memory-mapped npz
# --------------------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------------------
# meta
# --------------------------------------------------------------------------------------------------------------


def load_meta(root: str | os.PathLike) -> dict[str, Any]:
    """``<root>/point_cloud_meta.json``; missing file -> ``FileNotFoundError``, missing length/features -> error."""
    path = Path(root) / META_NAME
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no {META_NAME} in {root}: a point-cloud directory needs it (written by notebook 02 / "
            f"jetcloud.atlas.pointcloud.build_atlas_point_clouds)"
        ) from None
    except json.JSONDecodeError as err:
        raise PointCloudFormatError(f"{path}: not valid JSON: {err}") from err
    if not isinstance(meta, dict):
        raise PointCloudFormatError(f"{path}: expected a JSON object")
    meta_length_and_features(meta, path)
    return meta


def meta_length_and_features(meta: Mapping[str, Any], where: object = META_NAME) -> tuple[int, int]:
    """``(length, n_features)`` of a meta dict; inconsistent or missing entries raise naming ``where``."""
    length = meta.get("length")
    n_features = meta.get("n_features")
    names = meta.get("features")
    if n_features is None and isinstance(names, list):
        n_features = len(names)
    if not isinstance(length, int) or isinstance(length, bool) or length < 1:
        raise PointCloudFormatError(f"{where}: 'length' must be a positive integer, got {length!r}")
    if not isinstance(n_features, int) or isinstance(n_features, bool) or n_features < 1:
        raise PointCloudFormatError(f"{where}: needs 'n_features' or a 'features' list, got {n_features!r}")
    if isinstance(names, list) and len(names) != n_features:
        raise PointCloudFormatError(f"{where}: 'features' lists {len(names)} names but 'n_features' is {n_features}")
    return length, n_features


def feature_index(meta: Mapping[str, Any], name: str) -> int:
    """Column of feature ``name`` (e.g. ``"energy"``, ``"type"``) in ``feats``, from the meta's feature names."""
    names = list(meta.get("features") or [])
    if name not in names:
        raise KeyError(f"no feature {name!r} in the point-cloud meta; features are {names}")
    return names.index(name)


def model_inputs_from_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Model constructor arguments that describe the input columns: ``in_features``, ``energy_index``,
    ``type_index`` and ``padding_type``, from the meta's feature names.

    The 6-feature layout marks padding with ``type == -1``; the one-hot layout (``is_padding`` column) with
    ``is_padding == 1``. ``get_model(name, **model_inputs_from_meta(meta), size_factor=...)``.
    """
    _, n_features = meta_length_and_features(meta)
    names = list(meta.get("features") or [])
    out: dict[str, Any] = {"in_features": n_features}
    if "energy" in names:
        out["energy_index"] = names.index("energy")
    if "is_padding" in names:
        out.update(type_index=names.index("is_padding"), padding_type=1.0)
    elif "type" in names:
        padding = (meta.get("point_types") or {}).get("padding", -1)
        out.update(type_index=names.index("type"), padding_type=float(padding))
    else:
        out["type_index"] = None
    return out


def split_files(root: str | os.PathLike, split: str, meta: Mapping[str, Any] | None = None) -> list[Path]:
    """The npz files of ``split``: the meta's ``files[split]`` list when present, else ``<root>/<split>/*.npz``."""
    root = Path(root)
    listed = (meta or {}).get("files", {})
    if isinstance(listed, Mapping) and split in listed:
        files = [root / name for name in listed[split]]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise FileNotFoundError(f"{root / META_NAME} lists files that do not exist: {missing}")
        return files
    directory = root / split
    if not directory.is_dir():
        raise FileNotFoundError(f"no split directory {directory} (and {META_NAME} lists no files for {split!r})")
    return sorted(directory.glob("*.npz"))


# --------------------------------------------------------------------------------------------------------------
# datasets
# --------------------------------------------------------------------------------------------------------------


def collate_batch(batch: Any) -> Any:
    """Collate for :class:`ArrayDataset`: a batch from ``__getitems__`` (a dict) passes, a list is stacked."""
    if isinstance(batch, Mapping):
        return dict(batch)
    return default_collate(batch)


def _validate_chunk(
    arrays: Mapping[str, np.ndarray],
    where: object,
    *,
    input_key: str,
    target_key: str | None,
    weight_key: str | None,
    extra_keys: Sequence[str],
    length: int | None = None,
    n_features: int | None = None,
) -> int:
    feats = arrays[input_key]
    if not np.issubdtype(feats.dtype, np.floating):
        raise PointCloudFormatError(f"{where}: key {input_key!r} has dtype {feats.dtype}; expected floating point")
    if length is not None and n_features is not None:
        if feats.ndim != 3 or feats.shape[1:] != (length, n_features):
            raise PointCloudFormatError(
                f"{where}: key {input_key!r} has shape {feats.shape}; expected [N, {length}, {n_features}] "
                f"(length and feature count of {META_NAME})"
            )
    elif feats.ndim < 2:
        raise PointCloudFormatError(f"{where}: key {input_key!r} has shape {feats.shape}; expected [N, ...]")
    n = feats.shape[0]
    if target_key is not None:
        target = arrays[target_key]
        if target.ndim < 1 or target.shape[0] != n:
            raise PointCloudFormatError(
                f"{where}: key {target_key!r} has shape {target.shape}; expected {n} samples like {input_key!r}"
            )
        if target.ndim >= 2 and feats.ndim == 3 and target.shape[1] != feats.shape[1]:
            raise PointCloudFormatError(
                f"{where}: key {target_key!r} has shape {target.shape}; per-point labels need "
                f"[{n}, {feats.shape[1]}] like {input_key!r} {feats.shape}"
            )
        if weight_key is not None and arrays[weight_key].shape != target.shape:
            raise PointCloudFormatError(
                f"{where}: key {weight_key!r} has shape {arrays[weight_key].shape}; expected {target.shape} "
                f"like {target_key!r}"
            )
    for key in extra_keys:
        if arrays[key].ndim < 1 or arrays[key].shape[0] != n:
            raise PointCloudFormatError(f"{where}: key {key!r} has shape {arrays[key].shape}; expected {n} samples")
    return n


def check_finite(values: np.ndarray, where: object, key: str, block: int = 4096) -> None:
    """Raise :class:`PointCloudFormatError` naming ``where``, ``key`` and the first sample with a NaN / inf value.

    Read in blocks of ``block`` samples, so a memory-mapped array is checked without loading it whole. A stored
    file cannot drop samples on the fly, so a non-finite value is an error (notebook 02 drops and counts them).
    """
    for start in range(0, len(values), block):
        part = np.asarray(values[start : start + block])
        if part.dtype.kind != "f":
            return
        bad = ~np.isfinite(part.reshape(len(part), -1)).all(axis=1)
        if bad.any():
            raise PointCloudFormatError(
                f"{where}: key {key!r}: sample {start + int(np.argmax(bad))} has NaN or infinite values "
                f"({int(bad.sum())} such sample(s) in rows {start}..{start + len(part) - 1}); rebuild the point "
                f"clouds (notebook 02 drops and counts them)"
            )


class ArrayDataset(Dataset):
    """Samples from one or more chunks of aligned arrays (the first axis is the sample).

    ``chunks`` is a list of dicts ``key -> array`` (numpy arrays or memory maps). Items are dicts of tensors:
    ``inputs`` = ``chunk[input_key]``, ``target`` = ``chunk[target_key]`` (omitted when None), ``weight`` =
    ``chunk[weight_key]`` when given, and each of ``extra_keys`` under its own name. Use
    :func:`collate_batch` (``dataset.collate_fn``) as the DataLoader's ``collate_fn``.
    """

    def __init__(
        self,
        chunks: Sequence[Mapping[str, np.ndarray]],
        *,
        input_key: str = "feats",
        target_key: str | None = "focus_labels",
        weight_key: str | None = None,
        extra_keys: Sequence[str] = (),
    ) -> None:
        self.input_key = input_key
        self.target_key = target_key
        self.weight_key = weight_key
        self.extra_keys = tuple(extra_keys)
        self._chunks: list[Mapping[str, np.ndarray]] | None = None
        sizes = []
        for i, chunk in enumerate(chunks):
            missing = [k for k in self.keys if k not in chunk]
            if missing:
                raise PointCloudFormatError(f"chunk {i}: missing key(s) {missing}; it has {sorted(chunk)}")
            sizes.append(
                _validate_chunk(
                    chunk,
                    f"chunk {i}",
                    input_key=input_key,
                    target_key=target_key,
                    weight_key=weight_key,
                    extra_keys=self.extra_keys,
                )
            )
        self._set_chunks([dict(c) for c in chunks], sizes)

    @property
    def keys(self) -> tuple[str, ...]:
        """Array keys read from each chunk."""
        keys = [self.input_key]
        if self.target_key is not None:
            keys.append(self.target_key)
        if self.weight_key is not None:
            keys.append(self.weight_key)
        return (*keys, *self.extra_keys)

    def _set_chunks(self, chunks: list[Mapping[str, np.ndarray]] | None, sizes: Sequence[int]) -> None:
        self._chunks = chunks
        self.sizes = [int(s) for s in sizes]
        self._starts = np.concatenate([[0], np.cumsum(self.sizes, dtype=np.int64)])

    def _get_chunks(self) -> list[Mapping[str, np.ndarray]]:
        assert self._chunks is not None
        return self._chunks

    def _names(self) -> list[tuple[str, str]]:
        names = [(self.input_key, "inputs")]
        if self.target_key is not None:
            names.append((self.target_key, "target"))
        if self.weight_key is not None:
            names.append((self.weight_key, "weight"))
        return names + [(k, k) for k in self.extra_keys]

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _locate(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(self)
        if indices.size and (indices.min() < -n or indices.max() >= n):
            raise IndexError(f"sample index out of range for a dataset of {n} samples")
        indices = np.where(indices < 0, indices + n, indices)
        chunk = np.searchsorted(self._starts, indices, side="right") - 1
        return chunk, indices - self._starts[chunk]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        chunk, local = self._locate(np.asarray([index], dtype=np.int64))
        arrays = self._get_chunks()[int(chunk[0])]
        return {name: torch.from_numpy(np.array(arrays[key][int(local[0])])) for key, name in self._names()}

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """A whole batch at once: one fancy index per chunk and key."""
        chunk, local = self._locate(np.asarray(indices, dtype=np.int64))
        chunks = self._get_chunks()
        out = {}
        for key, name in self._names():
            first = chunks[int(chunk[0])][key] if len(chunk) else chunks[0][key]
            batch = np.empty((len(chunk), *first.shape[1:]), dtype=first.dtype)
            for c in np.unique(chunk):
                sel = np.flatnonzero(chunk == c)
                batch[sel] = chunks[int(c)][key][local[sel]]
            out[name] = torch.from_numpy(batch)
        return out

    collate_fn = staticmethod(collate_batch)


class PointCloudDataset(ArrayDataset):
    """One split of a point-cloud directory, memory-mapped (see the module docstring).

    Args:
        root: the directory holding ``point_cloud_meta.json`` and the split folders.
        split: ``"train"``, ``"val"``, ``"test"`` (any folder / meta ``files`` entry).
        feature_key: network input (``"feats"``).
        target_key: label (``"focus_labels"``: the focused particle's deposit; ``"tot_labels"`` for the report's
            target; ``"frac_labels"`` for fractions; None for inference only).
        weight_key: optional per-point weight (e.g. ``"tot_truth_e"``).
        extra_keys: further arrays returned under their own names (e.g. ``"track_pt"``).

    Every file is checked when the dataset is built: missing keys, a ``feats`` shape other than
    ``[N, length, n_features]`` of the meta file, labels not ``[N, length]`` (or ``[N]``), weights unlike the
    labels, and compressed members raise :class:`PointCloudFormatError` naming the file and the key. Empty files
    (``N = 0``) are skipped. The memory maps are reopened lazily in DataLoader workers (pickling a memmap would
    copy its data).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        *,
        feature_key: str = "feats",
        target_key: str | None = "focus_labels",
        weight_key: str | None = None,
        extra_keys: Sequence[str] = (),
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.meta = load_meta(self.root)
        self.length, self.n_features = meta_length_and_features(self.meta, self.root / META_NAME)
        self.input_key = feature_key
        self.target_key = target_key
        self.weight_key = weight_key
        self.extra_keys = tuple(extra_keys)
        files, sizes = [], []
        for path in split_files(self.root, split, self.meta):
            arrays = npz_memmap(path, self.keys)
            n = _validate_chunk(
                arrays,
                path,
                input_key=feature_key,
                target_key=target_key,
                weight_key=weight_key,
                extra_keys=self.extra_keys,
                length=self.length,
                n_features=self.n_features,
            )
            for key in (feature_key, target_key):
                if key is not None:
                    check_finite(arrays[key], path, key)
            if n:
                files.append(path)
                sizes.append(n)
        self.files = files
        self._set_chunks(None, sizes)
        log.info(
            "%s/%s: %d samples in %d file(s), L = %d, F = %d",
            self.root,
            split,
            len(self),
            len(files),
            self.length,
            self.n_features,
        )

    def _get_chunks(self) -> list[Mapping[str, np.ndarray]]:
        if self._chunks is None:
            self._chunks = [npz_memmap(path, self.keys) for path in self.files]
        return self._chunks

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_chunks"] = None  # reopened lazily: pickling a memmap copies its data
        return state
