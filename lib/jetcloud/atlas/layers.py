"""Calorimeter layer table and track geometry shared by the simulation and the ingestion.

Samplings follow ATLAS ``CaloSampling`` numbering (0..23). The 19 layers that JetPointNet uses for track
intersections (``track_metadata.py``) are reference *surfaces*: a cylinder of fixed radius (barrel, Tile) or a
disk at fixed |z| (end-caps); see ``docs/mltree-format.md``
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: CaloSampling number -> name (docs/mltree-format.md).
SAMPLING_NAMES: tuple[str, ...] = (
    "PreSamplerB",
    "EMB1",
    "EMB2",
    "EMB3",
    "PreSamplerE",
    "EME1",
    "EME2",
    "EME3",
    "HEC0",
    "HEC1",
    "HEC2",
    "HEC3",
    "TileBar0",
    "TileBar1",
    "TileBar2",
    "TileGap1",
    "TileGap2",
    "TileGap3",
    "TileExt0",
    "TileExt1",
    "TileExt2",
    "FCAL0",
    "FCAL1",
    "FCAL2",
)
SAMPLING_INDEX: dict[str, int] = {name: i for i, name in enumerate(SAMPLING_NAMES)}

#: The 19 JetPointNet layers in ``trackEta_<L>`` branch order, with surface kind and value in mm.
LAYER_NAMES: tuple[str, ...] = (
    "EMB1",
    "EMB2",
    "EMB3",
    "EME1",
    "EME2",
    "EME3",
    "HEC0",
    "HEC1",
    "HEC2",
    "HEC3",
    "TileBar0",
    "TileBar1",
    "TileBar2",
    "TileGap1",
    "TileGap2",
    "TileGap3",
    "TileExt0",
    "TileExt1",
    "TileExt2",
)
LAYER_SAMPLING: np.ndarray = np.array([SAMPLING_INDEX[n] for n in LAYER_NAMES], dtype=np.int16)
#: True where the layer is a disk at fixed |z| (end-caps), False for a cylinder at fixed r.
LAYER_FIXED_Z: np.ndarray = np.array([n[:3] in ("EME", "HEC") for n in LAYER_NAMES])
#: Radius (fixed-r layers) or |z| (fixed-z layers) in mm, exactly as in JetPointNet ``track_metadata.py``.
LAYER_POSITION_MM: np.ndarray = np.array(
    [
        1532.18,
        1723.89,
        1923.02,
        3790.03,
        3983.68,
        4195.84,
        4461.25,
        4869.50,
        5424.50,
        5905.00,
        2450.00,
        2995.00,
        3630.00,
        3215.00,
        3630.00,
        2246.50,
        2450.00,
        2870.00,
        3480.00,
    ]
)

#: Samplings with ``trackEta_<S>``/``trackPhi_<S>`` branches, in MLTree branch order (presamplers first).
EXTRAPOLATION_SAMPLINGS: tuple[str, ...] = ("PreSamplerB", "PreSamplerE", *LAYER_NAMES)

#: MLTree sentinel for "the track does not enter this sampling": -999999999 stored as float32 (= -1e9).
MISSING_EXTRAPOLATION = np.float32(-999999999)
#: Readers test ``value < MISSING_THRESHOLD`` (JetPointNet ``UPROOT_MASK_VALUE_THRESHOLD``), never equality.
MISSING_THRESHOLD = -100000.0

#: Reference surfaces of the 21 extrapolation samplings, in EXTRAPOLATION_SAMPLINGS order. PreSamplerB is
#: a cylinder at r ~ 1410 mm and PreSamplerE a disk at |z| ~ 3680 mm [approx]; the 19 layers use
#: LAYER_POSITION_MM. True where the surface is a disk at fixed |z|.
EXTRAPOLATION_FIXED_Z: np.ndarray = np.concatenate([[False, True], LAYER_FIXED_Z])
#: Radius (fixed-r) or |z| (fixed-z) of each extrapolation surface in mm.
EXTRAPOLATION_POSITION_MM: np.ndarray = np.concatenate([[1410.0, 3680.0], LAYER_POSITION_MM])
#: Approximate |eta| coverage (lo, hi) of each extrapolation sampling (docs/mltree-format.md, "approx. eta
#: coverage"); a track *enters* the sampling only if its hit on the reference surface has lo <= |eta| < hi.
EXTRAPOLATION_ETA_RANGE: np.ndarray = np.array(
    [
        (0.0, 1.52),  # PreSamplerB
        (1.5, 1.8),  # PreSamplerE
        (0.0, 1.475),
        (0.0, 1.475),
        (0.0, 1.35),  # EMB1-3
        (1.375, 3.2),
        (1.375, 3.2),
        (1.5, 2.5),  # EME1-3
        (1.5, 3.2),
        (1.5, 3.2),
        (1.5, 3.2),
        (1.5, 3.2),  # HEC0-3
        (0.0, 1.0),
        (0.0, 1.0),
        (0.0, 1.0),  # TileBar0-2
        (0.8, 1.0),
        (0.8, 1.0),
        (1.0, 1.6),  # TileGap1-3
        (0.8, 1.7),
        (0.8, 1.7),
        (0.8, 1.7),  # TileExt0-2
    ]
)


def _layer_columns(layers: Sequence[str | int] | None) -> np.ndarray:
    """Indices into LAYER_NAMES for ``layers`` (names or indices; None = all 19)."""
    if layers is None:
        return np.arange(len(LAYER_NAMES))
    return np.array([LAYER_NAMES.index(x) if isinstance(x, str) else int(x) for x in layers], dtype=np.int64)


def layer_intersections(
    eta: np.ndarray,
    phi: np.ndarray,
    layers: Sequence[str | int] | None = None,
    reproduce_original_bug: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """3-D points (mm) where tracks cross JetPointNet's reference surfaces (docs/mltree-format.md).

    Parameters
    ----------
    eta, phi
        Per-layer track eta / phi (rad), shape ``(n, k)`` with ``k = len(layers)`` (19 by default, in
        ``LAYER_NAMES`` order). Values below ``MISSING_THRESHOLD`` mark a layer the track does not enter.
    layers
        Layer names or indices into ``LAYER_NAMES`` that the ``k`` columns correspond to; None = all 19.
    reproduce_original_bug
        Reproduce the original JetPointNet fixed-z formula, which scales (cos phi, sin phi, sinh eta) by
        ``Z0 / sinh(eta)``: for eta < 0 it gives (-r cos phi, -r sin phi, +Z0), the correct point reflected
        through the origin. **This is a bug**; use it only for baseline comparisons with the original code.

    Returns
    -------
    x, y, z
        float64 arrays of shape ``(n, k)`` in mm; NaN where eta or phi is missing (and on fixed-z layers where
        eta == 0, which never reaches a disk).

    Fixed r = R: (R cos phi, R sin phi, R sinh eta). Fixed z = Z0: z = sign(eta) Z0, r = Z0 / |sinh eta|.
    """
    eta = np.asarray(eta, dtype=np.float64)
    phi = np.asarray(phi, dtype=np.float64)
    cols = _layer_columns(layers)
    if eta.shape != phi.shape or eta.shape[-1] != len(cols):
        raise ValueError(f"eta/phi must have shape (n, {len(cols)}), got {eta.shape} and {phi.shape}")
    pos = LAYER_POSITION_MM[cols]
    fixed_z = LAYER_FIXED_Z[cols]
    valid = (eta > MISSING_THRESHOLD) & (phi > MISSING_THRESHOLD)
    eta_v = np.where(valid, eta, 0.0)
    phi_v = np.where(valid, phi, 0.0)
    sh = np.sinh(eta_v)
    with np.errstate(divide="ignore", invalid="ignore"):
        if reproduce_original_bug:
            r = np.where(fixed_z, pos / sh, pos)  # signed: negative for eta < 0 -> reflected x, y
            z = np.where(fixed_z, pos, pos * sh)
        else:
            r = np.where(fixed_z, pos / np.abs(sh), pos)
            z = np.where(fixed_z, np.sign(eta_v) * pos, pos * sh)
        valid &= ~(fixed_z & (sh == 0.0))
        x = np.where(valid, r * np.cos(phi_v), np.nan)
        y = np.where(valid, r * np.sin(phi_v), np.nan)
        z = np.where(valid, z, np.nan)
    return x, y, z


def cell_xyz(eta: np.ndarray, phi: np.ndarray, r_perp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cartesian cell centre (mm) from (eta, phi, rPerp [mm]).

    X = r cos phi, Y = r sin phi, Z = r sinh eta.
    """
    eta = np.asarray(eta, dtype=np.float64)
    phi = np.asarray(phi, dtype=np.float64)
    r = np.asarray(r_perp, dtype=np.float64)
    return r * np.cos(phi), r * np.sin(phi), r * np.sinh(eta)
