"""Particle-flow jets from MLTree events (notebook 05): what a better charged-energy subtraction buys at jet level.

Particle flow (ATLAS, arXiv:1703.10485) builds jets from tracks and from the calorimeter energy the tracks did
not account for. This module does it per event, from the MLTree ``EventTree`` (:mod:`jetcloud.atlas.mltree`) and a
per-cell subtraction predicted on the track-centred point clouds (:mod:`jetcloud.atlas.pointcloud`):

- **charged inputs**: every track at its measured momentum (pT, eta, phi), with the pion mass;
- **neutral inputs**: the remainder of every topo-cluster cell, ``E_cell - min(S_cell, E_cell)`` with ``S_cell`` the
  charged energy subtracted from that cell, summed over every track whose sample holds it (keyed by
  ``(eventNumber, cell_id)``: :func:`map_subtraction`); a subtraction is never negative and never takes more than
  the cell has. A cell shared by two clusters gives each occurrence the same fraction of its energy. The remainder
  of each cluster becomes a massless four-vector at its remainder-weighted direction (:func:`cluster_vectors`),
  brought to the hadronic scale with :class:`NeutralCalibration`;
- **jets**: anti-kT (arXiv:0802.1189) with FastJet (arXiv:1111.6097) on the charged + neutral inputs
  (:func:`cluster_jets`); truth jets from the final-state truth particles without neutrinos (:func:`truth_inputs`);
  reco jets matched to truth jets by Delta R (:func:`match_jets`).

**Calibration** (:func:`measure_calibration`): in bins of the EM-scale energy of a cluster, ``c(E) = sum T_n /
sum E_n``, where ``E_n`` is the EM-scale neutral energy of the cluster (each cell's energy times the fraction of its
truth deposit from particles without a reconstructed track) and ``T_n`` the truth (calibration-hit) deposit of those
particles; measured on training events only, and applied unchanged to the topo-cluster, classical and network
remainders, so the three reconstructions differ only in the subtraction. Truth contributions: a cell lists its
(at most three) largest ones; for a shared cell they are split between its occurrences in proportion to energy.

Units: GeV, rad. Everything is flat numpy over the cells of many events (no loop over events or cells); FastJet's
awkward interface clusters all events in one call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np

from jetcloud import metrics
from jetcloud.arrays import gather_ranges
from jetcloud.atlas import baselines, evaluation, mltree
from jetcloud.atlas.celltable import CellTable
from jetcloud.kinematics import delta_r

__all__ = [
    "JET_BRANCHES",
    "PION_MASS_GEV",
    "NEUTRINO_PDG_IDS",
    "EventCells",
    "NeutralCalibration",
    "read_events",
    "cell_occurrences",
    "map_subtraction",
    "align_samples",
    "cluster_vectors",
    "measure_calibration",
    "track_inputs",
    "truth_inputs",
    "neutral_inputs",
    "cluster_jets",
    "reconstruct_jets",
    "match_jets",
    "jet_response",
    "binned_resolution",
    "resolution_gain",
    "cluster_residuals",
    "neutral_calibration",
    "classical_removal",
    "ideal_removal",
    "network_removal",
    "resolution_summary",
    "summary_markdown",
    "goals",
    "JET_RESOLUTION_GAIN_GOAL",
    "residual_summary",
    "goal_statement",
]

#: The ``EventTree`` branches the jets need.
JET_BRANCHES: tuple[str, ...] = (
    "eventNumber",
    "trackPt",
    "trackEta",
    "trackPhi",
    "trackTruthParticleIndex",
    "truthPartPdgId",
    "truthPartStatus",
    "truthPartPt",
    "truthPartEta",
    "truthPartPhi",
    "truthPartMass",
    "cluster_cell_ID",
    "cluster_cell_E",
    "cluster_cell_hitsTruthIndex",
    "cluster_cell_hitsTruthE",
)
#: Charged-pion mass (GeV): the mass hypothesis of every track.
PION_MASS_GEV = 0.13957039
#: |PDG ID| of the neutrinos, left out of the truth jets.
NEUTRINO_PDG_IDS: tuple[int, ...] = (12, 14, 16)

#: Flat per-object columns: ``event`` (row of the event in the events array) and kinematics.
Objects = dict[str, np.ndarray]


# --------------------------------------------------------------------------------------------------------------
# reading events and their cells
# --------------------------------------------------------------------------------------------------------------


def read_events(
    files: Any, event_numbers: Iterable[int] | None = None, *, branches: Sequence[str] = JET_BRANCHES, step_size=250
) -> ak.Array:
    """The events of ``files`` (path, glob or list) whose ``eventNumber`` is in ``event_numbers`` (all if None).

    Events keep the file order. Raises ``ValueError`` if an event number occurs twice among the selected events
    (the subtraction is keyed by event number, so it must name one event).
    """
    wanted = None if event_numbers is None else np.unique(np.asarray(list(event_numbers), np.int64))
    parts = []
    for chunk in mltree.iterate_events(files, list(branches), step_size=step_size):
        if wanted is not None:
            chunk = chunk[np.isin(np.asarray(chunk["eventNumber"], np.int64), wanted)]
        if len(chunk):
            parts.append(chunk)
    if not parts:
        return ak.Array({name: [] for name in branches})[0:0]
    events = ak.concatenate(parts) if len(parts) > 1 else parts[0]
    numbers = np.asarray(events["eventNumber"], np.int64)
    if len(np.unique(numbers)) != len(numbers):
        raise ValueError("eventNumber is not unique among the selected events; the subtraction cannot be mapped")
    return events


@dataclass(frozen=True)
class EventCells:
    """Every cluster-cell occurrence (one row per cluster membership) of a set of events, flat, in file order.

    ``event`` is the row of the event in the events array, ``cluster`` a running cluster index over all events
    (``cluster_event`` gives its event). ``energy`` is the occurrence's EM-scale energy (a shared cell's energy is
    split between its occurrences), ``cell_energy`` the whole cell's (sum of its occurrences). ``neutral_em`` is the
    EM-scale energy from particles without a track, ``neutral_truth`` their truth deposit (GeV).
    """

    event: np.ndarray
    cluster: np.ndarray
    cluster_event: np.ndarray
    cell_id: np.ndarray
    energy: np.ndarray
    cell_energy: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    neutral_em: np.ndarray
    neutral_truth: np.ndarray

    @property
    def n_clusters(self) -> int:
        """Number of clusters over all events."""
        return len(self.cluster_event)


def _group_total(event: np.ndarray, cell_id: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For every row, the sum of ``values`` over the rows of the same (event, cell_id)."""
    order = np.lexsort((cell_id, event))
    e, c = event[order], cell_id[order]
    new = np.ones(len(order), bool)
    new[1:] = (e[1:] != e[:-1]) | (c[1:] != c[:-1])
    group = np.empty(len(order), np.int64)
    group[order] = np.cumsum(new) - 1
    return np.bincount(group, weights=values, minlength=int(new.sum()))[group]


