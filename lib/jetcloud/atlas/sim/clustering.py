"""Electronics noise and ATLAS 4-2-0 topological cell clustering with cluster splitting.

Physics reference: ATLAS Collaboration, "Topological cell clustering in the ATLAS calorimeters and its
performance in LHC Run 1", Eur. Phys. J. C 77 (2017) 490 (sections 4.2 and 4.3). Output conventions follow
the MLTree ``cluster_*`` branches (``docs/mltree-format.md``).

Everything works on a *chunk* of events at once: cell energies are a dense ``(n_events, n_cells)`` float32
array in **GeV**, and every (event, cell) pair is a node ``g = event * n_cells + cell`` of one block-diagonal
graph. No Python loop runs over cells or events; Python loops only run over growth iterations (a few tens).

Algorithm (:func:`topo_cluster`), with significance ``S = E / sigma`` (``sigma`` = total cell noise):

1. **Seeds**: ``S > seed_threshold`` (``|S|`` with ``seed_abs=True``; the ATLAS default is positive seeds).
2. **Growth**: a breadth-first search from all seeds of all events at once collects every cell with
   ``|S| > grow_threshold`` (``S`` without ``use_abs``) that is connected to a seed through such cells.
   ``scipy.sparse.csgraph.connected_components`` on the edges found on the way gives the proto-clusters:
   clusters touching through a growing cell are merged, as in ATLAS.
3. **Perimeter**: neighbours of the grown cells with ``|S| > cell_threshold`` that are not growing cells
   are added once and do not propagate. A perimeter cell that touches several clusters goes to the cluster of
   its **most significant neighbouring growing cell** (ties: lowest cluster id). This mimics ATLAS, which
   processes each growth generation in descending significance and gives the cell to the first cluster that
   reaches it.
4. **Splitting** (:func:`_split`, ``split=True``): local maxima are cells in ``split_samplings`` (default
   EMB2, EMB3, EME2, EME3) with ``E > split_e_min`` (0.5 GeV), ``E`` larger than every neighbour inside the
   parent cluster and at least ``split_min_neighbours`` (4) neighbours inside the parent cluster. Parents with
   two or more maxima are re-grown from all maxima simultaneously (graph distance inside the parent, no
   thresholds). A cell reached in the same step by several split clusters is **shared** by the two whose
   local maximum is most energetic, and a shared cell does not propagate further (ATLAS). Cells cut off
   behind shared cells are attached in a second growth pass without sharing. Shared-cell weights are
   ``w1 = E1 / (E1 + r E2)``, ``w2 = 1 - w1``, ``r = exp(d1 - d2)``, with ``E_i`` the energy of split cluster
   ``i`` from its unshared cells (clipped at 1 keV) and ``d_i`` the 3D distance of the cell to that
   cluster's barycentre (positive-energy weighted, unshared cells) in units of ``shower_size_mm``
   (default 50 mm, a typical EM shower lateral size).
   *Not done*: the ATLAS secondary maxima in other samplings (EMB1/EME1, HEC, Tile), and the split
   clusters' re-ordering by Et; clusters with fewer than two maxima are kept unchanged.

The MLTree selection (``0 <= E <= 1e4`` GeV, ``|eta| <= 2.5``) is the separate function :func:`select`.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.special import ndtr, ndtri

from jetcloud.arrays import sort_stable, unique

log = logging.getLogger(__name__)

#: CaloSampling numbers where ATLAS looks for splitting maxima: EMB2, EMB3, EME2, EME3 (FCAL0 = 21 optional).
SPLIT_SAMPLINGS: tuple[int, ...] = (2, 3, 6, 7)

_CLUSTER_COLUMNS = (
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
)
_CELL_COLUMNS = ("cluster", "cell", "weight", "energy")


@dataclass
class Clusters:
    """Topo-clusters of a chunk of events as flat numpy columns.

    Cluster level (one row per cluster, grouped by event, ascending, and by **descending** ``e`` inside an
    event, as MLTree writes them; equal energies keep formation order):

    - ``event`` int64: event number inside the chunk (0..n_events-1)
    - ``e`` float64, GeV: sum of weight x E over all member cells (EM scale, noise included)
    - ``eta``, ``phi`` float64: barycentre weighted by the positive weighted cell energies; ``phi`` is the
      circular mean in (-pi, pi]. Clusters without positive cells use unweighted means.
    - ``pt`` float64, GeV: ``e / cosh(eta)``
    - ``n_cells`` int32: all member cells (``cluster_nCells``), including those below any writing threshold
    - ``center_mag`` float64, mm: distance of the positive-energy barycentre (x, y, z) from the origin
    - ``center_lambda`` float64, mm: ``center_mag`` minus the distance from the origin to the calorimeter
      front face along the barycentre direction (approximation of the depth along the shower axis; the front
      face is the cylinder ``r = front_r_mm`` closed by the planes ``|z| = front_z_mm``). Can be negative.
    - ``first_eng_dens`` float64, GeV/mm^3: ``sum(E_i * E_i / V_i) / sum(E_i)`` over positive weighted cell
      energies ``E_i``; NaN when the geometry has no ``volume`` (or the cluster has no positive cell)
    - ``isolation`` float64 in [0, 1]: per sampling, the fraction of the cluster's neighbouring cells (outside
      the cluster, same sampling as the neighbour) that are in no cluster, averaged over samplings with the
      cluster's positive energy in that sampling as weight (count fraction if that energy is zero);
      NaN if the cluster has no neighbouring cell

    Cell level (one row per (cluster, cell) membership, grouped by cluster in the cluster order above, cells
    ascending inside a cluster):

    - ``cluster`` int64: row into the cluster table
    - ``cell`` int64: geometry cell index
    - ``weight`` float32: 1 for unshared cells; the two weights of a shared cell sum to 1
    - ``energy`` float32, GeV: ``weight * E_cell``

    Offsets: ``event_offsets`` (n_events + 1) into the cluster rows, ``cell_offsets`` (n_clusters + 1) into
    the cell rows, so ``ak.unflatten(col, np.diff(offsets))`` builds the jagged arrays.
    """

    n_events: int
    event: np.ndarray
    e: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    pt: np.ndarray
    n_cells: np.ndarray
    center_mag: np.ndarray
    center_lambda: np.ndarray
    first_eng_dens: np.ndarray
    isolation: np.ndarray
    cluster: np.ndarray
    cell: np.ndarray
    weight: np.ndarray
    energy: np.ndarray
    event_offsets: np.ndarray
    cell_offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.e)

    @property
    def counts(self) -> np.ndarray:
        """Clusters per event (int64, length n_events)."""
        return np.diff(self.event_offsets)

    @property
    def cell_counts(self) -> np.ndarray:
        """Membership rows per cluster (int64, length n_clusters); equals ``n_cells``."""
        return np.diff(self.cell_offsets)

    def take(self, rows: np.ndarray) -> Clusters:
        """Keep the cluster rows ``rows`` (boolean mask or sorted integer index), with their cells.

        The caller keeps the event grouping and the order (a boolean mask always does).
        """
        rows = np.arange(len(self))[rows] if np.asarray(rows).dtype == bool else np.asarray(rows, np.int64)
        new_id = np.full(len(self), -1, np.int64)
        new_id[rows] = np.arange(len(rows))
        keep_cell = new_id[self.cluster] >= 0
        cols: dict[str, Any] = {name: getattr(self, name)[rows] for name in _CLUSTER_COLUMNS}
        cols.update({name: getattr(self, name)[keep_cell] for name in _CELL_COLUMNS})
        cols["cluster"] = new_id[cols["cluster"]]
        return _finish(self.n_events, cols)

    def validate(self) -> None:
        """Raise ``AssertionError`` if an invariant is broken (order, offsets, weights, energies)."""
        assert np.all(np.diff(self.event) >= 0)
        same = self.event[1:] == self.event[:-1]
        assert np.all(self.e[1:][same] <= self.e[:-1][same]), "clusters not in descending E"
        assert np.all(np.diff(self.cluster) >= 0)
        assert np.array_equal(np.bincount(self.cluster, minlength=len(self)), self.n_cells)
        e_sum = np.bincount(self.cluster, self.energy.astype(np.float64), minlength=len(self))
        assert np.allclose(e_sum, self.e, rtol=1e-4, atol=1e-4)
        assert np.all((self.weight > 0) & (self.weight <= 1))


def _finish(n_events: int, cols: dict[str, Any]) -> Clusters:
    """Build a :class:`Clusters` from ordered columns, computing both offset arrays."""
    event_offsets = np.zeros(n_events + 1, np.int64)
    np.cumsum(np.bincount(cols["event"], minlength=n_events), out=event_offsets[1:])
    n_cl = len(cols["e"])
    cell_offsets = np.zeros(n_cl + 1, np.int64)
    np.cumsum(np.bincount(cols["cluster"], minlength=n_cl), out=cell_offsets[1:])
    return Clusters(n_events=n_events, event_offsets=event_offsets, cell_offsets=cell_offsets, **cols)


def empty_clusters(n_events: int) -> Clusters:
    """A :class:`Clusters` without any cluster."""
    f8 = np.zeros(0, np.float64)
    cols: dict[str, Any] = {name: f8 for name in _CLUSTER_COLUMNS}
    cols.update(event=np.zeros(0, np.int64), n_cells=np.zeros(0, np.int32))
    cols.update(cluster=np.zeros(0, np.int64), cell=np.zeros(0, np.int64))
    cols.update(weight=np.zeros(0, np.float32), energy=np.zeros(0, np.float32))
    return _finish(n_events, cols)


def select(clusters: Clusters, e_min: float = 0.0, e_max: float = 1e4, abs_eta_max: float = 2.5) -> Clusters:
    """MLTree cluster selection: ``e_min <= e <= e_max`` (GeV) and ``|eta| <= abs_eta_max``.

    Order is kept (MLTree applies the cut while filling its E-ordered multimap).
    """
    keep = (clusters.e >= e_min) & (clusters.e <= e_max) & (np.abs(clusters.eta) <= abs_eta_max)
    return clusters.take(keep)


# ----------------------------------------------------------------------------------------------------------
# noise


def add_noise(
    energy: np.ndarray,
    sigma_mev: np.ndarray,
    rng: np.random.Generator,
    *,
    inplace: bool = True,
    block_rows: int = 8,
) -> np.ndarray:
    """Add Gaussian electronics noise to cell energies.

    Parameters
    ----------
    energy : float32 (n_events, n_cells), GeV. **Modified in place** and returned when ``inplace`` is true
        (the default, to keep the memory of a chunk bounded); otherwise a float32 copy is returned.
    sigma_mev : (n_cells,) total noise per cell in **MeV** (``cell_geo_sigma``).
    rng : numpy Generator; the noise is drawn event by event in blocks of ``block_rows`` rows, so the result
        is deterministic for a given generator state and independent of ``block_rows``.
    """
    out = energy if (inplace and energy.dtype == np.float32) else np.array(energy, dtype=np.float32)
    if out.ndim != 2:
        raise ValueError(f"energy must be (n_events, n_cells), got shape {out.shape}")
    sigma_gev = np.asarray(sigma_mev, np.float32) * np.float32(1e-3)
    buf = np.empty((min(block_rows, max(len(out), 1)), out.shape[1]), np.float32)
    for start in range(0, len(out), block_rows):
        stop = min(start + block_rows, len(out))
        b = buf[: stop - start]
        rng.standard_normal(out=b, dtype=np.float32)
        b *= sigma_gev
        out[start:stop] += b
    return out


@dataclass
class SparseEnergy:
    """Cell energies of a chunk where only the cells that can matter carry a value (see :func:`sparse_noise`).

    ``node`` (int64, ascending, unique) are the nodes ``event * n_cells + cell`` with a value ``e`` (float32,
    GeV): the cells with a deposit (with their full noise) and the empty cells whose noise is beyond
    ``noise_threshold`` sigma in ``|E|``. Every other cell is empty with ``|noise| < noise_threshold`` sigma;
    :func:`topo_cluster` draws that noise (the Gaussian truncated to ``|S| < noise_threshold``) with ``rng``
    for the cells it looks at, i.e. the perimeter candidates. ``rng=None`` means no noise: those cells are 0.
    """

    n_events: int
    n_cells: int
    node: np.ndarray
    e: np.ndarray
    rng: np.random.Generator | None = None
    noise_threshold: float = 2.0

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_events, n_cells)``, like the dense matrix."""
        return self.n_events, self.n_cells

    def to_dense(self) -> np.ndarray:
        """The (n_events, n_cells) float32 matrix with the undrawn cells at 0 (for tests and plots)."""
        out = np.zeros(self.n_events * self.n_cells, np.float32)
        out[self.node] = self.e
        return out.reshape(self.n_events, self.n_cells)


