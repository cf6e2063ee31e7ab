"""One chunk of events end to end, and the chunked, parallel simulation of a whole sample.

    Pythia / gun  ->  tracks  ->  showers (cell deposits with truth)  ->  noise  ->  topo-clusters
      ->  MLTree branches (per-cell truth, cluster moments, track-cluster bookkeeping)  ->  ROOT file

Each chunk has its own seed derived from ``(seed, chunk)``, so the same configuration gives byte-identical
physics content whatever the number of workers, and chunks can run anywhere (:mod:`jetcloud.parallel`).
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import awkward as ak
import numpy as np

from jetcloud.arrays import gather_ranges, group_sum, lookup_groups
from jetcloud.atlas.cellgeo import CaloGeometry, load_geometry
from jetcloud.atlas.layers import MISSING_THRESHOLD
from jetcloud.atlas.sim import clustering, showers, tracker
from jetcloud.atlas.sim.truth import top_contributions
from jetcloud.atlas.sim.writers import write_cellgeo, write_mltree
from jetcloud.io.atomic import check_writable
from jetcloud.kinematics import delta_r
from jetcloud.sim.particles import Particles  # noqa: F401  (documented input type)
from jetcloud.sim.pythia import MC_CHANNEL, EventGenerator, GunConfig, canonical_process, chunk_seed

log = logging.getLogger(__name__)

RUN_NUMBER = 284500  # mc16a
CELL_E_THRESHOLD = 0.005  # GeV: MLTree writes cluster cells with weighted E >= 5 MeV
N_TRUTH_PER_CELL = 3  # MLTree TruthParticlesPerCellLimt
N_TRUTH_PER_CLUSTER = 3  # leading truth particles per cluster (calclus_NLeadingTruthParticle...)
PFLOW_PT_RANGE = (1.0, 100.0)  # GeV: tracks particle flow subtracts for (ATLAS PFlow, EPJC 77 (2017) 466)
PFLOW_CONE = 0.2
NOISE_MODES = ("sparse", "dense", "none")


@dataclass(frozen=True)
class SimConfig:
    """Everything that defines a simulated sample (recorded in the manifest)."""

    process: str = "JZ1"
    n_events: int = 100
    seed: int = 1
    chunk_size: int = 50
    geometry: str = "builtin"
    pileup_mu: float = 0.0
    gun: GunConfig = field(default_factory=GunConfig)
    track_pt_min: float = 0.5  # GeV
    truth_energy_unit: str = "GeV"  # "GeV" (the file JetPointNet used) or "MeV" (MLTree master)
    noise: str = "sparse"  # "sparse" (default), "dense" (reference: noise in every cell) or "none"; bools accepted
    format: str = "rntuple"  # or "ttree" (needs PyROOT)

    def __post_init__(self) -> None:
        canonical_process(self.process)
        if self.n_events < 0:
            raise ValueError(f"n_events must be >= 0, got {self.n_events}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")
        if self.truth_energy_unit not in ("GeV", "MeV"):
            raise ValueError(f"truth_energy_unit must be 'GeV' or 'MeV', got {self.truth_energy_unit!r}")
        if isinstance(self.noise, bool):  # older configs: True = with noise
            object.__setattr__(self, "noise", "sparse" if self.noise else "none")
        if self.noise not in NOISE_MODES:
            raise ValueError(f"noise must be one of {NOISE_MODES}, got {self.noise!r}")
        if self.format not in ("rntuple", "ttree"):
            raise ValueError(f"format must be 'rntuple' or 'ttree', got {self.format!r}")

    def chunks(self) -> list[tuple[int, int, int]]:
        """``(chunk, first_event, n_events)`` for every chunk."""
        starts = range(0, self.n_events, self.chunk_size)
        return [(k, s, min(self.chunk_size, self.n_events - s)) for k, s in enumerate(starts)]


@functools.lru_cache(maxsize=2)
def cached_geometry(spec: str) -> CaloGeometry:
    """The geometry for ``spec``, built once per process."""
    return load_geometry(spec)


def simulate_events(
    config: SimConfig, chunk: int, n_events: int, geometry: CaloGeometry
) -> tuple[dict[str, ak.Array | np.ndarray], dict[str, float]]:
    """Generate and simulate ``n_events`` events of chunk ``chunk``; return MLTree branches and the CPU seconds
    of each stage (``time.process_time``: a loaded machine does not inflate them)."""
    seed = chunk_seed(config.seed, chunk)
    rng = np.random.default_rng(seed)
    timing: dict[str, float] = {}
    t0 = time.process_time()
    generator = EventGenerator(config.process, seed, gun=config.gun, pileup_mu=config.pileup_mu)
    particles, info = generator.generate(n_events)
    timing["generate"] = time.process_time() - t0

    t0 = time.process_time()
    tracks = tracker.simulate_tracks(particles, rng, pt_min=config.track_pt_min)
    entry_eta, entry_phi, reached = tracker.calo_entry(particles)
    timing["tracks"] = time.process_time() - t0

    t0 = time.process_time()
    deposits = showers.deposit(particles, entry_eta, entry_phi, reached, geometry, rng)
    timing["showers"] = time.process_time() - t0

    t0 = time.process_time()
    clusters = cluster_events(deposits, n_events, geometry, config.noise, rng)
    timing["clustering"] = time.process_time() - t0

    t0 = time.process_time()
    branches = build_branches(config, chunk, n_events, particles, info, tracks, deposits, clusters, geometry)
    timing["branches"] = time.process_time() - t0
    return branches, timing


def cluster_events(
    deposits: showers.Deposits, n_events: int, geometry: CaloGeometry, noise: str, rng: np.random.Generator
) -> clustering.Clusters:
    """Electronics noise (``noise`` in :data:`NOISE_MODES`) and MLTree-selected topo-clusters of a chunk.

    ``"sparse"`` draws the noise only where it can matter (:func:`clustering.sparse_noise`), ``"dense"`` in
    every cell (:func:`clustering.add_noise`, the reference); both give the same clusters in distribution.
    MLTree's cluster selection (0 <= E <= 10 TeV, |eta| <= 2.5) is applied before the moments are computed.
    """
    cuts = {"e_min": 0.0, "e_max": 1e4, "abs_eta_max": 2.5}
    if noise == "dense":
        energy = showers.cell_energy_matrix(deposits, n_events, geometry.n_cells)
        energy = clustering.add_noise(energy, geometry.sigma, rng)
        return clustering.topo_cluster(energy, geometry, **cuts)
    node, e = showers.cell_energy_sparse(deposits, geometry.n_cells)
    if noise == "sparse":
        sparse = clustering.sparse_noise(node, e, n_events, geometry.sigma, rng)
    else:
        sparse = clustering.SparseEnergy(n_events, geometry.n_cells, node, e)
    return clustering.topo_cluster(sparse, geometry, **cuts)


def _jagged(values: np.ndarray, counts: np.ndarray) -> ak.Array:
    return ak.unflatten(values, counts)


def _values_at(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``values`` of the sorted unique ``keys`` equal to each ``query`` key, 0 where a key is absent."""
    if len(keys) == 0:
        return np.zeros(len(query))
    pos = np.searchsorted(keys, query).clip(0, len(keys) - 1)
    return np.where(keys[pos] == query, values[pos], 0.0)


