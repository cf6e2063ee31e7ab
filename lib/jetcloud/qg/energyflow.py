"""Particle-level quark/gluon jets in the EnergyFlow ``QG_jets.npz`` layout: writer, reader, layout check.

EnergyFlow's quark/gluon files (``energyflow.datasets.qg_jets``, Zenodo 3164691) hold

=====  ====================================  =======  =========================================================
key    shape                                 dtype    content
=====  ====================================  =======  =========================================================
``X``  (N, max_multiplicity, 4)              float64  per particle (pT [GeV], rapidity y, phi, PDG id), zero
                                                      padded after the last particle of each jet
``y``  (N,)                                  float64  quark = 1, gluon = 0
=====  ====================================  =======  =========================================================

``max_multiplicity`` is the largest number of particles of any jet in the file. Particle phi lies within pi of
the jet's phi (jet phi in [0, 2 pi)). jetcloud orders the particles of a jet by decreasing pT (EnergyFlow does
not document an order). The writer streams the padded array block by block into the zip entry (bounded
memory beyond the flat particle columns), compresses it (deflate, like ``np.savez_compressed``) and renames
the file into place only when complete.
"""

from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path

import numpy as np

from jetcloud.io.atomic import atomic_path
from jetcloud.qg.e2e import check_output

log = logging.getLogger(__name__)

N_FEATURES = 4
FEATURES = ("pt", "y", "phi", "pid")
BLOCK_JETS = 4096

#: |PDG id| of the particles in EnergyFlow's quark/gluon files: the keys of its pid map
#: (``energyflow.utils.particle_utils.PID2FLOAT_MAP``): photons, charged pions, charged kaons, K0L, neutrons,
#: protons, electrons, muons (and their antiparticles). Pythia 8's default decays (``ParticleDecays:limitTau0 =
#: off``: everything with c tau0 < 1 m decays) leave exactly these, neutrinos aside.
STABLE_PIDS: tuple[int, ...] = (22, 211, 321, 130, 2112, 2212, 11, 13)
#: Hadrons with 10 mm < c tau0 < 1 m: stable in the CMS / ATLAS generator records (``tau0Max = 10 mm``, the
#: image set) but decayed in EnergyFlow's set and in jetcloud's particle-level set (|PDG id| -> name).
DECAYED_HADRONS: dict[int, str] = {
    310: "K0S",
    3122: "Lambda",
    3112: "Sigma-",
    3222: "Sigma+",
    3312: "Xi-",
    3322: "Xi0",
    3334: "Omega-",
}