def _truth_per_occurrence(events: ak.Array, event: np.ndarray, n_kept: ak.Array) -> tuple[np.ndarray, np.ndarray]:
    """Per occurrence: total truth energy and the part from particles without a track (file units)."""
    t_idx = events["cluster_cell_hitsTruthIndex"]
    t_e = events["cluster_cell_hitsTruthE"]
    kept = ak.local_index(t_idx, axis=2) < n_kept  # drops the trailing empty lists of cells cut by the threshold
    t_idx, t_e = t_idx[kept], t_e[kept]
    n_truth = ak.to_numpy(ak.flatten(ak.num(t_idx, axis=3), axis=None)).astype(np.int64)
    idx = ak.to_numpy(ak.flatten(t_idx, axis=None)).astype(np.int64)
    energy = ak.to_numpy(ak.flatten(t_e, axis=None)).astype(np.float64)
    occ = np.repeat(np.arange(len(n_truth)), n_truth)
    is_tracked = _is_tracked(events, event[occ], idx)
    total = np.bincount(occ, weights=energy, minlength=len(n_truth))
    neutral = np.bincount(occ, weights=np.where(is_tracked, 0.0, energy), minlength=len(n_truth))
    return total, neutral


def _is_tracked(events: ak.Array, event: np.ndarray, truth_index: np.ndarray) -> np.ndarray:
    """Whether truth particle ``truth_index`` of event row ``event`` has a track (``trackTruthParticleIndex``)."""
    t_event, t_index = _flat(events, "trackTruthParticleIndex")
    t_event, t_index = t_event[t_index >= 0], t_index[t_index >= 0].astype(np.int64)
    span = np.int64(max(int(truth_index.max(initial=0)), int(t_index.max(initial=0))) + 1)
    return np.isin(event * span + truth_index, t_event * span + t_index)