def build_branches(
    config: SimConfig,
    chunk: int,
    n_events: int,
    particles: Particles,
    info: dict,
    tracks: dict,
    deposits: showers.Deposits,
    clusters: clustering.Clusters,
    geometry: CaloGeometry,
) -> dict[str, ak.Array | np.ndarray]:
    """Shape one chunk's detector content into the MLTree ``EventTree`` branches (docs/mltree-format.md)."""
    out = _event_branches(config, chunk, n_events, info)
    out.update(_truth_particle_branches(particles, info, n_events))

    # --- clusters, their cells and per-cell truth
    n_cells_geo = geometry.n_cells
    mem = _memberships(clusters, n_events, n_cells_geo)
    # Truth contributions (hard-scatter particles only)
    dep_truth = deposits.truth_index >= 0
    dep_key = deposits.event[dep_truth] * n_cells_geo + deposits.cell[dep_truth]
    idx_lists, e_lists = _cell_truth_lists(deposits, dep_truth, dep_key, mem, config.truth_energy_unit)
    out.update(_cluster_branches(clusters, mem))
    out.update(_moment_branches(deposits, clusters, mem, n_cells_geo))

    # kept cells, grouped by cluster then by cluster order
    kept_counts = mem.n_kept.astype(np.int64)
    cell_ids = geometry.cell_id[clusters.cell[mem.kept]].astype(np.uint64)
    out["cluster_cell_ID"] = _jagged(_jagged(cell_ids, kept_counts), mem.n_cluster)
    out["cluster_cell_E"] = _jagged(_jagged(mem.energy[mem.kept].astype(np.float32), kept_counts), mem.n_cluster)

    # every (cluster membership, hard-scatter deposit in that cell) pair, shared by cluster and track truth
    start, count = lookup_groups(dep_key, mem.key)
    join = (np.repeat(np.arange(len(mem.cluster)), count), np.flatnonzero(dep_truth)[gather_ranges(start, count)])
    out.update(_leading_truth_branches(join, deposits, clusters, mem))

    out["cluster_cell_hitsTruthIndex"] = _jagged(_jagged(idx_lists, mem.n_members), mem.n_cluster)
    out["cluster_cell_hitsTruthE"] = _jagged(_jagged(e_lists, mem.n_members), mem.n_cluster)

    out.update(_track_branches(tracks, n_events, deposits, join, clusters))
    return out


