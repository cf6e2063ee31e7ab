"""Shower physics shared by both detectors: parametrisations of EM and hadronic showers, and resolution fits.

The ATLAS-like calorimeter (:mod:`jetcloud.atlas.sim.showers`) and the CMS-like one (:mod:`jetcloud.qg.detector`)
both draw their longitudinal profiles, EM fractions and sampling fluctuations from here; the sources of every
parametrisation are in the docstring of :mod:`jetcloud.atlas.sim.showers`. Units: GeV, mm; depths in X0 or lambda_I.
Imports only core modules and :mod:`jetcloud.sim.particles`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.special import gammainc

from jetcloud.sim.particles import Particles

#: Material classes: 0 dead, 1 LAr EM (incl. presamplers), 2 Tile, 3 HEC, 4 FCAL, 5 Tile gap scintillator.
DEAD, LAR_EM, TILE, HEC, FCAL, GAP = range(6)


@dataclass(frozen=True)
class ShowerParams:
    """Tunables of the shower model (defaults and sources: module docstring). Energies GeV, lengths mm."""

    # EM
    critical_energy_gev: float = 0.011  # effective E_c for Pb/LAr
    em_b: float = 0.5  # b of the gamma profile (PDG)
    c_electron: float = -0.5
    c_photon: float = 0.5
    z_eff: float = 60.0  # for the Grindhammer-Peters lateral coefficients
    moliere_radius_mm: float = 37.0
    lateral_rmax_rm: float = 5.0
    em_constant: float = 0.007
    # stochastic terms (GeV^1/2) per material class for the EM part / the non-EM part
    # Tuned (notebook 00 validation) so that the Gaussian-core resolution of single particles at eta 0.3 matches
    # the ATLAS test-beam figures: electrons ~10%/sqrt(E), charged pions ~50%/sqrt(E) (+) a few % constant.
    a_em: tuple[float, ...] = (0.0, 0.085, 0.28, 0.21, 0.28, 0.5)
    a_had: tuple[float, ...] = (0.0, 0.53, 0.53, 0.58, 0.8, 0.92)
    # hadrons
    h_over_e: tuple[float, ...] = (1.0, 0.74, 0.77, 0.74, 0.74, 0.77)  # e/h = 1.35 LAr, 1.30 Tile
    lambda_int_meson: float = 1.2  # mean first-interaction depth, lambda_I
    lambda_int_baryon: float = 1.0
    fem_e0_meson: float = 1.0  # GeV (Groom)
    fem_e0_baryon: float = 2.6
    fem_k: float = 0.83
    fem_sigma: float = 0.15  # event-by-event spread of f_em (Groom: 0.1-0.2 at 10-100 GeV); gives the constant term
    fem_min: float = 0.02
    em_sub_fraction: float = 0.3  # mean subshower energy / EM energy of a hadronic shower
    had_b: float = 0.9  # 1/lambda
    had_tmax_slope: float = 0.2  # lambda per ln(E/GeV)
    had_tmax_offset: float = 0.7  # lambda
    had_constant: float = 0.02
    core_r0_mm: float = 20.0
    core_r_slope_mm: float = 10.0  # per lambda of depth after the first interaction
    halo_r_mm: float = 80.0
    halo_fraction: float = 0.3
    # MIP
    mip_gev_per_lambda: float = 0.2
    mip_mean_factor: float = 1.3  # relativistic rise (mean / minimum ionisation)
    mip_landau_width: float = 0.15  # relative Moyal width per slot
    # low energy
    low_energy_gev: float = 0.3
    low_energy_hadron_response: float = 0.8
    # spots
    spot_energy_em: float = 0.25
    spot_energy_had: float = 0.5
    max_spots_em: int = 40
    max_spots_had: int = 30
    min_slot_energy: float = 1e-5  # (particle, slot, component) deposits below this go to the dead bookkeeping


KIND_NONE, KIND_EM, KIND_MUON, KIND_HADRON = 0, 1, 2, 3


def classify(pdg: np.ndarray) -> np.ndarray:
    """0 nothing (neutrinos), 1 EM (e, gamma, pi0), 2 muon, 3 hadron (everything else)."""
    a = np.abs(np.asarray(pdg))
    kind = np.full(a.shape, KIND_HADRON, dtype=np.int8)
    kind[(a == 11) | (a == 22) | (a == 111)] = KIND_EM
    kind[a == 13] = KIND_MUON
    kind[(a == 12) | (a == 14) | (a == 16)] = KIND_NONE
    return kind


def available_energy(particles: Particles) -> np.ndarray:
    """Energy a particle can deposit (GeV): E for mesons/leptons/photons, E - m for baryons, E + m anti-baryons."""
    pdg = np.asarray(particles.pdg)
    e = np.asarray(particles.e, dtype=np.float64)
    m = np.asarray(particles.m, dtype=np.float64)
    baryon = np.abs(pdg) > 1000
    return np.where(baryon & (pdg > 0), np.maximum(e - m, 0.0), np.where(baryon & (pdg < 0), e + m, e))


def mean_fem(energy: np.ndarray, baryon: np.ndarray, params: ShowerParams = ShowerParams()) -> np.ndarray:
    """Mean EM fraction of a hadronic shower, 1 - (E/E0)^(k-1) (Groom), clipped to [fem_min, 0.95]."""
    e0 = np.where(baryon, params.fem_e0_baryon, params.fem_e0_meson)
    f = 1.0 - np.power(np.maximum(energy, 1e-3) / e0, params.fem_k - 1.0)
    return np.clip(f, params.fem_min, 0.95)


def gamma_fractions(bounds: np.ndarray, start: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Fraction of a gamma(alpha, beta) profile starting at ``start`` inside each slot; bounds (n, K+1)."""
    t = np.maximum(bounds - start[:, None], 0.0) * beta[:, None]
    cdf = gammainc(alpha[:, None], t)
    return np.diff(cdf, axis=1)