def sparse_noise(
    node: np.ndarray,
    e: np.ndarray,
    n_events: int,
    sigma_mev: np.ndarray,
    rng: np.random.Generator,
    threshold: float = 2.0,
) -> SparseEnergy:
    """Noise where it matters, without drawing it for every cell (the default of the simulation).

    The cells with a deposit (``node = event * n_cells + cell``, ascending and unique, energies ``e`` in GeV)
    get their full Gaussian noise. Among the empty cells, the noise of each is beyond ``threshold`` sigma in
    ``|E|`` with probability ``p = 2 Phi(-threshold)``, independently: the chunk's ``n_events x n_cells``
    (cell with ``sigma > 0``) slots are walked with geometric gaps of parameter ``p`` (exactly independent
    Bernoulli(p) trials, hence a binomial number per event with uniformly placed cells) and the drawn
    cells get a value from the Gaussian tail beyond ``threshold`` sigma with a random sign. Drawn cells
    that have a deposit are dropped (they already carry their full noise). The remaining empty cells are
    left to :func:`topo_cluster`, which draws them from the truncated Gaussian when they become perimeter
    candidates. With ``threshold`` equal to the growth threshold (2) the clusters are the same in
    distribution as with :func:`add_noise` on the dense matrix.
    """
    sigma = np.asarray(sigma_mev, np.float64) * 1e-3
    n_cells = len(sigma)
    node = np.asarray(node, np.int64)
    dep_e = np.asarray(e, np.float32) + (rng.standard_normal(len(node)) * sigma[node % n_cells]).astype(np.float32)
    valid = np.flatnonzero(sigma > 0)
    p = 2.0 * float(ndtr(-threshold))
    slots = _bernoulli_slots(n_events * len(valid), p, rng)
    t_event, t_pos = np.divmod(slots, max(len(valid), 1))
    t_node = t_event * n_cells + valid[t_pos]
    # tail beyond threshold: |z| = -ndtri(u p / 2), u in (0, 1]
    z = -ndtri((1.0 - rng.random(len(t_node))) * (p / 2))
    z = np.where(rng.random(len(t_node)) < 0.5, -z, z)
    t_e = (z * sigma[valid[t_pos]]).astype(np.float32)
    fresh = ~_sorted_member(t_node, node)
    all_node = np.concatenate([node, t_node[fresh]])
    all_e = np.concatenate([dep_e, t_e[fresh]])
    order = np.argsort(all_node, kind="stable")
    return SparseEnergy(n_events, n_cells, all_node[order], all_e[order], rng, float(threshold))


