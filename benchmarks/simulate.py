"""Benchmark: Pythia-only versus full-simulation throughput and peak memory.

    python benchmarks/simulate.py [--process JZ1] [--events 200] [--chunk-size 50] [--workers 1]
                                  [--noise sparse|dense|none] [--json] [--save PATH]

Prints events per second for (1) Pythia 8 alone (``EventGenerator.generate``), (2) the full chain
(generation + tracks + showers + noise + topo-clustering + MLTree branches + RNTuple writing), the
detector's overhead relative to Pythia, the per-stage CPU split, and the peak resident memory of this
process and of its worker processes. Target (issues 2, 16): the detector adds at most 50% to Pythia's
time (``detector_over_pythia <= 0.5``) and a worker peaks at <= 1 GB. ``--json`` prints one JSON object,
``--save`` also writes it.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time

from jetcloud.atlas.sim.pipeline import SimConfig, cached_geometry, simulate
from jetcloud.benchreport import report
from jetcloud.sim.pythia import EventGenerator, chunk_seed, make_pythia


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--process", default="JZ1")
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--chunk-size", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--geometry", default="builtin")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--noise", default="sparse", choices=("sparse", "dense", "none"))
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--save", help="also write the JSON object to this file (benchmarks/results/simulate.json)")
    args = parser.parse_args(argv)
    say = (lambda *a, **k: None) if args.json else print

    t0 = time.perf_counter()
    geometry = cached_geometry(args.geometry)
    _ = geometry.adjacency
    t_geo = time.perf_counter() - t0
    say(f"geometry {args.geometry!r}: {geometry.n_cells} cells, built in {t_geo:.2f} s (once per process)")

    t0 = time.perf_counter()
    n_done = 0
    for chunk in range(0, args.events, args.chunk_size):
        n = min(args.chunk_size, args.events - chunk)
        EventGenerator(args.process, chunk_seed(args.seed, chunk // args.chunk_size)).generate(n)
        n_done += n
    t_pythia = time.perf_counter() - t0
    say(f"Pythia only      : {n_done / t_pythia:8.1f} events/s  ({1e3 * t_pythia / n_done:.1f} ms/event, 1 core)")

    if args.workers > 1:
        pythia = make_pythia(args.process, chunk_seed(args.seed, 0), threads=args.workers)
        t0 = time.perf_counter()
        pythia.nextBatch(args.events)
        t_par = time.perf_counter() - t0
        say(f"Pythia only      : {args.events / t_par:8.1f} events/s  (PythiaParallel, {args.workers} threads)")

    config = SimConfig(
        process=args.process,
        n_events=args.events,
        seed=args.seed,
        chunk_size=args.chunk_size,
        geometry=args.geometry,
        noise=args.noise,
    )
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        summary = simulate(config, tmp, workers=args.workers, progress=False)
        t_full = time.perf_counter() - t0
    cpu = summary["cpu_seconds"]
    per_event = {k: 1e3 * v / args.events for k, v in cpu.items()}
    say(
        f"full simulation  : {args.events / t_full:8.1f} events/s  ({1e3 * t_full / args.events:.1f} ms/event wall, "
        f"{args.workers} worker(s))"
    )
    detector = cpu["total"] - cpu["generate"]
    say(f"detector overhead: {100 * detector / cpu['generate']:.0f}% of Pythia's own time (target <= 50%)")
    say("per-stage CPU (ms/event): " + ", ".join(f"{k} {v:.1f}" for k, v in per_event.items()))
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    say(f"peak RSS         : {self_mb:.0f} MiB (this process), {child_mb:.0f} MiB (largest worker)")
    say(
        f"output           : {summary['n_tracks']} tracks, {summary['n_clusters']} clusters, "
        f"{summary['n_cluster_cells']} cluster cells"
    )
    if args.json or args.save:
        figures = {
            "process": args.process,
            "events": args.events,
            "chunk_size": args.chunk_size,
            "workers": args.workers,
            "noise": args.noise,
            "pythia_events_per_s": n_done / t_pythia,
            "full_events_per_s": args.events / t_full,
            "cpu_ms_per_event": per_event,
            "detector_over_pythia": detector / cpu["generate"],
            "peak_rss_mib": {"self": self_mb, "largest_worker": child_mb},
            "geometry_build_s": t_geo,
            "n_tracks": summary["n_tracks"],
            "n_clusters": summary["n_clusters"],
            "n_cluster_cells": summary["n_cluster_cells"],
            "peak_rss_mib_max": max(self_mb, child_mb),
            "goal": {"detector_over_pythia": 0.5, "peak_rss_mib_max": 1024},
        }
        line = report("simulate", figures, save=args.save)
        if args.json:
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