def cell_occurrences(events: ak.Array, table: CellTable, *, truth_scale: float = 1.0) -> EventCells:
    """The flat cluster cells of ``events`` (see :class:`EventCells`), positioned with the geometry ``table``.

    ``truth_scale`` converts ``cluster_cell_hitsTruthE`` to GeV (1 for GeV files, 0.001 for MeV ones). Raises
    ``KeyError`` if a cell ID is not in the geometry.
    """
    ids_l = events["cluster_cell_ID"]
    n_clus = ak.to_numpy(ak.num(ids_l, axis=1)).astype(np.int64)
    n_kept = ak.num(ids_l, axis=2)
    n_cell = ak.to_numpy(ak.flatten(n_kept)).astype(np.int64)
    cluster_event = np.repeat(np.arange(len(events), dtype=np.int64), n_clus)
    cluster = np.repeat(np.arange(len(cluster_event), dtype=np.int64), n_cell)
    event = cluster_event[cluster]
    cell_id = ak.to_numpy(ak.flatten(ids_l, axis=None)).astype(np.uint64)
    energy = ak.to_numpy(ak.flatten(events["cluster_cell_E"], axis=None)).astype(np.float64)
    rank = np.searchsorted(table.ids, cell_id).clip(0, max(len(table) - 1, 0))
    missing = table.ids[rank] != cell_id if len(table) else np.ones(len(cell_id), bool)
    if missing.any():
        raise KeyError(f"{int(missing.sum())} cell ID(s) not in the geometry {table.source}: {cell_id[missing][:5]}")
    total, neutral = _truth_per_occurrence(events, event, n_kept)
    cell_energy = _group_total(event, cell_id, energy)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(cell_energy > 0, energy / cell_energy, 1.0)
        neutral_em = np.where(total > 0, energy * neutral / total, 0.0)
    return EventCells(
        event=event,
        cluster=cluster,
        cluster_event=cluster_event,
        cell_id=cell_id,
        energy=energy,
        cell_energy=cell_energy,
        eta=table.eta[rank],
        phi=table.phi[rank],
        neutral_em=neutral_em,
        neutral_truth=neutral * share * truth_scale,
    )


# --------------------------------------------------------------------------------------------------------------
# the subtraction, mapped from samples back to the event cells
# --------------------------------------------------------------------------------------------------------------


def align_samples(
    event_from: np.ndarray, track_from: np.ndarray, event_to: np.ndarray, track_to: np.ndarray
) -> np.ndarray:
    """Row of ``(event_from, track_from)`` for each ``(event_to, track_to)`` sample, -1 where there is none.

    Used to put a prediction file's rows in the order of the point clouds (both keyed by eventNumber, trackID).
    Raises ``ValueError`` if a key occurs twice in the ``from`` arrays.
    """
    ef, tf = np.asarray(event_from, np.int64), np.asarray(track_from, np.int64)
    order = np.lexsort((tf, ef))
    ef_s, tf_s = ef[order], tf[order]
    if len(order) > 1 and np.any((ef_s[1:] == ef_s[:-1]) & (tf_s[1:] == tf_s[:-1])):
        raise ValueError("a (eventNumber, trackID) occurs twice in the predictions")
    et, tt = np.asarray(event_to, np.int64), np.asarray(track_to, np.int64)
    # binary search on the pair: first by event, then by track within the event's range
    lo = np.searchsorted(ef_s, et, side="left")
    hi = np.searchsorted(ef_s, et, side="right")
    out = np.full(len(et), -1, np.int64)
    for i in np.flatnonzero(hi > lo):  # a loop over the samples with an event only; each is a tiny search
        j = lo[i] + np.searchsorted(tf_s[lo[i] : hi[i]], tt[i])
        if j < hi[i] and tf_s[j] == tt[i]:
            out[i] = order[j]
    return out