def _event_branches(config: SimConfig, chunk: int, n_events: int, info: dict) -> dict[str, ak.Array | np.ndarray]:
    """Event-level branches: run and event numbers, flags, MC channel and event weight."""
    first_event = config.chunks()[chunk][1] if chunk < len(config.chunks()) else chunk * config.chunk_size
    out: dict[str, ak.Array | np.ndarray] = {}
    event_number = np.arange(first_event, first_event + n_events, dtype=np.int64) + 1
    out["runNumber"] = np.full(n_events, RUN_NUMBER, np.int32)
    out["eventNumber"] = event_number
    out["lumiBlock"] = np.ones(n_events, np.int32)
    out["coreFlags"] = np.zeros(n_events, np.uint32)
    out["mcEventNumber"] = event_number.astype(np.int32)
    out["mcChannelNumber"] = np.full(n_events, MC_CHANNEL[canonical_process(config.process)], np.int32)
    out["mcEventWeight"] = info["mcEventWeight"].astype(np.float32)
    return out


def _truth_particle_branches(particles: Particles, info: dict, n_events: int) -> dict[str, ak.Array | np.ndarray]:
    """Truth branches: the hard-scatter stable particles (pile-up has index -1 and is not written) and vertex."""
    out: dict[str, ak.Array | np.ndarray] = {}
    truth = particles.select(particles.index >= 0)
    n_truth = np.bincount(truth.event, minlength=n_events).astype(np.int32)
    out["nTruthPart"] = n_truth
    out["truthPartBarcode"] = _jagged(truth.barcode.astype(np.int32), n_truth)
    out["truthPartPdgId"] = _jagged(truth.pdg.astype(np.int32), n_truth)
    zero_i, zero_f = np.zeros(n_events, np.int32), np.zeros(n_events, np.float32)
    # No Geant4 record: no G4 secondaries reach the calorimeter front as separate particles.
    out["G4PreCalo_n_EM"], out["G4PreCalo_E_EM"] = zero_i, zero_f
    out["G4PreCalo_n_Had"], out["G4PreCalo_E_Had"] = zero_i, zero_f
    for axis in ("X", "Y", "Z"):
        out[f"truthVertex{axis}"] = info[f"truthVertex{axis}"].astype(np.float32)
    out["truthPartStatus"] = _jagged(truth.status.astype(np.int32), n_truth)
    for name, col in (
        ("Pt", truth.pt),
        ("E", truth.e),
        ("Mass", truth.m),
        ("Eta", truth.eta),
        ("Phi", truth.phi),
    ):
        out[f"truthPart{name}"] = _jagged(col.astype(np.float32), n_truth)
    return out


