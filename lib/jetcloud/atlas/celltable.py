"""The calorimeter cell geometry as the ATLAS ingestion needs it: five columns, sorted by cell ID.

:class:`CellTable` holds, for every cell, its ID, ``CaloSampling`` number, eta, phi (rad, wrapped to (-pi, pi])
and Cartesian position X, Y, Z in mm (from ``rPerp``: X = r cos phi, Y = r sin phi, Z = r sinh eta), in
ascending-ID ("rank") order. Cluster cells of MLTree events are joined to it by ID with :meth:`CellTable.rank_of`
(binary search), so the source never has to be ID-sorted. It is built from a
:class:`jetcloud.atlas.cellgeo.CaloGeometry`, a ``CellGeo`` dict (:func:`jetcloud.atlas.mltree.read_cellgeo`)
or a file (an MLTree ``CellGeo`` tree, or a FastCaloSim geometry dump); files are read once per process.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jetcloud.kinematics import delta_phi

__all__ = ["CellTable"]

#: The ``CellGeo`` branches a :class:`CellTable` is built from (:meth:`CellTable.from_columns` order).
_CELLGEO_COLUMNS = ["cell_geo_ID", "cell_geo_sampling", "cell_geo_eta", "cell_geo_phi", "cell_geo_rPerp"]


@dataclass(frozen=True)
class CellTable:
    """The cell geometry columns this stage needs, in ascending-ID order ("rank" order).

    Built from a :class:`jetcloud.atlas.cellgeo.CaloGeometry`, a ``CellGeo`` dict (``read_cellgeo``) or a
    ``CellGeo`` file. The join never assumes the source is ID-sorted: rows are sorted by ID here, and
    :meth:`rank_of` maps IDs to ranks by binary search. Units: mm, rad.
    """

    ids: np.ndarray  # uint64, ascending
    sampling: np.ndarray  # int16
    eta: np.ndarray  # float64
    phi: np.ndarray  # float64
    x: np.ndarray  # float64, mm
    y: np.ndarray  # float64, mm
    z: np.ndarray  # float64, mm
    eta_rank: np.ndarray  # int64: rank of each cell in eta order
    source: str = ""

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_columns(
        cls, ids: np.ndarray, sampling: np.ndarray, eta: np.ndarray, phi: np.ndarray, r_perp: np.ndarray, source: str
    ) -> CellTable:
        """From ``CellGeo``-like columns in any order (IDs must be unique)."""
        ids = np.asarray(ids).astype(np.uint64, copy=False)
        order = np.argsort(ids, kind="stable")
        sid = ids[order]
        if len(sid) > 1 and np.any(sid[1:] == sid[:-1]):
            raise ValueError(f"geometry {source!r} has duplicate cell IDs")
        eta = np.asarray(eta, np.float64)[order]
        phi = delta_phi(np.asarray(phi, np.float64)[order], 0.0)  # wrapped to (-pi, pi]
        r = np.asarray(r_perp, np.float64)[order]
        eta_rank = np.empty(len(sid), np.int64)
        eta_rank[np.argsort(eta, kind="stable")] = np.arange(len(sid))
        return cls(
            ids=sid,
            sampling=np.asarray(sampling)[order].astype(np.int16),
            eta=eta,
            phi=phi,
            x=r * np.cos(phi),
            y=r * np.sin(phi),
            z=r * np.sinh(eta),
            eta_rank=eta_rank,
            source=source,
        )

    @classmethod
    def from_geometry(cls, geometry: Any) -> CellTable:
        """From a ``CaloGeometry``, a ``CellGeo`` dict, a ``CellTable`` (returned as is) or a ``CellGeo`` file."""
        if isinstance(geometry, CellTable):
            return geometry
        if isinstance(geometry, str | os.PathLike):
            return _cell_table_from_file(*_file_key(geometry))
        if isinstance(geometry, Mapping):
            return cls.from_columns(*(geometry[c] for c in _CELLGEO_COLUMNS), source="CellGeo dict")
        return cls.from_columns(
            geometry.cell_id,
            geometry.sampling,
            geometry.eta,
            geometry.phi,
            geometry.r_perp,
            source=getattr(geometry, "source", "") or type(geometry).__name__,
        )

    def rank_of(self, sorted_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(rank, found)`` for **ascending** query IDs (sorted queries keep the binary search cache-friendly)."""
        pos = np.searchsorted(self.ids, sorted_ids)
        pos_c = np.minimum(pos, max(len(self.ids) - 1, 0))
        found = (pos < len(self.ids)) & (self.ids[pos_c] == sorted_ids) if len(self.ids) else pos < 0
        return pos_c, found


def _file_key(path: str | os.PathLike) -> tuple[str, int, int]:
    """``(resolved path, mtime_ns, size)`` of a geometry file: the cache key of :func:`_cell_table_from_file`."""
    p = Path(path).resolve()
    if not p.is_file():
        raise FileNotFoundError(f"geometry file not found: {p}")
    st = p.stat()
    return str(p), st.st_mtime_ns, st.st_size


@functools.lru_cache(maxsize=4)
def _cell_table_from_file(path: str, _mtime: int, _size: int) -> CellTable:
    """Read the 5 needed ``CellGeo`` branches once per process (cached on path, mtime and size).

    A file without a ``CellGeo`` tree is read as a FastCaloSim geometry dump (real ATLAS cell IDs and positions,
    as in ``../shared/data/atlas-geometry``) through :func:`jetcloud.atlas.cellgeo.load_geometry`.
    """
    import uproot

    from jetcloud.atlas.mltree import read_cellgeo
    from jetcloud.atlas.mltree_schema import CELLGEO_TREE

    with uproot.open(path) as f:
        has_cellgeo = CELLGEO_TREE in {k.split(";")[0] for k in f.keys(recursive=False)}
    if not has_cellgeo:
        from jetcloud.atlas.cellgeo import load_geometry

        return CellTable.from_geometry(load_geometry(path))
    cols = read_cellgeo(path, _CELLGEO_COLUMNS)
    return CellTable.from_columns(*(cols[c] for c in _CELLGEO_COLUMNS), source=Path(path).name)