def _bernoulli_slots(n_slots: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """Ascending indices in ``[0, n_slots)`` of independent Bernoulli(``p``) successes (geometric gaps)."""
    if n_slots <= 0 or p <= 0:
        return np.zeros(0, np.int64)
    mean = n_slots * p
    parts, last = [], -1
    while True:
        gaps = rng.geometric(p, int(mean + 8 * np.sqrt(mean) + 64))
        pos = last + np.cumsum(gaps)
        parts.append(pos[pos < n_slots])
        if pos[-1] >= n_slots:
            return np.concatenate(parts)
        last = int(pos[-1])


def _sorted_member(query: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Mask of ``query`` values present in the ascending array ``keys``."""
    if not len(keys):
        return np.zeros(len(query), bool)
    pos = np.searchsorted(keys, query).clip(0, len(keys) - 1)
    return keys[pos] == query


def _truncated_normal(n: int, threshold: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` standard normal values conditioned on ``|z| < threshold`` (inverse CDF)."""
    lo = float(ndtr(-threshold))
    return ndtri(lo + rng.random(n) * (1.0 - 2.0 * lo))


@dataclass
class _Fill:
    """Lazy noise of the empty cells in the sparse mode: which nodes have a value, and how to draw the rest."""

    known: np.ndarray  # bool, one per node (lazily zeroed)
    sigma: np.ndarray  # float64 GeV per cell (0 where the geometry has no noise)
    rng: np.random.Generator
    threshold: float

    def __call__(self, flat: np.ndarray, nodes: np.ndarray, n_cells: int) -> None:
        """Draw the values of the not yet known ``nodes`` (truncated Gaussian) into ``flat``."""
        new = nodes[~self.known[nodes]]
        if not len(new):
            return
        new = unique(new)
        z = _truncated_normal(len(new), self.threshold, self.rng)
        flat[new] = (z * self.sigma[new % n_cells]).astype(np.float32)
        self.known[new] = True


# ----------------------------------------------------------------------------------------------------------
# geometry arrays (cached per geometry object) and graph helpers


@dataclass
class _GeoArrays:
    """Per-cell arrays of a geometry in the dtypes the clustering uses, built once per geometry object."""

    sources: tuple  # the geometry attributes they were built from (checked by identity on every call)
    shape: tuple[int, int]  # adjacency shape
    indptr: np.ndarray  # int64, adjacency CSR
    indices: np.ndarray  # int32 (or int64), adjacency CSR
    pattern: sp.csr_matrix  # adjacency with every stored entry True (for the sparse neighbour products)
    sigma: np.ndarray  # float32, GeV, inf where sigma <= 0
    sampling: np.ndarray  # int64
    n_samp: int
    eta: np.ndarray  # float64
    sin_phi: np.ndarray  # float64
    cos_phi: np.ndarray  # float64
    x: np.ndarray  # float64, mm
    y: np.ndarray
    z: np.ndarray
    volume: np.ndarray | None  # float64, mm^3


_GEO_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_GEO_ATTRS = ("adjacency", "sigma", "sampling", "eta", "phi", "r_perp", "z", "volume")


def _geometry_arrays(geometry: Any) -> _GeoArrays:
    """:class:`_GeoArrays` of ``geometry``, cached (weakly) per geometry object.

    The cache entry is rebuilt when one of the geometry's attributes is replaced by another object; arrays
    modified in place are not detected (geometries are not meant to change).
    """
    sources = tuple(getattr(geometry, name, None) for name in _GEO_ATTRS)
    try:
        hit = _GEO_CACHE.get(geometry)
    except TypeError:  # not weak-referenceable (e.g. SimpleNamespace): no caching
        hit = None
    if hit is not None and all(a is b for a, b in zip(hit.sources, sources, strict=True)):
        return hit
    adj = sp.csr_matrix(geometry.adjacency)
    indptr = adj.indptr.astype(np.int64, copy=False)
    pattern = sp.csr_matrix((np.ones(len(adj.indices), bool), adj.indices, adj.indptr), shape=adj.shape)
    sigma = np.asarray(geometry.sigma, np.float64) * 1e-3  # GeV
    sigma = np.where(sigma > 0, sigma, np.inf).astype(np.float32)
    sampling = np.asarray(geometry.sampling).astype(np.int64)
    phi = np.asarray(geometry.phi, np.float64)
    x, y, z = _cartesian(geometry)
    volume = getattr(geometry, "volume", None)
    out = _GeoArrays(
        sources=sources,
        shape=adj.shape,
        indptr=indptr,
        indices=adj.indices,
        pattern=pattern,
        sigma=sigma,
        sampling=sampling,
        n_samp=int(sampling.max()) + 1 if len(sampling) else 1,
        eta=np.asarray(geometry.eta, np.float64),
        sin_phi=np.sin(phi),
        cos_phi=np.cos(phi),
        x=x,
        y=y,
        z=z,
        volume=None if volume is None else np.asarray(volume, np.float64),
    )
    try:
        _GEO_CACHE[geometry] = out
    except TypeError:
        pass
    return out


def _expand(cells: np.ndarray, indptr: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Neighbours of ``cells`` in CSR (``indptr``, ``indices``): (row into ``cells``, neighbour cell)."""
    start = indptr[cells]
    deg = indptr[cells + 1] - start
    src = np.repeat(np.arange(len(cells), dtype=np.int64), deg)
    if not len(src):
        return src, np.zeros(0, np.int64)
    start -= np.cumsum(deg) - deg  # minus the position of each row's first neighbour in the output
    pos = np.arange(len(src), dtype=np.int64)
    pos += np.repeat(start, deg)
    return src, indices[pos]


def _first_per_group(keys_sorted: np.ndarray) -> np.ndarray:
    """Start index of each run of equal values in a sorted array."""
    if not len(keys_sorted):
        return np.zeros(0, np.int64)
    return np.flatnonzero(np.r_[True, keys_sorted[1:] != keys_sorted[:-1]])


# ----------------------------------------------------------------------------------------------------------
# clustering


def topo_cluster(
    energy: np.ndarray | SparseEnergy,
    geometry: Any,
    seed_threshold: float = 4.0,
    grow_threshold: float = 2.0,
    cell_threshold: float = 0.0,
    use_abs: bool = True,
    seed_abs: bool = False,
    split: bool = True,
    split_samplings: tuple[int, ...] = SPLIT_SAMPLINGS,
    split_e_min: float = 0.5,
    split_min_neighbours: int = 4,
    shower_size_mm: float = 50.0,
    front_r_mm: float = 1400.0,
    front_z_mm: float = 3640.0,
    *,
    e_min: float | None = None,
    e_max: float | None = None,
    abs_eta_max: float | None = None,
) -> Clusters:
    """ATLAS 4-2-0 topo-clustering (with optional splitting) of every event of a chunk at once.

    Parameters
    ----------
    energy : float32 (n_events, n_cells), GeV, cell energies **including noise** (see :func:`add_noise`), or
        a :class:`SparseEnergy` (see :func:`sparse_noise`; the default of the simulation): then no array of
        all cells is scanned, and the noise of the empty cells next to growing cells is drawn here. The
        sparse mode needs ``seed_threshold`` and ``grow_threshold`` >= its ``noise_threshold``.
    geometry : object with ``sigma`` (n_cells,) total noise in MeV, ``adjacency`` (symmetric scipy.sparse
        CSR, n_cells x n_cells), ``sampling`` (CaloSampling 0..23), ``eta``, ``phi``, ``r_perp`` (mm), and
        optionally ``z`` (mm; default ``r_perp * sinh(eta)``) and ``volume`` (mm^3, for ``first_eng_dens``).
        Cells with ``sigma <= 0`` are treated as infinitely noisy (never significant). Derived per-cell
        arrays are cached per geometry object (weakly), so the geometry's arrays must not change in place.
    seed_threshold, grow_threshold, cell_threshold : significance thresholds (4, 2, 0). Comparisons are
        strict (``S > t``).
    use_abs : compare ``|S|`` for growing and perimeter cells (ATLAS default).
    seed_abs : compare ``|S|`` for seeds too (ATLAS default: positive seeds only).
    split : run the cluster splitter (see module docstring).
    split_samplings, split_e_min (GeV), split_min_neighbours : local-maximum definition.
    shower_size_mm : length unit of the distances in the shared-cell weights.
    front_r_mm, front_z_mm : calorimeter front face used by ``center_lambda``.
    e_min, e_max, abs_eta_max : optional cluster selection (``e_min <= e <= e_max``, ``|eta| <= abs_eta_max``;
        ``None``: no cut) applied as soon as the energy and eta of the clusters are known, before the other
        moments are computed. ``topo_cluster(..., e_min=a, e_max=b, abs_eta_max=c)`` returns exactly
        ``select(topo_cluster(...), a, b, c)`` (the isolation still sees the cells of all clusters), faster.

    Returns
    -------
    :class:`Clusters`, all clusters that pass the optional cuts (by default no cut: apply :func:`select` for
    the MLTree selection, or pass its cuts here).
    """
    fill: _Fill | None = None
    if isinstance(energy, SparseEnergy):
        n_events, n_cells, geo = _check_shape(energy.shape, geometry)
        flat, seed_g, fill = _sparse_setup(energy, geo, seed_threshold, grow_threshold, seed_abs)
    else:
        energy = np.asarray(energy)
        if energy.ndim != 2:
            raise ValueError(f"energy must be (n_events, n_cells), got shape {energy.shape}")
        n_events, n_cells, geo = _check_shape(energy.shape, geometry)
        flat = energy.reshape(-1)
        seed_g = _find_seeds(energy, geo.sigma, seed_threshold, seed_abs)
    grow_lim = (np.float32(grow_threshold) * geo.sigma).astype(np.float32)
    cell_lim = (np.float32(cell_threshold) * geo.sigma).astype(np.float32)
    if not len(seed_g):
        return empty_clusters(n_events)
    lims = (grow_lim, cell_lim, use_abs)
    m_g, m_label, n_proto, slot = _proto_clusters(flat, n_events, n_cells, geo, seed_g, lims, fill)
    # --- membership rows (cluster id, node, weight) ---
    m_cell = m_g % n_cells
    m_e = flat[m_g].astype(np.float64)
    if split:
        cfg = (split_samplings, split_e_min, split_min_neighbours, shower_size_mm)
        rows = _split(m_g, m_cell, m_label, m_e, n_proto, n_cells, slot, geo, cfg)
    else:
        rows = _unsplit_rows(m_g, m_label, n_proto, n_cells)
    cuts = (e_min, e_max, abs_eta_max)
    return _moments(n_events, n_cells, flat, geo, slot, len(m_g), *rows, front_r_mm, front_z_mm, cuts)


def _check_shape(shape: tuple[int, int], geometry: Any) -> tuple[int, int, _GeoArrays]:
    """Check the energy shape against the geometry; return ``(n_events, n_cells, geometry arrays)``."""
    n_events, n_cells = shape
    geo = _geometry_arrays(geometry)
    if geo.shape != (n_cells, n_cells):
        raise ValueError(f"adjacency shape {geo.shape} does not match {n_cells} cells")
    return n_events, n_cells, geo


def _sparse_setup(
    energy: SparseEnergy, geo: _GeoArrays, seed_threshold: float, grow_threshold: float, seed_abs: bool
) -> tuple[np.ndarray, np.ndarray, _Fill | None]:
    """Node values (lazily zeroed dense array, written only at the known nodes), seeds and the lazy noise."""
    if min(seed_threshold, grow_threshold) < energy.noise_threshold:
        raise ValueError(
            f"sparse noise drawn beyond {energy.noise_threshold} sigma cannot cluster with seed/grow thresholds "
            f"{seed_threshold}/{grow_threshold}: use the dense matrix"
        )
    size = energy.n_events * energy.n_cells
    flat = np.zeros(size, np.float32)
    flat[energy.node] = energy.e
    vals = np.abs(energy.e) if seed_abs else energy.e
    seed_g = energy.node[vals > np.float32(seed_threshold) * geo.sigma[energy.node % energy.n_cells]]
    if energy.rng is None:
        return flat, seed_g, None
    known = np.zeros(size, bool)
    known[energy.node] = True
    sigma = np.where(np.isfinite(geo.sigma), geo.sigma, 0.0).astype(np.float64)
    return flat, seed_g, _Fill(known, sigma, energy.rng, energy.noise_threshold)


def _find_seeds(energy: np.ndarray, sigma: np.ndarray, seed_threshold: float, seed_abs: bool) -> np.ndarray:
    """Seed nodes ``g`` (int64, ascending) with ``S > seed_threshold``, by a blocked scan (small temporaries)."""
    n_events, n_cells = energy.shape
    seed_lim = np.float32(seed_threshold) * sigma
    seeds = []
    block = max(1, (1 << 22) // max(n_cells, 1))
    for start in range(0, n_events, block):
        rows = energy[start : start + block]
        vals = np.abs(rows) if seed_abs else rows
        seeds.append(np.flatnonzero(vals > seed_lim) + start * n_cells)
    return np.concatenate(seeds).astype(np.int64) if seeds else np.zeros(0, np.int64)


def _proto_clusters(
    flat: np.ndarray,
    n_events: int,
    n_cells: int,
    geo: _GeoArrays,
    seed_g: np.ndarray,
    lims: tuple[np.ndarray, np.ndarray, bool],
    fill: _Fill | None,
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """Grow the seeds, label the proto-clusters and add the perimeter: ``(m_g, m_label, n_proto, slot)``.

    ``lims`` is ``(grow_lim, cell_lim, use_abs)``; ``fill`` draws the noise of empty cells (sparse mode).

    ``m_g``: clustered nodes, ascending (grouped by event, then cell); ``m_label``: their proto-cluster;
    ``slot[g] - 1``: row of node ``g`` in ``m_g`` (-1 if not clustered).
    """
    grow_g, edges, perimeter, n_iter = _grow(flat, n_cells, geo, seed_g, lims, fill)
    slot, n_proto, grow_label = _label_growing(flat.size, grow_g, *edges)
    per_g, per_label = _perimeter(flat, n_cells, geo.sigma, slot, grow_label, n_proto, *perimeter)
    m_g = _merge_sorted(grow_g, per_g)  # ascending: grouped by event, then cell
    slot[m_g] = np.arange(1, len(m_g) + 1, dtype=slot.dtype)  # from here on: node -> row of m_g
    m_label = np.empty(len(m_g), np.int64)
    m_label[slot[grow_g] - 1] = grow_label
    m_label[slot[per_g] - 1] = per_label
    log.debug(
        "topo_cluster: %d events, %d seeds, %d iterations, %d proto-clusters, %d growing + %d perimeter",
        n_events,
        len(seed_g),
        n_iter,
        n_proto,
        len(grow_g),
        len(per_g),
    )
    return m_g, m_label, n_proto, slot


def _grow(
    flat: np.ndarray,
    n_cells: int,
    geo: _GeoArrays,
    seed_g: np.ndarray,
    lims: tuple[np.ndarray, np.ndarray, bool],
    fill: _Fill | None,
) -> tuple[np.ndarray, tuple[list, list], tuple[list, list], int]:
    """Breadth-first growth from all seeds of all events at once through the cells above ``grow_lim``.

    Returns the growing nodes ``grow_g`` (seeds included, ascending), the growth edges (source, destination
    node lists), the perimeter pairs (growing node, perimeter node lists) and the number of iterations.
    ``fill`` (sparse mode) draws the values of the neighbours that have none yet before they are compared.
    """
    grow_lim, cell_lim, use_abs = lims
    indptr, indices = geo.indptr, geo.indices
    visited = np.zeros(flat.size, bool)
    visited[seed_g] = True
    reached = [seed_g]
    edge_src, edge_dst, per_src, per_dst = [], [], [], []
    frontier = seed_g
    n_iter = 0
    while len(frontier):
        n_iter += 1
        fcell = frontier % n_cells
        src, nb = _expand(fcell, indptr, indices)
        nb_g = (frontier - fcell)[src] + nb
        if fill is not None:
            fill(flat, nb_g, n_cells)
        e_nb = flat[nb_g]
        a = np.abs(e_nb) if use_abs else e_nb
        is_grow = a > grow_lim[nb]
        is_per = ~is_grow & (a > cell_lim[nb])
        edge_src.append(frontier[src[is_grow]])
        gd = nb_g[is_grow]
        edge_dst.append(gd)
        per_src.append(frontier[src[is_per]])
        per_dst.append(nb_g[is_per])
        new = unique(gd[~visited[gd]])
        visited[new] = True
        reached.append(new)
        frontier = new
    grow_g = np.sort(np.concatenate(reached))
    return grow_g, (edge_src, edge_dst), (per_src, per_dst), n_iter


def _label_growing(size: int, grow_g: np.ndarray, edge_src: list, edge_dst: list) -> tuple[np.ndarray, int, np.ndarray]:
    """Node -> row map ``slot`` of the growing nodes and their proto-cluster labels (connected components)."""
    # Dense node -> row maps (1 + row, 0: none) replace searchsorted lookups; np.zeros is lazily zeroed memory.
    slot_dtype = np.int32 if size < np.iinfo(np.int32).max else np.int64
    slot = np.zeros(size, slot_dtype)
    slot[grow_g] = np.arange(1, len(grow_g) + 1, dtype=slot_dtype)
    esrc = slot[np.concatenate(edge_src)] - 1
    edst = slot[np.concatenate(edge_dst)] - 1
    graph = sp.coo_matrix((np.ones(len(esrc), np.int8), (esrc, edst)), shape=(len(grow_g),) * 2).tocsr()
    n_proto, grow_label = connected_components(graph, directed=False)
    grow_label = grow_label.astype(np.int64)
    return slot, n_proto, grow_label


def _perimeter(
    flat: np.ndarray,
    n_cells: int,
    sigma: np.ndarray,
    slot: np.ndarray,
    grow_label: np.ndarray,
    n_proto: int,
    per_src: list,
    per_dst: list,
) -> tuple[np.ndarray, np.ndarray]:
    """Perimeter nodes and their labels: the cluster of the most significant neighbouring growing cell.

    Ties go to the lowest cluster id (a per-cell maximum of the significance, then a minimum of the label).
    Returns the perimeter nodes ``per_g`` (ascending) and their labels; sets ``slot[per_g]`` to ``1 + row``
    in ``per_g``.
    """
    p_src = np.concatenate(per_src)
    p_dst = np.concatenate(per_dst)
    p_lab = grow_label[slot[p_src] - 1]
    p_sig = np.abs(flat[p_src]) / sigma[p_src % n_cells]
    # a dense mask and one scan beat sorting p_dst (measured); np.zeros is lazily zeroed memory
    in_cluster = np.zeros(flat.size, bool)
    in_cluster[p_dst] = True
    per_g = np.flatnonzero(in_cluster)
    del in_cluster
    slot[per_g] = np.arange(1, len(per_g) + 1, dtype=slot.dtype)
    p_row = slot[p_dst] - 1
    best_sig = np.full(len(per_g), -np.inf, p_sig.dtype)
    np.maximum.at(best_sig, p_row, p_sig)
    tie = p_sig == best_sig[p_row]
    per_label = np.full(len(per_g), n_proto, np.int64)
    np.minimum.at(per_label, p_row[tie], p_lab[tie])
    return per_g, per_label


def _merge_sorted(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Union of two disjoint ascending int64 arrays, ascending (a node grows or not by its own value)."""
    pos = np.searchsorted(a, b) + np.arange(len(b))
    out = np.empty(len(a) + len(b), np.int64)
    from_a = np.ones(len(out), bool)
    from_a[pos] = False
    out[pos] = b
    out[from_a] = a
    return out


def _unsplit_rows(
    m_g: np.ndarray, m_label: np.ndarray, n_proto: int, n_cells: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Membership rows of the proto-clusters as they are: (cluster id, node g, weight 1), event per cluster."""
    cl_event = np.zeros(n_proto, np.int64)
    cl_event[m_label] = m_g // n_cells
    return m_label, m_g, np.ones(len(m_g), np.float64), cl_event


def _cartesian(geometry: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell centres (x, y, z) in mm from ``r_perp``, ``phi`` and ``z`` (or ``r_perp * sinh(eta)``)."""
    r = np.asarray(geometry.r_perp, np.float64)
    phi = np.asarray(geometry.phi, np.float64)
    z = getattr(geometry, "z", None)
    z = r * np.sinh(np.asarray(geometry.eta, np.float64)) if z is None else np.asarray(z, np.float64)
    return r * np.cos(phi), r * np.sin(phi), z


def _split(
    m_g: np.ndarray,
    m_cell: np.ndarray,
    m_label: np.ndarray,
    m_e: np.ndarray,
    n_proto: int,
    n_cells: int,
    slot: np.ndarray,
    geo: _GeoArrays,
    cfg: tuple[tuple[int, ...], float, int, float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split proto-clusters with >= 2 local maxima; return membership rows and the event of each cluster.

    ``slot[g] - 1`` is the row of node ``g`` in ``m_g`` (-1 if not clustered); ``cfg`` is
    ``(split_samplings, split_e_min, split_min_neighbours, shower_size_mm)``. Returns (cluster id, node g,
    weight) per membership row and ``event`` per cluster id. Unsplit proto-clusters keep their id; split
    clusters get ids ``n_proto + k``.
    """
    split_samplings, split_e_min, split_min_neighbours, shower_size_mm = cfg
    no_split = _unsplit_rows(m_g, m_label, n_proto, n_cells)
    cl_event = no_split[3]  # event of each proto-cluster
    cand = np.isin(geo.sampling[m_cell], np.asarray(split_samplings)) & (m_e > split_e_min)
    if cand.sum() < 2:
        return no_split
    # sub nodes: the cells of the proto-clusters that have >= 2 candidates
    n_cand = np.bincount(m_label[cand], minlength=n_proto)
    sub = np.flatnonzero(n_cand[m_label] >= 2)  # member index of each sub node
    if not len(sub):
        return no_split
    src, dst = _split_edges(m_g, m_cell, m_label, sub, slot, geo)
    lab_sub = m_label[sub]
    is_max = _local_maxima(m_e, sub, cand[sub], src, dst, split_min_neighbours)
    split_parent = np.bincount(lab_sub[is_max], minlength=n_proto) >= 2
    if not split_parent.any():
        return no_split
    keep_node = split_parent[lab_sub]  # sub nodes in split parents
    e_sub = m_e[sub]
    max_nodes = np.flatnonzero(is_max & keep_node)  # sub nodes, ascending => grouped by g
    own1, own2, n_iter = _split_ownership(src, dst, keep_node, max_nodes, e_sub[max_nodes], lab_sub, n_proto)
    log.debug(
        "cluster splitting: %d parents -> %d clusters, %d iterations, %d shared cells",
        int(split_parent.sum()),
        len(max_nodes),
        n_iter,
        int((own2 >= 0).sum()),
    )
    sh, a, b, w1 = _shared_cell_weights(geo, m_cell[sub], e_sub, keep_node, own1, own2, max_nodes, shower_size_mm)
    # membership rows: unsplit parents as they were, split clusters as n_proto + k
    unsplit = ~split_parent[m_label]
    unsh = np.flatnonzero(keep_node & (own2 < 0))
    rows_cl = np.concatenate([m_label[unsplit], n_proto + own1[unsh], n_proto + a, n_proto + b])
    rows_g = np.concatenate([m_g[unsplit], m_g[sub[unsh]], m_g[sub[sh]], m_g[sub[sh]]])
    rows_w = np.concatenate([np.ones(int(unsplit.sum())), np.ones(len(unsh)), w1, 1.0 - w1])
    cl_event = np.concatenate([cl_event, m_g[sub[max_nodes]] // n_cells])
    # zero-weight rows (w1 underflow) would be empty memberships: drop them
    ok = rows_w > 0
    return rows_cl[ok], rows_g[ok], rows_w[ok], cl_event


def _split_edges(
    m_g: np.ndarray, m_cell: np.ndarray, m_label: np.ndarray, sub: np.ndarray, slot: np.ndarray, geo: _GeoArrays
) -> tuple[np.ndarray, np.ndarray]:
    """In-cluster edges between the sub nodes (same proto-cluster): ``(src, dst)`` as sub indices."""
    src, nb = _expand(m_cell[sub], geo.indptr, geo.indices)
    nb_g = (m_g[sub] - m_cell[sub])[src] + nb
    pos = slot[nb_g].astype(np.int64) - 1
    found = pos >= 0
    np.maximum(pos, 0, out=pos)
    lab_sub = m_label[sub]
    found &= m_label[pos] == lab_sub[src]
    src, dst_m = src[found], pos[found]  # src: sub index; dst_m: member index (same proto-cluster)
    n_sub = len(sub)
    sub_of_member = np.full(len(m_g), -1, np.int64)
    sub_of_member[sub] = np.arange(n_sub)
    return src, sub_of_member[dst_m]


def _local_maxima(
    m_e: np.ndarray, sub: np.ndarray, cand_sub: np.ndarray, src: np.ndarray, dst: np.ndarray, min_neighbours: int
) -> np.ndarray:
    """Sub nodes that are candidates, above every in-cluster neighbour, with >= ``min_neighbours`` of them."""
    n_sub = len(sub)
    n_in = np.bincount(src, minlength=n_sub)
    max_nb = np.full(n_sub, -np.inf)
    np.maximum.at(max_nb, src, m_e[sub[dst]])
    e_sub = m_e[sub]
    return cand_sub & (n_in >= min_neighbours) & (e_sub > max_nb)


def _split_ownership(
    src: np.ndarray,
    dst: np.ndarray,
    keep_node: np.ndarray,
    max_nodes: np.ndarray,
    max_e: np.ndarray,
    lab_sub: np.ndarray,
    n_proto: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Re-grow the split parents from their maxima: ``(own1, own2, n_iter)``, split ids per sub node.

    ``own1`` is the (first) split cluster of each sub node of a split parent, ``own2`` the second one of a
    shared node (-1 elsewhere).
    """
    n_sub = len(keep_node)
    keep_edge = keep_node[src]
    src, dst = src[keep_edge], dst[keep_edge]
    graph = sp.csr_matrix((np.ones(len(src), np.int8), (src, dst)), shape=(n_sub, n_sub))
    gptr, gind = graph.indptr.astype(np.int64), graph.indices.astype(np.int64)
    n_split = len(max_nodes)
    rank = np.empty(n_split, np.int64)  # rank of each maximum by descending energy (tie: lower id)
    rank[np.lexsort((np.arange(n_split), -max_e))] = np.arange(n_split)
    own1 = np.full(n_sub, -1, np.int64)
    own2 = np.full(n_sub, -1, np.int64)
    own1[max_nodes] = np.arange(n_split)
    inv_rank = np.empty(n_split, np.int64)  # split id of each rank
    inv_rank[rank] = np.arange(n_split)
    n_iter = _grow_shared(max_nodes, gptr, gind, rank, inv_rank, own1, own2)
    n_iter += _grow_attach(gptr, gind, rank, inv_rank, own1)
    lost = np.flatnonzero(keep_node & (own1 < 0))
    if len(lost):  # disconnected inside the parent (asymmetric adjacency): most energetic maximum
        _assign_lost(lost, own1, max_nodes, max_e, lab_sub, n_proto)
    return own1, own2, n_iter


def _grow_shared(
    max_nodes: np.ndarray,
    gptr: np.ndarray,
    gind: np.ndarray,
    rank: np.ndarray,
    inv_rank: np.ndarray,
    own1: np.ndarray,
    own2: np.ndarray,
) -> int:
    """Phase 1: competitive growth from all maxima with sharing; shared cells stop. Fills ``own1``/``own2``."""
    n_split = len(rank)
    frontier = max_nodes
    n_iter = 0
    while len(frontier):
        n_iter += 1
        s, d = _expand(frontier, gptr, gind)
        o = own1[frontier][s]
        free = own1[d] < 0
        d, o = d[free], o[free]
        if not len(d):
            break
        key = unique(d * n_split + rank[o])
        d, r = key // n_split, key % n_split  # sorted by node, then by rank (most energetic first)
        first = _first_per_group(d)
        counts = np.diff(np.r_[first, len(d)])
        nodes = d[first]
        own1[nodes] = inv_rank[r[first]]
        shared = counts >= 2
        own2[nodes[shared]] = inv_rank[r[first[shared] + 1]]
        frontier = nodes[~shared]
    return n_iter


def _grow_attach(gptr: np.ndarray, gind: np.ndarray, rank: np.ndarray, inv_rank: np.ndarray, own1: np.ndarray) -> int:
    """Phase 2: attach the cells cut off behind shared cells to ``own1``, without sharing."""
    n_split = len(rank)
    frontier = np.flatnonzero(own1 >= 0)
    n_iter = 0
    while len(frontier):
        n_iter += 1
        s, d = _expand(frontier, gptr, gind)
        o = own1[frontier][s]
        free = own1[d] < 0
        d, o = d[free], o[free]
        if not len(d):
            break
        key = unique(d * n_split + rank[o])
        d, r = key // n_split, key % n_split
        first = _first_per_group(d)
        own1[d[first]] = inv_rank[r[first]]
        frontier = d[first]
    return n_iter


def _assign_lost(
    lost: np.ndarray, own1: np.ndarray, max_nodes: np.ndarray, max_e: np.ndarray, lab_sub: np.ndarray, n_proto: int
) -> None:
    """Give the sub nodes ``lost`` (unreachable from any maximum) to the most energetic maximum of their parent."""
    log.warning("cluster splitting: %d cells not reachable from a maximum", len(lost))
    best = np.full(n_proto, -1, np.int64)
    order = np.lexsort((-max_e, lab_sub[max_nodes]))
    lab_sorted = lab_sub[max_nodes][order]
    best[lab_sorted[_first_per_group(lab_sorted)]] = order[_first_per_group(lab_sorted)]
    own1[lost] = best[lab_sub[lost]]


def _shared_cell_weights(
    geo: _GeoArrays,
    cell_sub: np.ndarray,
    e_sub: np.ndarray,
    keep_node: np.ndarray,
    own1: np.ndarray,
    own2: np.ndarray,
    max_nodes: np.ndarray,
    shower_size_mm: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shared sub nodes ``sh``, their two split clusters ``a``, ``b`` and the weight ``w1`` of ``a``.

    ``w1 = E1 / (E1 + r E2)``, ``r = exp(d1 - d2)`` (see the module docstring), with the energies and
    barycentres of the split clusters from their unshared cells.
    """
    x, y, z = geo.x, geo.y, geo.z
    n_split = len(max_nodes)
    sel = keep_node & (own2 < 0)
    w_pos = np.where(e_sub[sel] > 0, e_sub[sel], 0.0)
    o = own1[sel]
    e_split = np.bincount(o, e_sub[sel], minlength=n_split)
    sw = np.bincount(o, w_pos, minlength=n_split)
    cen = np.empty((3, n_split))
    for k, coord in enumerate((x, y, z)):
        c = coord[cell_sub]
        mean = np.bincount(o, w_pos * c[sel], minlength=n_split) / np.where(sw > 0, sw, 1.0)
        cen[k] = np.where(sw > 0, mean, c[max_nodes])
    sh = np.flatnonzero(own2 >= 0)
    p = np.stack([x[cell_sub[sh]], y[cell_sub[sh]], z[cell_sub[sh]]])
    a, b = own1[sh], own2[sh]
    d1 = np.sqrt(((p - cen[:, a]) ** 2).sum(0)) / shower_size_mm
    d2 = np.sqrt(((p - cen[:, b]) ** 2).sum(0)) / shower_size_mm
    e1 = np.maximum(e_split[a], 1e-6)
    e2 = np.maximum(e_split[b], 1e-6)
    w1 = e1 / (e1 + np.exp(np.clip(d1 - d2, -50, 50)) * e2)
    return sh, a, b, w1


def _moments(
    n_events: int,
    n_cells: int,
    flat: np.ndarray,
    geo: _GeoArrays,
    slot: np.ndarray,
    n_nodes: int,
    rows_cl: np.ndarray,
    rows_g: np.ndarray,
    rows_w: np.ndarray,
    cl_event: np.ndarray,
    front_r_mm: float,
    front_z_mm: float,
    cuts: tuple[float | None, float | None, float | None],
) -> Clusters:
    """Cluster kinematics, optional selection, moments, MLTree ordering, offsets.

    Per-cluster sums are ``np.bincount`` over the membership rows in their original order (dropping the rows
    of rejected clusters does not change the sums of the others), so the selection is exact.
    """
    n_cl = len(cl_event)
    n_mem = np.bincount(rows_cl, minlength=n_cl)
    present = n_mem > 0
    cell, we, e, pos_e, sum_pos, wt, norm = _energy_weights(n_cells, flat, rows_cl, rows_g, rows_w, n_cl)
    eta = _weighted_mean(rows_cl, wt, norm, geo.eta[cell])
    keep = _cut_mask(present, e, eta, cuts)
    if keep is not None:
        row_keep = keep[rows_cl]
        rows_cl, rows_g, rows_w, cell, we, pos_e, wt = (
            v[row_keep] for v in (rows_cl, rows_g, rows_w, cell, we, pos_e, wt)
        )
        present = keep
    phi, center_mag, center_lambda = _position_moments(geo, rows_cl, wt, norm, cell, front_r_mm, front_z_mm)
    first_eng_dens = _first_eng_dens(geo, rows_cl, cell, pos_e, sum_pos)
    order, row_new, row_order = _mltree_order(present, e, cl_event, rows_cl, cell, n_cells)
    counts = n_mem[order]
    out_cell = cell[row_order]
    isolation = _isolation(n_cells, geo, slot, n_nodes, row_new, rows_g, cell, pos_e, cl_event[order], counts, out_cell)
    cols: dict[str, Any] = {
        "event": cl_event[order],
        "e": e[order],
        "eta": eta[order],
        "phi": phi[order],
        "pt": (e / np.cosh(eta))[order],
        "n_cells": counts.astype(np.int32),
        "center_mag": center_mag[order],
        "center_lambda": center_lambda[order],
        "first_eng_dens": first_eng_dens[order],
        "isolation": isolation,
        "cluster": row_new[row_order],
        "cell": out_cell.astype(np.int64, copy=False),
        "weight": rows_w[row_order].astype(np.float32),
        "energy": we[row_order].astype(np.float32),
    }
    return _finish(n_events, cols)


def _energy_weights(
    n_cells: int, flat: np.ndarray, rows_cl: np.ndarray, rows_g: np.ndarray, rows_w: np.ndarray, n_cl: int
) -> tuple[np.ndarray, ...]:
    """Per-row cell, weighted and positive energies, barycentre weights; per-cluster sums and weight norms.

    Returns ``(cell, we, e, pos_e, sum_pos, wt, norm)``: ``we``, ``pos_e``, ``wt`` per row; ``e``,
    ``sum_pos``, ``norm`` per cluster (``wt`` is 1 for clusters without positive energy, ``norm`` >= 1 where 0).
    """
    cell = rows_g % n_cells
    we = rows_w * flat[rows_g].astype(np.float64)
    e = np.bincount(rows_cl, we, minlength=n_cl)
    pos_e = np.where(we > 0, we, 0.0)
    sum_pos = np.bincount(rows_cl, pos_e, minlength=n_cl)
    wt = np.where(sum_pos[rows_cl] > 0, pos_e, 1.0)
    norm = np.bincount(rows_cl, wt, minlength=n_cl)
    norm = np.where(norm > 0, norm, 1.0)
    return cell, we, e, pos_e, sum_pos, wt, norm


def _weighted_mean(rows_cl: np.ndarray, wt: np.ndarray, norm: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Per-cluster mean of the per-row values ``v`` with row weights ``wt`` and per-cluster norms ``norm``."""
    return np.bincount(rows_cl, wt * v, minlength=len(norm)) / norm


def _cut_mask(
    present: np.ndarray, e: np.ndarray, eta: np.ndarray, cuts: tuple[float | None, float | None, float | None]
) -> np.ndarray | None:
    """Clusters kept by the optional ``(e_min, e_max, abs_eta_max)`` cuts, or ``None`` without any cut."""
    e_min, e_max, abs_eta_max = cuts
    if e_min is None and e_max is None and abs_eta_max is None:
        return None
    keep = present.copy()
    if e_min is not None:
        keep &= e >= e_min
    if e_max is not None:
        keep &= e <= e_max
    if abs_eta_max is not None:
        keep &= np.abs(eta) <= abs_eta_max
    return keep


def _position_moments(
    geo: _GeoArrays,
    rows_cl: np.ndarray,
    wt: np.ndarray,
    norm: np.ndarray,
    cell: np.ndarray,
    front_r_mm: float,
    front_z_mm: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-cluster ``phi`` (circular mean, in (-pi, pi]), ``center_mag`` and ``center_lambda``."""
    mean_sin, mean_cos = (_weighted_mean(rows_cl, wt, norm, v[cell]) for v in (geo.sin_phi, geo.cos_phi))
    phi = np.arctan2(mean_sin, mean_cos)
    phi = np.where(phi <= -np.pi, phi + 2 * np.pi, phi)
    cx, cy, cz = (_weighted_mean(rows_cl, wt, norm, c[cell]) for c in (geo.x, geo.y, geo.z))
    with np.errstate(divide="ignore", invalid="ignore"):
        center_mag = np.sqrt(cx**2 + cy**2 + cz**2)
        rho = np.hypot(cx, cy)
        l_barrel = np.where(rho > 0, front_r_mm * center_mag / rho, np.inf)
        l_endcap = np.where(np.abs(cz) > 0, front_z_mm * center_mag / np.abs(cz), np.inf)
        center_lambda = center_mag - np.minimum(l_barrel, l_endcap)
    return phi, center_mag, center_lambda


def _first_eng_dens(
    geo: _GeoArrays, rows_cl: np.ndarray, cell: np.ndarray, pos_e: np.ndarray, sum_pos: np.ndarray
) -> np.ndarray:
    """Per-cluster ``sum(E_i * E_i / V_i) / sum(E_i)`` over positive energies; NaN without volumes."""
    n_cl = len(sum_pos)
    if geo.volume is None:
        return np.full(n_cl, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        vol = geo.volume[cell]
        dens = np.where((pos_e > 0) & (vol > 0), pos_e / vol, 0.0)
        first_eng_dens = np.bincount(rows_cl, pos_e * dens, minlength=n_cl) / sum_pos
        return np.where(sum_pos > 0, first_eng_dens, np.nan)


def _mltree_order(
    present: np.ndarray, e: np.ndarray, cl_event: np.ndarray, rows_cl: np.ndarray, cell: np.ndarray, n_cells: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MLTree order: ``(order, row_new, row_order)``, the clusters in output order, new id per row, row order.

    Clusters by event ascending, E descending, ties by formation order (lexsort is stable); rows by cluster,
    then cell.
    """
    ids = np.flatnonzero(present)
    order = ids[np.lexsort((-e[ids], cl_event[ids]))]
    n_out = len(order)
    new_id = np.full(len(present), -1, np.int64)
    new_id[order] = np.arange(n_out)
    row_new = new_id[rows_cl]
    _, row_order = sort_stable(row_new * n_cells + cell)  # by cluster, then cell (pairs are unique)
    return order, row_new, row_order


def _isolation(
    n_cells: int,
    geo: _GeoArrays,
    slot: np.ndarray,
    n_nodes: int,
    rows_cl: np.ndarray,
    rows_g: np.ndarray,
    cell: np.ndarray,
    pos_e: np.ndarray,
    cl_event: np.ndarray,
    counts: np.ndarray,
    sorted_cell: np.ndarray,
) -> np.ndarray:
    """ATLAS-like ISOLATION: sampling-energy-weighted fraction of unclustered neighbouring cells.

    For each cluster and sampling s: ``f_s`` = (neighbours of the cluster in sampling s that are in no
    cluster) / (all neighbours in sampling s that are not in this cluster); ``isolation = sum E_s f_s /
    sum E_s`` over samplings with neighbours, ``E_s`` the cluster's positive energy in s (plain
    neighbour-count fraction if all those ``E_s`` are 0).

    ``rows_cl`` (cluster 0..n-1), ``rows_g``, ``cell``, ``pos_e``: membership rows; ``counts`` rows per cluster
    and ``sorted_cell`` the rows' cells grouped by cluster, ascending; ``slot[g] - 1``: row of node ``g`` among
    the ``n_nodes`` clustered nodes of all clusters (-1: in no cluster).
    """
    n_cl = len(cl_event)
    n_samp = geo.n_samp
    # (cluster x cell) membership times the adjacency pattern: each neighbour cell of a cluster once
    indptr = np.zeros(n_cl + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    members = sp.csr_matrix((np.ones(len(sorted_cell), bool), sorted_cell, indptr), shape=(n_cl, n_cells))
    touched = members @ geo.pattern
    n_touched = np.diff(touched.indptr)
    nb = touched.indices
    node = slot[np.repeat(cl_event * n_cells, n_touched) + nb]  # 1 + row among clustered nodes, 0: none
    cl = np.repeat(np.arange(n_cl, dtype=np.int64), n_touched)
    # clusters owning each clustered node (at most two: a shared cell belongs to exactly two split clusters);
    # index 0 (unclustered) never matches
    row_node = slot[rows_g]
    if len(row_node) and np.bincount(row_node, minlength=n_nodes + 1).max() > 2:  # pragma: no cover
        raise AssertionError("a cell belongs to more than two clusters")
    own_hi = np.full(n_nodes + 1, -1, np.int64)
    np.maximum.at(own_hi, row_node, rows_cl)
    own_lo = np.full(n_nodes + 1, n_cl, np.int64)
    np.minimum.at(own_lo, row_node, rows_cl)
    own_lo[0] = -1
    outside = own_hi[node] != cl
    outside &= own_lo[node] != cl
    cs = np.repeat(np.arange(0, n_cl * n_samp, n_samp, dtype=np.int64), n_touched)
    cs += geo.sampling[nb]
    n_all = np.bincount(cs, outside, minlength=n_cl * n_samp).reshape(n_cl, n_samp)
    n_free = np.bincount(cs, node == 0, minlength=n_cl * n_samp).reshape(n_cl, n_samp)
    e_s = np.bincount(rows_cl * n_samp + geo.sampling[cell], pos_e, minlength=n_cl * n_samp)
    e_s = e_s.reshape(n_cl, n_samp) * (n_all > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(n_all > 0, n_free / n_all, 0.0)
        e_tot = e_s.sum(1)
        iso_e = (e_s * frac).sum(1) / e_tot
        iso_n = n_free.sum(1) / n_all.sum(1)
    return np.where(e_tot > 0, iso_e, iso_n)