class _Members(NamedTuple):
    """Cluster-cell memberships of a chunk (one row per (cluster, cell) pair) and the per-cluster counts."""

    cluster: np.ndarray  # global cluster row of every membership
    key: np.ndarray  # event * n_cells + cell of every membership
    energy: np.ndarray  # weighted cell energy (float64)
    kept: np.ndarray  # energy >= CELL_E_THRESHOLD: the cells MLTree writes
    n_cluster: np.ndarray  # clusters per event (int32)
    n_members: np.ndarray  # memberships per cluster
    n_kept: np.ndarray  # kept memberships per cluster


def _memberships(clusters: clustering.Clusters, n_events: int, n_cells_geo: int) -> _Members:
    """Membership rows of ``clusters`` with their (event, cell) keys, energies and per-cluster counts."""
    cl_event = clusters.event
    n_cluster = np.bincount(cl_event, minlength=n_events).astype(np.int32)
    members = clusters.cluster  # global cluster row of every (cluster, cell) membership
    member_event = cl_event[members]
    member_key = member_event * n_cells_geo + clusters.cell
    member_e = clusters.energy.astype(np.float64)
    kept = member_e >= CELL_E_THRESHOLD
    n_members = np.bincount(members, minlength=len(cl_event))
    n_kept = np.bincount(members[kept], minlength=len(cl_event))
    return _Members(members, member_key, member_e, kept, n_cluster, n_members, n_kept)


def _cell_truth_lists(
    deposits: showers.Deposits, dep_truth: np.ndarray, dep_key: np.ndarray, mem: _Members, truth_energy_unit: str
) -> tuple[ak.Array, ak.Array]:
    """Per membership slot, the kept cell's top ``N_TRUTH_PER_CELL`` truth (index, energy) lists, ascending.

    ``dep_truth``: mask of the hard-scatter deposits, ``dep_key`` their (event, cell) keys. Each cluster has
    ``cluster_nCells`` slots: the kept cells' lists, then trailing empty lists.
    """
    t_keys, t_index, t_energy = top_contributions(
        dep_key,
        deposits.truth_index[dep_truth],
        deposits.e_true[dep_truth].astype(np.float64),
        N_TRUTH_PER_CELL,
    )
    start, count = lookup_groups(t_keys, mem.key[mem.kept])
    rows = gather_ranges(start, count)
    unit = 1000.0 if truth_energy_unit == "MeV" else 1.0
    truth_counts = np.zeros(int(mem.n_members.sum()), np.int64)
    kept_slot = np.zeros(len(mem.cluster), np.int64)
    kept_slot[mem.kept] = np.arange(int(mem.kept.sum())) - np.repeat(np.cumsum(mem.n_kept) - mem.n_kept, mem.n_kept)
    # Every membership slot s of cluster c: slot < n_kept[c] holds the kept cell's list, the rest are empty.
    cluster_first_slot = np.cumsum(mem.n_members) - mem.n_members
    truth_counts[cluster_first_slot[mem.cluster[mem.kept]] + kept_slot[mem.kept]] = count
    idx_lists = _jagged(t_index[rows].astype(np.int32), truth_counts)
    e_lists = _jagged((t_energy[rows] * unit).astype(np.float32), truth_counts)
    return idx_lists, e_lists


