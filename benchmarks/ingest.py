"""Benchmark: MLTree -> track-centred samples (notebook 01) -> point clouds (notebook 02), CPU and memory.

    python benchmarks/ingest.py [--input 'data/raw/demo/atlas/events/*.root'] [--geometry .../geometry.root]
                                [--scale 10] [--step-size 250] [--repeats 3] [--json] [--save PATH]

Runs the two ingestion stages on one worker (in a fresh process per measurement, so each peak RSS is that
run's own) on (1) the input files and (2) one file holding the same events ``--scale`` times (event numbers
offset), and prints CPU seconds per event and per track, the cost per (track x cell in its cone), events per
second and the peak resident memory. Targets (issue 3): <= 4 ms CPU per event for small events (~4 tracks,
~900 clustered cells; the original needs 1.2-2.3 s) for both stages together, cost growing with tracks x
cells-in-cone, and peak memory <= 1 GB per worker whatever the file size.

Each child process also times the bare uproot read of the 49 branches ingestion uses
(``mltree_schema.JETPOINTNET_BRANCHES``, in the same ``--step-size`` entry ranges) back to back with the
ingestion, ``--repeats`` times after one ingestion alone (whose peak RSS is the one reported), and prints
``ingest_over_read`` = ingestion wall time over the read's, the median of the repeats (target, issue 16:
<= 2). ``--json`` prints one JSON object instead of the text, ``--save`` also writes it.
"""

from __future__ import annotations

import argparse
import glob
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from jetcloud.benchreport import median_ratio, report


