"""Calorimeter geometry of the simulation: built-in table vs the real ATLAS geometry, lookups, neighbours, I/O."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot

from jetcloud.atlas.cellgeo import (
    CELLGEO_COLUMNS,
    NEIGHBOUR_NAMES,
    CaloGeometry,
    load_geometry,
)
from jetcloud.atlas.layers import SAMPLING_NAMES
from jetcloud.paths import atlas_geometry_file

EXPECTED_DTYPES = {
    "cell_geo_ID": np.uint64,
    "cell_geo_sampling": np.uint16,
    **{f"cell_geo_{n}": np.float32 for n in ("eta", "phi", "rPerp", "deta", "dphi", "volume", "sigma")},
    **{f"cell_geo_{n}": np.int32 for n in NEIGHBOUR_NAMES},
}
EXPECTED_ORDER = [
    "cell_geo_ID",
    "cell_geo_sampling",
    "cell_geo_eta",
    "cell_geo_phi",
    "cell_geo_rPerp",
    "cell_geo_deta",
    "cell_geo_dphi",
    "cell_geo_volume",
    "cell_geo_sigma",
    "cell_geo_prevInPhi",
    "cell_geo_nextInPhi",
    "cell_geo_prevInEta",
    "cell_geo_nextInEta",
    "cell_geo_prevInSamp",
    "cell_geo_nextInSamp",
    "cell_geo_prevSubDet",
    "cell_geo_nextSubDet",
    "cell_geo_prevSuperCalo",
    "cell_geo_nextSuperCalo",
]


@pytest.fixture(scope="module")
def builtin() -> CaloGeometry:
    return CaloGeometry.builtin()


@pytest.fixture(scope="module")
def real() -> CaloGeometry:
    path = atlas_geometry_file()
    if path is None:
        pytest.skip("../shared/data/atlas-geometry not found: real-geometry comparison skipped")
    return CaloGeometry.from_fastcalosim(path)


@pytest.fixture(params=["builtin", "real"])
def geo(request: pytest.FixtureRequest) -> CaloGeometry:
    return request.getfixturevalue(request.param)


def test_builtin_counts_match_real(builtin: CaloGeometry, real: CaloGeometry) -> None:
    nb, nr = builtin.sampling_counts(), real.sampling_counts()
    assert nr.sum() == 187_652
    for s, name in enumerate(SAMPLING_NAMES):
        assert nr[s] > 0, name
        assert abs(nb[s] - nr[s]) <= 0.02 * nr[s], f"{name}: builtin {nb[s]} vs real {nr[s]}"


def test_builtin_basics(builtin: CaloGeometry) -> None:
    g = builtin
    assert len(g) == g.n_cells == int(g.sampling_counts().sum())
    assert g.cell_id.dtype == np.uint64 and g.sampling.dtype == np.uint16
    assert len(np.unique(g.cell_id)) == g.n_cells
    assert g.cell_id.max() < 2**32
    assert np.all(np.diff(g.cell_id.astype(np.int64)) > 0), "builtin IDs are stored sorted"
    assert np.all((g.phi > -np.pi) & (g.phi <= np.pi))
    assert np.all(g.volume > 0) and np.all(g.sigma > 0) and np.all(g.r_perp > 0)
    np.testing.assert_allclose(np.hypot(g.x, g.y), g.r_perp)
    # noise in MeV in the published ranges
    emb2 = g.sigma[g.sampling == 2]
    assert 15 < emb2.min() and emb2.max() < 60
    fcal = g.sigma[g.sampling >= 21]
    assert 250 < fcal.min() and fcal.max() <= 1000
    # layer radii / |z| near the JetPointNet reference surfaces
    assert abs(np.median(g.r_perp[g.sampling == 2]) - 1723.89) < 20
    assert abs(np.median(np.abs(g.z[g.sampling == 6])) - 3983.68) < 20


def test_builtin_without_shared(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    monkeypatch.setenv("JETCLOUD_SHARED", str(tmp_path / "nowhere"))
    assert atlas_geometry_file() is None
    assert load_geometry("builtin").n_cells > 180_000


def test_cell_index_round_trip(geo: CaloGeometry) -> None:
    rows = geo.cell_index(geo.sampling, geo.eta, geo.phi)
    assert rows.dtype == np.int64
    bad = np.flatnonzero(rows != np.arange(geo.n_cells))
    assert len(bad) == 0, f"{len(bad)} cell centres not found, e.g. samplings {geo.sampling[bad[:5]]}"


def test_cell_index_inside_and_outside(builtin: CaloGeometry) -> None:
    g = builtin
    rng = np.random.default_rng(3)
    rows = rng.integers(0, g.n_cells, 20_000)
    e = g.eta[rows] + rng.uniform(-0.49, 0.49, len(rows)) * g.deta[rows]
    p = g.phi[rows] + rng.uniform(-0.49, 0.49, len(rows)) * g.dphi[rows]
    np.testing.assert_array_equal(g.cell_index(g.sampling[rows], e, p), rows)
    # no cell: EMB2 beyond |eta| 1.5, FCAL at eta 0, unknown sampling
    assert np.all(g.cell_index(2, np.array([1.6, -2.0, 7.0]), np.zeros(3)) == -1)
    assert g.cell_index(21, 0.0, 0.0) == -1
    assert np.all(g.cell_index(np.array([-1, 24]), np.zeros(2), np.zeros(2)) == -1)
    # phi wrapping: phi and phi + 2 pi give the same cell
    np.testing.assert_array_equal(g.cell_index(g.sampling[rows], e, p + 2 * np.pi), rows)


def test_index_of_id_shuffled(builtin: CaloGeometry) -> None:
    rng = np.random.default_rng(7)
    perm = rng.permutation(builtin.n_cells)
    g = builtin.select(perm)
    assert not np.all(np.diff(g.cell_id.astype(np.int64)) > 0)
    ids = builtin.cell_id[::97]
    rows = g.index_of_id(ids)
    np.testing.assert_array_equal(g.cell_id[rows], ids)
    # neighbours were remapped consistently by select()
    ok = g.nextInPhi >= 0
    np.testing.assert_array_equal(g.cell_id[g.nextInPhi[ok]], builtin.cell_id[builtin.nextInPhi[perm[ok]]])
    # lookups do not depend on the order either
    np.testing.assert_array_equal(g.cell_index(g.sampling, g.eta, g.phi), np.arange(g.n_cells))
    unknown = np.array([1, 2**31 + 5], dtype=np.uint64)
    assert np.all(g.index_of_id(unknown) == -1)
    with pytest.raises(KeyError, match="2 of 3 cell IDs"):
        g.index_of_id(np.r_[ids[:1], unknown], strict=True)


def test_adjacency(geo: CaloGeometry) -> None:
    adj = geo.adjacency
    assert adj.shape == (geo.n_cells, geo.n_cells) and adj.dtype == bool
    assert (adj != adj.T).nnz == 0, "not symmetric"
    assert not adj.diagonal().any()
    deg = np.diff(adj.indptr)
    assert deg.min() >= 1
    # EMB2 interior (away from the |eta| edges and from eta = 0, where the real half-barrels are staggered in
    # phi by a quarter cell): 8 same-sampling neighbours
    rr = np.repeat(np.arange(geo.n_cells), deg)
    same = geo.sampling[rr] == geo.sampling[adj.indices]
    same_deg = np.bincount(rr[same], minlength=geo.n_cells)
    interior = (geo.sampling == 2) & (np.abs(geo.eta) < 1.35) & (np.abs(geo.eta) > 0.025)
    assert interior.sum() > 25_000
    assert np.all(same_deg[interior] == 8)
    # depth links: every EMB2 interior cell touches EMB1 and EMB3 cells
    linked = geo.sampling[adj.indices]
    for other in (1, 3):
        has = np.bincount(rr[linked == other], minlength=geo.n_cells) > 0
        assert np.all(has[interior & (np.abs(geo.eta) < 1.3)])
    # neighbour columns are consistent with the adjacency
    keys = rr * geo.n_cells + adj.indices  # sorted: CSR rows in order, indices sorted within rows
    for name in ("prevInPhi", "nextInPhi", "prevInEta", "nextInEta", "nextInSamp"):
        col = getattr(geo, name)
        ok = np.flatnonzero(col >= 0)
        assert len(ok) > 0
        want = ok * geo.n_cells + col[ok]
        pos = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
        assert np.all(keys[pos] == want), name


def test_neighbour_columns(builtin: CaloGeometry) -> None:
    g = builtin
    emb2 = np.flatnonzero((g.sampling == 2) & (np.abs(g.eta) < 1.3))
    nxt = g.nextInPhi[emb2]
    assert np.all(nxt >= 0)
    np.testing.assert_array_equal(g.prevInPhi[nxt], emb2)
    np.testing.assert_allclose(g.eta[nxt], g.eta[emb2])
    # EMB2 -> EMB3 is exactly one cell (0.025 in 0.05); EMB3 -> EMB2 is two in eta: -1
    assert np.all(g.sampling[g.nextInSamp[emb2]] == 3)
    assert np.all(g.prevInSamp[g.sampling == 3] >= -1)
    assert np.all(g.prevInSamp[(g.sampling == 3) & (np.abs(g.eta) < 1.3)] == -1)
    for name in NEIGHBOUR_NAMES:
        col = getattr(g, name)
        assert col.dtype == np.int32 and col.min() >= -1 and col.max() < g.n_cells


def test_to_cellgeo_branches(builtin: CaloGeometry) -> None:
    br = builtin.to_cellgeo_branches()
    assert list(br) == EXPECTED_ORDER == list(CELLGEO_COLUMNS)
    for name, arr in br.items():
        assert arr.dtype == EXPECTED_DTYPES[name], name
        assert arr.shape == (builtin.n_cells,)
    try:
        from jetcloud.atlas.mltree_schema import CELLGEO_BRANCHES
    except ImportError:
        return
    assert list(CELLGEO_BRANCHES) == EXPECTED_ORDER


@pytest.mark.parametrize("kind", ["rntuple", "ttree"])
def test_from_cellgeo_round_trip(builtin: CaloGeometry, tmp_path, kind: str) -> None:  # noqa: ANN001
    br = builtin.to_cellgeo_branches()
    path = tmp_path / f"cellgeo_{kind}.root"
    with uproot.recreate(path) as f:
        data = {k: ak.unflatten(v, np.array([len(v)])) for k, v in br.items()}  # one entry, no Python loop
        if kind == "rntuple":
            f["CellGeo"] = data
        else:
            f.mktree("CellGeo", {k: ak.type(v) for k, v in data.items()})
            f["CellGeo"].extend(data)
    g = load_geometry(path)
    back = g.to_cellgeo_branches()
    for name in br:
        np.testing.assert_array_equal(back[name], br[name], err_msg=name)
        assert back[name].dtype == br[name].dtype
    np.testing.assert_array_equal(g.cell_index(g.sampling, g.eta, g.phi), np.arange(g.n_cells))


def test_load_geometry_errors(tmp_path) -> None:  # noqa: ANN001
    missing = tmp_path / "missing.root"
    with pytest.raises(FileNotFoundError, match="missing.root"):
        load_geometry(missing)
    other = tmp_path / "other.root"
    with uproot.recreate(other) as f:
        f["Other"] = {"x": np.arange(3)}
    with pytest.raises(ValueError, match="neither a 'CellGeo' tree"):
        load_geometry(other)
    text = tmp_path / "text.root"
    text.write_text("not a ROOT file\n")
    with pytest.raises(ValueError, match="not a readable ROOT file"):
        load_geometry(text)
    partial = tmp_path / "partial.root"
    with uproot.recreate(partial) as f:
        f["CellGeo"] = {"cell_geo_ID": ak.Array([np.arange(3, dtype=np.uint64)])}
    with pytest.raises(ValueError, match="misses CellGeo branches"):
        load_geometry(partial)


def test_load_geometry_real(real: CaloGeometry) -> None:
    g = load_geometry(atlas_geometry_file())
    np.testing.assert_array_equal(g.cell_id, real.cell_id)
    assert g.cell_id.min() == 740294656 and g.cell_id.max() == 1284493104
    assert np.all(g.volume > 0)
