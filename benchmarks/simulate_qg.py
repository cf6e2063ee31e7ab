"""Benchmark: quark/gluon jet simulation throughput (E2E images and particle level), Pythia's share, memory.

    python benchmarks/simulate_qg.py [--image-jets 200] [--particle-jets 100] [--chunk-jets 100] [--workers 1]
                                     [--pileup-mu 20] [--library-events 1000] [--json] [--save PATH]

For each set it runs the real chain (Pythia 8 -> fastjet -> parton matching -> CMS-like detector -> images ->
HDF5; or Pythia 8 -> fastjet -> npz) into a temporary directory and prints jets per second (wall), CPU
milliseconds per jet split into Pythia (event generation, ``nextBatch``), jet clustering and selection, detector
and images, and writing, Pythia's share of the CPU time, events generated per kept jet, and the peak resident
memory of this process and of the largest worker process. ``--image-jets`` and ``--particle-jets`` are per class.
``--pileup-mu`` sets the image set's in-time pile-up (0: none; its cost, the minimum-bias library and the overlay,
is the ``pileup`` share). Speed goals (issue 13): image jets per CPU second (one core) with pile-up within 1.5x
of the 50 measured before pile-up, i.e. ``image_jets_per_core`` >= 33.3; particle-level jets per CPU second at
least 2x the earlier 15.5, i.e. ``particle_jets_per_core`` >= 31 (each judged only when its set ran).
``--json`` prints one JSON object (per set: jets/s wall and per core = jets / CPU seconds of the chunks and
the writing, the CPU split in ms per jet; peak RSS; pileup_mu; the judged figures and ``goal_min``);
``--save PATH`` also writes it (``benchmarks/results/simulate_qg.json``, for ``scripts/speed_tables.py``).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from jetcloud.benchreport import report
from jetcloud.qg import simulate as qg

#: Lower limits of the judged figures (issue 13): jets per CPU second on one core.
GOAL_MIN = {"image_jets_per_core": 50 / 1.5, "particle_jets_per_core": 2 * 15.5}


def _cpu_now() -> float:
    """User + system CPU seconds of this process and its finished children so far."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _figures(summary: dict, n_jets: int, wall: float, cpu_s: float) -> dict:
    """Jets per second (wall, per core) and the CPU split per jet of one simulated set."""
    cpu = summary["cpu_seconds"]
    total = cpu["chunks"] + cpu["write"]
    return {
        "jets": n_jets,
        "wall_s": wall,
        "jets_per_s": n_jets / wall,
        "jets_per_s_per_core": n_jets / total,  # per busy core, wall clock inside the chunks (contention counts)
        "jets_per_cpu_s": n_jets / cpu_s,  # user + system CPU time: insensitive to other processes on the core
        "cpu_ms_per_jet": {
            k: 1e3 * cpu.get(k, 0.0) / n_jets for k in ("pythia", "jets", "detector", "pileup", "write")
        },
        "events_per_jet": sum(summary["n_events"].values()) / n_jets,
    }


def build_report(figures: dict) -> dict:
    """The saved report: ``figures`` plus the judged jets per CPU second (``image_jets_per_core`` from the image
    set, ``particle_jets_per_core`` from the particle-level set) and their lower limits ``goal_min``, for the sets
    that ran."""
    out = dict(figures)
    for key, part in (("image_jets_per_core", "images"), ("particle_jets_per_core", "particles")):
        if part in figures:
            out[key] = figures[part]["jets_per_cpu_s"]
    out["goal_min"] = {k: round(v, 1) for k, v in GOAL_MIN.items() if k in out}
    return out


def _report(name: str, summary: dict, n_jets: int, wall: float, say=print) -> None:
    cpu = summary["cpu_seconds"]
    events = sum(summary["n_events"].values())
    total = cpu["chunks"] + cpu["write"]
    parts = {k: cpu.get(k, 0.0) for k in ("pythia", "jets", "detector", "pileup", "write")}
    say(
        f"{name:15s}: {n_jets / wall:8.1f} jets/s wall ({n_jets} jets, {wall:.1f} s), "
        f"{1e3 * total / n_jets:.1f} ms CPU per jet"
    )
    say("                 CPU per jet: " + ", ".join(f"{k} {1e3 * v / n_jets:.2f} ms" for k, v in parts.items()))
    say(
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
    parser.add_argument("--pileup-mu", type=float, default=qg.ImageConfig.pileup_mu, help="image set pile-up")
    parser.add_argument("--library-events", type=int, default=qg.ImageConfig.pileup_library_events)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--save", help="also write the JSON object to this file (benchmarks/results/simulate_qg.json)")
    args = parser.parse_args(argv)
    say = (lambda *a, **k: None) if args.json else print
    figures: dict = {"pileup_mu": args.pileup_mu, "library_events": args.library_events, "workers": args.workers}

    with tempfile.TemporaryDirectory() as tmp:
        if args.image_jets:
            cfg = qg.ImageConfig(
                n_quark=args.image_jets,
                n_gluon=args.image_jets,
                seed=args.seed,
                chunk_jets=args.chunk_jets,
                pileup_mu=args.pileup_mu,
                pileup_library_events=args.library_events,
            )
            t0, c0 = time.perf_counter(), _cpu_now()
            summary = qg.simulate_images(cfg, Path(tmp) / "qg.h5", workers=args.workers, progress=False)
            wall = time.perf_counter() - t0
            _report("E2E images", summary, 2 * args.image_jets, wall, say)
            size = (Path(tmp) / "qg.h5").stat().st_size
            say(f"                 HDF5 size {size / 2 / args.image_jets / 1e3:.1f} kB per jet (gzip)")
            figures["images"] = _figures(summary, 2 * args.image_jets, wall, _cpu_now() - c0)
            figures["images"]["hits_10_50_90"] = qg.hit_table(summary["columns"]["n_hits"], summary["columns"]["label"])
            figures["images"]["median_hits"] = dict(
                zip(("track", "ecal", "hcal"), map(float, np.median(summary["columns"]["n_hits"], axis=0)), strict=True)
            )
        if args.particle_jets:
            cfg = qg.ParticleConfig(
                n_quark=args.particle_jets, n_gluon=args.particle_jets, seed=args.seed, chunk_jets=args.chunk_jets
            )
            t0, c0 = time.perf_counter(), _cpu_now()
            summary = qg.simulate_particles(cfg, Path(tmp) / "qg.npz", workers=args.workers, progress=False)
            wall = time.perf_counter() - t0
            _report("particle level", summary, 2 * args.particle_jets, wall, say)
            figures["particles"] = _figures(summary, 2 * args.particle_jets, wall, _cpu_now() - c0)
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    workers = f", {child_mb:.0f} MiB (largest worker process)" if args.workers > 1 else " (chunks ran in-process)"
    say(f"peak RSS       : {self_mb:.0f} MiB (this process){workers}")
    figures["peak_rss_mib"] = {"self": self_mb, "largest_worker": child_mb}
    out = build_report(figures)
    line = report("simulate_qg", out, save=args.save)
    for key, limit in out["goal_min"].items():
        say(f"goal           : {key} {out[key]:.1f} jets per CPU second (goal >= {limit:g})")
    if args.json:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
