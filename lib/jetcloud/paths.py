"""Where every stage reads and writes, per profile.

All locations derive from the repository root and can be overridden with environment variables, so a batch
job can put data on scratch space without touching a notebook:

==========================  ====================================  ==============================
variable                    default                               content
==========================  ====================================  ==============================
``JETCLOUD_DATA``           ``<root>/data``                       raw / interim / processed data
``JETCLOUD_FIGURES``        ``<root>/figures``                    ``<profile>/*.png|pdf``
``JETCLOUD_BUILD``          ``<root>/build``                      executed notebooks, metrics, models
==========================  ====================================  ==============================

Data are split per profile (``data/raw/<profile>/atlas`` ...) so that a smoke run never overwrites the demo
files. ``PROFILES`` lists the known profiles.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ("smoke", "demo", "full")
STAGES = ("raw", "interim", "processed")


def _base(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    return Path(value).expanduser().resolve() if value else default


def check_profile(profile: str) -> str:
    """Return ``profile`` unchanged, or raise ``ValueError`` naming the known profiles."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    return profile


def data_dir(profile: str, stage: str, dataset: str = "") -> Path:
    """``data/<stage>/<profile>/<dataset>``, e.g. ``data_dir("demo", "raw", "atlas")``."""
    check_profile(profile)
    if stage not in STAGES:
        raise ValueError(f"unknown data stage {stage!r}; expected one of {', '.join(STAGES)}")
    path = _base("JETCLOUD_DATA", ROOT / "data") / stage / profile
    return path / dataset if dataset else path


def figures_dir(profile: str) -> Path:
    """``figures/<profile>``: PNG + PDF written by :func:`jetcloud.plots.save`."""
    return _base("JETCLOUD_FIGURES", ROOT / "figures") / check_profile(profile)


def build_dir(profile: str, *parts: str) -> Path:
    """``build/<profile>/<parts...>``: executed notebooks, metrics JSON, model checkpoints."""
    return _base("JETCLOUD_BUILD", ROOT / "build") / check_profile(profile) / Path(*parts)


def metrics_dir(profile: str) -> Path:
    """``build/<profile>/metrics``: one JSON per notebook, written by :func:`jetcloud.nbtools.record_metrics`."""
    return build_dir(profile, "metrics")


def shared_dir() -> Path | None:
    """The optional ``../shared`` folder beside the repository (real ATLAS geometry, references), or None."""
    path = _base("JETCLOUD_SHARED", ROOT.parent / "shared")
    return path if path.is_dir() else None


def atlas_geometry_file() -> Path | None:
    """Path of the real ATLAS Run-2 cell geometry (FastCaloSim format) if ``../shared`` has it, else None."""
    shared = shared_dir()
    if shared is None:
        return None
    path = shared / "data" / "atlas-geometry" / "atlas_calo_cells_ATLAS-R2-2016-01-00-01.root"
    return path if path.is_file() else None