def _cluster_branches(clusters: clustering.Clusters, mem: _Members) -> dict[str, ak.Array | np.ndarray]:
    """Cluster count, energy and direction branches, and ``cluster_nCells`` (all memberships)."""
    n_cluster = mem.n_cluster
    out: dict[str, ak.Array | np.ndarray] = {"nCluster": n_cluster}
    cl_e = clusters.e.astype(np.float32)
    out["cluster_E"] = _jagged(cl_e, n_cluster)
    out["cluster_E_LCCalib"] = _jagged(cl_e, n_cluster)  # no local hadronic calibration: EM scale
    out["cluster_Pt"] = _jagged(clusters.pt.astype(np.float32), n_cluster)
    out["cluster_Eta"] = _jagged(clusters.eta.astype(np.float32), n_cluster)
    out["cluster_Phi"] = _jagged(clusters.phi.astype(np.float32), n_cluster)
    out["cluster_nCells"] = _jagged(mem.n_members.astype(np.int32), n_cluster)
    return out


def _moment_branches(
    deposits: showers.Deposits, clusters: clustering.Clusters, mem: _Members, n_cells_geo: int
) -> dict[str, ak.Array | np.ndarray]:
    """Cluster moments: calibration-hit energy, shape moments, and -1 / -999 for those not simulated."""
    n_cluster = mem.n_cluster
    n_clusters = len(clusters.event)
    out: dict[str, ak.Array | np.ndarray] = {}
    # calibration-hit moments: true energy of all particles in the cluster's cells, weighted
    dep_all_key = deposits.event * n_cells_geo + deposits.cell
    cell_keys, cell_true = group_sum(dep_all_key, deposits.e_true.astype(np.float64))
    member_true = _values_at(cell_keys, cell_true, mem.key) * clusters.weight
    calib_tot = np.bincount(mem.cluster, weights=member_true, minlength=n_clusters).astype(np.float32)
    missing = np.full(n_clusters, -1.0, np.float32)  # MLTree: -1 = moment not available
    out["cluster_ENG_CALIB_TOT"] = _jagged(calib_tot, n_cluster)
    out["cluster_ENG_CALIB_OUT_T"] = _jagged(missing, n_cluster)
    out["cluster_ENG_CALIB_DEAD_TOT"] = _jagged(missing, n_cluster)
    for name in ("EM_PROBABILITY", "HAD_WEIGHT", "OOC_WEIGHT", "DM_WEIGHT"):
        out[f"cluster_{name}"] = _jagged(missing, n_cluster)
    out["cluster_CENTER_MAG"] = _jagged(clusters.center_mag.astype(np.float32), n_cluster)
    out["cluster_CENTER_LAMBDA"] = _jagged(clusters.center_lambda.astype(np.float32), n_cluster)
    out["cluster_FIRST_ENG_DENS"] = _jagged(clusters.first_eng_dens.astype(np.float32), n_cluster)
    out["cluster_ISOLATION"] = _jagged(clusters.isolation.astype(np.float32), n_cluster)
    out["cluster_ENERGY_DigiHSTruth"] = _jagged(np.full(n_clusters, -999.0, np.float32), n_cluster)
    return out


def _leading_truth_branches(
    join: tuple[np.ndarray, np.ndarray], deposits: showers.Deposits, clusters: clustering.Clusters, mem: _Members
) -> dict[str, ak.Array | np.ndarray]:
    """Leading truth particles per cluster (full = true energy, visible = EM-scale energy)."""
    out: dict[str, ak.Array | np.ndarray] = {}
    for kind, column in (("full", deposits.e_true), ("visible", deposits.e_vis)):
        c, i, e = _cluster_truth(join, deposits.truth_index, column, mem.cluster, clusters.weight)
        n_lead = np.bincount(c, minlength=len(clusters.event))
        out[f"cluster_{kind}HitsTruthIndex"] = _jagged(_jagged(i.astype(np.int32), n_lead), mem.n_cluster)
        out[f"cluster_{kind}HitsTruthE"] = _jagged(_jagged(e.astype(np.float32), n_lead), mem.n_cluster)
    return out


