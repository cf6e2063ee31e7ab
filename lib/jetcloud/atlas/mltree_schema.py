"""The MLTree ROOT schema as data: ``EventTree`` and ``CellGeo`` branch names, C++ types, dtypes and depths.

Specification: ``docs/mltree-format.md``. Every branch is described by a
:class:`BranchSpec` ``(cpp_type, dtype, depth)``:

- ``cpp_type``: the C++ type MLTreeMaker books (``"int"``, ``"std::vector<std::vector<std::vector<int>>>"``...);
  the TTree writer uses it verbatim (``size_t`` is ``unsigned long`` on Linux, as in the real file);
- ``dtype``: the numpy dtype of the innermost values as uproot returns them;
- ``depth``: the number of jagged dimensions per entry (0 scalar, 1 ``vector<T>``, 2, 3).

Branch order is the file order of the real 2000-event JetPointNet file (``processing_output.txt`` key dump).
The groups of the specification add up to 7 + 16 + 28 + 42 + 19 + 8 = 120 branches, as the file has.
One discrepancy with the specification's tables: in the real file the cluster moments are ordered
``cluster_CENTER_MAG, cluster_FIRST_ENG_DENS, cluster_CENTER_LAMBDA, cluster_ISOLATION`` (the table of
section 3.5 lists CENTER_LAMBDA before FIRST_ENG_DENS); we follow the file.

Units: energies in GeV except ``trackSubtractedCaloEnergy`` (integer-valued MeV), ``cluster_ENERGY_DigiHSTruth``
(MeV) and ``cluster_cell_hitsTruthE`` (see :data:`HITS_TRUTH_E_UNIT_NOTE`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from jetcloud.atlas.layers import EXTRAPOLATION_SAMPLINGS

__all__ = [
    "BranchSpec",
    "EVENT_BRANCHES",
    "CELLGEO_BRANCHES",
    "JETPOINTNET_BRANCHES",
    "TRACK_VECTOR_BRANCHES",
    "TRUTH_VECTOR_BRANCHES",
    "CLUSTER_VECTOR_BRANCHES",
    "EXTRAPOLATION_BRANCHES",
    "HITS_TRUTH_E_UNIT_NOTE",
    "HITS_TRUTH_E_DEFAULT_UNIT",
    "MAX_TRUTH_PER_CELL",
    "CELL_E_THRESHOLD_GEV",
    "EVENT_TREE",
    "CELLGEO_TREE",
    "schema_for_tree",
    "resolve_branches",
]

EVENT_TREE = "EventTree"
CELLGEO_TREE = "CellGeo"

#: ``TruthParticlesPerCellLimt`` (sic) of MLTreeMaker: at most 3 truth contributions per cell (I6).
MAX_TRUTH_PER_CELL = 3
#: ``CellEthres`` of MLTreeMaker in GeV (I12; enforced by the generator, only reported for real files).
CELL_E_THRESHOLD_GEV = 0.005

#: Default unit of ``cluster_cell_hitsTruthE`` written by jetcloud (spec section 6.6).
HITS_TRUTH_E_DEFAULT_UNIT = "GeV"
HITS_TRUTH_E_UNIT_NOTE = (
    "cluster_cell_hitsTruthE: MLTree master writes the calibration-hit energyTotal() unscaled, i.e. MeV, while "
    "every other energy is GeV. The file JetPointNet used has it on the GeV scale, like cluster_cell_E. "
    "jetcloud writes GeV by default (a generator switch gives MeV); ingestion takes a unit parameter and checks "
    "that the per-cell sum of hitsTruthE is of the order of cluster_cell_E."
)


class BranchSpec(NamedTuple):
    """Type of one branch: C++ type, numpy dtype of the innermost values, jagged depth per entry."""

    cpp_type: str
    dtype: np.dtype
    depth: int


_I32, _I64, _U32, _U16, _U64, _F32 = (np.dtype(t) for t in ("int32", "int64", "uint32", "uint16", "uint64", "float32"))

_INT = BranchSpec("int", _I32, 0)
_FLOAT = BranchSpec("float", _F32, 0)
_VINT = BranchSpec("std::vector<int>", _I32, 1)
_VFLOAT = BranchSpec("std::vector<float>", _F32, 1)
_VVINT = BranchSpec("std::vector<std::vector<int>>", _I32, 2)
_VVFLOAT = BranchSpec("std::vector<std::vector<float>>", _F32, 2)
_VVSIZE = BranchSpec("std::vector<std::vector<size_t>>", _U64, 2)
_VVVINT = BranchSpec("std::vector<std::vector<std::vector<int>>>", _I32, 3)
_VVVFLOAT = BranchSpec("std::vector<std::vector<std::vector<float>>>", _F32, 3)

#: Integer hit-summary branches of the tracks (int32), in MLTree branch order.
TRACK_HIT_COUNTS: tuple[str, ...] = (
    "trackNumberOfPixelHits",
    "trackNumberOfSCTHits",
    "trackNumberOfPixelDeadSensors",
    "trackNumberOfSCTDeadSensors",
    "trackNumberOfPixelSharedHits",
    "trackNumberOfSCTSharedHits",
    "trackNumberOfPixelHoles",
    "trackNumberOfSCTHoles",
    "trackNumberOfInnermostPixelLayerHits",
    "trackNumberOfNextToInnermostPixelLayerHits",
    "trackExpectInnermostPixelLayerHit",
    "trackExpectNextToInnermostPixelLayerHit",
    "trackNumberOfTRTHits",
    "trackNumberOfTRTOutliers",
)

#: Track extrapolation branches (42) in pair order ``trackEta_S, trackPhi_S`` (spec 3.4).
EXTRAPOLATION_BRANCHES: tuple[str, ...] = tuple(
    name for s in EXTRAPOLATION_SAMPLINGS for name in (f"trackEta_{s}", f"trackPhi_{s}")
)


def _event_branches() -> dict[str, BranchSpec]:
    b: dict[str, BranchSpec] = {}
    # 3.1 event scalars (7)
    b["runNumber"] = _INT
    b["eventNumber"] = BranchSpec("Long64_t", _I64, 0)
    b["lumiBlock"] = _INT
    b["coreFlags"] = BranchSpec("uint32_t", _U32, 0)
    b["mcEventNumber"] = _INT
    b["mcChannelNumber"] = _INT
    b["mcEventWeight"] = _FLOAT
    # 3.2 truth particles (16)
    b["nTruthPart"] = _INT
    b["truthPartBarcode"] = _VINT
    b["truthPartPdgId"] = _VINT
    b["G4PreCalo_n_EM"] = _INT
    b["G4PreCalo_E_EM"] = _FLOAT
    b["G4PreCalo_n_Had"] = _INT
    b["G4PreCalo_E_Had"] = _FLOAT
    b["truthVertexX"] = _FLOAT
    b["truthVertexY"] = _FLOAT
    b["truthVertexZ"] = _FLOAT
    b["truthPartStatus"] = _VINT
    for name in ("truthPartPt", "truthPartE", "truthPartMass", "truthPartEta", "truthPartPhi"):
        b[name] = _VFLOAT
    # 3.3 tracks (28)
    b["nTrack"] = _INT
    for name in ("trackPt", "trackP", "trackMass", "trackEta", "trackPhi"):
        b[name] = _VFLOAT
    b["trackTruthParticleIndex"] = _VINT
    for name in ("trackVisibleCalHitCaloEnergy", "trackFullCalHitCaloEnergy", "trackSubtractedCaloEnergy"):
        b[name] = _VFLOAT
    for name in TRACK_HIT_COUNTS:
        b[name] = _VINT
    b["trackChiSquared"] = _VFLOAT
    b["trackNumberDOF"] = _VINT
    b["trackD0"] = _VFLOAT
    b["trackZ0"] = _VFLOAT
    # 3.4 extrapolations (42)
    for name in EXTRAPOLATION_BRANCHES:
        b[name] = _VFLOAT
    # 3.5 clusters (19), in real-file order (see module docstring)
    b["nCluster"] = _INT
    for name in ("cluster_E", "cluster_E_LCCalib", "cluster_Pt", "cluster_Eta", "cluster_Phi"):
        b[name] = _VFLOAT
    b["cluster_nCells"] = _VINT
    for name in (
        "cluster_ENG_CALIB_TOT",
        "cluster_ENG_CALIB_OUT_T",
        "cluster_ENG_CALIB_DEAD_TOT",
        "cluster_EM_PROBABILITY",
        "cluster_HAD_WEIGHT",
        "cluster_OOC_WEIGHT",
        "cluster_DM_WEIGHT",
        "cluster_CENTER_MAG",
        "cluster_FIRST_ENG_DENS",
        "cluster_CENTER_LAMBDA",
        "cluster_ISOLATION",
        "cluster_ENERGY_DigiHSTruth",
    ):
        b[name] = _VFLOAT
    # 3.6 cells in clusters and per-cell truth (8)
    b["cluster_cell_ID"] = _VVSIZE
    b["cluster_cell_E"] = _VVFLOAT
    b["cluster_fullHitsTruthIndex"] = _VVINT
    b["cluster_fullHitsTruthE"] = _VVFLOAT
    b["cluster_visibleHitsTruthIndex"] = _VVINT
    b["cluster_visibleHitsTruthE"] = _VVFLOAT
    b["cluster_cell_hitsTruthIndex"] = _VVVINT
    b["cluster_cell_hitsTruthE"] = _VVVFLOAT
    return b


#: Every ``EventTree`` branch of the real MLTree file, in file order: name -> (C++ type, dtype, depth).
EVENT_BRANCHES: Mapping[str, BranchSpec] = _event_branches()
assert len(EVENT_BRANCHES) == 120, len(EVENT_BRANCHES)


def _cellgeo_branches() -> dict[str, BranchSpec]:
    b: dict[str, BranchSpec] = {
        "cell_geo_ID": BranchSpec("std::vector<size_t>", _U64, 1),
        "cell_geo_sampling": BranchSpec("std::vector<unsigned short>", _U16, 1),
    }
    for name in ("eta", "phi", "rPerp", "deta", "dphi", "volume", "sigma"):
        b[f"cell_geo_{name}"] = _VFLOAT
    for direction in ("InPhi", "InEta", "InSamp", "SubDet", "SuperCalo"):
        b[f"cell_geo_prev{direction}"] = _VINT
        b[f"cell_geo_next{direction}"] = _VINT
    return b


#: The 19 ``CellGeo`` branches. The tree has one entry; each branch is a vector over all cells (depth 1).
CELLGEO_BRANCHES: Mapping[str, BranchSpec] = _cellgeo_branches()
assert len(CELLGEO_BRANCHES) == 19, len(CELLGEO_BRANCHES)

#: The 49 branches JetPointNet reads (spec 3.0): event id, 6 track branches, the 38 layer extrapolations
#: (not the presamplers) and the 4 cell branches.
JETPOINTNET_BRANCHES: tuple[str, ...] = (
    "eventNumber",
    "nTrack",
    "trackPt",
    "trackChiSquared",
    "trackNumberDOF",
    "trackSubtractedCaloEnergy",
    "trackTruthParticleIndex",
    *(n for n in EXTRAPOLATION_BRANCHES if not n.split("_", 1)[1].startswith("PreSampler")),
    "cluster_cell_ID",
    "cluster_cell_E",
    "cluster_cell_hitsTruthIndex",
    "cluster_cell_hitsTruthE",
)
assert len(JETPOINTNET_BRANCHES) == 49 and set(JETPOINTNET_BRANCHES) <= set(EVENT_BRANCHES)

#: Track vectors that must have length ``nTrack`` (I1): the 27 track vectors and the 42 extrapolations.
TRACK_VECTOR_BRANCHES: tuple[str, ...] = tuple(
    n for n, s in EVENT_BRANCHES.items() if n.startswith("track") and s.depth >= 1
)
#: ``truthPart*`` vectors that must have length ``nTruthPart`` (I2).
TRUTH_VECTOR_BRANCHES: tuple[str, ...] = tuple(
    n for n, s in EVENT_BRANCHES.items() if n.startswith("truthPart") and s.depth >= 1
)
#: Per-cluster vectors that must have outer length ``nCluster`` (I3).
CLUSTER_VECTOR_BRANCHES: tuple[str, ...] = tuple(
    n for n, s in EVENT_BRANCHES.items() if n.startswith("cluster_") and s.depth >= 1
)


def schema_for_tree(tree: str) -> Mapping[str, BranchSpec]:
    """Return :data:`EVENT_BRANCHES` or :data:`CELLGEO_BRANCHES` for a tree name; ``KeyError`` otherwise."""
    if tree == EVENT_TREE:
        return EVENT_BRANCHES
    if tree == CELLGEO_TREE:
        return CELLGEO_BRANCHES
    raise KeyError(f"no MLTree schema for tree {tree!r}; known trees: {EVENT_TREE}, {CELLGEO_TREE}")


def resolve_branches(branches: str | list[str] | tuple[str, ...] | None, schema: Mapping[str, BranchSpec]) -> list[str]:
    """Turn ``"all"``/``None`` or a list of names into a list of schema branch names in file order.

    Raises ``ValueError`` listing every name the schema does not know.
    """
    if branches is None or (isinstance(branches, str) and branches == "all"):
        return list(schema)
    if isinstance(branches, str):
        branches = [branches]
    unknown = [b for b in branches if b not in schema]
    if unknown:
        raise ValueError(f"branches not in the MLTree schema: {', '.join(unknown)}")
    wanted = set(branches)
    return [n for n in schema if n in wanted]


# --------------------------------------------------------------------------------------------------------------
# tiny valid examples (for tests of writers, readers and ingestion)
# --------------------------------------------------------------------------------------------------------------


def example_cellgeo(n_cells: int = 64, seed: int = 0) -> dict[str, np.ndarray]:
    """A small valid ``CellGeo`` dict: ascending IDs, 19 branches with schema dtypes, no neighbours (-1)."""
    from jetcloud.atlas.layers import LAYER_SAMPLING

    rng = np.random.default_rng(seed)
    geo: dict[str, np.ndarray] = {
        "cell_geo_ID": (np.uint64(740_000_000) + np.arange(n_cells, dtype=np.uint64) * np.uint64(4096)),
        "cell_geo_sampling": rng.choice(LAYER_SAMPLING, n_cells).astype(np.uint16),
        "cell_geo_eta": rng.uniform(-2.5, 2.5, n_cells).astype(np.float32),
        "cell_geo_phi": rng.uniform(-np.pi, np.pi, n_cells).astype(np.float32),
        "cell_geo_rPerp": rng.uniform(1500.0, 3800.0, n_cells).astype(np.float32),
        "cell_geo_deta": np.full(n_cells, 0.025, np.float32),
        "cell_geo_dphi": np.full(n_cells, 0.025, np.float32),
        "cell_geo_volume": rng.uniform(1e4, 1e6, n_cells).astype(np.float32),
        "cell_geo_sigma": rng.uniform(10.0, 100.0, n_cells).astype(np.float32),
    }
    for name, spec in CELLGEO_BRANCHES.items():
        if name not in geo:
            geo[name] = np.full(n_cells, -1, dtype=spec.dtype)
    return {name: geo[name] for name in CELLGEO_BRANCHES}


def example_events(n_events: int = 3, seed: int = 0, cell_ids: np.ndarray | None = None) -> dict[str, object]:
    """A small valid batch of all 120 ``EventTree`` branches satisfying invariants I1-I12.

    Scalars are numpy arrays, vectors awkward arrays with the schema dtypes. Event 0 has no tracks and no
    clusters (empty-list edge case); other events have trailing empty hitsTruth lists (I5), missing
    extrapolations (-999999999) and up to 3 ascending truth contributions per cell. ``cell_ids`` defaults to
    :func:`example_cellgeo`'s IDs.
    """
    rng = np.random.default_rng(seed)
    ids_pool = example_cellgeo()["cell_geo_ID"] if cell_ids is None else np.asarray(cell_ids, np.uint64)
    cols: dict[str, list] = {name: [] for name in EVENT_BRANCHES}
    for i in range(n_events):
        n_truth = int(rng.integers(3, 6))
        n_track = 0 if i == 0 else int(rng.integers(1, 4))
        n_clus = 0 if i == 0 else int(rng.integers(1, 4))
        for name, v in _example_scalars(i, n_truth, n_track, n_clus).items():
            cols[name].append(v)
        clusters = _example_clusters(rng, ids_pool, n_truth, n_clus)
        for name, spec in EVENT_BRANCHES.items():
            if spec.depth == 0:
                continue
            if name.startswith("truthPart"):
                n = n_truth
            elif name.startswith("track"):
                n = n_track
            else:
                n = n_clus
            cols[name].append(clusters[name] if name in clusters else _example_vector(rng, name, spec, n, n_truth))
    return _example_arrays(cols)


def _example_scalars(i: int, n_truth: int, n_track: int, n_clus: int) -> dict[str, object]:
    """The 17 scalar branches of example event ``i``."""
    return {
        "runNumber": 410000,
        "eventNumber": 10**10 + i,
        "lumiBlock": 1,
        "coreFlags": 0,
        "mcEventNumber": i,
        "mcChannelNumber": 361021,
        "mcEventWeight": 1.0,
        "nTruthPart": n_truth,
        "G4PreCalo_n_EM": 0,
        "G4PreCalo_E_EM": 0.0,
        "G4PreCalo_n_Had": 0,
        "G4PreCalo_E_Had": 0.0,
        "truthVertexX": 0.0,
        "truthVertexY": 0.0,
        "truthVertexZ": 0.0,
        "nTrack": n_track,
        "nCluster": n_clus,
    }


def _example_clusters(rng: np.random.Generator, ids_pool: np.ndarray, n_truth: int, n_clus: int) -> dict[str, list]:
    """Cluster energies, cell counts, cells and per-cell truth of one example event (6 branches)."""
    cluster_E = np.sort(rng.uniform(0.1, 50.0, n_clus))[::-1]
    n_cells = rng.integers(1, 7, n_clus)
    n_kept = np.maximum(n_cells - rng.integers(0, 3, n_clus), 0)
    cell_id, cell_e, hit_i, hit_e = [], [], [], []
    for c in range(n_clus):
        cell_id.append(rng.choice(ids_pool, int(n_kept[c]), replace=False).tolist())
        cell_e.append(rng.uniform(0.005, 2.0, int(n_kept[c])).tolist())
        hi, he = [], []
        for k in range(int(n_cells[c])):
            m = int(rng.integers(0, min(3, n_truth) + 1)) if k < n_kept[c] else 0  # trailing slots stay empty (I5)
            hi.append(rng.choice(n_truth, m, replace=False).tolist())
            he.append(np.sort(rng.uniform(0.001, 1.0, m)).tolist())
        hit_i.append(hi)
        hit_e.append(he)
    return {
        "cluster_E": cluster_E.tolist(),
        "cluster_nCells": n_cells.tolist(),
        "cluster_cell_ID": cell_id,
        "cluster_cell_E": cell_e,
        "cluster_cell_hitsTruthIndex": hit_i,
        "cluster_cell_hitsTruthE": hit_e,
    }


def _example_vector(rng: np.random.Generator, name: str, spec: BranchSpec, n: int, n_truth: int) -> list:
    """Random values of vector branch ``name`` (``n`` entries) of one example event; 30% missing extrapolations."""
    if name == "trackTruthParticleIndex":
        return rng.integers(-1, n_truth, n).tolist()
    if name == "trackNumberDOF":
        return rng.integers(1, 40, n).tolist()
    if name == "trackSubtractedCaloEnergy":
        return np.floor(rng.uniform(0, 5000, n)).tolist()
    if name in EXTRAPOLATION_BRANCHES:
        sentinel = np.float32(-999999999)
        kind = name.split("_", 1)[0]
        value = rng.uniform(-2.5, 2.5, n) if kind == "trackEta" else rng.uniform(-np.pi, np.pi, n)
        return np.where(rng.random(n) < 0.3, sentinel, value.astype(np.float32)).tolist()
    if name in ("cluster_fullHitsTruthIndex", "cluster_visibleHitsTruthIndex"):
        return [rng.choice(n_truth, 2, replace=False).tolist() for _ in range(n)]
    if name in ("cluster_fullHitsTruthE", "cluster_visibleHitsTruthE"):
        return [rng.uniform(0, 5, 2).tolist() for _ in range(n)]
    if spec.dtype.kind == "f":
        return rng.normal(size=n).tolist()
    return rng.integers(0, 10, n).tolist()


def _example_arrays(cols: Mapping[str, list]) -> dict[str, object]:
    """Per-event values of every branch -> numpy (scalars) or awkward (vectors) arrays with the schema dtypes."""
    import awkward as ak

    out: dict[str, object] = {}
    for name, spec in EVENT_BRANCHES.items():
        if spec.depth == 0:
            out[name] = np.asarray(cols[name], dtype=spec.dtype)
        else:
            out[name] = ak.values_astype(ak.Array(cols[name]), spec.dtype)
    return out
