"""Regenerate ``lib/jetcloud/atlas/data/builtin_geometry.csv`` from the real ATLAS Run-2 cell geometry.

Usage::

    python benchmarks/derive_builtin_geometry.py [GEOMETRY.root] [--out PATH]

The default input is ``jetcloud.paths.atlas_geometry_file()`` (``../shared/data/atlas-geometry``). Prints the
per-sampling cell counts of the resulting built-in geometry against the real file, and timings.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

from jetcloud.atlas.cellgeo import (
    BUILTIN_TABLE,
    CaloGeometry,
    derive_region_table,
    write_region_table,
)
from jetcloud.atlas.layers import SAMPLING_NAMES
from jetcloud.paths import atlas_geometry_file

log = logging.getLogger("derive_builtin_geometry")


def main(argv: list[str] | None = None) -> int:
    """Derive the table, write it, and compare the expanded geometry with the real one."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("geometry", nargs="?", type=Path, default=atlas_geometry_file())
    parser.add_argument("--out", type=Path, default=BUILTIN_TABLE)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.geometry is None:
        log.error("no geometry file given and ../shared/data/atlas-geometry not found")
        return 2
    rows = derive_region_table(args.geometry)
    header = (
        f"Built-in calorimeter regions derived from {args.geometry.name} by benchmarks/derive_builtin_geometry.py.\n"
        "One row per sampling, side and region of constant granularity; |eta| edges nominal (eta_raw),\n"
        "dphi = 2 pi / n_phi, first phi edge at -pi + phi_offset; position_mm = median r (surface r) or |z|\n"
        "(surface z) of the real cells, depth_mm = median dr or dz. FCAL: equal-count eta bands, approximated."
    )
    write_region_table(rows, args.out, header)
    log.info("wrote %d regions to %s", len(rows), args.out)

    t0 = time.perf_counter()
    builtin = CaloGeometry.builtin(args.out)
    t_builtin = time.perf_counter() - t0
    t0 = time.perf_counter()
    real = CaloGeometry.from_fastcalosim(args.geometry)
    t_real = time.perf_counter() - t0
    nb, nr = builtin.sampling_counts(), real.sampling_counts()
    log.info("%-12s %8s %8s %8s", "sampling", "builtin", "real", "diff%")
    for s, name in enumerate(SAMPLING_NAMES):
        log.info("%-12s %8d %8d %+8.2f", name, nb[s], nr[s], 100 * (nb[s] - nr[s]) / max(nr[s], 1))
    log.info("%-12s %8d %8d", "total", nb.sum(), nr.sum())
    worst = np.max(np.abs(nb - nr) / np.maximum(nr, 1))
    log.info("worst relative count difference %.2f%%", 100 * worst)
    log.info("build time: builtin %.3f s, fastcalosim %.3f s", t_builtin, t_real)
    return 0 if worst <= 0.02 else 1


if __name__ == "__main__":
    sys.exit(main())
