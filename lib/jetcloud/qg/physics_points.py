"""Physics points of the E2E jet images: one point per track pixel, ECAL crystal and HCAL **tower** (notebook 07).

The report's point clouds (:mod:`jetcloud.qg.pointcloud`) list every non-zero pixel with raw channel values and
pixel indices. Fed to the stronger models (ParticleNet, transformer) they are poor inputs: an HCAL tower is spread
over its 5 x 5 crystals (:func:`jetcloud.qg.detector.upsample_hcal`: ``E / 25`` in each), so one tower becomes 25
identical points, and a top-K cut keeps copies of a few towers while dropping every soft hit. Physics points fix
this:

* **one point per track pixel** (channel 0, the track pT in GeV: the "energy" of a track point) and **per ECAL
  crystal** (channel 1) with a non-zero value, and **one per HCAL tower** (channel 2): the 5 x 5 block of a tower
  (crops start on tower boundaries, pixel rows/columns ``5 t .. 5 t + 4``) collapses to one point at the tower
  centre (pixel ``5 t + 2``) whose energy is the **sum** of the block, i.e. ``25 x (E / 25)`` = the tower energy,
  which inverts ``upsample_hcal`` exactly. Blocks whose 25 values differ are an error (the image was not made by
  5 x 5 upsampling), unless ``check_towers=False``.
* features (:data:`FEATURES`): ``log E`` (GeV), ``E / sum E`` (sum over all points of the jet: track pT + ECAL +
  HCAL), ``delta eta`` and ``delta phi`` to the jet axis, ``delta R`` and a type one-hot (track, ECAL, HCAL). The
  jet axis is the image centre, pixel (62, 62) (the seed tower's centre crystal, ``detector.SEED_PIXEL``); pixel
  offsets become eta / phi with the crystal size (``detector.CRYSTAL_ETA``, ``detector.CRYSTAL_PHI``).
* every point is kept: points sorted by decreasing energy (stable: ties keep track, ECAL, HCAL order, then
  row-major), zero padded at the end to the largest count of the file (a real point always has a type flag set,
  so the non-zero rows are the mask) with ``n_points`` per jet.
* per-jet **globals** (:data:`GLOBAL_FEATURES`, for the model heads): ``log(1 + count)`` and ``log(1 + sum E)``
  per type.

:func:`convert_physics_points` streams an E2E file into ``qg_physics_points.h5`` (layout below), chunk by chunk
with bounded memory, written under a temporary name and renamed when complete.

=========================  ====================  ===========================================================
key (per group ``train``,  shape                 content
``test``)
=========================  ====================  ===========================================================
``X``                      (N, K, 8) float32     points, :data:`FEATURES`; zero rows = padding (at the end)
``n_points``               (N,) int32            real points per jet
``n_type``                 (N, 3) int32          points per type (track, ECAL, HCAL towers)
``e_type``                 (N, 3) float32        summed energy per type (GeV; tracks: pT)
``globals``                (N, 6) float32        :data:`GLOBAL_FEATURES`
``Y``                      (N,) float32          label (quark = 1, gluon = 0)
``pt``, ``m0``             (N,) float32          jet pT and mass of the E2E meta
=========================  ====================  ===========================================================

File attributes: ``features``, ``global_features``, ``source`` (the E2E file).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from jetcloud.qg import detector
from jetcloud.qg.pointcloud import check_finite_images, check_images, check_labels

__all__ = [
    "FEATURES",
    "GLOBAL_FEATURES",
    "TYPES",
    "PHYSICS_NAME",
    "collapse_towers",
    "image_points",
    "convert_physics_points",
    "read_physics_points",
]

log = logging.getLogger(__name__)

#: Per-point features, in order (coordinates ``deta``, ``dphi`` at 2, 3; type one-hot last).
FEATURES = ("log_e", "e_frac", "deta", "dphi", "dr", "is_track", "is_ecal", "is_hcal")
#: Per-jet features for the model heads.
GLOBAL_FEATURES = ("log_n_track", "log_n_ecal", "log_n_hcal", "log_e_track", "log_e_ecal", "log_e_hcal")
TYPES = ("track", "ecal", "hcal")
PHYSICS_NAME = "qg_physics_points.h5"
COORD_INDEX = (2, 3)
E_FRAC_INDEX = 1

_SIZE = detector.IMAGE_SIZE
_T = detector.CRYSTALS_PER_TOWER
_NT = _SIZE // _T
_CENTRE = detector.SEED_PIXEL


def collapse_towers(hcal: np.ndarray, *, check: bool = True, where: str = "images") -> np.ndarray:
    """``(N, 25, 25)`` tower energies of the upsampled HCAL channel ``(N, 125, 125)``: the sum of each 5 x 5 block.

    ``upsample_hcal`` puts ``E / 25`` in each crystal of a tower, so the block sum is the tower energy. With
    ``check`` a block whose values are not all equal (relative 1e-5) raises a ValueError naming ``where``.
    """
    hcal = np.asarray(hcal)
    blocks = hcal.reshape(len(hcal), _NT, _T, _NT, _T)
    towers = blocks.sum(axis=(2, 4), dtype=np.float64)
    if check:
        spread = blocks.max(axis=(2, 4)) - blocks.min(axis=(2, 4))
        bad = spread > 1e-5 * np.abs(blocks).max(axis=(2, 4)) + 1e-12
        if bad.any():
            jet, tr, tc = (int(v[0]) for v in np.nonzero(bad))
            raise ValueError(
                f"{where}: jet {jet}: HCAL block of tower ({tr}, {tc}) (pixels {_T * tr}..{_T * tr + _T - 1}, "
                f"{_T * tc}..{_T * tc + _T - 1}) is not uniform: not a 5 x 5 upsampled tower "
                "(pass check_towers=False to sum the blocks anyway)"
            )
    return towers


def _cell_geometry() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(deta, dphi, type)`` of every candidate cell: 125^2 track pixels, 125^2 crystals, 25^2 tower centres."""
    pix = np.arange(_SIZE, dtype=np.float64) - _CENTRE
    tow = np.arange(_NT, dtype=np.float64) * _T + _T // 2 - _CENTRE
    deta = [np.repeat(pix, _SIZE), np.repeat(pix, _SIZE), np.repeat(tow, _NT)]
    dphi = [np.tile(pix, _SIZE), np.tile(pix, _SIZE), np.tile(tow, _NT)]
    kind = [np.full(_SIZE * _SIZE, 0), np.full(_SIZE * _SIZE, 1), np.full(_NT * _NT, 2)]
    return (
        np.concatenate(deta) * detector.CRYSTAL_ETA,
        np.concatenate(dphi) * detector.CRYSTAL_PHI,
        np.concatenate(kind).astype(np.int64),
    )