def _cluster_truth(join, truth_index, energy, members, weight):
    """Leading ``N_TRUTH_PER_CLUSTER`` truth particles per cluster by weighted energy, in descending order.

    ``join = (membership, deposit)`` rows pair every cluster-cell membership with the hard-scatter deposits in
    that cell. Returns ``(cluster_row, truth_index, energy)``.
    """
    member, rows = join
    cluster = members[member]
    key, summed = group_sum(cluster * (1 << 32) + truth_index[rows], energy[rows].astype(np.float64) * weight[member])
    c, i, e = top_contributions(key >> 32, key & ((1 << 32) - 1), summed, N_TRUTH_PER_CLUSTER)
    order = np.lexsort((-e, c))
    return c[order], i[order], e[order]


def _track_branches(tracks, n_events, deposits, join, clusters):
    """Track branches: tracker output, truth-linked calibration-hit energies and particle-flow subtraction."""
    t_event = tracks["event"]
    n_track = np.bincount(t_event, minlength=n_events).astype(np.int32)
    out: dict[str, ak.Array | np.ndarray] = {"nTrack": n_track}
    truth_index = tracks["truth_index"].astype(np.int64)
    # visible / full calibration-hit energy of the linked particle, summed over the written clusters
    member, rows = join
    pkey = clusters.event[clusters.cluster[member]] * (1 << 32) + deposits.truth_index[rows]
    tkey = t_event * (1 << 32) + truth_index
    for kind, column in (("Visible", deposits.e_vis), ("Full", deposits.e_true)):
        keys, sums = group_sum(pkey, column[rows].astype(np.float64) * clusters.weight[member])
        value = np.where(truth_index >= 0, _values_at(keys, sums, tkey), 0.0)
        out[f"track{kind}CalHitCaloEnergy"] = _jagged(value.astype(np.float32), n_track)
    out["trackSubtractedCaloEnergy"] = _jagged(_pflow_subtraction(tracks, clusters), n_track)
    for name, values in tracks.items():
        if name.startswith("track") and name not in out and name != "trackCharge":  # not an MLTree branch
            out[name] = _jagged(np.asarray(values), n_track)
    out["trackTruthParticleIndex"] = _jagged(truth_index.astype(np.int32), n_track)
    return out


def _pflow_subtraction(tracks: dict, clusters: clustering.Clusters) -> np.ndarray:
    """Energy (integer MeV, float32) a simplified cluster-level particle flow subtracts for each track.

    Tracks with 1 < pT < 100 GeV and a reference point in EMB2 or EME2 are matched to the clusters within
    Delta R < 0.2 of that point; the expected deposit p * <E/p> (the mean EM-scale response of a charged
    pion, :func:`jetcloud.atlas.sim.showers.mean_pion_response`) is subtracted, but never more than the
    matched clusters hold. Unused tracks get -999 (the MLTree sentinel). The truncation to whole MeV copies
    MLTree's integer ``std::accumulate`` (docs/mltree-format.md).
    """
    n = len(tracks["event"])
    result = np.full(n, -999.0, np.float32)
    eta = np.where(tracks["trackEta_EMB2"] > MISSING_THRESHOLD, tracks["trackEta_EMB2"], tracks["trackEta_EME2"])
    phi = np.where(tracks["trackPhi_EMB2"] > MISSING_THRESHOLD, tracks["trackPhi_EMB2"], tracks["trackPhi_EME2"])
    pt = tracks["trackPt"]
    used = (pt > PFLOW_PT_RANGE[0]) & (pt < PFLOW_PT_RANGE[1]) & (eta > MISSING_THRESHOLD)
    if not used.any() or len(clusters.event) == 0:
        return result
    t_idx = np.flatnonzero(used)
    # all (track, cluster) pairs of the same event: clusters are grouped by event
    c_start = np.searchsorted(clusters.event, tracks["event"][t_idx], side="left")
    c_count = np.searchsorted(clusters.event, tracks["event"][t_idx], side="right") - c_start
    c_rows = gather_ranges(c_start, c_count)
    t_rows = np.repeat(t_idx, c_count)
    close = delta_r(eta[t_rows], phi[t_rows], clusters.eta[c_rows], clusters.phi[c_rows]) < PFLOW_CONE
    available = np.bincount(t_rows[close], weights=np.maximum(clusters.e[c_rows[close]], 0.0), minlength=n)
    expected = tracks["trackP"] * showers.mean_pion_response(tracks["trackP"])
    subtracted = np.minimum(expected, available)
    result[used] = np.floor(subtracted[used] * 1000.0).astype(np.float32)
    return result


