"""Calorimeter layer table and track geometry shared by the simulation and the ingestion.

Samplings follow ATLAS ``CaloSampling`` numbering (0..23). The 19 layers that JetPointNet uses for track
intersections (``track_metadata.py``) are reference *surfaces*: a cylinder of fixed radius (barrel, Tile) or a
disk at fixed |z| (end-caps); see ``mltree-schema.md`` section 5.
"""

from __future__ import annotations

import numpy as np

#: CaloSampling number -> name (mltree-schema.md 5.1).
SAMPLING_NAMES: tuple[str, ...] = (
    "PreSamplerB", "EMB1", "EMB2", "EMB3",
    "PreSamplerE", "EME1", "EME2", "EME3",
    "HEC0", "HEC1", "HEC2", "HEC3",
    "TileBar0", "TileBar1", "TileBar2",
    "TileGap1", "TileGap2", "TileGap3",
    "TileExt0", "TileExt1", "TileExt2",
    "FCAL0", "FCAL1", "FCAL2",
)  # fmt: skip
SAMPLING_INDEX: dict[str, int] = {name: i for i, name in enumerate(SAMPLING_NAMES)}

#: The 19 JetPointNet layers in ``trackEta_<L>`` branch order, with surface kind and value in mm.
LAYER_NAMES: tuple[str, ...] = (
    "EMB1", "EMB2", "EMB3", "EME1", "EME2", "EME3", "HEC0", "HEC1", "HEC2", "HEC3",
    "TileBar0", "TileBar1", "TileBar2", "TileGap1", "TileGap2", "TileGap3", "TileExt0", "TileExt1", "TileExt2",
)  # fmt: skip
LAYER_SAMPLING: np.ndarray = np.array([SAMPLING_INDEX[n] for n in LAYER_NAMES], dtype=np.int16)
#: True where the layer is a disk at fixed |z| (end-caps), False for a cylinder at fixed r.
LAYER_FIXED_Z: np.ndarray = np.array([n[:3] in ("EME", "HEC") for n in LAYER_NAMES])
#: Radius (fixed-r layers) or |z| (fixed-z layers) in mm, exactly as in JetPointNet ``track_metadata.py``.
LAYER_POSITION_MM: np.ndarray = np.array(
    [1532.18, 1723.89, 1923.02, 3790.03, 3983.68, 4195.84, 4461.25, 4869.50, 5424.50, 5905.00,
     2450.00, 2995.00, 3630.00, 3215.00, 3630.00, 2246.50, 2450.00, 2870.00, 3480.00]
)  # fmt: skip

#: Samplings with ``trackEta_<S>``/``trackPhi_<S>`` branches, in MLTree branch order (presamplers first).
EXTRAPOLATION_SAMPLINGS: tuple[str, ...] = ("PreSamplerB", "PreSamplerE", *LAYER_NAMES)

#: MLTree sentinel for "the track does not enter this sampling": -999999999 stored as float32 (= -1e9).
MISSING_EXTRAPOLATION = np.float32(-999999999)
#: Readers test ``value < MISSING_THRESHOLD`` (JetPointNet ``UPROOT_MASK_VALUE_THRESHOLD``), never equality.
MISSING_THRESHOLD = -100000.0
