"""Charged-particle helices in a solenoid: where a track from the beam line crosses a cylinder or a disk.

A uniform field ``b_field_t`` fills the cylinder of radius ``field_radius_mm`` and half-length
``field_half_length_mm``; outside it particles fly straight. The field is always an argument (ATLAS: 2 T,
:data:`jetcloud.atlas.sim.tracker.FIELD`; CMS: 3.8 T, :class:`jetcloud.qg.detector.CMSDetector`), so both detectors
share this code. Units: GeV, mm, rad, T. Imports only numpy.
"""

from __future__ import annotations

import numpy as np

#: 0.3 B in GeV per (e * m); R_c[mm] = 1000 pT / (C_LIGHT_GEV * B |q|).
C_LIGHT_GEV = 0.299792458


class HelixState:
    """Per-track helix parameters and the state where the helix leaves the field volume.

    All arrays share one broadcast shape (``(n, 1)`` when hitting many surfaces at once). ``kappa`` is
    1 / (2 R_c) in 1/mm (0 for neutral particles); ``s_r``/``s_z`` are the transverse arc lengths [mm] at which
    the helix reaches the field radius / the field end (inf if never); ``escaped`` is False for loopers (more
    than half a turn before leaving the field); ``x, y, z, phi_dir`` give the exit point [mm] and direction.
    """

    def __init__(
        self,
        pt: np.ndarray,
        eta: np.ndarray,
        phi: np.ndarray,
        charge: np.ndarray,
        vz: np.ndarray,
        b_field_t: float,
        field_radius_mm: float,
        field_half_length_mm: float,
    ) -> None:
        pt, eta, phi, charge, vz = np.broadcast_arrays(
            *(np.asarray(a, dtype=np.float64) for a in (pt, eta, phi, charge, vz))
        )
        self.phi, self.vz, self.q, self.sh = phi, vz, np.sign(charge), np.sinh(eta)
        self.field_radius_mm, self.field_half_length_mm = field_radius_mm, field_half_length_mm
        with np.errstate(divide="ignore", invalid="ignore"):
            kappa = np.where(pt > 0, C_LIGHT_GEV * b_field_t * np.abs(charge) / (2000.0 * pt), np.inf)
            self.kappa = kappa
            rk = field_radius_mm * kappa
            self.s_r = np.where(rk <= 1.0, _arc_to_radius(field_radius_mm, kappa), np.inf)
            sh = self.sh
            self.s_z = np.where(sh != 0, (np.sign(sh) * field_half_length_mm - vz) / np.where(sh != 0, sh, 1.0), np.inf)
        s_exit = np.minimum(self.s_r, self.s_z)
        finite = np.isfinite(s_exit)
        self.escaped = finite & (kappa * np.where(finite, s_exit, 0.0) <= np.pi / 2)
        s_safe = np.where(self.escaped, s_exit, 0.0)
        r_e, phi_pos, self.phi_dir = _in_field_position(s_safe, phi, self.q, kappa)
        self.x, self.y = r_e * np.cos(phi_pos), r_e * np.sin(phi_pos)
        self.z = vz + sh * s_safe

    def to_cylinder(
        self, r: np.ndarray, half_length_mm: float | np.ndarray = np.inf
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(eta, phi, reached) on cylinders of radius ``r`` [mm] (broadcast against the state)."""
        r = np.asarray(r, dtype=np.float64)
        shape = np.broadcast_shapes(r.shape, self.phi.shape)
        in_field = r <= self.field_radius_mm
        # Outside the field: straight line from the exit point along the exit direction.
        ux, uy = np.cos(self.phi_dir), np.sin(self.phi_dir)
        b = self.x * ux + self.y * uy
        disc = b * b - (self.x**2 + self.y**2) + r * r
        reached = self.escaped & (disc >= 0)
        t = np.where(reached, -b + np.sqrt(np.where(reached, disc, 0.0)), 0.0)
        reached &= (t >= 0) & ~in_field
        x, y, z = self.x + t * ux, self.y + t * uy, self.z + self.sh * t
        if np.any(in_field):  # inside the field: reached on the first half-turn if r kappa <= 1
            with np.errstate(invalid="ignore"):
                s_in = _arc_to_radius(r, self.kappa)
            reach_in = in_field & (r * self.kappa <= 1.0) & (s_in <= self.s_z)
            s_in = np.where(reach_in, s_in, 0.0)
            phi_in = self.phi - self.q * self.kappa * s_in
            x = np.where(in_field, r * np.cos(phi_in), x)
            y = np.where(in_field, r * np.sin(phi_in), y)
            z = np.where(in_field, self.vz + self.sh * s_in, z)
            reached = reached | reach_in
        if not np.all(np.isinf(half_length_mm)):
            reached = reached & (np.abs(z) <= half_length_mm)
        reached = np.broadcast_to(reached, shape)
        with np.errstate(invalid="ignore", divide="ignore"):
            eta_hit = np.where(reached, np.arcsinh(z / r), np.nan)
        return eta_hit, _azimuth(x, y, reached), reached

    def to_disk(
        self, zd: np.ndarray, r_min_mm: float | np.ndarray = 0.0, r_max_mm: float | np.ndarray = np.inf
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(eta, phi, reached) on disks at signed ``z = zd`` [mm] with r_min <= r <= r_max."""
        zd = np.asarray(zd, dtype=np.float64)
        shape = np.broadcast_shapes(zd.shape, self.phi.shape)
        sh_safe = np.where(self.sh != 0, self.sh, 1.0)
        towards = self.sh * (zd - self.vz) > 0
        in_field = np.abs(zd) <= self.field_half_length_mm
        t = np.where(towards, (zd - self.z) / sh_safe, 0.0)
        reached = ~in_field & towards & self.escaped & (t >= 0)
        t = np.where(reached, t, 0.0)
        x = self.x + t * np.cos(self.phi_dir)
        y = self.y + t * np.sin(self.phi_dir)
        if np.any(in_field):
            s_in = np.where(towards, (zd - self.vz) / sh_safe, 0.0)
            reach_in = in_field & towards & (s_in <= self.s_r) & (self.kappa * s_in <= np.pi / 2)
            s_in = np.where(reach_in, s_in, 0.0)
            r_in, phi_in, _ = _in_field_position(s_in, self.phi, self.q, self.kappa)
            x = np.where(in_field, r_in * np.cos(phi_in), x)
            y = np.where(in_field, r_in * np.sin(phi_in), y)
            reached = reached | reach_in
        r_hit = np.hypot(x, y)
        reached = np.broadcast_to(reached & (r_hit >= r_min_mm) & (r_hit <= r_max_mm), shape)
        with np.errstate(divide="ignore"):
            eta_hit = np.where(reached, np.arcsinh(zd / r_hit), np.nan)
        return eta_hit, _azimuth(x, y, reached), reached


def _arc_to_radius(r: np.ndarray | float, kappa: np.ndarray) -> np.ndarray:
    """Transverse arc length [mm] from the beam line to radius r on the first half-turn: asin(r kappa) / kappa."""
    rk = np.minimum(np.asarray(r) * kappa, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(kappa > 0, np.arcsin(rk) / np.where(kappa > 0, kappa, 1.0), r)


def _in_field_position(
    s: np.ndarray, phi: np.ndarray, q: np.ndarray, kappa: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transverse (r, azimuth of position, azimuth of direction) after transverse arc length s [mm]."""
    r = s * np.sinc(kappa * s / np.pi)  # sin(kappa s) / kappa, = s for neutral
    return r, phi - q * kappa * s, phi - 2.0 * q * kappa * s


def _azimuth(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """atan2(y, x) in (-pi, pi] where ``mask``, NaN elsewhere."""
    phi = np.arctan2(y, x)
    return np.where(mask, np.where(phi == -np.pi, np.pi, phi), np.nan)  # -pi only for y = -0.0, x < 0


def helix_to_cylinder(
    pt: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    charge: np.ndarray,
    vz: np.ndarray,
    r_mm: float | np.ndarray,
    *,
    half_length_mm: float | np.ndarray = np.inf,
    b_field_t: float,
    field_radius_mm: float,
    field_half_length_mm: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where helices from the beam line (0, 0, vz) first cross the cylinder of radius ``r_mm``.

    Parameters are broadcast: pt [GeV], eta, phi [rad] (perigee direction), charge [e], vz [mm], r_mm [mm].
    ``half_length_mm`` limits the cylinder to |z| <= half_length. Pass ``field_radius_mm=np.inf`` and
    ``field_half_length_mm=np.inf`` for an infinite uniform field (pure helix).

    Returns ``(eta_hit, phi_hit, reached)``: float64 position as seen from the origin (eta = asinh(z/r)) and a
    bool mask. Where ``reached`` is False the position is NaN. A track reaches the cylinder only if it gets
    there within half a turn (2 R_c > r inside the field, or it left the field first) and within |z| limits.
    """
    state = HelixState(pt, eta, phi, charge, vz, b_field_t, field_radius_mm, field_half_length_mm)
    return state.to_cylinder(np.asarray(r_mm, dtype=np.float64), half_length_mm)


def helix_to_disk(
    pt: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    charge: np.ndarray,
    vz: np.ndarray,
    z_mm: float | np.ndarray,
    *,
    r_min_mm: float | np.ndarray = 0.0,
    r_max_mm: float | np.ndarray = np.inf,
    b_field_t: float,
    field_radius_mm: float,
    field_half_length_mm: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where helices from the beam line (0, 0, vz) cross the disk at **signed** ``z = z_mm``.

    A track reaches the disk only if it moves towards it (sign(eta) = sign(z_mm - vz)), is not a looper,
    and arrives at a transverse radius ``r_min_mm <= r <= r_max_mm``. Use ``np.sign(eta) * Z0`` for the disk
    on the track's side. Other parameters as :func:`helix_to_cylinder`.

    Returns ``(eta_hit, phi_hit, reached)`` (eta_hit = asinh(z / r_hit), NaN where not reached).
    """
    state = HelixState(pt, eta, phi, charge, vz, b_field_t, field_radius_mm, field_half_length_mm)
    return state.to_disk(np.asarray(z_mm, dtype=np.float64), r_min_mm, r_max_mm)