def _measure(files: list[str], geometry: str, step_size: int) -> dict:
    """One measurement in this process: both stages on one worker; returns figures and this process's peak RSS."""
    from jetcloud.atlas import pointcloud, samples

    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        summary = samples.build_samples(
            files, geometry, Path(tmp) / "samples", step_size=step_size, workers=1, progress=False, manifest=False
        )
        c1 = time.process_time()
        meta = pointcloud.build_atlas_point_clouds(
            Path(tmp) / "samples", Path(tmp) / "points", workers=1, progress=False
        )
        t2, c2 = time.perf_counter(), time.process_time()
    rep = summary["report"]
    return {
        "events": summary["events"],
        "tracks": rep["tracks"],
        "sample_cells": rep["sample_cells"],
        "cells": rep["cells"],
        "samples_written": sum(v["written"] for v in meta["counts"].values()),
        "cpu_samples_s": c1 - c0,
        "cpu_points_s": c2 - c1,
        "wall_s": t2 - t0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _bare_read(files: list[str], step_size: int) -> dict:
    """The uproot read of the branches ingestion uses (``JETPOINTNET_BRANCHES``, 49) in the same entry ranges.

    This is what notebook 01 reads per chunk (``samples._read_chunk``: ``EventTree.arrays`` over ``step_size``
    entries), without building anything: the floor of the ingestion.
    """
    import uproot

    from jetcloud.atlas.mltree_schema import JETPOINTNET_BRANCHES

    t0, c0, n = time.perf_counter(), time.process_time(), 0
    for path in files:
        with uproot.open(path) as f:
            tree = f["EventTree"]
            for start in range(0, tree.num_entries, step_size):
                arrays = tree.arrays(list(JETPOINTNET_BRANCHES), entry_start=start, entry_stop=start + step_size)
                n += len(arrays)
    return {
        "events": n,
        "branches": len(JETPOINTNET_BRANCHES),
        "wall_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
    }


def _measure_pairs(files: list[str], geometry: str, step_size: int, repeats: int) -> dict:
    """One ingestion alone (its peak RSS is the run's own), then ``repeats`` x (bare read, ingestion) back to back
    in this process; medians. The first run also warms up (files in the page cache, imports done)."""
    first = _measure(files, geometry, step_size)
    pairs = [(_bare_read(files, step_size), _measure(files, geometry, step_size)) for _ in range(repeats)]
    wall = median_ratio([(m["wall_s"], r["wall_s"]) for r, m in pairs])
    cpu = median_ratio([(m["cpu_samples_s"] + m["cpu_points_s"], r["cpu_s"]) for r, m in pairs])
    out = dict(pairs[0][1])
    for key in ("cpu_samples_s", "cpu_points_s", "wall_s"):
        out[key] = statistics.median(m[key] for _, m in pairs)
    out["peak_rss_mb"] = first["peak_rss_mb"]
    out["peak_rss_mb_after_repeats"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["read"] = {
        "branches": pairs[0][0]["branches"],
        "wall_s": statistics.median(r["wall_s"] for r, _ in pairs),
        "cpu_s": statistics.median(r["cpu_s"] for r, _ in pairs),
    }
    out["ingest_over_read"], out["ingest_over_read_all"] = wall["median"], wall["all"]
    out["ingest_over_read_cpu"] = cpu["median"]
    out["repeats"] = repeats
    return out


def _scaled_file(files: list[str], scale: int, out: Path) -> Path:
    """One MLTree file with the JetPointNet branches of ``files`` repeated ``scale`` times (streamed)."""
    from jetcloud.atlas.mltree import iterate_events
    from jetcloud.atlas.mltree_schema import JETPOINTNET_BRANCHES
    from jetcloud.atlas.sim.writers import MLTreeWriter

    offset = 0
    with MLTreeWriter(out, branches=JETPOINTNET_BRANCHES) as writer:
        for _ in range(scale):
            top = offset
            for chunk in iterate_events(files, JETPOINTNET_BRANCHES, 500):
                events = {name: chunk[name] for name in JETPOINTNET_BRANCHES}
                events["eventNumber"] = np.asarray(chunk["eventNumber"]) + offset
                top = max(top, int(np.max(events["eventNumber"])) + 1)
                writer.extend(events)
            offset = top
    return out


def _run_child(files: list[str], geometry: str, step_size: int, repeats: int) -> dict:
    cmd = [sys.executable, __file__, "--child", "--geometry", geometry, "--step-size", str(step_size)]
    cmd += ["--repeats", str(repeats), *files]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _print(label: str, r: dict) -> None:
    cpu = r["cpu_samples_s"] + r["cpu_points_s"]
    ev, tr = max(r["events"], 1), max(r["tracks"], 1)
    print(
        f"{label}: {r['events']} events, {r['tracks'] / ev:.1f} tracks and {r['cells'] / ev:.0f} clustered cells "
        f"per event, {r['sample_cells'] / tr:.0f} cells per track cone"
    )
    print(
        f"  CPU per event   : {1e3 * cpu / ev:7.2f} ms  (samples {1e3 * r['cpu_samples_s'] / ev:.2f} ms, "
        f"point clouds {1e3 * r['cpu_points_s'] / ev:.2f} ms)"
    )
    print(
        f"  CPU per track   : {1e3 * cpu / tr:7.3f} ms;  per (track x cone cell): "
        f"{1e9 * cpu / max(r['sample_cells'], 1):.0f} ns"
    )
    print(f"  events / second : {ev / r['wall_s']:7.0f}  (1 worker, wall {r['wall_s']:.1f} s)")
    print(f"  peak RSS        : {r['peak_rss_mb']:7.0f} MB  (the whole process, imports included)")
    rd = r["read"]
    ratios = ", ".join(f"{x:.2f}" for x in r["ingest_over_read_all"])
    print(
        f"  bare read       : {1e3 * rd['wall_s'] / ev:7.2f} ms per event (uproot, {rd['branches']} branches, CPU "
        f"{1e3 * rd['cpu_s'] / ev:.2f} ms); ingestion = {r['ingest_over_read']:.2f} x the read (median of {ratios}; "
        f"CPU {r['ingest_over_read_cpu']:.2f}; target <= 2)"
    )


def _figures(r: dict) -> dict:
    """The JSON figures of one measurement (per event, per track, the CPU split and the ratio)."""
    ev, tr = max(r["events"], 1), max(r["tracks"], 1)
    cpu = r["cpu_samples_s"] + r["cpu_points_s"]
    return {
        **r,
        "events_per_s": ev / r["wall_s"],
        "cpu_ms_per_event": {
            "samples": 1e3 * r["cpu_samples_s"] / ev,
            "point_clouds": 1e3 * r["cpu_points_s"] / ev,
            "total": 1e3 * cpu / ev,
            "bare_read": 1e3 * r["read"]["cpu_s"] / ev,
        },
        "cpu_ms_per_track": 1e3 * cpu / tr,
        "tracks_per_event": r["tracks"] / ev,
        "cells_per_event": r["cells"] / ev,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--input", default="data/raw/demo/atlas/events/events_*.root", help="MLTree files (glob)")
    parser.add_argument("--geometry", default="", help="CellGeo file (default: geometry.root beside the events)")
    parser.add_argument("--scale", type=int, default=10, help="size of the large file in units of the input")
    parser.add_argument("--step-size", type=int, default=250, help="events per chunk")
    parser.add_argument("--repeats", type=int, default=3, help="read + ingestion pairs; the median ratio counts")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--save", help="also write the JSON object to this file (benchmarks/results/ingest.json)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(_measure_pairs(args.files, args.geometry, args.step_size, args.repeats)))
        return 0
    files = sorted(glob.glob(args.input))
    if not files:
        print(f"no input files match {args.input!r}: run notebook 00 first (./run_all.sh --only 00)", file=sys.stderr)
        return 2
    geometry = args.geometry or str(Path(files[0]).parent.parent / "geometry.root")
    say = (lambda *a, **k: None) if args.json else print
    show = (lambda *a: None) if args.json else _print
    first = _run_child(files, geometry, args.step_size, args.repeats)
    show(f"input ({len(files)} file(s))", first)
    figures = {"input": {"files": len(files), **_figures(first)}, "step_size": args.step_size}
    if args.scale > 1:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            big = _scaled_file(files, args.scale, Path(tmp) / "scaled.root")
            size_mb = big.stat().st_size / 2**20
            say(f"\n{args.scale}x file written in {time.perf_counter() - t0:.0f} s ({size_mb:.0f} MB)")
            scaled = _run_child([str(big)], geometry, args.step_size, args.repeats)
            show(f"{args.scale}x input (1 file)", scaled)
            figures["scaled"] = {"scale": args.scale, "file_mb": size_mb, **_figures(scaled)}
    figures["ingest_over_read"] = first["ingest_over_read"]
    figures["ingest_over_read_cpu"] = first["ingest_over_read_cpu"]
    figures["peak_rss_mib"] = max(f["peak_rss_mb"] for k, f in figures.items() if k in ("input", "scaled"))
    figures["goal"] = {"ingest_over_read": 2.0, "peak_rss_mib": 1024}
    line = report("ingest", figures, save=args.save)
    if args.json:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
