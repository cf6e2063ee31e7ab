"""Validation of the simulated detector from the files it wrote (what a user of real MLTree files sees).

All functions read MLTree ``EventTree`` arrays (awkward, as returned by :func:`jetcloud.io.mltree.iterate_events`
or ``uproot``) and the geometry; none needs the simulation internals, so they also run on real files.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from ..geometry import MISSING_THRESHOLD, SAMPLING_NAMES
from .geometry import CaloGeometry


def cluster_cells(events: ak.Array, geometry: CaloGeometry) -> dict[str, np.ndarray]:
    """Flat columns of every written cluster cell: event row, cluster row, geometry row, sampling, E (GeV)."""
    ids = events["cluster_cell_ID"]
    energy = ak.to_numpy(ak.flatten(events["cluster_cell_E"], axis=None)).astype(np.float64)
    n_per_cluster = ak.num(ids, axis=2)
    flat_ids = ak.to_numpy(ak.flatten(ids, axis=None)).astype(np.uint64)
    rows = geometry.index_of_id(flat_ids)
    n_clusters = ak.to_numpy(ak.num(ids, axis=1))
    cluster_event = np.repeat(np.arange(len(n_clusters)), n_clusters)
    cells_per_cluster = ak.to_numpy(ak.flatten(n_per_cluster))
    cluster_row = np.repeat(np.arange(len(cells_per_cluster)), cells_per_cluster)
    return {
        "event": cluster_event[cluster_row],
        "cluster": cluster_row,
        "cell": rows,
        "sampling": geometry.sampling[rows].astype(np.int64),
        "e": energy,
        "eta": geometry.eta[rows],
        "phi": geometry.phi[rows],
        "sigma": geometry.sigma[rows] / 1000.0,
    }


def energy_fraction_per_sampling(events: ak.Array, geometry: CaloGeometry) -> np.ndarray:
    """Fraction of the total clustered cell energy in each of the 24 samplings."""
    cells = cluster_cells(events, geometry)
    per_sampling = np.bincount(cells["sampling"], weights=cells["e"], minlength=len(SAMPLING_NAMES))
    return per_sampling / max(per_sampling.sum(), 1e-12)


def reference_points(events: ak.Array) -> tuple[ak.Array, ak.Array]:
    """Each track's reference (eta, phi): EMB2 if the track enters it, else EME2 (JetPointNet's rule)."""
    eta = ak.where(events["trackEta_EMB2"] > MISSING_THRESHOLD, events["trackEta_EMB2"], events["trackEta_EME2"])
    phi = ak.where(events["trackPhi_EMB2"] > MISSING_THRESHOLD, events["trackPhi_EMB2"], events["trackPhi_EME2"])
    return eta, phi


def summary_counts(events: ak.Array) -> dict[str, float]:
    """Event-level multiplicities: tracks, truth particles, clusters, written cells (means per event)."""
    cells_per_cluster = ak.num(events["cluster_cell_ID"], axis=2)
    return {
        "tracks_per_event": float(ak.mean(events["nTrack"])),
        "truth_particles_per_event": float(ak.mean(events["nTruthPart"])),
        "clusters_per_event": float(ak.mean(events["nCluster"])),
        "cells_per_cluster_mean": float(ak.mean(ak.flatten(events["cluster_nCells"]))),
        "written_cells_per_cluster_mean": float(ak.mean(ak.flatten(cells_per_cluster))),
    }
