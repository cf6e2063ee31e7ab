"""Benchmark: particle-level quark/gluon generation (EnergyFlow-like set), throughput per core and its profile.

    python benchmarks/simulate_particles.py [--jets 200] [--chunk-jets 100] [--workers 1] [--seed 1] [--json]
                                           [--save PATH]

Runs the real chain (Pythia 8 -> fastjet -> selection -> npz, :func:`jetcloud.qg.simulate.simulate_particles`)
into a temporary directory. Jets per second *per core* are the jets divided by the CPU seconds (user + system)
the chunks consumed (this process, plus its worker processes with ``--workers`` > 1), so the number holds on a
busy machine too; jets per second (wall) depend on the load. The profile splits the chunks' time into Pythia
(``nextBatch``), jets (final state + anti-kT clustering), selection (leading jet, flavour, packing the
constituents) and writing. ``--jets`` is per class. Speed goal (issue 13): at least 2x the earlier 15.5 jets
per CPU second on one core, i.e. ``particle_jets_per_core`` (= ``jets_per_s_per_core``) >= 31. ``--json`` prints
one JSON object: ``jets_per_s``, ``jets_per_s_per_core``, ``particle_jets_per_core``, ``pythia_share``,
``jets_share``, ``select_share``, ``write_share``, ``peak_rss_mb`` (and ``peak_rss_mib``), ``events_per_kept_jet``,
``ms_per_event`` (Pythia CPU), ``n_jets``, ``pt_hat``, ``goal_min``; ``--save PATH`` also writes it
(``benchmarks/results/simulate_particles.json``, for ``scripts/speed_tables.py``).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from jetcloud.benchreport import report
from jetcloud.qg import simulate as qg

#: Lower limit of the judged figure (issue 13): 2x the earlier 15.5 particle-level jets per CPU second, one core.
GOAL_MIN = {"particle_jets_per_core": 2 * 15.5}


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def measure(n_per_class: int, chunk_jets: int, workers: int, seed: int) -> dict:
    """Generate ``2 n_per_class`` jets and return the benchmark's numbers (module docstring)."""
    cfg = qg.ParticleConfig(n_quark=n_per_class, n_gluon=n_per_class, seed=seed, chunk_jets=chunk_jets)
    with tempfile.TemporaryDirectory() as tmp:
        cpu0, t0 = _cpu_seconds(), time.perf_counter()
        summary = qg.simulate_particles(cfg, Path(tmp) / "qg.npz", workers=workers, progress=False)
        wall, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    parts = summary["cpu_seconds"]
    total = parts["chunks"] + parts["write"]
    n_jets = summary["n_jets"]
    events = sum(summary["n_events"].values())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if workers > 1:
        rss = max(rss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return {
        "n_jets": n_jets,
        "jets_per_s": n_jets / wall,
        "jets_per_s_per_core": n_jets / cpu,
        "pythia_share": parts["pythia"] / total,
        "jets_share": parts.get("jets", 0.0) / total,
        "select_share": parts.get("select", 0.0) / total,
        "write_share": parts["write"] / total,
        "peak_rss_mb": rss / 1024,
        "events_per_kept_jet": events / n_jets,
        "ms_per_event": 1e3 * cpu * parts["pythia"] / total / events,
        "pt_hat": list(cfg.pt_hat) if isinstance(cfg.pt_hat, tuple) else [cfg.pt_hat, None],
        "wall_s": wall,
        "cpu_s": cpu,
    }


def build_report(res: dict) -> dict:
    """The saved report: the figures of :func:`measure` plus the judged ``particle_jets_per_core`` (jets per CPU
    second), ``peak_rss_mib`` (the name the other reports use) and the lower limit ``goal_min``."""
    return res | {
        "particle_jets_per_core": res["jets_per_s_per_core"],
        "peak_rss_mib": res["peak_rss_mb"],
        "goal_min": dict(GOAL_MIN),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jets", type=int, default=200, help="particle-level jets per class")
    parser.add_argument("--chunk-jets", type=int, default=100, help="jets per class per chunk")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument(
        "--save", help="also write the JSON object to this file (benchmarks/results/simulate_particles.json)"
    )
    args = parser.parse_args(argv)
    if args.jets <= 0 or args.chunk_jets <= 0 or args.workers <= 0:
        parser.error("--jets, --chunk-jets and --workers must be > 0")
    res = build_report(measure(args.jets, args.chunk_jets, args.workers, args.seed))
    line = report("simulate_particles", res, save=args.save)
    if args.json:
        print(line)
        return 0
    print(
        f"particle level: {res['jets_per_s']:.1f} jets/s wall, {res['jets_per_s_per_core']:.1f} jets/s per core "
        f"({res['n_jets']} jets, {res['cpu_s']:.1f} CPU s, {res['wall_s']:.1f} s wall)"
    )
    print(
        "time shares: "
        + ", ".join(f"{k} {100 * res[k + '_share']:.0f}%" for k in ("pythia", "jets", "select", "write"))
        + f"; {res['events_per_kept_jet']:.2f} events per kept jet, pT-hat window {res['pt_hat']} GeV"
    )
    print(f"peak RSS: {res['peak_rss_mb']:.0f} MiB")
    goal = res["goal_min"]["particle_jets_per_core"]
    print(f"goal: particle_jets_per_core {res['particle_jets_per_core']:.1f} jets per CPU second (goal >= {goal:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