_GEOMETRY = _cell_geometry()


def image_points(
    images: np.ndarray, *, width: int | None = None, check_towers: bool = True, where: str = "images"
) -> dict[str, np.ndarray]:
    """Physics points of ``images (N, 125, 125, 3)`` (module docstring), vectorized over the jets.

    Returns ``X (N, width, 8)`` float32 (``width``: the most points of these jets when None; a jet with more
    points than ``width`` is a ValueError), ``n_points (N,)``, ``n_type (N, 3)``, ``e_type (N, 3)`` and
    ``globals (N, 6)``.
    """
    images = np.asarray(images)
    check_images(images, where)
    n = len(images)
    towers = collapse_towers(images[..., 2], check=check_towers, where=where)
    energy = np.concatenate(
        [images[..., 0].reshape(n, -1), images[..., 1].reshape(n, -1), towers.reshape(n, -1)], axis=1
    ).astype(np.float64)
    jet, cell = np.nonzero(energy > 0)
    e = energy[jet, cell]
    order = np.lexsort((cell, -e, jet))  # per jet, decreasing energy, ties in cell order
    jet, cell, e = jet[order], cell[order], e[order]
    deta, dphi, kind = (g[cell] for g in _GEOMETRY)
    n_points = np.bincount(jet, minlength=n)
    width = int(n_points.max(initial=0)) if width is None else int(width)
    if n and n_points.max(initial=0) > width:
        bad = int(np.argmax(n_points > width))
        raise ValueError(f"{where}: jet {bad} has {n_points[bad]} physics points, more than the width {width}")
    slot = np.arange(len(jet)) - (np.cumsum(n_points) - n_points)[jet]
    e_sum = np.bincount(jet, weights=e, minlength=n)
    x = np.zeros((n, width, len(FEATURES)), np.float32)
    x[jet, slot, 0] = np.log(e)
    x[jet, slot, 1] = e / e_sum[jet]
    x[jet, slot, 2], x[jet, slot, 3] = deta, dphi
    x[jet, slot, 4] = np.hypot(deta, dphi)
    x[jet, slot, 5 + kind] = 1.0
    n_type = np.stack([np.bincount(jet[kind == t], minlength=n) for t in range(3)], axis=1)
    e_type = np.stack([np.bincount(jet[kind == t], weights=e[kind == t], minlength=n) for t in range(3)], axis=1)
    glob = np.concatenate([np.log1p(n_type), np.log1p(e_type)], axis=1)
    return {
        "X": x,
        "n_points": n_points.astype(np.int32),
        "n_type": n_type.astype(np.int32),
        "e_type": e_type.astype(np.float32),
        "globals": glob.astype(np.float32),
    }