def em_shape(
    energy: np.ndarray, is_photon: np.ndarray, rng: np.random.Generator | None, params: ShowerParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(alpha, beta, T) of the EM longitudinal profile, with Grindhammer-Peters fluctuations if rng is given."""
    lny = np.log(np.maximum(energy / params.critical_energy_gev, 3.0))
    c = np.where(is_photon, params.c_photon, params.c_electron)
    t_mean = np.maximum(lny + c, 0.5)
    a_mean = 1.0 + params.em_b * t_mean
    if rng is None:
        return a_mean, (a_mean - 1.0) / t_mean, t_mean
    s_t = np.clip(1.0 / np.maximum(-1.4 + 1.26 * lny, 1e-3), 0.02, 0.5)
    s_a = np.clip(1.0 / np.maximum(-0.58 + 0.86 * lny, 1e-3), 0.02, 0.5)
    rho = np.clip(0.705 - 0.023 * lny, 0.0, 0.99)
    z1 = rng.standard_normal(len(energy))
    z2 = rho * z1 + np.sqrt(1.0 - rho**2) * rng.standard_normal(len(energy))
    t = t_mean * np.exp(s_t * z1 - 0.5 * s_t**2)
    a = np.maximum(1.0 + (a_mean - 1.0) * np.exp(s_a * z2 - 0.5 * s_a**2), 1.05)
    return a, (a - 1.0) / t, t


def gamma_smear(mean: np.ndarray, a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gamma-distributed values with the given mean and variance a^2 * mean (a = 0: no smearing)."""
    out = mean.copy()
    m = (mean > 0) & (a > 0)
    if m.any():
        a2 = a[m] ** 2
        out[m] = rng.gamma(mean[m] / a2, a2)
    return out


def em_radius(energy: np.ndarray, tau: np.ndarray, rng: np.random.Generator, params: ShowerParams) -> np.ndarray:
    """Radial distance (mm) from the Grindhammer-Peters two-component profile at relative depth tau = t/T."""
    ln_e = np.log(np.maximum(energy, 1e-3))
    z = params.z_eff
    z1, z2 = 0.0251 + 0.00319 * ln_e, 0.1162 - 0.000381 * z
    k1, k2, k3, k4 = 0.659 - 0.00309 * z, 0.645, -2.59, 0.3585 + 0.0421 * ln_e
    p1, p2, p3 = 2.632 - 0.00094 * z, 0.401 + 0.00187 * z, 1.313 - 0.0686 * ln_e
    tau = np.clip(tau, 0.0, 4.0)
    r_c = np.maximum(z1 + z2 * tau, 0.01)
    r_t = np.maximum(k1 * (np.exp(k3 * (tau - k2)) + np.exp(k4 * (tau - k2))), 0.02)
    x = (p2 - tau) / p3
    p = np.clip(p1 * np.exp(x - np.exp(x)), 0.0, 1.0)
    rr = np.where(rng.random(len(tau)) < p, r_c, r_t)
    rmax = params.lateral_rmax_rm
    u = rng.random(len(tau)) * (rmax**2 / (rmax**2 + rr**2))
    return rr * np.sqrt(u / (1.0 - u)) * params.moliere_radius_mm


_MASS_GEV = {
    11: 0.000511,
    13: 0.10566,
    22: 0.0,
    211: 0.13957,
    321: 0.49368,
    2212: 0.93827,
    2112: 0.93957,
    130: 0.49761,
    310: 0.49761,
    111: 0.13498,
}


_CHARGE = {11: -1, 13: -1, 22: 0, 211: 1, 321: 1, 2212: 1, 2112: 0, 130: 0, 310: 0, 111: 0}


def gun_particles(pdg: int, energy: float, eta: float, n: int, rng: np.random.Generator) -> Particles:
    """``n`` single particles (one per event) of total energy ``energy`` at ``eta`` and uniform phi."""
    a = abs(pdg)
    mass = _MASS_GEV.get(a, 0.13957)
    charge = float(np.sign(pdg) * _CHARGE.get(a, 0))
    p = np.sqrt(max(energy**2 - mass**2, 0.0))
    zeros = np.zeros(n)
    return Particles(
        event=np.arange(n, dtype=np.int64),
        index=np.zeros(n, np.int32),
        pdg=np.full(n, pdg, np.int32),
        charge=np.full(n, charge, np.float32),
        pt=np.full(n, p / np.cosh(eta)),
        eta=np.full(n, float(eta)),
        phi=rng.uniform(-np.pi, np.pi, n),
        e=np.full(n, float(energy)),
        m=np.full(n, mass),
        vx=zeros,
        vy=zeros,
        vz=zeros,
        status=np.ones(n, np.int32),
        barcode=np.full(n, 10001, np.int32),
    )


class ResolutionFit(NamedTuple):
    """sigma/E = a/sqrt(E) (+) b (+) c/E (quadrature), with 1-sigma uncertainties (c_err = 0 when fixed)."""

    a: float
    b: float
    c: float
    a_err: float
    b_err: float
    c_err: float


def resolution_model(e: np.ndarray, a: float, b: float, c: float = 0.0) -> np.ndarray:
    """sigma/E = sqrt(a^2/E + b^2 + c^2/E^2), E in GeV."""
    return np.sqrt(a**2 / e + b**2 + c**2 / e**2)


def fit_resolution(
    energies: np.ndarray,
    means: np.ndarray,
    sigmas: np.ndarray,
    *,
    sigma_errors: np.ndarray | None = None,
    c: float | None = 0.0,
) -> ResolutionFit:
    """Fit sigma/mean vs E to a/sqrt(E) (+) b (+) c/E (scipy ``curve_fit``; c fixed unless ``c=None``).

    ``means``/``sigmas`` are the fitted (or sample) mean and width of the response distribution at each energy
    ``energies`` (GeV, the *true* energy). ``sigma_errors``: uncertainties of ``sigmas`` (default 5%).
    """
    from scipy.optimize import curve_fit

    e = np.asarray(energies, dtype=np.float64)
    y = np.asarray(sigmas, dtype=np.float64) / np.asarray(means, dtype=np.float64)
    err = (
        np.asarray(sigma_errors, dtype=np.float64) / np.asarray(means, dtype=np.float64)
        if sigma_errors is not None
        else 0.05 * y
    )
    if c is None:
        popt, pcov = curve_fit(
            lambda x, a, b, cc: resolution_model(x, a, b, cc),
            e,
            y,
            p0=(0.5, 0.03, 0.1),
            sigma=err,
            absolute_sigma=True,
            bounds=(0, np.inf),
        )
        perr = np.sqrt(np.diag(pcov))
        return ResolutionFit(float(popt[0]), float(popt[1]), float(popt[2]), *map(float, perr))
    popt, pcov = curve_fit(
        lambda x, a, b: resolution_model(x, a, b, c),
        e,
        y,
        p0=(0.3, 0.02),
        sigma=err,
        absolute_sigma=True,
        bounds=(0, np.inf),
    )
    perr = np.sqrt(np.diag(pcov))
    return ResolutionFit(float(popt[0]), float(popt[1]), float(c), float(perr[0]), float(perr[1]), 0.0)