def simulate_chunk(task: tuple[SimConfig, int, str]) -> dict:
    """Simulate one chunk and write ``<out_dir>/events_<chunk>.root`` atomically; return its statistics."""
    config, chunk, out_dir = task
    geometry = cached_geometry(config.geometry)
    _, first, n_events = config.chunks()[chunk]
    t0 = time.process_time()
    branches, timing = simulate_events(config, chunk, n_events, geometry)
    t1 = time.process_time()
    path = Path(out_dir) / f"events_{chunk:04d}.root"
    write_mltree(path, branches, None, format=config.format)
    timing["write"] = time.process_time() - t1
    timing["total"] = time.process_time() - t0
    return {
        "chunk": chunk,
        "path": str(path),
        "n_events": n_events,
        "n_tracks": int(np.sum(branches["nTrack"])),
        "n_clusters": int(np.sum(branches["nCluster"])),
        "n_cluster_cells": int(ak.sum(ak.num(ak.flatten(branches["cluster_cell_ID"], axis=1), axis=1))),
        "timing": timing,
    }


def simulate(
    config: SimConfig,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
) -> dict:
    """Simulate ``config.n_events`` events into ``out_dir``: ``geometry.root`` (CellGeo) and
    ``events/events_NNNN.root`` (EventTree), one file per chunk, each written atomically.

    Returns a summary (files, counts, per-stage timings) for the notebook and the manifest.
    """
    from jetcloud.parallel import map_chunks

    out_dir = Path(out_dir)
    check_writable(out_dir / "events" / "probe")
    geometry = cached_geometry(config.geometry)
    t0 = time.perf_counter()
    geometry_path = write_cellgeo(out_dir / "geometry.root", geometry.to_cellgeo_branches(), format=config.format)
    for stale in (out_dir / "events").glob("events_*.root"):  # a previous run with more chunks
        stale.unlink()
    tasks = [(config, k, str(out_dir / "events")) for k, _, _ in config.chunks()]
    stats = map_chunks(
        simulate_chunk,
        tasks,
        workers=workers,
        scheduler=scheduler,
        progress=progress,
        desc=f"simulate {config.process}",
    )
    timing = {key: float(sum(s["timing"][key] for s in stats)) for key in (stats[0]["timing"] if stats else {})}
    return {
        "config": {**asdict(config), "gun": asdict(config.gun)},
        "geometry_file": str(geometry_path),
        "event_files": [s["path"] for s in stats],
        "n_events": int(sum(s["n_events"] for s in stats)),
        "n_tracks": int(sum(s["n_tracks"] for s in stats)),
        "n_clusters": int(sum(s["n_clusters"] for s in stats)),
        "n_cluster_cells": int(sum(s["n_cluster_cells"] for s in stats)),
        "cpu_seconds": timing,
        "wall_seconds": time.perf_counter() - t0,
    }
