"""Tests of the 4-2-0 topo-clustering (jetcloud.atlas.sim.clustering) on a small synthetic two-layer grid."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import ks_1samp, ks_2samp, norm

from jetcloud.atlas.sim.clustering import Clusters, SparseEnergy, add_noise, select, sparse_noise, topo_cluster

N_ETA, N_PHI = 30, 30
SIGMA_MEV = 50.0  # noise per cell; 4 sigma = 0.2 GeV, 2 sigma = 0.1 GeV


def grid_geometry(samplings: tuple[int, ...] = (2, 3)) -> SimpleNamespace:
    """Layers of N_ETA x N_PHI cells (EMB2, EMB3 numbering) over the same eta/phi grid.

    Neighbours: the 8 surrounding cells in a layer (phi wraps around) and the cell with the same (eta, phi)
    index in the adjacent layers. Cell index = layer * N_ETA * N_PHI + i_eta * N_PHI + i_phi.
    """
    n_lay = len(samplings)
    lay, ie, ip = np.meshgrid(np.arange(n_lay), np.arange(N_ETA), np.arange(N_PHI), indexing="ij")
    lay, ie, ip = lay.ravel(), ie.ravel(), ip.ravel()
    n = len(lay)
    rows, cols = [], []
    for dl, de, dp in [(0, a, b) for a in (-1, 0, 1) for b in (-1, 0, 1) if (a, b) != (0, 0)] + [
        (1, 0, 0),
        (-1, 0, 0),
    ]:
        l2, e2, p2 = lay + dl, ie + de, (ip + dp) % N_PHI
        ok = (l2 >= 0) & (l2 < n_lay) & (e2 >= 0) & (e2 < N_ETA)
        rows.append(np.flatnonzero(ok))
        cols.append((l2 * N_ETA * N_PHI + e2 * N_PHI + p2)[ok])
    r, c = np.concatenate(rows), np.concatenate(cols)
    adjacency = sp.csr_matrix((np.ones(len(r), bool), (r, c)), shape=(n, n))
    eta = (-1.5 + (ie + 0.5) * 0.1).astype(np.float32)
    phi = (-np.pi + (ip + 0.5) * 2 * np.pi / N_PHI).astype(np.float32)
    r_perp = (1600.0 + 200.0 * lay).astype(np.float32)
    return SimpleNamespace(
        sigma=np.full(n, SIGMA_MEV, np.float32),
        adjacency=adjacency,
        sampling=np.asarray(samplings, np.uint16)[lay],
        eta=eta,
        phi=phi,
        r_perp=r_perp,
        z=(r_perp * np.sinh(eta)).astype(np.float32),
        volume=np.full(n, 1e4, np.float32),
    )


def idx(i: int, j: int, layer: int = 0) -> int:
    return layer * N_ETA * N_PHI + i * N_PHI + (j % N_PHI)


GEO = grid_geometry()
N_CELLS = len(GEO.sigma)


def put_deposit(row: np.ndarray, i: int, j: int, e_seed: float = 1.0) -> set[int]:
    """Seed ``e_seed`` GeV at (i, j), 3 sigma ring around it, 1 sigma outer ring. Returns the expected cells."""
    row[idx(i, j)] = e_seed
    cells = {idx(i, j)}
    for di in range(-2, 3):
        for dj in range(-2, 3):
            if max(abs(di), abs(dj)) == 1:
                row[idx(i + di, j + dj)] = 0.15
            elif max(abs(di), abs(dj)) == 2:
                row[idx(i + di, j + dj)] = 0.05
            cells.add(idx(i + di, j + dj))
    return cells


def cluster_cells(cl: Clusters, k: int) -> np.ndarray:
    return cl.cell[cl.cell_offsets[k] : cl.cell_offsets[k + 1]]


def test_single_deposit_seed_growth_perimeter() -> None:
    e = np.zeros((1, N_CELLS), np.float32)
    expected = put_deposit(e[0], 15, 15)
    cl = topo_cluster(e, GEO)
    cl.validate()
    assert len(cl) == 1 and cl.n_events == 1
    assert set(cluster_cells(cl, 0).tolist()) == expected  # seed + 8 growing + 16 perimeter
    assert cl.n_cells[0] == 25
    assert np.all(cl.weight == 1)
    assert cl.e[0] == pytest.approx(1.0 + 8 * 0.15 + 16 * 0.05, rel=1e-5)
    assert cl.eta[0] == pytest.approx(GEO.eta[idx(15, 15)], abs=1e-5)
    assert cl.phi[0] == pytest.approx(GEO.phi[idx(15, 15)], abs=1e-5)
    assert cl.pt[0] == pytest.approx(cl.e[0] / np.cosh(cl.eta[0]))
    # the (x, y) barycentre of cells spread in phi lies slightly inside the 1600 mm cylinder
    assert cl.center_mag[0] == pytest.approx(1600.0 * np.cosh(cl.eta[0]), rel=0.03)
    rho = cl.center_mag[0] / np.cosh(cl.eta[0])
    assert cl.center_lambda[0] == pytest.approx(cl.center_mag[0] * (1 - 1400.0 / rho), rel=2e-3)
    assert 100.0 < cl.center_lambda[0] < 250.0
    assert np.isfinite(cl.first_eng_dens[0]) and cl.first_eng_dens[0] > 0
    assert cl.isolation[0] == pytest.approx(1.0)  # no other cluster around
    assert np.array_equal(cl.event_offsets, [0, 1]) and np.array_equal(cl.cell_offsets, [0, 25])


def test_phi_wraps_around_pi() -> None:
    e = np.zeros((1, N_CELLS), np.float32)
    put_deposit(e[0], 15, 0)  # the deposit straddles phi = +-pi
    e[0, idx(15, 0)] = 0.0
    e[0, idx(15, -1)] = 1.0
    e[0, idx(15, 0)] = 1.0
    cl = topo_cluster(e, GEO)
    assert len(cl) == 1
    assert abs(cl.phi[0]) == pytest.approx(np.pi, abs=0.12)


def test_two_separated_deposits_descending_energy() -> None:
    e = np.zeros((1, N_CELLS), np.float32)
    a = put_deposit(e[0], 8, 8, e_seed=1.0)
    b = put_deposit(e[0], 20, 20, e_seed=3.0)
    cl = topo_cluster(e, GEO)
    cl.validate()
    assert len(cl) == 2
    assert cl.e[0] > cl.e[1]
    assert set(cluster_cells(cl, 0).tolist()) == b
    assert set(cluster_cells(cl, 1).tolist()) == a


def test_noise_below_seed_threshold_gives_no_cluster() -> None:
    rng = np.random.default_rng(1)
    e = add_noise(np.zeros((4, N_CELLS), np.float32), GEO.sigma, rng)
    lim = 3.9 * SIGMA_MEV * 1e-3
    np.clip(e, -lim, lim, out=e)
    assert (np.abs(e) > 2 * SIGMA_MEV * 1e-3).mean() > 0.03  # plenty of growing cells, but no seed
    cl = topo_cluster(e, GEO)
    assert len(cl) == 0 and len(cl.cell) == 0
    assert np.array_equal(cl.event_offsets, np.zeros(5))


def test_negative_seed_only_with_seed_abs() -> None:
    e = np.zeros((1, N_CELLS), np.float32)
    e[0, idx(10, 10)] = -1.0
    assert len(topo_cluster(e, GEO)) == 0
    cl = topo_cluster(e, GEO, seed_abs=True)
    assert len(cl) == 1 and cl.e[0] == pytest.approx(-1.0)
    assert len(select(cl)) == 0  # E < 0 fails the MLTree selection


def test_negative_cells_grow_with_use_abs() -> None:
    e = np.zeros((1, N_CELLS), np.float32)
    e[0, idx(10, 10)] = 1.0
    e[0, idx(10, 11)] = -0.15  # |S| = 3: grows with use_abs
    e[0, idx(10, 12)] = 0.03  # perimeter of the negative growing cell
    assert topo_cluster(e, GEO).n_cells[0] == 3
    assert topo_cluster(e, GEO, use_abs=False).n_cells[0] == 1


def test_growing_bridge_merges_without_split() -> None:
    e = np.zeros((1, N_CELLS), np.float32)
    e[0, idx(10, 10)] = 1.0
    e[0, idx(10, 14)] = 1.0
    e[0, [idx(10, 11), idx(10, 12), idx(10, 13)]] = 0.15  # growing bridge
    cl = topo_cluster(e, GEO, split=False)
    assert len(cl) == 1 and cl.n_cells[0] == 5
    # a perimeter (non-growing) cell between two seeds does not merge them
    e[0, idx(10, 12)] = 0.05
    cl = topo_cluster(e, GEO, split=False)
    assert len(cl) == 2


def test_perimeter_cell_goes_to_most_significant_neighbour() -> None:
    e = np.zeros((1, N_CELLS), np.float32)
    e[0, idx(10, 10)] = 1.0
    e[0, idx(10, 12)] = 2.0
    e[0, idx(10, 11)] = 0.05  # 1 sigma, touches both seeds
    cl = topo_cluster(e, GEO)
    assert len(cl) == 2
    assert idx(10, 11) in cluster_cells(cl, 0)  # the 2 GeV cluster
    assert idx(10, 11) not in cluster_cells(cl, 1)
    assert cl.n_cells.tolist() == [2, 1]
    assert cl.isolation[1] < 1.0  # the 1 GeV cluster touches a clustered cell


def two_maxima_event(layer_samplings: tuple[int, ...] = (2, 3)) -> np.ndarray:
    ii, jj = np.meshgrid(np.arange(N_ETA), np.arange(N_PHI), indexing="ij")
    prof = 20.0 * np.exp(-((ii - 12) ** 2 + (jj - 10) ** 2) / 2.0) + 10.0 * np.exp(
        -((ii - 12) ** 2 + (jj - 16) ** 2) / 2.0
    )
    prof += 0.3 * np.exp(-((ii - 12) ** 2 + (jj - 13) ** 2) / 8.0)  # keeps the valley above 2 sigma
    prof[prof < 1e-3] = 0.0
    e = np.zeros((1, N_CELLS), np.float32)
    e[0, : N_ETA * N_PHI] = prof.ravel()
    return e


def test_split_two_maxima_shares_cells_and_conserves_energy() -> None:
    e = two_maxima_event()
    whole = topo_cluster(e, GEO, split=False)
    assert len(whole) == 1
    cl = topo_cluster(e, GEO, split=True)
    cl.validate()
    assert len(cl) == 2
    assert cl.e[0] > cl.e[1] > 5.0
    # the maxima are in different clusters
    assert idx(12, 10) in cluster_cells(cl, 0) and idx(12, 16) in cluster_cells(cl, 1)
    # shared cells: in both clusters, weights in (0, 1) summing to 1; at most two clusters per cell
    cells, counts = np.unique(cl.cell, return_counts=True)
    assert counts.max() == 2
    shared = cells[counts == 2]
    assert len(shared) > 0 and idx(12, 13) in shared  # equidistant from both maxima
    w_sum = np.bincount(cl.cell, cl.weight.astype(np.float64), minlength=N_CELLS)
    assert np.allclose(w_sum[cells], 1.0, atol=1e-6)
    is_shared = np.isin(cl.cell, shared)
    assert np.all((cl.weight[is_shared] > 0) & (cl.weight[is_shared] < 1))
    assert np.all(cl.weight[~is_shared] == 1)
    # the shared cell nearer the big cluster gets the larger weight from it
    w13 = cl.weight[(cl.cell == idx(12, 13)) & (cl.cluster == 0)][0]
    assert w13 > 0.5
    # energy conservation: same cells as the unsplit cluster, same total
    assert set(cells.tolist()) == set(whole.cell.tolist())
    assert cl.e.sum() == pytest.approx(whole.e[0], rel=1e-6)
    assert cl.energy.astype(np.float64).sum() == pytest.approx(e[0, cells].astype(np.float64).sum(), rel=1e-5)
    assert np.array_equal(cl.n_cells, np.diff(cl.cell_offsets))


def test_no_split_outside_split_samplings_or_below_500_mev() -> None:
    geo = grid_geometry(samplings=(1, 3))  # the deposit layer is EMB1: no maxima there
    assert len(topo_cluster(two_maxima_event(), geo, split=True)) == 1
    bridge = [idx(12, j) for j in range(9, 18)]
    e = two_maxima_event() * np.float32(0.015)
    e[0, bridge] += 0.15  # growing bridge; maxima at 0.45 and 0.30 GeV < 0.5 GeV
    assert len(topo_cluster(e, GEO, split=False)) == 1
    assert len(topo_cluster(e, GEO, split=True)) == 1
    e = two_maxima_event() * np.float32(0.06)
    e[0, bridge] += 0.15  # maxima at 1.35 and 0.75 GeV: split
    assert len(topo_cluster(e, GEO, split=True)) == 2


def test_events_do_not_mix_and_determinism() -> None:
    rng = np.random.default_rng(7)
    e = np.zeros((3, N_CELLS), np.float32)
    put_deposit(e[0], 15, 29, e_seed=2.0)  # at the last phi column: next event's cells follow in memory
    put_deposit(e[1], 15, 29, e_seed=2.0)
    put_deposit(e[2], 5, 5, e_seed=1.0)
    e[0, idx(29, 29, 1)] = 1.0  # very last cell of event 0 ...
    e[1, 0] = 1.0  # ... and very first cell of event 1 are not neighbours
    e[1, -1] = 1.0
    cl = topo_cluster(e, GEO)
    cl.validate()
    assert cl.counts.tolist() == [2, 3, 1]
    assert np.all(np.diff(cl.event) >= 0)
    c0 = cluster_cells(cl, 0)
    c1 = cluster_cells(cl, cl.event_offsets[1])
    assert np.array_equal(c0, c1) and cl.e[0] == cl.e[cl.event_offsets[1]]
    for ev in range(3):
        for k in range(cl.event_offsets[ev], cl.event_offsets[ev + 1]):
            assert cl.event[k] == ev
    # determinism with a fixed rng
    runs = []
    for _ in range(2):
        noisy = add_noise(two_maxima_event().repeat(3, 0), GEO.sigma, np.random.default_rng(3))
        runs.append(topo_cluster(noisy, GEO))
    for name in ("event", "e", "eta", "phi", "n_cells", "cluster", "cell", "weight", "energy"):
        assert np.array_equal(getattr(runs[0], name), getattr(runs[1], name))
    assert len(runs[0]) >= 3
    del rng


def test_add_noise_statistics_and_inplace() -> None:
    e = np.zeros((20, N_CELLS), np.float32)
    out = add_noise(e, GEO.sigma, np.random.default_rng(0))
    assert out is e
    assert e.std() == pytest.approx(SIGMA_MEV * 1e-3, rel=0.02)
    assert abs(e.mean()) < 1e-3
    e2 = np.zeros((20, N_CELLS), np.float32)
    copy = add_noise(e2, GEO.sigma, np.random.default_rng(0), inplace=False, block_rows=3)
    assert np.all(e2 == 0) and np.array_equal(copy, e)  # independent of block size


def test_select_mltree_cuts() -> None:
    e = np.zeros((2, N_CELLS), np.float32)
    put_deposit(e[0], 15, 15, e_seed=1.0)
    put_deposit(e[1], 1, 15, e_seed=5.0)  # eta = -1.35
    put_deposit(e[1], 25, 5, e_seed=2.0)  # eta = +1.05
    cl = topo_cluster(e, GEO)
    sel = select(cl, abs_eta_max=1.2)
    sel.validate()
    assert sel.counts.tolist() == [1, 1]
    assert np.allclose(sel.e, cl.e[[0, 2]])
    assert np.array_equal(sel.cell, np.concatenate([cluster_cells(cl, 0), cluster_cells(cl, 2)]))
    assert select(cl, e_max=4.5).counts.tolist() == [1, 1]


def test_cuts_inside_topo_cluster_equal_select() -> None:
    """topo_cluster(..., e_min, e_max, abs_eta_max) == select(topo_cluster(...)), isolation included."""
    e = np.zeros((3, N_CELLS), np.float32)
    put_deposit(e[0], 15, 15, e_seed=1.0)
    put_deposit(e[0], 18, 15, e_seed=0.6)  # touches the first one: isolation sees the other cluster
    put_deposit(e[1], 1, 15, e_seed=5.0)  # eta = -1.35
    put_deposit(e[1], 25, 5, e_seed=2.0)  # eta = +1.05
    e[2] = two_maxima_event()[0]
    noisy = add_noise(e, GEO.sigma, np.random.default_rng(11))
    full = topo_cluster(noisy, GEO)
    sizes = []
    for cuts in ({"abs_eta_max": 1.2}, {"e_min": 3.0}, {"e_max": 4.5, "abs_eta_max": 1.4}, {"e_min": 1e9}):
        ref = select(full, **{"e_min": -np.inf, "e_max": np.inf, "abs_eta_max": np.inf, **cuts})
        got = topo_cluster(noisy, GEO, **cuts)
        got.validate()
        sizes.append(len(got))
        for name in (
            "event",
            "e",
            "eta",
            "phi",
            "pt",
            "n_cells",
            "center_mag",
            "center_lambda",
            "first_eng_dens",
            "isolation",
            "cluster",
            "cell",
            "weight",
            "energy",
            "event_offsets",
            "cell_offsets",
        ):
            assert np.array_equal(getattr(got, name), getattr(ref, name), equal_nan=True), (cuts, name)
    assert len(full) > sizes[0] > 0 and sizes[-1] == 0


# ----------------------------------------------------------------------------------------------------------
# sparse noise (the simulation's default) against the dense reference


def _blob_events(n_events: int, rng: np.random.Generator) -> np.ndarray:
    """Noise-free energies: a Gaussian-profile blob of random energy in 2 of 3 events, none in the others."""
    e = np.zeros((n_events, N_CELLS), np.float32)
    ie, ip = np.divmod(np.arange(N_ETA * N_PHI), N_PHI)
    for k in np.flatnonzero(rng.random(n_events) < 2 / 3):
        ci, cj, e0 = rng.uniform(3, N_ETA - 3), rng.uniform(0, N_PHI), rng.exponential(2.0)
        dj = (ip - cj + N_PHI / 2) % N_PHI - N_PHI / 2
        prof = np.exp(-((ie - ci) ** 2 + dj**2) / 2.0)
        e[k, : N_ETA * N_PHI] = 0.7 * e0 * prof / prof.sum()
        e[k, N_ETA * N_PHI :] = 0.3 * e0 * prof / prof.sum()
    e[e < 1e-4] = 0.0
    return e


def test_sparse_noise_tail_cells_have_the_right_rate_and_values() -> None:
    rng = np.random.default_rng(11)
    n_events = 400
    sp_e = sparse_noise(np.zeros(0, np.int64), np.zeros(0, np.float32), n_events, GEO.sigma, rng)
    expected = n_events * N_CELLS * 2 * norm.sf(2.0)
    assert abs(len(sp_e.node) - expected) < 4 * np.sqrt(expected)
    assert np.all(np.diff(sp_e.node) > 0)
    z = sp_e.e / (SIGMA_MEV * 1e-3)
    assert np.all(np.abs(z) > 2.0 - 1e-5)
    tail = norm(0, 1)
    cdf = lambda x: (tail.cdf(x) - tail.cdf(2.0)) / tail.sf(2.0)  # noqa: E731
    assert ks_1samp(np.abs(z), cdf).pvalue > 0.01
    assert abs(np.mean(z > 0) - 0.5) < 4 * 0.5 / np.sqrt(len(z))


def test_sparse_and_dense_noise_give_the_same_clusters_in_distribution() -> None:
    """Same events, independent noise: the sparse mode must match the dense reference in distribution.

    Thresholds: two-sample KS p > 0.01 for cluster energy, cells per cluster and clusters per event; the
    noise-only cluster rates (clusters without a deposit cell) agree within 3 sigma (Poisson).
    """
    rng = np.random.default_rng(5)
    n_events = 3000
    clean = _blob_events(n_events, rng)
    dense = topo_cluster(add_noise(clean.copy(), GEO.sigma, np.random.default_rng(1)), GEO)
    node = np.flatnonzero(clean.reshape(-1))
    sparse_e = sparse_noise(node, clean.reshape(-1)[node], n_events, GEO.sigma, np.random.default_rng(2))
    sparse = topo_cluster(sparse_e, GEO)
    dense.validate()
    sparse.validate()
    assert len(sparse) > 1000 and len(dense) > 1000
    for a, b in ((dense.e, sparse.e), (dense.n_cells, sparse.n_cells), (dense.counts, sparse.counts)):
        assert ks_2samp(a, b, method="asymp").pvalue > 0.01
    rates = []
    for cl in (dense, sparse):
        has_dep = np.bincount(cl.cluster, clean[cl.event[cl.cluster], cl.cell] > 0, minlength=len(cl)) > 0
        rates.append(int((~has_dep).sum()))
    assert min(rates) > 30  # enough noise-only clusters for the comparison to mean something
    assert abs(rates[0] - rates[1]) < 3 * np.sqrt(rates[0] + rates[1])


def test_sparse_without_rng_equals_dense_without_noise() -> None:
    rng = np.random.default_rng(3)
    clean = _blob_events(50, rng)
    node = np.flatnonzero(clean.reshape(-1))
    sparse = topo_cluster(SparseEnergy(50, N_CELLS, node, clean.reshape(-1)[node]), GEO)
    dense = topo_cluster(clean, GEO)
    for name in ("event", "e", "n_cells", "cell", "weight", "isolation"):
        assert np.array_equal(getattr(sparse, name), getattr(dense, name), equal_nan=True), name


def test_sparse_rejects_thresholds_below_its_noise_threshold() -> None:
    sparse = sparse_noise(np.zeros(0, np.int64), np.zeros(0, np.float32), 2, GEO.sigma, np.random.default_rng(0))
    with pytest.raises(ValueError, match="sparse noise"):
        topo_cluster(sparse, GEO, grow_threshold=1.0)
