"""Helpers of the benchmark scripts (``benchmarks/*.py``): timing, medians, peak memory and the JSON report.

Every benchmark prints, with ``--json``, one JSON object: its figures (events or jets per second, CPU split, peak
RSS) and the ratio it is judged by. ``--save PATH`` also writes that object to ``PATH`` (conventionally
``benchmarks/results/<name>.json``), which ``scripts/speed_tables.py`` turns into the README's speed tables.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def timed(func: Callable[[], Any]) -> tuple[Any, float, float]:
    """``(result, wall seconds, CPU seconds of this process)`` of one call of ``func``."""
    t0, c0 = time.perf_counter(), time.process_time()
    result = func()
    return result, time.perf_counter() - t0, time.process_time() - c0


def median_ratio(pairs: list[tuple[float, float]]) -> dict[str, Any]:
    """Median of ``numerator / denominator`` over measured pairs, with every ratio (for the JSON report).

    The pairs are timed back to back in one process so that a shared machine's load hits both parts alike;
    the median of the per-pair ratios is less sensitive to a burst of load than the ratio of medians.
    """
    if not pairs:
        raise ValueError("median_ratio needs at least one (numerator, denominator) pair")
    bad = [p for p in pairs if not p[1] > 0]
    if bad:
        raise ValueError(f"median_ratio: denominators must be > 0, got {bad}")
    ratios = [a / b for a, b in pairs]
    return {"median": statistics.median(ratios), "all": ratios}


def peak_rss_mib() -> dict[str, float]:
    """Peak resident set size in MiB of this process (``self``) and of its largest finished child (``children``)."""
    to_mib = 1 / 1024  # ru_maxrss is in KiB on Linux
    return {
        "self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * to_mib,
        "children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * to_mib,
    }


def machine() -> dict[str, Any]:
    """Where the figures were taken: CPU count and the 1/5/15-minute load averages at the time of the call."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"cpus": os.cpu_count(), "load_avg": [round(x, 2) for x in load]}


def report(name: str, figures: dict[str, Any], *, save: str | os.PathLike | None = None) -> str:
    """The benchmark's one JSON object (``{"benchmark": name, "created_unix", "machine", **figures}``) as a line.

    With ``save``, also writes it (indented) to that path through a temporary name, creating the folder.
    """
    if "benchmark" in figures:
        raise ValueError("figures must not contain the key 'benchmark' (it names the benchmark)")
    obj = {"benchmark": name, "created_unix": round(time.time()), "machine": machine(), **figures}
    line = json.dumps(obj, allow_nan=False)
    if save is not None:
        path = Path(save)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(obj, indent=2, allow_nan=False) + "\n")
        tmp.replace(path)
    return line