# ---- files ----------------------------------------------------------------------------------------------------
_PER_JET = {"n_points": ((), "int32"), "n_type": ((3,), "int32"), "e_type": ((3,), "float32")}
_PER_JET.update({"globals": ((len(GLOBAL_FEATURES),), "float32"), "Y": ((), "float32")})
_PER_JET.update({"pt": ((), "float32"), "m0": ((), "float32")})


def _create_split(f: Any, split: str, n: int) -> dict[str, Any]:
    """The datasets of one split; ``X`` starts one point wide and grows (axis 1) as wider chunks arrive."""
    out = {
        "X": f.create_dataset(
            f"{split}/X",
            shape=(n, 1, len(FEATURES)),
            maxshape=(n, None, len(FEATURES)),
            dtype=np.float32,
            chunks=(max(1, min(n, 64)), 128, len(FEATURES)),
            compression="lzf",
        )
    }
    for key, (shape, dtype) in _PER_JET.items():
        out[key] = f.create_dataset(f"{split}/{key}", shape=(n, *shape), dtype=dtype)
    return out


def _convert_chunk(
    images: np.ndarray, meta: np.ndarray, where: str, start: int, label_column: int, check_towers: bool
) -> dict[str, np.ndarray]:
    """Checks (finite pixels and meta, labels) and the physics points of one chunk of an E2E split."""
    check_finite_images(images, where, start)
    bad = ~np.isfinite(meta[:, :2]).all(axis=1)
    if bad.any():
        raise ValueError(f"{where}: jet {start + int(np.argmax(bad))} has a NaN or infinite pt / m0 in the meta")
    labels = check_labels(meta[:, label_column], f"{where} (meta column {label_column}, jets {start}..)")
    res = image_points(images, check_towers=check_towers, where=f"{where}[{start}:]")
    res.update(Y=labels.astype(np.float32), pt=meta[:, 0], m0=meta[:, 1])
    return res


def _write_split(f: Any, path: str, split: str, n: int, chunk_size: int, label_column: int, check: bool) -> np.ndarray:
    """Convert one split chunk by chunk into ``f``; returns its ``n_type`` (N, 3)."""
    from jetcloud.qg.e2e import iter_e2e

    ds = _create_split(f, split, n)
    n_type = np.zeros((n, 3), np.int64)
    start = 0
    for images, meta in iter_e2e(path, split, chunk_size):
        res = _convert_chunk(images, meta, f"{path}: key {split}_jet", start, label_column, check)
        sl, width = slice(start, start + len(images)), res["X"].shape[1]
        if width > ds["X"].shape[1]:
            ds["X"].resize(width, axis=1)
        ds["X"][sl, :width] = res["X"]
        for key in _PER_JET:
            ds[key][sl] = res[key]
        n_type[sl] = res["n_type"]
        start += len(images)
    return n_type


