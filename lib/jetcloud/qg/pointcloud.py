"""Quark/gluon jet images -> sparse point clouds -> top-K trimming (notebook 07), as ``ToPointCloudForm.py``.

The E2E images are ``(N, 125, 125, 3)`` float32 arrays (axis 1 = eta row, axis 2 = phi column; channels track
pT, ECAL, HCAL). Their point-cloud form (``docs/e2e-format.md``), reproduced exactly:

1. a pixel is a **hit** when any channel is > 0;
2. each hit becomes ``[track, ECAL, HCAL, col, row]`` (col = phi index, row = eta index, integers 0..124),
   hits in row-major order, zero padded to ``max_hit`` = the largest hit count of the **training** jets.
   *Departure*: a test jet with more hits (common with pile-up, whose hit counts have a long tail) is neither
   cut nor an error: that split's untrimmed clouds are padded to its own largest count (top-K trimming needs
   no common width);
3. ``trim(K)`` keeps the K hits of largest ``track^2 + ECAL^2 + HCAL^2``, in **ascending** cost order (the
   most energetic hit is the last row; with fewer than K hits the zero padding rows come first).
   ``np.argsort`` in the original is not stable, and ties are common (the 25 pixels of one HCAL tower share
   their value): jetcloud sorts with ``kind="stable"``, so among tied pixels those with the largest row-major
   index survive at the cut. ``descending=True`` gives the most energetic hit first and the padding last.

No threshold, log or normalisation is applied (as in e2e_sparse). Output arrays are float32 (the original's
float64 doubles the size for integer-valued coordinates and GeV-scale energies that float32 holds exactly
enough). Everything is vectorized over chunks of jets (``np.nonzero`` over the whole chunk, one
``take_along_axis`` per K); no Python loop over jets or pixels.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

log = logging.getLogger(__name__)

#: Feature names of a point, in order.
QG_FEATURES = ("track", "ecal", "hcal", "col", "row")
#: The K values of the report (MLP / sparse CNN: 200, 800; ResNet_PC: 256-1024).
REPORT_KS = (200, 256, 512, 768, 800, 1024)
IMAGE_SHAPE = (125, 125, 3)


def check_images(images: np.ndarray, where: str = "images") -> None:
    """Raise a ValueError naming ``where`` unless ``images`` is ``(N, 125, 125, 3)`` floating point."""
    shape = tuple(np.shape(images))
    if len(shape) != 4 or shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"{where}: expected images of shape (N, 125, 125, 3), got {shape}")
    if not np.issubdtype(np.asarray(images[:0]).dtype, np.floating):
        raise ValueError(f"{where}: expected floating-point images, got dtype {np.asarray(images[:0]).dtype}")


def hit_mask(images: np.ndarray) -> np.ndarray:
    """``[N, 125, 125]`` bool: any channel > 0.

    One contiguous comparison of every value, then three strided ORs over the 1-byte results: 40% less CPU than
    three strided float comparisons (measured on 512 demo jets).
    """
    images = np.ascontiguousarray(images)
    above = (images.reshape(-1) > 0).reshape(-1, 3)
    return (above[:, 0] | above[:, 1] | above[:, 2]).reshape(images.shape[:-1])


def hit_counts(images: np.ndarray) -> np.ndarray:
    """Number of hits (pixels with any channel > 0) per image, ``[N]`` int64."""
    return hit_mask(images).sum(axis=(1, 2)).astype(np.int64)


def images_to_points(
    images: np.ndarray, max_hit: int | None, *, min_width: int = 0, where: str = "images"
) -> tuple[np.ndarray, np.ndarray]:
    """``(points [N, width, 5] float32, n_hits [N])``: the hits of every image in row-major order, zero padded.

    ``width = max_hit``; ``max_hit=None`` pads to the most hits of these images (at least ``min_width``).
    Raises a ValueError naming ``where`` and the first offending image if one has more than ``max_hit`` hits.
    """
    images = np.asarray(images)
    check_images(images, where)
    n_img = len(images)
    flat = np.flatnonzero(hit_mask(images))  # C order: jet, then row, then column
    jet, pixel = np.divmod(flat, IMAGE_SHAPE[0] * IMAGE_SHAPE[1])
    n_hits = np.bincount(jet, minlength=n_img).astype(np.int64)
    if max_hit is None:
        max_hit = max(int(n_hits.max(initial=0)), min_width)
    if n_img and n_hits.max(initial=0) > max_hit:
        bad = int(np.argmax(n_hits > max_hit))
        raise ValueError(
            f"{where}: image {bad} has {n_hits[bad]} hits, more than max_hit = {max_hit} "
            "(max_hit comes from the training jets)"
        )
    starts = np.cumsum(n_hits) - n_hits
    dest = jet * max_hit + (np.arange(len(flat)) - starts[jet])  # row of each hit in the flattened output
    points = np.zeros((n_img * max_hit, 5), np.float32)
    points[dest, :3] = images.reshape(-1, 3)[flat]
    points[dest, 3], points[dest, 4] = pixel % IMAGE_SHAPE[1], pixel // IMAGE_SHAPE[1]
    points = points.reshape(n_img, max_hit, 5)
    return points, n_hits


def trim_top_k(points: np.ndarray, k: int, *, descending: bool = False) -> np.ndarray:
    """Keep the ``k`` points of largest ``track^2 + ECAL^2 + HCAL^2`` (stable sort), ``[N, k, 5]``.

    Ascending cost order with padding first (the original), or ``descending=True``. ``k`` larger than the
    padded length is an error (the original would silently return fewer rows).
    """
    points = np.asarray(points)
    if not 0 < k <= points.shape[1]:
        raise ValueError(f"K = {k} must be between 1 and the padded length {points.shape[1]} (max_hit)")
    cost = np.einsum("nlc,nlc->nl", points[..., :3], points[..., :3])
    keep = np.argsort(cost, axis=1, kind="stable")[:, -k:]
    if descending:
        keep = keep[:, ::-1]
    return np.take_along_axis(points, keep[..., None], axis=1)


def trim_top_ks(points: np.ndarray, ks: Sequence[int], *, descending: bool = False) -> dict[int, np.ndarray]:
    """:func:`trim_top_k` for several K at once: ``{k: [N, k, 5]}``, each identical to ``trim_top_k(points, k)``.

    One cost, one stable sort and one gather (of the largest K) serve every K: the K points kept by a stable
    sort are the last K of the order it gives, so each smaller top-K is a slice of the largest (its last rows
    in ascending order, its first rows with ``descending=True``).
    """
    points = np.asarray(points)
    ks = [int(k) for k in ks]
    for k in ks:
        if not 0 < k <= points.shape[1]:
            raise ValueError(f"K = {k} must be between 1 and the padded length {points.shape[1]} (max_hit)")
    if not ks:
        return {}
    n, width, n_feat = points.shape
    cost = np.einsum("nlc,nlc->nl", points[..., :3], points[..., :3])
    keep = np.argsort(cost, axis=1, kind="stable")[:, -max(ks) :]
    if descending:
        keep = keep[:, ::-1]
    rows = (keep + (np.arange(n) * width)[:, None]).ravel()
    record = np.dtype((np.void, points.dtype.itemsize * n_feat))  # one point as one item: a row gather
    flat = np.ascontiguousarray(points).reshape(-1).view(record)
    top = np.take(flat, rows).view(points.dtype).reshape(n, max(ks), n_feat)
    if descending:
        return {k: top[:, :k] for k in ks}
    return {k: top[:, top.shape[1] - k :] for k in ks}


def points_to_images(points: np.ndarray) -> np.ndarray:
    """Rebuild ``(N, 125, 125, 3)`` images from point clouds (the report's reconstruction check).

    ``image[row, col] = [track, ECAL, HCAL]`` for every point; padding rows (all channels zero) are skipped.
    """
    points = np.asarray(points)
    n, length, _ = points.shape
    images = np.zeros((n, *IMAGE_SHAPE), np.float32)
    real = (points[..., :3] != 0).any(axis=-1)
    jet = np.broadcast_to(np.arange(n)[:, None], (n, length))[real]
    images[jet, points[..., 4][real].astype(np.int64), points[..., 3][real].astype(np.int64)] = points[..., :3][real]
    return images


def channel_hit_counts(images: np.ndarray) -> np.ndarray:
    """Non-zero pixels per channel and image, ``[N, 3]`` (track, ECAL, HCAL)."""
    return (np.asarray(images) > 0).sum(axis=(1, 2)).astype(np.int64)


def check_labels(labels: np.ndarray, where: str) -> np.ndarray:
    """``labels`` as int64, after checking that each is 0 (gluon) or 1 (quark); ``ValueError`` naming ``where``."""
    labels = np.asarray(labels)
    bad = ~np.isin(labels, (0, 1))
    if bad.any():
        raise ValueError(f"{where}: labels must be 0 (gluon) or 1 (quark); found {np.unique(labels[bad])[:5]}")
    return labels.astype(np.int64)


def check_ks(ks: Sequence[int], max_hit: int) -> list[int]:
    """The K values as ints, each checked against ``max_hit``; the message says which bound a K breaks."""
    out = [int(k) for k in ks]
    if not out:
        raise ValueError("no K values given: pass at least one K >= 1 (e.g. ks=[200, 800])")
    small = [k for k in out if k < 1]
    if small:
        raise ValueError(f"K = {small}: every K must be >= 1 (K is the number of hits kept per jet)")
    big = [k for k in out if k > max_hit]
    if big:
        raise ValueError(f"K = {big} larger than max_hit = {max_hit} (the most hits of any training jet)")
    return out


def check_finite_images(images: np.ndarray, where: str, first_entry: int = 0) -> None:
    """Raise a ValueError naming ``where`` and the first jet with a NaN or infinite pixel (never silently 0).

    A non-finite pixel cannot be dropped without changing the jet (its hit list, its top-K), so it is an error:
    ``where`` should name the file and key, ``first_entry`` is the jet index of ``images[0]`` in that key.
    """
    images = np.asarray(images)
    with np.errstate(over="ignore", invalid="ignore"):
        sums = images.reshape(len(images), -1).sum(axis=1)
    if np.isfinite(sums).all():
        return  # fast path: a NaN or infinite pixel makes its jet's sum non-finite (an overflow takes the exact path)
    bad = ~np.isfinite(images).all(axis=(1, 2, 3))
    if bad.any():
        jets = np.flatnonzero(bad)
        raise ValueError(
            f"{where}: jet {first_entry + int(jets[0])} has NaN or infinite pixel values ({len(jets)} such jet(s) "
            f"in entries {first_entry}..{first_entry + len(images) - 1}); fix or drop them in the E2E file"
        )


# --------------------------------------------------------------------------------------------------------------
# files: E2E HDF5 -> qg_points.h5 + QG{K}.h5
# --------------------------------------------------------------------------------------------------------------

#: The points file beside the QG{K}.h5 files: untrimmed point clouds padded to max_hit, with hit counts.
POINTS_NAME = "qg_points.h5"
_SPLIT_GROUPS = {"train": "train_dataset", "test": "test_dataset"}


@dataclass(frozen=True)
class _Chunk:
    path: str
    split: str
    start: int
    stop: int


def _chunk_points(chunk: _Chunk, *, ks: tuple[int, ...], descending: bool, label_column: int) -> dict[str, Any]:
    """One chunk: its point clouds padded to the chunk's own most hits (at least max(ks)) and the top-K arrays.

    Top-K does not depend on how far the clouds are padded (padding rows cost 0 and sort first), so one read
    of the images suffices: the file-wide ``max_hit`` is only needed for the untrimmed clouds, whose dataset
    grows as wider chunks arrive.
    """
    from jetcloud.qg.e2e import read_e2e

    images, meta = read_e2e(chunk.path, chunk.split, chunk.start, chunk.stop)
    where = f"{chunk.path}:{chunk.split}_jet[{chunk.start}:]"
    check_finite_images(images, f"{chunk.path}: key {chunk.split}_jet", chunk.start)
    bad_meta = ~np.isfinite(meta[:, :2]).all(axis=1)
    if bad_meta.any():
        raise ValueError(
            f"{chunk.path}: key {chunk.split}_meta: jet {chunk.start + int(np.argmax(bad_meta))} has a NaN or "
            "infinite pt / m0"
        )
    check_labels(meta[:, label_column], f"{chunk.path}:{chunk.split}_meta[{chunk.start}:] column {label_column}")
    points, n_hits = images_to_points(images, None, min_width=max(ks), where=where)
    return {
        "points": points[:, : int(n_hits.max(initial=0))],
        "n_hits": n_hits,
        "label": meta[:, label_column],
        "pt": meta[:, 0],
        "m0": meta[:, 1],
        "trimmed": trim_top_ks(points, ks, descending=descending),
    }


#: HDF5 filters by name of the ``compression`` option, chosen by measurement (1024 demo jets, their untrimmed
#: clouds and K = 200, 256, 800, 1024): lzf writes files 4.6x smaller than none at 6x its writing time (built into
#: h5py, a plugin elsewhere); gzip level 1 is 6.7x smaller than none but takes 1.5x lzf's time.
COMPRESSION = {"lzf": {"compression": "lzf"}, "gzip": {"compression": "gzip", "compression_opts": 1}, "none": {}}


#: HDF5 chunk shapes, chosen by measurement (``benchmarks/qg_convert.py``): the top-K arrays in blocks of
#: ``_JET_CHUNK`` whole jets; the untrimmed clouds, whose width grows, in blocks of ``_JET_CHUNK`` jets x
#: ``_POINT_CHUNK`` points, so that the blocks beyond a block of jets' most hits stay unwritten (read as 0).
_JET_CHUNK = 256
_POINT_CHUNK = 128


def _create(f: Any, name: str, shape: tuple[int, ...], compression: str, growable: bool = False) -> Any:
    chunks = (max(1, min(shape[0], _JET_CHUNK)), *((_POINT_CHUNK, *shape[2:]) if growable else shape[1:]))
    options = COMPRESSION[compression]
    maxshape = (shape[0], None, *shape[2:]) if growable else None
    return f.create_dataset(
        name,
        shape=shape,
        maxshape=maxshape,
        dtype=np.float32,
        chunks=chunks if shape[0] else None,
        **(options if shape[0] else {}),
    )


def convert_e2e(
    e2e_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    ks: Sequence[int] = (200, 800),
    *,
    chunk_size: int = 512,
    descending: bool = False,
    label_column: int = 2,
    compression: str = "lzf",
    workers: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
    manifest: bool = True,
) -> dict[str, Any]:
    """Convert an E2E file into ``out_dir/qg_points.h5`` and ``out_dir/QG{K}.h5`` for every K.

    ``QG{K}.h5`` is the original's layout: ``train_dataset/{X, Y}`` and ``test_dataset/{X, Y}`` with X
    ``(N, K, 5)`` and Y the label column of ``train_meta`` / ``test_meta`` (the Report's snippet reads
    ``test_meta`` for the training jets, a bug not copied), float32. ``qg_points.h5`` holds the untrimmed
    clouds ``X (N, width, 5)``, ``Y``, ``n_hits``, ``pt``, ``m0`` per split. ``max_hit`` is the most hits of
    any training jet (the width of the training clouds; the test clouds are wider when a test jet has more hits); a
    K above ``max_hit`` is an error (and nothing is left).

    One pass over the images: chunks of ``chunk_size`` jets run through :func:`jetcloud.parallel.map_chunks`
    (local processes or Dask), a few at a time so that memory stays bounded; the main process writes them in
    order. The whole output directory is built under a temporary name and replaces ``out_dir`` only when
    complete. ``compression``: ``"lzf"``, ``"gzip"`` or ``"none"`` for the X arrays (see :data:`COMPRESSION`).
    Returns ``{"max_hit", "ks", "jets": {split: n}, "hits": {split: array}, "wall_s", "cpu_s"}``.
    """
    from jetcloud.io.atomic import atomic_dir
    from jetcloud.io.errors import disk_full_guard
    from jetcloud.parallel import default_workers

    t0, c0 = time.perf_counter(), time.process_time()
    path = os.fspath(Path(e2e_path).resolve())
    sizes = _check_conversion(path, chunk_size, compression)
    ks = tuple(check_ks(ks, 10**9))
    wave = 2 * (default_workers() if workers is None else max(1, workers))
    plan = _Conversion(path, ks, chunk_size, descending, label_column, compression, wave, workers, scheduler, progress)
    out_dir = Path(out_dir)
    hits: dict[str, np.ndarray] = {}
    with disk_full_guard(out_dir), atomic_dir(out_dir, stage="qg.pointcloud") as tmp:
        max_hit = _convert_splits(plan, tmp, sizes, hits)
    summary = {
        "max_hit": max_hit,
        "ks": list(ks),
        "jets": sizes,
        "hits": hits,
        "out_dir": os.fspath(out_dir),
        "wall_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
    }
    if manifest:
        _write_conversion_manifest(out_dir, plan, summary["wall_s"], max_hit, sizes)
    log.info("QG point clouds: max_hit %d, K %s, %s jets (%.1f s)", max_hit, list(ks), sizes, summary["wall_s"])
    return summary


@dataclass(frozen=True)
class _Conversion:
    """What every split of one :func:`convert_e2e` run shares: input, K values, chunking and how chunks run."""

    path: str
    ks: tuple[int, ...]
    chunk_size: int
    descending: bool
    label_column: int
    compression: str
    wave: int  # chunks submitted at a time
    workers: int | None
    scheduler: Any
    progress: bool


def _check_conversion(path: str, chunk_size: int, compression: str) -> dict[str, int]:
    """The jets per split of the E2E file ``path``, after checking the file and the options."""
    from jetcloud.qg.e2e import check_layout

    sizes = check_layout(path)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if compression not in COMPRESSION:
        raise ValueError(f"unknown compression {compression!r}; expected one of {list(COMPRESSION)}")
    if sizes["train"] == 0:
        raise ValueError(f"{path}: train_jet is empty; max_hit comes from the training jets")
    return sizes


def _convert_splits(plan: _Conversion, tmp: Path, sizes: dict[str, int], hits: dict[str, np.ndarray]) -> int:
    """Create the output files in ``tmp``, convert every split into them (train first) and close them.

    The datasets of a split stay referenced until the next split's are created and the files closed: HDF5 lays
    out its metadata when a dataset is released, so this order keeps the files byte-identical run to run.
    """
    import h5py

    from jetcloud.parallel import map_chunks

    func = functools.partial(_chunk_points, ks=plan.ks, descending=plan.descending, label_column=plan.label_column)
    files: dict[Any, Any] = {}
    try:
        files["points"] = h5py.File(tmp / POINTS_NAME, "w")
        for k in plan.ks:
            files[k] = h5py.File(tmp / f"QG{k}.h5", "w")
        for split, n in sizes.items():  # train first: max_hit is known before the test jets
            group = _SPLIT_GROUPS[split]
            pts = {"X": _create(files["points"], f"{group}/X", (n, 0, 5), plan.compression, growable=True)}
            for name in ("Y", "n_hits", "pt", "m0"):
                pts[name] = _create(files["points"], f"{group}/{name}", (n,), "none")
            trimmed = {k: _trimmed_datasets(files[k], group, n, k, plan.compression) for k in plan.ks}
            todo = [_Chunk(plan.path, split, a, min(n, a + plan.chunk_size)) for a in range(0, n, plan.chunk_size)]
            hits[split] = np.zeros(n, np.int64)
            bar = tqdm(total=n, desc=f"point clouds {split}", unit="jet", disable=not plan.progress)
            for w in range(0, len(todo), plan.wave):
                batch = todo[w : w + plan.wave]
                results = map_chunks(func, batch, workers=plan.workers, scheduler=plan.scheduler, progress=False)
                for chunk, res in zip(batch, results, strict=True):
                    _write_chunk(pts, trimmed, chunk, res, hits[split])
                    bar.update(chunk.stop - chunk.start)
            bar.close()
            width = _check_split_hits(plan, split, n, hits)
            pts["X"].resize(width, axis=1)  # training max_hit; wider for a test jet with more hits
    except BaseException:
        _close_all(files.values(), quiet=True)  # the original error is the one to report
        raise
    _close_all(files.values())
    return int(hits["train"].max())


def _close_all(handles: Any, quiet: bool = False) -> None:
    """Close every handle even when some ``close()`` raises (e.g. a full disk while flushing); re-raise the first
    unless ``quiet`` (an error is already propagating).

    Stopping at the first failing close would leave HDF5 files open, and the library then crashes at exit.
    """
    first: BaseException | None = None
    for handle in list(handles):
        try:
            handle.close()
        except Exception as err:  # noqa: BLE001 - every handle must be closed; the first error is re-raised
            first = first or err
            log.debug("closing %s failed", handle, exc_info=True)
    if first is not None and not quiet:
        raise first


def _trimmed_datasets(f: Any, group: str, n: int, k: int, compression: str) -> tuple[Any, Any]:
    """``(X, Y)`` of one split in ``QG{K}.h5``."""
    return _create(f, f"{group}/X", (n, k, 5), compression), _create(f, f"{group}/Y", (n,), "none")


def _write_chunk(
    pts: dict[str, Any], trimmed: dict[int, tuple[Any, Any]], chunk: _Chunk, res: dict[str, Any], hits: np.ndarray
) -> None:
    """Write one converted chunk into the split's datasets (widening the untrimmed X) and its hit counts."""
    sl, width = slice(chunk.start, chunk.stop), res["points"].shape[1]
    if width > pts["X"].shape[1]:
        pts["X"].resize(width, axis=1)
    block = pts["X"].chunks[0]
    for a in range(0, chunk.stop - chunk.start, block):  # per block of jets, up to its most hits: zeros stay unwritten
        b = min(a + block, chunk.stop - chunk.start)
        used = int(res["n_hits"][a:b].max(initial=0))
        if used:
            pts["X"][chunk.start + a : chunk.start + b, :used] = res["points"][a:b, :used]
    pts["Y"][sl], pts["n_hits"][sl] = res["label"], res["n_hits"]
    pts["pt"][sl], pts["m0"][sl] = res["pt"], res["m0"]
    hits[sl] = res["n_hits"]
    for k in trimmed:
        trimmed[k][0][sl], trimmed[k][1][sl] = res["trimmed"][k], res["label"]


def _check_split_hits(plan: _Conversion, split: str, n: int, hits: dict[str, np.ndarray]) -> int:
    """Width of ``split``'s untrimmed clouds: the training ``max_hit`` (K values are checked against it), or
    more for a test jet with more hits than every training jet (logged: the original would fail there)."""
    max_hit = int(hits["train"].max())
    if split == "train":
        check_ks(plan.ks, max_hit)
        return max_hit
    most = int(hits[split].max(initial=0)) if n else 0
    if most > max_hit:
        log.info(
            "%s: %s_jet[%d] has %d hits, more than max_hit = %d of the training jets: the untrimmed %s clouds "
            "are padded to %d",
            plan.path,
            split,
            int(np.argmax(hits[split])),
            most,
            max_hit,
            split,
            most,
        )
    return max(max_hit, most)


def _write_conversion_manifest(
    out_dir: Path, plan: _Conversion, wall_s: float, max_hit: int, sizes: dict[str, int]
) -> None:
    """The ``manifest.json`` of a converted directory (input, options, ``max_hit`` and jets per split)."""
    from jetcloud.io.manifest import write_manifest

    write_manifest(
        out_dir,
        inputs=[plan.path],
        seed=None,
        wall_time_s=wall_s,
        hash_output=False,
        parameters={
            "ks": list(plan.ks),
            "chunk_size": plan.chunk_size,
            "descending": plan.descending,
            "label_column": plan.label_column,
            "compression": plan.compression,
        },
        extra={"max_hit": max_hit, "jets": sizes},
    )


def read_qg(path: str | os.PathLike, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """``(X, Y)`` of ``train_dataset`` / ``test_dataset`` of a ``QG{K}.h5`` file, checked (clear errors)."""

    path = Path(path)
    if split not in _SPLIT_GROUPS:
        raise ValueError(f"split must be one of {list(_SPLIT_GROUPS)}, got {split!r}")
    if not path.is_file():
        raise FileNotFoundError(f"QG point-cloud file {path} does not exist (run notebook 07)")
    group = _SPLIT_GROUPS[split]
    from jetcloud.qg.e2e import open_h5

    with open_h5(path) as f:
        missing = [f"{group}/{k}" for k in ("X", "Y") if f"{group}/{k}" not in f]
        if missing:
            raise KeyError(
                f"{path}: missing {missing}; a QG{{K}}.h5 file has train_dataset/{{X,Y}}, test_dataset/{{X,Y}}"
            )
        x, y = f[f"{group}/X"], f[f"{group}/Y"]
        if x.ndim != 3 or x.shape[2] != len(QG_FEATURES) or y.shape != (x.shape[0],):
            raise ValueError(f"{path}: {group}/X has shape {x.shape} and Y {y.shape}; expected (N, K, 5) and (N,)")
        for key, ds in (("X", x), ("Y", y)):
            if ds.dtype.kind not in "fiu":
                raise ValueError(f"{path}: {group}/{key} has dtype {ds.dtype}, expected numbers (float32)")
        xs, ys = np.asarray(x, np.float32), np.asarray(y, np.float32)
    bad = ~np.isfinite(xs).all(axis=(1, 2))
    if bad.any():
        raise ValueError(f"{path}: key {group}/X: jet {int(np.argmax(bad))} has NaN or infinite values")
    check_labels(ys, f"{path}: key {group}/Y")
    return xs, ys
