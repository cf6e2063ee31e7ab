"""Parametric ATLAS-like Inner Detector: tracks of charged particles and their helix extrapolation.

Everything here is vectorised over all particles of a chunk of events (flat columns with an ``event`` column,
see :mod:`jetcloud.sim.particles`); there are no per-track Python loops.

Detector model (all values approximate, for a synthetic MLTree; units GeV, mm, rad):

=============================  ================================  ===========================================
quantity                       value                             source / note
=============================  ================================  ===========================================
solenoid field B               2.0 T along +z                    ATLAS central solenoid
field region                   r < 1150 mm, |z| < 2650 mm        uniform inside; zero outside (see below)
tracking acceptance            abs(eta) < 2.5                    ID coverage
pT threshold                   ``pt_min`` = 0.5 GeV (parameter)  InDetTrackSelectionTool "Loose"-like
efficiency (pions)             0.80 at 0.5 GeV -> 0.91 plateau   ATLAS ID tracking performance figures
                               at eta 0, ~0.81 at abs(eta) 2.5   (approximate shape only)
sigma(q/pT) * pT               0.05% * pT[GeV] (+) 1%            ATLAS ID design; x(1 + 0.5 (|eta|-1))
                                                                 above |eta| = 1 when ``eta_dependence``
sigma(phi)                     0.070 mrad (+) 2.73 mrad / pT     ATLAS detector paper (JINST 3 S08003) ID
sigma(cot theta)               0.7e-3 (+) 3.5e-3 / pT            performance table, sigma(inf)(1 (+) pX/pT)
sigma(d0)                      10 um (+) 140 um / pT             ditto
sigma(z0 sin theta)            91 um (+) 209 um / pT             ditto
pixel / SCT / TRT hits         ~4 / ~8 / ~30 (TRT 0 at |eta|>2)  shared hits written as 0; holes mostly 0
ndof                           2 Npix + NSCT + NTRT - 5, >= 1    chi2 ~ chi2(ndof)
=============================  ================================  ===========================================

Helix convention. With B along +z, the Lorentz force q v x B bends a **positive** particle **clockwise** seen
from +z, so its azimuth *decreases*: a track from the beam line with direction phi0 is at azimuth
``phi(r) = phi0 - Q asin(r / (2 R_c))`` at radius r, with ``R_c [m] = pT [GeV] / (0.3 B [T] |q|)`` and
``Q = sign(q)``; its direction at that point is ``phi0 - 2 Q asin(r / (2 R_c))``. ``z`` grows linearly with
the transverse arc length ``s_T = 2 R_c asin(r / (2 R_c))``: ``z = vz + sinh(eta) s_T``.

Approximations (documented on purpose):

- The field is uniform inside the solenoid volume and zero outside: once the helix leaves r = 1150 mm or
  |z| = 2650 mm it continues as a straight line along its exit direction. (The real field falls off
  gradually; for a 1 GeV track at r = 1.5 m this model gives |dphi| = 0.436 rad against 0.467 rad for a
  uniform field extending to 1.5 m.)
- Loopers: a track that turns by more than half a revolution (pi) before leaving the field never reaches
  anything outside it (it is absorbed in the ID material). In the barrel this means 2 R_c > 1150 mm, i.e.
  pT > 0.345 GeV at eta = 0; forward tracks can leave through the solenoid end at lower pT.
- Charged helices start on the beam line at (0, 0, vz): the transverse vertex displacement is neglected for
  the extrapolation (it enters d0 only). Neutral particles in :func:`calo_entry` use their full vertex.
- Energy loss and multiple scattering are not propagated (the perigee smearing stands in for them).
- Extrapolation eta/phi are "as seen from the origin": ``eta = asinh(z / r)``, ``phi = atan2(y, x)``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from jetcloud.atlas.layers import (
    EXTRAPOLATION_ETA_RANGE,
    EXTRAPOLATION_FIXED_Z,
    EXTRAPOLATION_POSITION_MM,
    EXTRAPOLATION_SAMPLINGS,
    MISSING_EXTRAPOLATION,
    MISSING_THRESHOLD,
)
from jetcloud.atlas.mltree_schema import TRACK_HIT_COUNTS
from jetcloud.kinematics import wrap_phi
from jetcloud.sim.helix import HelixState
from jetcloud.sim.particles import Particles

log = logging.getLogger(__name__)

#: Solenoid field along +z, tesla.
B_FIELD_T = 2.0
#: Radius of the uniform-field region, mm (straight lines beyond).
SOLENOID_RADIUS_MM = 1150.0
#: Half-length of the uniform-field region, mm.
SOLENOID_HALF_LENGTH_MM = 2650.0
#: The ATLAS solenoid as keyword arguments of :func:`jetcloud.sim.helix.helix_to_cylinder` / ``helix_to_disk``.
FIELD: dict[str, float] = {
    "b_field_t": B_FIELD_T,
    "field_radius_mm": SOLENOID_RADIUS_MM,
    "field_half_length_mm": SOLENOID_HALF_LENGTH_MM,
}
#: Tracking acceptance |eta| < ETA_MAX.
ETA_MAX = 2.5
#: Default track pT threshold, GeV (InDetTrackSelectionTool "Loose"-like).
PT_MIN = 0.5
#: Calorimeter front face used by :func:`calo_entry`: cylinder r = 1500 mm for |z| < 3700 mm, else disks.
CALO_FRONT_RADIUS_MM = 1500.0
CALO_FRONT_HALF_LENGTH_MM = 3700.0
#: Track mass hypothesis (charged pion), GeV.
PION_MASS = 0.13957

#: Fractional 1/pT resolution terms: sigma(q/pT) * pT = A * pT[GeV] (+) B_MS.
PT_RES_A = 5.0e-4
PT_RES_MS = 0.01
#: sigma_X(pT) = S (+) P / pT[GeV] for phi [rad], cot(theta), d0 [mm], z0 sin(theta) [mm].
PHI_RES = (7.0e-5, 2.73e-3)
COTTHETA_RES = (7.0e-4, 3.5e-3)
D0_RES_MM = (0.010, 0.140)
Z0SIN_RES_MM = (0.091, 0.209)
#: Particles produced beyond this transverse radius (mm) cannot be reconstructed (too few silicon hits).
MAX_VERTEX_R_MM = 100.0

#: Integer hit-summary columns written (int32), in MLTree branch order.
HIT_COLUMNS: tuple[str, ...] = TRACK_HIT_COUNTS

_EMB2 = EXTRAPOLATION_SAMPLINGS.index("EMB2")
_EME2 = EXTRAPOLATION_SAMPLINGS.index("EME2")


# ----------------------------------------------------------------------------------------------------------
# Helix propagation
# ----------------------------------------------------------------------------------------------------------


def _column(source: Particles | Mapping[str, np.ndarray] | Any, name: str) -> np.ndarray:
    if isinstance(source, Mapping):
        return np.asarray(source[name])
    return np.asarray(getattr(source, name))


def extrapolate_helices(
    pt: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    charge: np.ndarray,
    vz: np.ndarray,
    *,
    b_field_t: float = B_FIELD_T,
) -> tuple[np.ndarray, np.ndarray]:
    """(eta, phi) where each track enters the 21 ``EXTRAPOLATION_SAMPLINGS``, shape (n, 21), float32.

    For every sampling the helix is intersected with its reference surface (cylinder at fixed r, or the disk
    at ``sign(eta) * |z|`` on the track's side); the track *enters* the sampling if it reaches the surface
    and the hit's |eta| lies in ``EXTRAPOLATION_ETA_RANGE``. Elsewhere both eta and phi are
    ``MISSING_EXTRAPOLATION`` (np.float32(-999999999) = -1e9; test with ``< MISSING_THRESHOLD``).
    """
    pt, eta, phi, charge, vz = (np.asarray(a, dtype=np.float64).ravel() for a in (pt, eta, phi, charge, vz))
    n = len(pt)
    shape = (n, len(EXTRAPOLATION_SAMPLINGS))
    state = HelixState(
        pt[:, None],
        eta[:, None],
        phi[:, None],
        charge[:, None],
        vz[:, None],
        b_field_t,
        SOLENOID_RADIUS_MM,
        SOLENOID_HALF_LENGTH_MM,
    )
    side = np.where(eta >= 0, 1.0, -1.0)[:, None]
    out_eta = np.empty(shape, dtype=np.float32)
    out_phi = np.empty(shape, dtype=np.float32)
    for disk in (False, True):
        cols = np.flatnonzero(EXTRAPOLATION_FIXED_Z == disk)
        pos = EXTRAPOLATION_POSITION_MM[None, cols]
        e, p, _ = state.to_disk(side * pos) if disk else state.to_cylinder(pos)
        a = np.abs(e)  # NaN where not reached: every comparison below is then False
        inside = (a >= EXTRAPOLATION_ETA_RANGE[None, cols, 0]) & (a < EXTRAPOLATION_ETA_RANGE[None, cols, 1])
        out_eta[:, cols] = np.where(inside, e, MISSING_EXTRAPOLATION)
        out_phi[:, cols] = np.where(inside, p, MISSING_EXTRAPOLATION)
    return out_eta, out_phi


def extrapolate_to_layers(
    source: Particles | Mapping[str, np.ndarray] | Any, *, b_field_t: float = B_FIELD_T
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`extrapolate_helices` for a :class:`Particles` table or a mapping/object with columns
    ``pt, eta, phi, charge, vz`` (GeV, rad, e, mm). Returns ``(eta, phi)`` of shape (n, 21), float32."""
    return extrapolate_helices(*(_column(source, c) for c in ("pt", "eta", "phi", "charge", "vz")), b_field_t=b_field_t)


def layer_branches(layer_eta: np.ndarray, layer_phi: np.ndarray) -> dict[str, np.ndarray]:
    """Expand (n, 21) arrays into the 42 flat ``trackEta_<S>``/``trackPhi_<S>`` columns in MLTree branch order
    (eta, phi pairs per sampling, ``EXTRAPOLATION_SAMPLINGS`` order)."""
    out: dict[str, np.ndarray] = {}
    for j, s in enumerate(EXTRAPOLATION_SAMPLINGS):
        out[f"trackEta_{s}"] = np.ascontiguousarray(layer_eta[:, j], dtype=np.float32)
        out[f"trackPhi_{s}"] = np.ascontiguousarray(layer_phi[:, j], dtype=np.float32)
    return out


def stack_layer_branches(columns: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`layer_branches`: (n, 21) float32 eta and phi from the 42 flat columns."""
    eta = np.stack([np.asarray(columns[f"trackEta_{s}"]) for s in EXTRAPOLATION_SAMPLINGS], axis=1)
    phi = np.stack([np.asarray(columns[f"trackPhi_{s}"]) for s in EXTRAPOLATION_SAMPLINGS], axis=1)
    return eta.astype(np.float32), phi.astype(np.float32)


def calo_entry(particles: Particles, *, b_field_t: float = B_FIELD_T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(eta, phi, reached) where each particle enters the calorimeter front face, for the shower code.

    The front face is the cylinder r = ``CALO_FRONT_RADIUS_MM`` for |z| <= ``CALO_FRONT_HALF_LENGTH_MM`` and
    the disks at |z| = ``CALO_FRONT_HALF_LENGTH_MM`` inside it. Charged particles follow the helix from
    (0, 0, vz) (loopers get ``reached=False``); neutral ones a straight line from their vertex (vx, vy, vz).
    eta/phi are float64 as seen from the origin, NaN where not reached.
    """
    pt, eta, phi = particles.pt, particles.eta, particles.phi
    charge = np.asarray(particles.charge, dtype=np.float64)
    vx, vy, vz = particles.vx, particles.vy, particles.vz
    R, L = CALO_FRONT_RADIUS_MM, CALO_FRONT_HALF_LENGTH_MM
    side = np.where(eta >= 0, 1.0, -1.0)

    # Charged: helix.
    state = HelixState(pt, eta, phi, charge, vz, b_field_t, SOLENOID_RADIUS_MM, SOLENOID_HALF_LENGTH_MM)
    ec, pc, rc = state.to_cylinder(np.float64(R), half_length_mm=L)
    ed, pd, rd = state.to_disk(side * L, r_max_mm=R)
    ch_eta = np.where(rc, ec, ed)
    ch_phi = np.where(rc, pc, pd)
    ch_reached = rc | rd

    # Neutral: straight line from the full vertex, parametrised by transverse path length t.
    ux, uy, sh = np.cos(phi), np.sin(phi), np.sinh(eta)
    b = vx * ux + vy * uy
    c = vx**2 + vy**2 - R**2
    t = -b + np.sqrt(np.maximum(b * b - c, 0.0))
    z = vz + sh * t
    barrel = (c <= 0) & (np.abs(z) <= L)
    t_d = np.where(sh != 0, (side * L - vz) / np.where(sh != 0, sh, 1.0), -1.0)  # -1: never reaches a disk
    xd, yd = vx + t_d * ux, vy + t_d * uy
    rdisk = np.hypot(xd, yd)
    disk = ~barrel & (t_d >= 0) & (rdisk <= R)
    x = np.where(barrel, vx + t * ux, xd)
    y = np.where(barrel, vy + t * uy, yd)
    zz = np.where(barrel, z, side * L)
    rr = np.where(barrel, R, rdisk)
    n_reached = barrel | disk
    with np.errstate(divide="ignore", invalid="ignore"):
        n_eta = np.where(n_reached, np.arcsinh(zz / rr), np.nan)
    n_phi = np.where(n_reached, np.arctan2(y, x), np.nan)

    charged = charge != 0
    return (
        np.where(charged, ch_eta, n_eta),
        np.where(charged, ch_phi, n_phi),
        np.where(charged, ch_reached, n_reached),
    )


# ----------------------------------------------------------------------------------------------------------
# Track reconstruction
# ----------------------------------------------------------------------------------------------------------


def tracking_efficiency(pt: np.ndarray, eta: np.ndarray, pdg: np.ndarray | None = None) -> np.ndarray:
    """Approximate ID track-reconstruction efficiency (pions), in [0, 1].

    ``0.91 - 0.10 (|eta|/2.5)^2`` on the plateau, times a turn-on ``1 - 0.12 exp(-(pT - 0.5)/1.5)``
    (pT in GeV): ~0.80 at 0.5 GeV central, ~0.91 above ~5 GeV, ~0.81 at |eta| = 2.5. Shape inspired by
    ATLAS ID tracking performance figures; approximate. Electrons (|pdg| 11) x0.93 (bremsstrahlung),
    muons (13) x1.07, capped at 0.99.
    """
    pt = np.asarray(pt, dtype=np.float64)
    a = np.abs(np.asarray(eta, dtype=np.float64)) / 2.5
    eff = (0.91 - 0.10 * a * a) * (1.0 - 0.12 * np.exp(-np.maximum(pt - 0.5, 0.0) / 1.5))
    if pdg is not None:
        apdg = np.abs(np.asarray(pdg))
        eff = eff * np.where(apdg == 11, 0.93, np.where(apdg == 13, 1.07, 1.0))
    return np.clip(eff, 0.0, 0.99)


def pt_resolution(pt: np.ndarray, eta: np.ndarray | None = None) -> np.ndarray:
    """Fractional resolution sigma(q/pT) * pT = 0.05% pT[GeV] (+) 1%.

    With ``eta`` given, times ``1 + 0.5 max(|eta| - 1, 0)`` (worse lever arm and more material forward;
    approximate). Pass ``eta=None`` for the design formula alone.
    """
    pt = np.asarray(pt, dtype=np.float64)
    sigma = np.hypot(PT_RES_A * pt, PT_RES_MS)
    if eta is not None:
        sigma = sigma * (1.0 + 0.5 * np.maximum(np.abs(np.asarray(eta, dtype=np.float64)) - 1.0, 0.0))
    return sigma


def _res(terms: tuple[float, float], pt: np.ndarray) -> np.ndarray:
    return np.hypot(terms[0], terms[1] / pt)


def _draw_hits(rng: np.random.Generator, eta: np.ndarray) -> dict[str, np.ndarray]:
    """Hit-summary counts (int32) for tracks at perigee ``eta``: pixel ~4, SCT ~8, TRT ~30 (0 beyond 2.0)."""
    n = len(eta)
    a = np.abs(eta)
    u = rng.random((6, n))
    pix = 4 + (u[0] > 0.92).astype(np.int32) - (u[0] < 0.06).astype(np.int32)  # overlaps / missing
    sct = 8 + (u[1] > 0.85).astype(np.int32) - (u[1] < 0.05).astype(np.int32)
    pix_holes = (u[2] < 0.02).astype(np.int32)
    sct_holes = (u[3] < 0.04).astype(np.int32)
    pix_dead = (u[4] < 0.01).astype(np.int32)
    sct_dead = (u[5] < 0.01).astype(np.int32)
    ibl = (rng.random(n) > 0.03).astype(np.int32)
    blayer = (rng.random(n) > 0.03).astype(np.int32)
    # TRT: ~33 straws in the barrel, fewer in the barrel/end-cap transition (0.7 < |eta| < 1.0), 0 at |eta|>2.
    trt_mean = np.where(a < 0.7, 33.0, np.where(a < 1.0, 24.0, np.where(a < 2.0, 30.0, 0.0)))
    trt = np.rint(trt_mean + rng.normal(0.0, 3.0, n) * (trt_mean > 0)).clip(0).astype(np.int32)
    trt_out = np.where(trt_mean > 0, rng.poisson(1.0, n), 0).astype(np.int32)
    zeros = np.zeros(n, dtype=np.int32)
    return {
        "trackNumberOfPixelHits": pix.astype(np.int32),
        "trackNumberOfSCTHits": sct.astype(np.int32),
        "trackNumberOfPixelDeadSensors": pix_dead,
        "trackNumberOfSCTDeadSensors": sct_dead,
        "trackNumberOfPixelSharedHits": zeros,
        "trackNumberOfSCTSharedHits": zeros.copy(),
        "trackNumberOfPixelHoles": pix_holes,
        "trackNumberOfSCTHoles": sct_holes,
        "trackNumberOfInnermostPixelLayerHits": ibl,
        "trackNumberOfNextToInnermostPixelLayerHits": blayer,
        "trackExpectInnermostPixelLayerHit": np.ones(n, dtype=np.int32),
        "trackExpectNextToInnermostPixelLayerHit": np.ones(n, dtype=np.int32),
        "trackNumberOfTRTHits": trt,
        "trackNumberOfTRTOutliers": trt_out,
    }


def track_columns() -> tuple[str, ...]:
    """Names of the columns :func:`simulate_tracks` returns, in order."""
    base = (
        "event",
        "truth_index",
        "calo_reference_ok",
        "trackPt",
        "trackP",
        "trackMass",
        "trackEta",
        "trackPhi",
        "trackCharge",
        "trackD0",
        "trackZ0",
        "trackChiSquared",
        "trackNumberDOF",
    )
    layers = tuple(f"track{v}_{s}" for s in EXTRAPOLATION_SAMPLINGS for v in ("Eta", "Phi"))
    return base + HIT_COLUMNS + layers


class _Perigee(NamedTuple):
    """Measured track parameters at the perigee (float64 per track)."""

    pt: np.ndarray
    q: np.ndarray  # sign of the measured q/pT
    eta: np.ndarray
    phi: np.ndarray
    d0: np.ndarray
    z0: np.ndarray


def _track_candidates(
    p: Particles, charge: np.ndarray, pt_min: float, eta_max: float, max_vertex_r_mm: float
) -> np.ndarray:
    """Mask of status-1 charged particles from near the beam line with truth pT and |eta| close to the cuts."""
    return (
        (p.status == 1)
        & (charge != 0)
        & (np.hypot(p.vx, p.vy) < max_vertex_r_mm)
        & (p.pt > 0.8 * pt_min)
        & (np.abs(p.eta) < eta_max + 0.1)
    )


def _smear_perigee(
    p: Particles, idx: np.ndarray, charge: np.ndarray, rng: np.random.Generator, eta_dependence: bool
) -> _Perigee:
    """Smear q/pT, phi, cot(theta), d0 and z0 sin(theta) of the true perigee of particles ``idx``."""
    n = len(idx)
    pt_t, eta_t, phi_t = p.pt[idx], p.eta[idx], p.phi[idx]
    q_t = np.sign(charge[idx])
    vx, vy, vz = p.vx[idx], p.vy[idx], p.vz[idx]
    cot_t = np.sinh(eta_t)
    sin_theta = 1.0 / np.cosh(eta_t)

    # Perigee of the true trajectory w.r.t. the beam line (straight-line approximation near the vertex).
    d0_t = -vx * np.sin(phi_t) + vy * np.cos(phi_t)
    z0_t = vz - (vx * np.cos(phi_t) + vy * np.sin(phi_t)) * cot_t

    g = rng.standard_normal((5, n))
    sig_rel = pt_resolution(pt_t, eta_t if eta_dependence else None)
    qopt = q_t / pt_t + g[0] * sig_rel / pt_t
    qopt = np.where(qopt == 0, q_t * 1e-6, qopt)
    pt_m = 1.0 / np.abs(qopt)
    q_m = np.sign(qopt)
    phi_m = wrap_phi(phi_t + g[1] * _res(PHI_RES, pt_t))
    cot_m = cot_t + g[2] * _res(COTTHETA_RES, pt_t)
    eta_m = np.arcsinh(cot_m)
    d0_m = d0_t + g[3] * _res(D0_RES_MM, pt_t)
    z0_m = z0_t + g[4] * _res(Z0SIN_RES_MM, pt_t) / sin_theta
    return _Perigee(pt_m, q_m, eta_m, phi_m, d0_m, z0_m)


def _fit_quality(rng: np.random.Generator, eta: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Hit counts (:func:`_draw_hits`), ndof (int32, >= 1) and chi2 (float32) of tracks at measured ``eta``."""
    hits = _draw_hits(rng, eta)
    n_pix = hits["trackNumberOfPixelHits"]
    n_sct = hits["trackNumberOfSCTHits"]
    ndof = np.maximum(2 * n_pix + n_sct + hits["trackNumberOfTRTHits"] - 5, 1).astype(np.int32)
    chi2 = rng.chisquare(ndof).astype(np.float32)
    return hits, ndof, chi2


def _selected_order(
    measured: _Perigee, hits: dict[str, np.ndarray], event: np.ndarray, pt_min: float, eta_max: float
) -> np.ndarray:
    """Rows of the tracks passing the "Loose"-like selection, ordered by ``event`` then decreasing measured pT."""
    n_pix = hits["trackNumberOfPixelHits"]
    n_sct = hits["trackNumberOfSCTHits"]
    keep = (
        (measured.pt > pt_min)
        & (np.abs(measured.eta) < eta_max)
        & (n_pix + n_sct >= 7)
        & (hits["trackNumberOfPixelHoles"] <= 1)
        & (hits["trackNumberOfPixelHoles"] + hits["trackNumberOfSCTHoles"] <= 2)
    )
    order = np.flatnonzero(keep)
    return order[np.lexsort((-measured.pt[order], event[order]))]


def _track_table(
    p: Particles,
    sel: np.ndarray,
    order: np.ndarray,
    measured: _Perigee,
    hits: dict[str, np.ndarray],
    ndof: np.ndarray,
    chi2: np.ndarray,
    b_field_t: float,
) -> dict[str, np.ndarray]:
    """The :func:`simulate_tracks` columns of the selected tracks: particle rows ``sel``, measured rows ``order``."""
    pt_m, eta_m, phi_m, q_m = measured.pt[order], measured.eta[order], measured.phi[order], measured.q[order]
    z0_m = measured.z0[order]
    layer_eta, layer_phi = extrapolate_helices(pt_m, eta_m, phi_m, q_m, z0_m, b_field_t=b_field_t)
    ref_ok = (layer_eta[:, _EMB2] > MISSING_THRESHOLD) | (layer_eta[:, _EME2] > MISSING_THRESHOLD)

    f32 = np.float32
    out: dict[str, np.ndarray] = {
        "event": p.event[sel].astype(np.int64),
        "truth_index": p.index[sel].astype(np.int32),
        "calo_reference_ok": ref_ok,
        "trackPt": pt_m.astype(f32),
        "trackP": (pt_m * np.cosh(eta_m)).astype(f32),
        "trackMass": np.full(len(sel), PION_MASS, dtype=f32),
        "trackEta": eta_m.astype(f32),
        "trackPhi": phi_m.astype(f32),
        "trackCharge": q_m.astype(f32),
        "trackD0": measured.d0[order].astype(f32),
        "trackZ0": z0_m.astype(f32),
        "trackChiSquared": chi2[order],
        "trackNumberDOF": ndof[order],
    }
    for name in HIT_COLUMNS:
        out[name] = hits[name][order].astype(np.int32)
    out.update(layer_branches(layer_eta, layer_phi))
    return out


def simulate_tracks(
    particles: Particles,
    rng: np.random.Generator,
    pt_min: float = PT_MIN,
    eta_max: float = ETA_MAX,
    *,
    b_field_t: float = B_FIELD_T,
    efficiency: bool = True,
    eta_dependence: bool = True,
    max_vertex_r_mm: float = MAX_VERTEX_R_MM,
) -> dict[str, np.ndarray]:
    """Reconstructed tracks of charged stable particles: flat columns over all events of the chunk.

    Steps (all vectorised): select status-1 charged particles produced within ``max_vertex_r_mm`` of the beam
    line with truth pT > 0.8 ``pt_min`` and |eta| < ``eta_max`` + 0.1; keep each with
    :func:`tracking_efficiency`; smear q/pT (:func:`pt_resolution`), phi, cot(theta), d0, z0 sin(theta);
    draw hit counts, chi2 and ndof; apply the selection on the *measured* track (pT > ``pt_min``,
    |eta| < ``eta_max``, N_pix + N_SCT >= 7, N_pix holes <= 1, N_Si holes <= 2, "Loose"-like); extrapolate
    the measured helix (vz = z0) to the 21 samplings.

    Returns a dict of 1-D arrays of equal length, rows ordered by ``event`` then decreasing ``trackPt``:

    - ``event`` int64 (non-decreasing), ``truth_index`` int32 (= ``particles.index`` of the matched particle),
      ``calo_reference_ok`` bool (False where the track has neither an EMB2 nor an EME2 point; such tracks
      are kept, this only flags them);
    - float32: ``trackPt, trackP, trackMass`` [GeV] (pion mass), ``trackEta, trackPhi`` (perigee),
      ``trackCharge`` [e] (not an MLTree branch; sign of the measured q/pT), ``trackD0, trackZ0`` [mm]
      (w.r.t. the beam spot at the origin; z0 includes vz), ``trackChiSquared``;
    - int32: ``trackNumberDOF`` (>= 1) and the 14 ``HIT_COLUMNS`` (shared hits 0);
    - float32: the 42 ``trackEta_<S>``/``trackPhi_<S>`` columns for S in ``EXTRAPOLATION_SAMPLINGS``,
      ``MISSING_EXTRAPOLATION`` where the track does not enter S (use :func:`stack_layer_branches` to get
      (n, 21) arrays back).

    Column order is :func:`track_columns`.
    """
    p = particles
    charge = np.asarray(p.charge, dtype=np.float64)
    cand = _track_candidates(p, charge, pt_min, eta_max, max_vertex_r_mm)
    idx = np.flatnonzero(cand)
    if efficiency:
        eff = tracking_efficiency(p.pt[idx], p.eta[idx], p.pdg[idx])
        idx = idx[rng.random(len(idx)) < eff]

    measured = _smear_perigee(p, idx, charge, rng, eta_dependence)
    hits, ndof, chi2 = _fit_quality(rng, measured.eta)
    order = _selected_order(measured, hits, p.event[idx], pt_min, eta_max)
    out = _track_table(p, idx[order], order, measured, hits, ndof, chi2, b_field_t)
    if len(out["event"]):
        log.debug(
            "simulate_tracks: %d candidates -> %d tracks (%d without EMB2/EME2 point)",
            int(cand.sum()),
            len(out["event"]),
            int((~out["calo_reference_ok"]).sum()),
        )
    return out