def convert_physics_points(
    e2e_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    chunk_size: int = 256,
    label_column: int = 2,
    check_towers: bool = True,
) -> dict[str, Any]:
    """Convert the E2E file ``e2e_path`` into ``out_dir/qg_physics_points.h5`` (module docstring).

    Streams ``chunk_size`` jets at a time (memory: a few hundred MB per 256 jets); NaN / infinite pixels or meta,
    labels outside {0, 1} and non-uniform HCAL blocks raise a ValueError naming the file, key and jet, and leave
    no output. ``K`` (the padded width) is the most points of any jet of either split (padding only: no jet is
    cut). Returns ``{"path", "k", "jets": {split: n}, "n_points": {split: (N,)}, "n_type": {split: (N, 3)},
    "wall_s"}``.
    """
    import h5py

    from jetcloud.io.atomic import atomic_path
    from jetcloud.qg.e2e import check_layout

    t0 = time.perf_counter()
    path = os.fspath(Path(e2e_path).resolve())
    sizes = check_layout(path)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    target = Path(out_dir) / PHYSICS_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    n_type = {}
    with atomic_path(target) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["features"], f.attrs["global_features"] = list(FEATURES), list(GLOBAL_FEATURES)
        f.attrs["source"] = path
        for split, n in sizes.items():
            n_type[split] = _write_split(f, path, split, n, chunk_size, label_column, check_towers)
        k = max(f[f"{split}/X"].shape[1] for split in sizes)
        for split in sizes:  # one width for both splits
            f[f"{split}/X"].resize(k, axis=1)
        f.attrs["k"] = k
    summary = {
        "path": os.fspath(target),
        "k": int(k),
        "jets": sizes,
        "n_points": {s: t.sum(axis=1) for s, t in n_type.items()},
        "n_type": n_type,
        "wall_s": time.perf_counter() - t0,
    }
    log.info("physics points: %s, K = %d, %s jets (%.1f s)", target, k, sizes, summary["wall_s"])
    return summary


def read_physics_points(path: str | os.PathLike, split: str = "train", k: int = 0) -> dict[str, np.ndarray]:
    """``X``, ``n_points``, ``globals``, ``Y`` (and the other per-jet arrays) of one split, checked.

    ``k > 0`` reads only the first ``k`` points of each jet (its ``k`` most energetic), not the whole width."""
    from jetcloud.qg.e2e import open_h5

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"physics-points file {path} does not exist (run notebook 07)")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    with open_h5(path) as f:
        missing = [f"{split}/{k}" for k in ("X", *_PER_JET) if f"{split}/{k}" not in f]
        if missing:
            raise KeyError(f"{path}: missing {missing}; write the file with convert_physics_points (notebook 07)")
        out = {key: np.asarray(f[f"{split}/{key}"]) for key in _PER_JET}
        out["X"] = np.asarray(f[f"{split}/X"][:, :k] if k > 0 else f[f"{split}/X"])
    x = out["X"]
    if x.ndim != 3 or x.shape[2] != len(FEATURES) or len(out["Y"]) != len(x):
        raise ValueError(f"{path}: {split}/X has shape {x.shape}; expected (N, K, {len(FEATURES)}) with N labels")
    bad = ~np.isfinite(x).all(axis=(1, 2))
    if bad.any():
        raise ValueError(f"{path}: key {split}/X: jet {int(np.argmax(bad))} has NaN or infinite values")
    out["Y"] = check_labels(out["Y"], f"{path}: key {split}/Y")
    return out