def write_qg_npz(
    path: str | os.PathLike,
    counts: np.ndarray,
    particles: np.ndarray,
    labels: np.ndarray,
    *,
    overwrite: bool = False,
) -> Path:
    """Write ``X`` (padded) and ``y`` to ``path`` atomically.

    ``counts`` (N,) particles per jet; ``particles`` (sum(counts), 4) flat rows (pT, y, phi, pid) grouped by jet
    in order; ``labels`` (N,) 1 quark / 0 gluon. Returns the path.
    """
    path = check_output(path, overwrite)
    counts = np.asarray(counts, np.int64)
    particles = np.asarray(particles)
    labels = np.asarray(labels, np.float64)
    if particles.ndim != 2 or particles.shape[1] != N_FEATURES or counts.sum() != len(particles):
        raise ValueError(f"particles must be (sum(counts), 4) = ({counts.sum()}, 4), got {particles.shape}")
    if len(labels) != len(counts):
        raise ValueError(f"labels ({len(labels)}) and counts ({len(counts)}) differ in length")
    n = len(counts)
    width = int(counts.max()) if n else 0
    offsets = np.concatenate([[0], np.cumsum(counts)])
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("X.npy", "w", force_zip64=True) as fh:
            header = {
                "descr": np.lib.format.dtype_to_descr(np.dtype(np.float64)),
                "fortran_order": False,
                "shape": (n, width, N_FEATURES),
            }
            np.lib.format.write_array_header_1_0(fh, header)
            for start in range(0, n, BLOCK_JETS):
                stop = min(start + BLOCK_JETS, n)
                block = np.zeros((stop - start, width, N_FEATURES), np.float64)
                c = counts[start:stop]
                rows = np.repeat(np.arange(stop - start), c)
                cols = np.arange(offsets[stop] - offsets[start]) - np.repeat(offsets[start:stop] - offsets[start], c)
                block[rows, cols] = particles[offsets[start] : offsets[stop]]
                fh.write(block.tobytes())
        with zf.open("y.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array(fh, labels, version=(1, 0))
    log.info("wrote %s: %d jets, max multiplicity %d", path, n, width)
    return Path(path)


def check_qg_npz(path: str | os.PathLike) -> dict[str, int]:
    """Check the EnergyFlow layout of ``path`` (array headers and labels only, not the whole ``X``).

    Returns ``{"n_jets", "max_multiplicity"}``; raises ``FileNotFoundError`` / ``ValueError`` naming the key.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"particle-level file {path} does not exist")
    try:
        with zipfile.ZipFile(path) as zf:
            names = {Path(n).stem: n for n in zf.namelist()}
            missing = [k for k in ("X", "y") if k not in names]
            if missing:
                raise ValueError(f"{path}: missing arrays {missing}; expected X (N, M, 4) and y (N,)")
            with zf.open(names["X"]) as fh:
                x_shape, x_dtype = _header(fh)
            with zf.open(names["y"]) as fh:
                y = np.lib.format.read_array(fh, allow_pickle=False)
    except zipfile.BadZipFile as err:
        raise ValueError(f"{path}: not an npz (zip) file: {err}") from None
    except (ValueError, EOFError, OSError) as err:  # pickled objects, truncated members, bad headers
        raise ValueError(f"{path}: arrays X / y are not readable .npy arrays (pickled or truncated?): {err}") from err
    if len(x_shape) != 3 or x_shape[2] != N_FEATURES or x_dtype.kind != "f":
        raise ValueError(
            f"{path}: X is {x_dtype} {x_shape}, expected float (N, max_multiplicity, 4) = (pT, y, phi, pid)"
        )
    if y.shape != (x_shape[0],):
        raise ValueError(f"{path}: y has shape {y.shape}, expected ({x_shape[0]},)")
    if not set(np.unique(y).tolist()).issubset({0.0, 1.0}):
        raise ValueError(f"{path}: y must hold 0 (gluon) and 1 (quark) only")
    return {"n_jets": int(x_shape[0]), "max_multiplicity": int(x_shape[1])}


def _header(fh) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(fh)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = reader(fh)
    return shape, dtype


def read_qg_npz(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of an EnergyFlow-layout file (after :func:`check_qg_npz`)."""
    check_qg_npz(path)
    with np.load(path, allow_pickle=False) as data:
        x, y = data["X"], data["y"]
    bad = ~np.isfinite(x).all(axis=(1, 2))
    if bad.any():
        raise ValueError(
            f"{path}: key X: jet {int(np.argmax(bad))} has NaN or infinite particle values "
            f"({int(bad.sum())} jet(s)); fix or drop them"
        )
    return x, y


def multiplicity(x: np.ndarray) -> np.ndarray:
    """Particles per jet of a padded ``X`` (rows with pT > 0)."""
    return np.count_nonzero(np.asarray(x)[..., 0] > 0, axis=1)


#: Display names of the species in :data:`STABLE_PIDS` (particles and antiparticles together).
SPECIES: dict[int, str] = {
    22: "photon",
    211: "pi+-",
    321: "K+-",
    130: "K0L",
    2112: "n",
    2212: "p",
    11: "e+-",
    13: "mu+-",
}


def pid_composition(x: np.ndarray, labels: np.ndarray) -> dict[str, dict[str, float]]:
    """Per class (``quark``, ``gluon``) the fraction of the particles of each species of :data:`SPECIES`, plus
    ``other`` (any |PDG id| outside EnergyFlow's map; 0 for jetcloud's set), from a padded ``X`` and labels."""
    x, labels = np.asarray(x), np.asarray(labels)
    out = {}
    for value, cls in ((1, "quark"), (0, "gluon")):
        sel = x[labels == value]
        pid = np.abs(sel[..., 3][sel[..., 0] > 0]).astype(np.int64)
        n = max(len(pid), 1)
        row = {name: float(np.sum(pid == code)) / n for code, name in SPECIES.items()}
        row["other"] = float(np.sum(~np.isin(pid, list(SPECIES)))) / n
        out[cls] = row
    return out
