"""Benchmark: quark/gluon jet simulation throughput (E2E images and particle level), Pythia's share, memory.

    python benchmarks/simulate_qg.py [--image-jets 200] [--particle-jets 100] [--chunk-jets 100] [--workers 1]

For each set it runs the real chain (Pythia 8 -> fastjet -> parton matching -> CMS-like detector -> images ->
HDF5; or Pythia 8 -> fastjet -> npz) into a temporary directory and prints jets per second (wall), CPU
milliseconds per jet split into Pythia (event generation, ``nextBatch``), jet clustering and selection, detector
and images, and writing, Pythia's share of the CPU time, events generated per kept jet, and the peak resident
memory of this process and of the largest worker process. ``--image-jets`` and ``--particle-jets`` are per class.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from jetcloud.qg import simulate as qg


def _report(name: str, summary: dict, n_jets: int, wall: float) -> None:
    cpu = summary["cpu_seconds"]
    events = sum(summary["n_events"].values())
    total = cpu["chunks"] + cpu["write"]
    parts = {k: cpu.get(k, 0.0) for k in ("pythia", "jets", "detector", "write")}
    print(
        f"{name:15s}: {n_jets / wall:8.1f} jets/s wall ({n_jets} jets, {wall:.1f} s), "
        f"{1e3 * total / n_jets:.1f} ms CPU per jet"
    )
    print("                 CPU per jet: " + ", ".join(f"{k} {1e3 * v / n_jets:.2f} ms" for k, v in parts.items()))
    print(
        f"                 Pythia's share {100 * cpu['pythia'] / total:.0f}% of the CPU time; "
        f"{events / n_jets:.2f} events per kept jet ({1e3 * cpu['pythia'] / events:.2f} ms per event)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-jets", type=int, default=200, help="image jets per class")
    parser.add_argument("--particle-jets", type=int, default=100, help="particle-level jets per class")
    parser.add_argument("--chunk-jets", type=int, default=100, help="jets per class per chunk")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        if args.image_jets:
            cfg = qg.ImageConfig(
                n_quark=args.image_jets, n_gluon=args.image_jets, seed=args.seed, chunk_jets=args.chunk_jets
            )
            t0 = time.perf_counter()
            summary = qg.simulate_images(cfg, Path(tmp) / "qg.h5", workers=args.workers, progress=False)
            wall = time.perf_counter() - t0
            _report("E2E images", summary, 2 * args.image_jets, wall)
            size = (Path(tmp) / "qg.h5").stat().st_size
            print(f"                 HDF5 size {size / 2 / args.image_jets / 1e3:.1f} kB per jet (gzip)")
        if args.particle_jets:
            cfg = qg.ParticleConfig(
                n_quark=args.particle_jets, n_gluon=args.particle_jets, seed=args.seed, chunk_jets=args.chunk_jets
            )
            t0 = time.perf_counter()
            summary = qg.simulate_particles(cfg, Path(tmp) / "qg.npz", workers=args.workers, progress=False)
            wall = time.perf_counter() - t0
            _report("particle level", summary, 2 * args.particle_jets, wall)
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    workers = f", {child_mb:.0f} MiB (largest worker process)" if args.workers > 1 else " (chunks ran in-process)"
    print(f"peak RSS       : {self_mb:.0f} MiB (this process){workers}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
