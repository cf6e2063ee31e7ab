"""Validation of the simulated detector from the files it wrote (what a user of real MLTree files sees).

All functions read MLTree ``EventTree`` arrays (awkward, as returned by :func:`jetcloud.atlas.mltree.iterate_events`
or ``uproot``) and the geometry; none needs the simulation internals, so they also run on real files.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from jetcloud.atlas.cellgeo import CaloGeometry
from jetcloud.atlas.layers import MISSING_THRESHOLD, SAMPLING_NAMES


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


def core_mean_std(values: np.ndarray, n_sigma: float = 2.0, iterations: int = 20) -> tuple[float, float, int]:
    """Mean and width of the Gaussian core of a distribution, robust against non-Gaussian tails.

    Iterates: keep the values within ``n_sigma`` * sigma of the mean, take their mean and standard deviation and
    divide the latter by the standard deviation of a unit Gaussian truncated at +-``n_sigma`` (0.880 for 2), so
    that for a Gaussian the estimate is unbiased (the fixed point is the true sigma). Tails from leakage or
    cracks therefore do not inflate the width, as in the usual iterative Gaussian fit to the response core.
    Returns ``(mean, sigma, n_kept)``.
    """
    from scipy.stats import truncnorm

    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    shrink = float(truncnorm.std(-n_sigma, n_sigma))
    mean, sigma = v.mean(), v.std(ddof=1)
    keep = np.ones(len(v), bool)
    for _ in range(iterations):
        keep = np.abs(v - mean) <= n_sigma * sigma
        new_mean, new_sigma = v[keep].mean(), v[keep].std(ddof=1) / shrink
        tolerance = 1e-6 * max(sigma, 1e-12)
        converged = abs(new_sigma - sigma) < tolerance and abs(new_mean - mean) < tolerance
        mean, sigma = new_mean, new_sigma
        if converged:
            break
    return float(mean), float(sigma), int(keep.sum())


def response_table(energies: np.ndarray, measured: np.ndarray) -> dict[str, np.ndarray]:
    """Response <E_reco>/E and resolution sigma/<E_reco> per true energy, with statistical errors.

    ``measured`` has shape (n_energies, n_particles): the reconstructed (EM-scale) energy of each particle.
    """
    rows = [core_mean_std(m) for m in measured]
    mean = np.array([r[0] for r in rows])
    std = np.array([r[1] for r in rows])
    n = np.array([r[2] for r in rows], np.float64)
    e = np.asarray(energies, np.float64)
    return {
        "energy": e,
        "mean": mean,
        "sigma": std,
        "sigma_err": std / np.sqrt(2 * (n - 1)),
        "response": mean / e,
        "response_err": std / np.sqrt(n) / e,
        "resolution": std / mean,
        "resolution_err": std / mean / np.sqrt(2 * (n - 1)),
    }