def map_subtraction(
    sample_event: np.ndarray,
    cell_id: np.ndarray,
    removed: np.ndarray,
    cells: EventCells,
    event_numbers: np.ndarray,
) -> np.ndarray:
    """Charged energy removed from each cell occurrence of ``cells`` (GeV), from per-sample predictions.

    ``sample_event`` [N] is each sample's eventNumber, ``cell_id`` [N, L] its points' cell IDs (0: not a cell),
    ``removed`` [N, L] the EM-scale energy (GeV) the sample's track takes from each point; ``event_numbers`` the
    eventNumber of each event row of ``cells``. Per (event, cell) the removals of all samples are summed, negative
    ones count as 0, and the sum is capped at the cell energy (nothing is taken from a cell with E <= 0); a shared
    cell's removal is split between its occurrences like its energy. Samples of other events are ignored.
    """
    cid = np.asarray(cell_id).astype(np.uint64, copy=False)
    rem = np.clip(np.nan_to_num(np.asarray(removed, np.float64)), 0.0, None)
    if cid.shape != rem.shape:
        raise ValueError(f"cell_id {cid.shape} and removed {rem.shape} differ in shape")
    numbers = np.asarray(event_numbers, np.int64)
    order = np.argsort(numbers, kind="stable")
    pos = np.searchsorted(numbers[order], np.asarray(sample_event, np.int64)).clip(0, max(len(numbers) - 1, 0))
    found = numbers[order][pos] == np.asarray(sample_event, np.int64) if len(numbers) else np.zeros(len(pos), bool)
    row = np.where(found, order[pos], -1)
    use = (cid != 0) & (rem > 0) & (row[:, None] >= 0)
    s_event = np.broadcast_to(row[:, None], cid.shape)[use]
    # one key space for the samples' and the events' cells: (event row, rank of the cell ID among all IDs)
    all_ids = np.unique(np.concatenate([cid[use], cells.cell_id]))
    n_ids = np.int64(max(len(all_ids), 1))
    s_key = s_event * n_ids + np.searchsorted(all_ids, cid[use])
    keys, inverse = np.unique(s_key, return_inverse=True)
    sums = np.bincount(inverse, weights=rem[use], minlength=len(keys))
    c_key = cells.event * n_ids + np.searchsorted(all_ids, cells.cell_id)
    at = np.searchsorted(keys, c_key).clip(0, max(len(keys) - 1, 0))
    total = np.where((len(keys) > 0) & (keys[at] == c_key), sums[at], 0.0) if len(keys) else np.zeros(len(c_key))
    taken = np.minimum(total, np.clip(cells.cell_energy, 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(cells.cell_energy > 0, taken * cells.energy / cells.cell_energy, 0.0)


def classical_removal(
    arrays: Mapping[str, np.ndarray],
    features: Sequence[str],
    unit_per_gev: float,
    templates: baselines.EoverPTemplates,
    *,
    ring_width_mm: float = 50.0,
    mm_per_unit: float = 1.0,
) -> np.ndarray:
    """EM-scale energy (GeV, [N, L]) the classical ring subtraction (:mod:`jetcloud.atlas.baselines`) removes.

    ``<E/p> x p`` from ``templates`` taken ring by ring from each sample's cells (rings ``ring_width_mm`` wide;
    ``mm_per_unit`` mm per unit of the arrays' distances); no truth-scale calibration: cells are EM scale.
    """
    b = evaluation.baseline_inputs(arrays, features, unit_per_gev)
    expected = templates.expected_fraction(b["p_gev"], b["eta"]) * b["p_gev"] * unit_per_gev
    removed = baselines.subtract_rings(b["energy"], b["distance"], b["is_cell"], expected, ring_width_mm / mm_per_unit)
    return removed / unit_per_gev


def ideal_removal(arrays: Mapping[str, np.ndarray], features: Sequence[str], unit_per_gev: float) -> np.ndarray:
    """The truth subtraction (GeV, [N, L]): each cell's energy times its focused-particle fraction ``frac_labels``.

    The best any per-sample subtraction can do on these point clouds (cells beyond the cone or the truncation,
    and tracks without a sample, are out of its reach too).
    """
    energy = np.asarray(arrays["feats"])[..., list(features).index("energy")].astype(np.float64)
    frac = np.clip(np.asarray(arrays["frac_labels"], np.float64), 0.0, 1.0)
    return np.where(evaluation.cell_mask(arrays), energy * frac, 0.0) / unit_per_gev


def network_removal(predictions: Mapping[str, np.ndarray], arrays: Mapping[str, np.ndarray]) -> tuple[np.ndarray, int]:
    """The network's ``cell_energy`` (GeV, EM scale) in the sample order of ``arrays``, and the number of samples
    without a prediction (they remove nothing). Rows are joined on (eventNumber, trackID)."""
    rows = align_samples(predictions["eventNumber"], predictions["trackID"], arrays["eventNumber"], arrays["trackID"])
    cell_energy = np.asarray(predictions["cell_energy"], np.float64)
    shape = np.shape(arrays["cell_id"])
    if cell_energy.shape[1:] != shape[1:]:
        raise ValueError(f"predictions have {cell_energy.shape[1:]} points per sample, the point clouds {shape[1:]}")
    out = np.zeros(shape)
    out[rows >= 0] = cell_energy[rows[rows >= 0]]
    return out, int(np.sum(rows < 0))


# --------------------------------------------------------------------------------------------------------------
# neutral four-vectors and their calibration
# --------------------------------------------------------------------------------------------------------------


def cluster_vectors(cells: EventCells, energy: np.ndarray) -> Objects:
    """Per cluster: ``energy`` summed over its occurrences and its direction weighted by the positive energies.

    Returns ``event``, ``e``, ``eta``, ``phi`` (one row per cluster; eta, phi NaN where no energy is positive).
    """
    e = np.asarray(energy, np.float64)
    w = np.clip(e, 0.0, None)
    n = cells.n_clusters
    sum_w = np.bincount(cells.cluster, weights=w, minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.bincount(cells.cluster, weights=w * cells.eta, minlength=n) / sum_w
        phi = np.arctan2(
            np.bincount(cells.cluster, weights=w * np.sin(cells.phi), minlength=n),
            np.bincount(cells.cluster, weights=w * np.cos(cells.phi), minlength=n),
        )
    phi = np.where(sum_w > 0, phi, np.nan)
    return {
        "event": cells.cluster_event,
        "e": np.bincount(cells.cluster, weights=e, minlength=n),
        "eta": eta,
        "phi": phi,
    }


@dataclass(frozen=True)
class NeutralCalibration:
    """Hadronic-scale factor ``factor[i]`` for EM-scale energies in ``[edges[i], edges[i+1])`` (GeV).

    Energies outside the edges take the first or last bin; ``n`` counts the training clusters per bin.
    """

    edges: np.ndarray
    factor: np.ndarray
    n: np.ndarray

    def __call__(self, e_em: np.ndarray) -> np.ndarray:
        """The factor for each EM-scale energy."""
        i = np.searchsorted(self.edges, np.asarray(e_em, np.float64), side="right") - 1
        return self.factor[np.clip(i, 0, len(self.factor) - 1)]


def measure_calibration(
    e_em: np.ndarray, e_truth: np.ndarray, edges: Sequence[float], *, min_entries: int = 10
) -> NeutralCalibration:
    """``factor = sum e_truth / sum e_em`` per bin of ``e_em`` (clusters with ``e_em > 0``).

    Bins with fewer than ``min_entries`` clusters take the factor of the nearest filled bin; if none is filled,
    the overall ratio. Raises ``ValueError`` when no cluster has positive EM energy.
    """
    e_em, e_truth = np.asarray(e_em, np.float64), np.asarray(e_truth, np.float64)
    edges_a = np.asarray(edges, np.float64)
    ok = e_em > 0
    if not ok.any() or e_em[ok].sum() <= 0:
        raise ValueError("no cluster with positive EM-scale neutral energy: cannot calibrate")
    nb = len(edges_a) - 1
    i = np.clip(np.searchsorted(edges_a, e_em[ok], side="right") - 1, 0, nb - 1)
    n = np.bincount(i, minlength=nb)
    s_em = np.bincount(i, weights=e_em[ok], minlength=nb)
    s_truth = np.bincount(i, weights=e_truth[ok], minlength=nb)
    filled = (n >= max(min_entries, 1)) & (s_em > 0)
    overall = float(e_truth[ok].sum() / e_em[ok].sum())
    if not filled.any():
        return NeutralCalibration(edges_a, np.full(nb, overall), n)
    centres = np.flatnonzero(filled)
    nearest = centres[np.argmin(np.abs(np.arange(nb)[:, None] - centres[None, :]), axis=1)]
    return NeutralCalibration(edges_a, (s_truth / np.where(s_em > 0, s_em, 1.0))[nearest], n)


def neutral_calibration(cells: EventCells, edges: Sequence[float], *, min_entries: int = 10) -> NeutralCalibration:
    """:func:`measure_calibration` on the clusters of ``cells`` (training events): per cluster, the truth deposit
    of the particles without a track against their EM-scale energy."""
    n = cells.n_clusters
    e_em = np.bincount(cells.cluster, weights=cells.neutral_em, minlength=n)
    e_truth = np.bincount(cells.cluster, weights=cells.neutral_truth, minlength=n)
    return measure_calibration(e_em, e_truth, edges, min_entries=min_entries)


# --------------------------------------------------------------------------------------------------------------
# inputs and jets
# --------------------------------------------------------------------------------------------------------------


def _flat(events: ak.Array, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(event row, values) of a per-event vector branch."""
    n = ak.to_numpy(ak.num(events[name], axis=1))
    return np.repeat(np.arange(len(n), dtype=np.int64), n), ak.to_numpy(ak.flatten(events[name])).astype(np.float64)


def track_inputs(events: ak.Array) -> Objects:
    """Charged inputs: every track's ``event``, ``pt``, ``eta``, ``phi`` and the pion ``mass`` (GeV)."""
    event, pt = _flat(events, "trackPt")
    eta, phi = _flat(events, "trackEta")[1], _flat(events, "trackPhi")[1]
    return {"event": event, "pt": pt, "eta": eta, "phi": phi, "mass": np.full(len(pt), PION_MASS_GEV)}


def truth_inputs(events: ak.Array) -> Objects:
    """Truth-jet inputs: final-state (status 1) truth particles, neutrinos excluded."""
    event, pt = _flat(events, "truthPartPt")
    cols = {k: _flat(events, f"truthPart{k}")[1] for k in ("Eta", "Phi", "Mass", "PdgId", "Status")}
    keep = (cols["Status"] == 1) & ~np.isin(np.abs(cols["PdgId"]), NEUTRINO_PDG_IDS)
    return {
        "event": event[keep],
        "pt": pt[keep],
        "eta": cols["Eta"][keep],
        "phi": cols["Phi"][keep],
        "mass": cols["Mass"][keep],
    }


def neutral_inputs(clusters: Objects, calibration: NeutralCalibration | None) -> Objects:
    """Massless neutral inputs from cluster energies (``cluster_vectors``), calibrated; clusters with E <= 0 dropped."""
    keep = (clusters["e"] > 0) & np.isfinite(clusters["eta"])
    e = clusters["e"][keep]
    if calibration is not None:
        e = e * calibration(e)
    eta = clusters["eta"][keep]
    return {
        "event": clusters["event"][keep],
        "pt": e / np.cosh(eta),
        "eta": eta,
        "phi": clusters["phi"][keep],
        "mass": np.zeros(len(e)),
    }


def _four_momenta(objects: Objects) -> dict[str, np.ndarray]:
    pt, eta, phi, m = (np.asarray(objects[k], np.float64) for k in ("pt", "eta", "phi", "mass"))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return {"px": px, "py": py, "pz": pz, "E": np.sqrt(px**2 + py**2 + pz**2 + m**2)}


def cluster_jets(objects: Sequence[Objects], n_events: int, *, radius: float = 0.4, min_pt: float = 0.0) -> Objects:
    """Anti-kT jets (FastJet, E scheme) of the union of ``objects`` per event, ``pt > min_pt``.

    Returns flat ``event``, ``pt``, ``eta``, ``phi``, ``e`` of the jets, ordered by event then decreasing pT.
    """
    import fastjet  # imported here: the FastJet banner is printed on import

    event = np.concatenate([np.asarray(o["event"], np.int64) for o in objects])
    p4 = [_four_momenta(o) for o in objects]
    cols = {k: np.concatenate([p[k] for p in p4]) for k in ("px", "py", "pz", "E")}
    order = np.argsort(event, kind="stable")
    counts = np.bincount(event, minlength=n_events)
    particles = ak.unflatten(ak.zip({k: v[order] for k, v in cols.items()}), counts)
    sequence = fastjet.ClusterSequence(particles, fastjet.JetDefinition(fastjet.antikt_algorithm, radius))
    jets = sequence.inclusive_jets(min_pt)
    n_jets = ak.to_numpy(ak.num(jets, axis=1))
    px, py, pz, e = (ak.to_numpy(ak.flatten(jets[k])).astype(np.float64) for k in ("px", "py", "pz", "E"))
    pt = np.hypot(px, py)
    ev = np.repeat(np.arange(n_events, dtype=np.int64), n_jets)
    out_order = np.lexsort((-pt, ev))
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(np.where(pt > 0, pz / pt, 0.0))
    return {
        "event": ev[out_order],
        "pt": pt[out_order],
        "eta": eta[out_order],
        "phi": np.arctan2(py, px)[out_order],
        "e": e[out_order],
    }


def reconstruct_jets(
    cells: EventCells,
    tracks: Objects | None,
    removed: np.ndarray,
    calibration: NeutralCalibration | None,
    n_events: int,
    *,
    radius: float = 0.4,
    min_pt: float = 0.0,
) -> tuple[Objects, Objects]:
    """Particle-flow jets: ``tracks`` (None for topo-cluster jets) plus the calibrated cluster remainders.

    ``removed`` is the charged energy taken from each cell occurrence (:func:`map_subtraction`; zeros for
    topo-cluster jets). Returns ``(jets, clusters)``, ``clusters`` the per-cluster EM-scale remainder
    (:func:`cluster_vectors`) with the truth ``neutral_em`` and ``neutral_truth`` of each cluster added.
    """
    clusters = cluster_vectors(cells, cells.energy - np.asarray(removed, np.float64))
    for key in ("neutral_em", "neutral_truth"):
        clusters[key] = np.bincount(cells.cluster, weights=getattr(cells, key), minlength=cells.n_clusters)
    inputs = [neutral_inputs(clusters, calibration)] + ([tracks] if tracks is not None else [])
    return cluster_jets(inputs, n_events, radius=radius, min_pt=min_pt), clusters


def match_jets(truth: Objects, reco: Objects, *, max_dr: float = 0.2) -> np.ndarray:
    """For each truth jet, the row of the closest reco jet of the same event within ``max_dr`` (else -1)."""
    t_ev, r_ev = np.asarray(truth["event"], np.int64), np.asarray(reco["event"], np.int64)
    out = np.full(len(t_ev), -1, np.int64)
    if len(t_ev) == 0 or len(r_ev) == 0:
        return out
    r_order = np.argsort(r_ev, kind="stable")
    start = np.searchsorted(r_ev[r_order], t_ev, side="left")
    count = np.searchsorted(r_ev[r_order], t_ev, side="right") - start
    t_pair = np.repeat(np.arange(len(t_ev)), count)
    r_pair = r_order[gather_ranges(start, count)]
    dr = delta_r(truth["eta"][t_pair], truth["phi"][t_pair], reco["eta"][r_pair], reco["phi"][r_pair])
    ok = dr < max_dr
    t_pair, r_pair, dr = t_pair[ok], r_pair[ok], dr[ok]
    best = np.lexsort((dr, t_pair))
    first = np.ones(len(best), bool)
    first[1:] = t_pair[best][1:] != t_pair[best][:-1]
    out[t_pair[best][first]] = r_pair[best][first]
    return out


# --------------------------------------------------------------------------------------------------------------
# response and resolution
# --------------------------------------------------------------------------------------------------------------


def jet_response(truth: Objects, reco: Objects, match: np.ndarray) -> np.ndarray:
    """``pT(reco) / pT(truth)`` per truth jet (NaN where unmatched)."""
    match = np.asarray(match, np.int64)
    reco_pt = np.full(len(match), np.nan)
    reco_pt[match >= 0] = np.asarray(reco["pt"], np.float64)[match[match >= 0]]
    return reco_pt / np.asarray(truth["pt"], np.float64)


def _bootstrap_stats(values: np.ndarray, rng: np.random.Generator, n_boot: int) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap replicas ``(median, relative sigma68)`` of the finite ``values`` ([n_boot] each)."""
    v = values[np.isfinite(values)]
    if len(v) == 0 or n_boot <= 0:
        return np.full(max(n_boot, 0), np.nan), np.full(max(n_boot, 0), np.nan)
    samples = v[rng.integers(0, len(v), size=(n_boot, len(v)))]
    q16, q50, q84 = np.quantile(samples, [0.15865525393145707, 0.5, 0.8413447460685429], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return q50, 0.5 * (q84 - q16) / np.abs(q50)


def binned_resolution(
    response: np.ndarray,
    truth_pt: np.ndarray,
    edges: Sequence[float],
    *,
    n_boot: int = 200,
    seed: int = 0,
    min_entries: int = 5,
) -> dict[str, np.ndarray]:
    """Median response and relative sigma68 in bins of truth-jet pT, with bootstrap standard errors.

    Returns ``lo, hi, n`` (matched jets), ``efficiency`` (matched / truth jets), ``median, median_err, sigma68,
    sigma68_err``; bins with fewer than ``min_entries`` matched jets have NaN statistics.
    """
    response, truth_pt, edges_a = (np.asarray(a, np.float64) for a in (response, truth_pt, edges))
    rng = np.random.default_rng(seed)
    nb = len(edges_a) - 1
    out = {"lo": edges_a[:-1], "hi": edges_a[1:], "n": np.zeros(nb, np.int64), "efficiency": np.full(nb, np.nan)}
    for key in ("median", "median_err", "sigma68", "sigma68_err"):
        out[key] = np.full(nb, np.nan)
    which = np.digitize(truth_pt, edges_a) - 1
    for b in range(nb):  # the few bins only
        in_bin = which == b
        r = response[in_bin & np.isfinite(response)]
        out["n"][b] = len(r)
        out["efficiency"][b] = len(r) / in_bin.sum() if in_bin.any() else np.nan
        if len(r) < min_entries:
            continue
        out["median"][b], out["sigma68"][b] = metrics.median_and_sigma68(r, relative=True)
        med, sig = _bootstrap_stats(r, rng, n_boot)
        out["median_err"][b], out["sigma68_err"][b] = np.nanstd(med), np.nanstd(sig)
    return out


def resolution_gain(
    response_new: np.ndarray,
    response_ref: np.ndarray,
    truth_pt: np.ndarray,
    pt_range: tuple[float, float],
    *,
    n_boot: int = 500,
    seed: int = 0,
    min_entries: int = 5,
) -> dict[str, float | int]:
    """``1 - sigma68(new) / sigma68(ref)`` (relative sigma68s) of the truth jets with pT in ``pt_range``.

    Both responses are per truth jet (NaN: unmatched); the bootstrap resamples the truth jets once for both (paired),
    giving ``lo``/``hi`` (16th/84th percentiles) and ``err`` (standard deviation). NaN with fewer than
    ``min_entries`` matched jets in either reconstruction.
    """
    new, ref, pt = (np.asarray(a, np.float64) for a in (response_new, response_ref, truth_pt))
    sel = (pt >= pt_range[0]) & (pt < pt_range[1])
    new, ref = new[sel], ref[sel]
    n_new, n_ref = int(np.isfinite(new).sum()), int(np.isfinite(ref).sum())
    out: dict[str, float | int] = {
        "value": np.nan,
        "lo": np.nan,
        "hi": np.nan,
        "err": np.nan,
        "n_new": n_new,
        "n_ref": n_ref,
    }
    if min(n_new, n_ref) < min_entries:
        return out
    s_new = metrics.median_and_sigma68(new, relative=True)[1]
    s_ref = metrics.median_and_sigma68(ref, relative=True)[1]
    out["value"] = 1.0 - s_new / s_ref
    rng = np.random.default_rng(seed)
    gains = np.empty(n_boot)
    for k in range(n_boot):  # each replica: two quantile calls on the same resampled jets
        idx = rng.integers(0, len(new), len(new))
        gains[k] = 1.0 - _rel_sigma68(new[idx]) / _rel_sigma68(ref[idx])
    gains = gains[np.isfinite(gains)]
    if len(gains):
        out["lo"], out["hi"] = (float(q) for q in np.quantile(gains, [0.15865525393145707, 0.8413447460685429]))
        out["err"] = float(np.std(gains))
    return out


def _rel_sigma68(values: np.ndarray) -> float:
    """Relative sigma68 of the finite values (NaN with fewer than two)."""
    v = values[np.isfinite(values)]
    return metrics.median_and_sigma68(v, relative=True)[1] if len(v) >= 2 else np.nan


def cluster_residuals(clusters: Mapping[str, np.ndarray], min_e: float = 0.0) -> dict[str, np.ndarray]:
    """Per cluster: EM-scale remainder ``e``, its truth ``neutral_em`` and the residual (clusters with |E| > min_e)."""
    keep = np.abs(clusters["e"]) > min_e
    return {
        "e": clusters["e"][keep],
        "truth": clusters["neutral_em"][keep],
        "residual": (clusters["e"] - clusters["neutral_em"])[keep],
    }


#: The goal of notebook 05: network jets' sigma68 at least 15% below the classical jets' (truth pT 20-100 GeV).
JET_RESOLUTION_GAIN_GOAL = 0.15


def resolution_summary(
    responses: Mapping[str, np.ndarray],
    truth_pt: np.ndarray,
    pt_range: Sequence[float],
    *,
    n_boot: int = 200,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Per reconstruction, over the truth jets with pT in ``pt_range``: ``truth_jets``, ``matched``, ``efficiency``,
    ``median`` and relative ``sigma68`` of the response with bootstrap errors (:func:`binned_resolution`, one bin)."""
    out = {}
    for name, r in responses.items():
        b = binned_resolution(r, truth_pt, pt_range, n_boot=n_boot, seed=seed)
        n_truth = int(np.sum((truth_pt >= pt_range[0]) & (truth_pt < pt_range[1])))
        out[name] = {"truth_jets": n_truth, "matched": int(b["n"][0]), "efficiency": float(b["efficiency"][0])}
        out[name].update({k: float(b[k][0]) for k in ("median", "median_err", "sigma68", "sigma68_err")})
    return out


def summary_markdown(summary: Mapping[str, Mapping[str, float]]) -> str:
    """A markdown table of :func:`resolution_summary` (value +- bootstrap error)."""
    lines = ["| reconstruction | matched / truth jets | median response | sigma68 / median |", "|---|---|---|---|"]
    for name, s in summary.items():
        lines.append(
            f"| {name} | {s['matched']} / {s['truth_jets']} | {s['median']:.3f} ± {s['median_err']:.3f} | "
            f"{s['sigma68']:.3f} ± {s['sigma68_err']:.3f} |"
        )
    return "\n".join(lines)


def goals(gain: Mapping[str, float] | None, network: str | None) -> dict[str, Any]:
    """The ``goals`` block: ``jet_resolution_gain`` with its 68% bootstrap interval ``_lo`` / ``_hi`` (None without a
    network run), the ``_goal`` and ``_met`` (1 when the whole interval is at or above the goal, as notebook 04
    judges its goals) and ``_central_met`` (1 when the central value is)."""
    value = None if gain is None or not np.isfinite(gain["value"]) else float(gain["value"])
    lo = None if value is None or not np.isfinite(gain["lo"]) else float(gain["lo"])
    hi = None if value is None or not np.isfinite(gain["hi"]) else float(gain["hi"])
    return {
        "network": network,
        "jet_resolution_gain": value,
        "jet_resolution_gain_lo": lo,
        "jet_resolution_gain_hi": hi,
        "jet_resolution_gain_goal": JET_RESOLUTION_GAIN_GOAL,
        "jet_resolution_gain_met": int(lo is not None and lo >= JET_RESOLUTION_GAIN_GOAL),
        "jet_resolution_gain_central_met": int(value is not None and value >= JET_RESOLUTION_GAIN_GOAL),
    }


def residual_summary(residuals: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, dict[str, float]]:
    """Per subtraction, the ``median`` and ``sigma68`` (GeV) of the per-cluster residual remainder - truth neutral."""
    out = {}
    for name, r in residuals.items():
        median, sigma = metrics.median_and_sigma68(r["residual"])
        out[name] = {"median": median, "sigma68": sigma, "clusters": int(len(r["residual"]))}
    return out


def goal_statement(block: Mapping[str, Any]) -> str:
    """One plain sentence on ``jet_resolution_gain`` of a :func:`goals` block: its value, interval and verdict."""
    value = block["jet_resolution_gain"]
    if value is None:
        return "jet_resolution_gain: not measured (no network predictions, or too few matched jets in the range)"
    if block["jet_resolution_gain_met"]:
        verdict = "goal MET (the whole 68% interval is above it)"
    elif block["jet_resolution_gain_central_met"]:
        verdict = "goal not established: the central value meets it, the 68% interval does not"
    else:
        verdict = "goal NOT met"
    lo, hi = block["jet_resolution_gain_lo"], block["jet_resolution_gain_hi"]
    interval = "n/a" if lo is None or hi is None else f"{lo:.3f}, {hi:.3f}"
    goal, net = block["jet_resolution_gain_goal"], block["network"]
    return f"jet_resolution_gain = {value:.3f} (68% interval [{interval}], goal >= {goal:.2f}, {net}): {verdict}"
