"""Quark/gluon jet images -> sparse point clouds -> top-K trimming (notebook 06), as ``ToPointCloudForm.py``.

The E2E images are ``(N, 125, 125, 3)`` float32 arrays (axis 1 = eta row, axis 2 = phi column; channels track
pT, ECAL, HCAL). Their point-cloud form (``qg-reference.md`` section 2), reproduced exactly:

1. a pixel is a **hit** when any channel is > 0;
2. each hit becomes ``[track, ECAL, HCAL, col, row]`` (col = phi index, row = eta index, integers 0..124),
   hits in row-major order, zero padded to ``max_hit`` = the largest hit count of the **training** jets (a
   test jet with more hits is an error, not silently cut);
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

from collections.abc import Sequence

import numpy as np

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


def hit_counts(images: np.ndarray) -> np.ndarray:
    """Number of hits (pixels with any channel > 0) per image, ``[N]`` int64."""
    return (np.asarray(images) > 0).any(axis=-1).sum(axis=(1, 2)).astype(np.int64)


def images_to_points(images: np.ndarray, max_hit: int, *, where: str = "images") -> tuple[np.ndarray, np.ndarray]:
    """``(points [N, max_hit, 5] float32, n_hits [N])``: the hits of every image in row-major order, zero padded.

    Raises a ValueError naming ``where`` and the first offending image if one has more than ``max_hit`` hits.
    """
    images = np.asarray(images)
    check_images(images, where)
    jet, row, col = np.nonzero((images > 0).any(axis=-1))  # C order: jet, then row, then column
    n_hits = np.bincount(jet, minlength=len(images)).astype(np.int64)
    if len(images) and n_hits.max(initial=0) > max_hit:
        bad = int(np.argmax(n_hits > max_hit))
        raise ValueError(f"{where}: image {bad} has {n_hits[bad]} hits, more than max_hit = {max_hit} "
                         "(max_hit comes from the training jets)")  # fmt: skip
    starts = np.cumsum(n_hits) - n_hits
    slot = np.arange(len(jet)) - starts[jet]
    points = np.zeros((len(images), max_hit, 5), np.float32)
    points[jet, slot, :3] = images[jet, row, col]
    points[jet, slot, 3] = col
    points[jet, slot, 4] = row
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


def check_ks(ks: Sequence[int], max_hit: int) -> list[int]:
    """The K values as ints, each checked against ``max_hit``."""
    out = [int(k) for k in ks]
    bad = [k for k in out if not 0 < k <= max_hit]
    if bad:
        raise ValueError(f"K = {bad} larger than max_hit = {max_hit} (the most hits of any training jet) or < 1")
    return out
