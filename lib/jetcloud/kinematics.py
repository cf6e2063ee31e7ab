"""Angles on the detector: the one azimuth wrap, azimuthal difference and Delta R used by every workflow.

Convention: azimuths are wrapped into (-pi, pi] (as ATLAS and CMS software do); ``-pi`` folds onto ``+pi``.
A core module: imports only numpy.
"""

from __future__ import annotations

import numpy as np

TWO_PI = 2.0 * np.pi


def wrap_phi(phi: np.ndarray | float) -> np.ndarray:
    """Angles wrapped into (-pi, pi] (rad), float64."""
    out = np.pi - np.mod(np.pi - np.asarray(phi, dtype=np.float64), TWO_PI)
    # np.mod can round up to exactly 2 pi for tiny negative arguments; fold -pi back onto +pi.
    return np.where(out <= -np.pi, out + TWO_PI, out)


def delta_phi(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """Azimuthal difference ``a - b`` wrapped into (-pi, pi] (rad), broadcasting numpy-style."""
    return wrap_phi(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))


def delta_r(
    eta1: np.ndarray | float, phi1: np.ndarray | float, eta2: np.ndarray | float, phi2: np.ndarray | float
) -> np.ndarray:
    """Angular distance sqrt(d_eta^2 + d_phi^2), with d_phi from :func:`delta_phi`."""
    deta = np.asarray(eta1, dtype=np.float64) - np.asarray(eta2, dtype=np.float64)
    return np.hypot(deta, delta_phi(phi1, phi2))
