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


# --------------------------------------------------------------------------------------------------------------
# README speed tables from the saved reports (scripts/speed_tables.py)
# --------------------------------------------------------------------------------------------------------------

BEGIN_MARKER = "<!-- speed:begin -->"
END_MARKER = "<!-- speed:end -->"
#: What each judged figure means, for the goals table.
GOAL_LABELS = {
    "detector_over_pythia": "ATLAS detector CPU seconds / Pythia's own (notebook 00)",
    "convert_over_read": "QG conversion time / bare h5py read of the same images (notebook 07)",
    "ingest_over_read": "ATLAS ingestion (01 + 02) time / bare uproot read of its 49 branches",
    "peak_rss_mib": "peak resident memory of one process, MiB",
    "peak_rss_mib_max": "peak resident memory of the main process or a worker, MiB",
    "data_wait_max": "largest share of a training step spent waiting for data",
    "image_jets_per_core": "E2E image jets with pile-up per CPU second, one core (notebook 06)",
    "particle_jets_per_core": "particle-level jets per CPU second, one core (notebook 06)",
}


def load_reports(folder: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Every ``*.json`` report in ``folder`` by benchmark name; a file that is not a report is a clear error."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(folder).glob("*.json")):
        try:
            obj = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not JSON ({err}); rerun its benchmark with --save") from err
        if not isinstance(obj, dict) or "benchmark" not in obj:
            raise ValueError(f"{path}: not a benchmark report (no 'benchmark' key); rerun it with --save")
        out[obj["benchmark"]] = obj
    return out


def goal_rows(reports: dict[str, dict[str, Any]]) -> list[tuple[str, str, float, float | None, bool | None]]:
    """``(benchmark, figure, goal, measured, met)`` for every goal of every report, in benchmark order: upper
    limits (``"goal": {figure: limit}``, met when ``measured <= goal``), then lower limits (``"goal_min"``, met
    when ``measured >= goal``, e.g. jets per second); ``measured`` and ``met`` are None when the report lacks the
    figure. A ratio saved also in CPU seconds (``<figure>_cpu``) is judged against the same goal in the next row:
    on a loaded machine the CPU ratio is the better estimate of what a quiet machine's wall clock would show."""
    return [row[:5] for row in _goal_rows(reports)]


def _goal_rows(reports: dict[str, dict[str, Any]]) -> list[tuple[str, str, float, float | None, bool | None, str]]:
    """:func:`goal_rows` with the comparison (``"<="`` or ``">="``) as a sixth item."""
    rows = []
    for name, obj in sorted(reports.items()):
        for field, op in (("goal", "<="), ("goal_min", ">=")):
            for key, limit in obj.get(field, {}).items():
                for figure in (key, f"{key}_cpu"):
                    if figure != key and figure not in obj:
                        continue
                    value = obj.get(figure)
                    value = None if value is None else float(value)
                    met = None if value is None else (value <= limit if op == "<=" else value >= limit)
                    rows.append((name, figure, float(limit), value, met, op))
    return rows


def _when(obj: dict[str, Any]) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(obj.get("created_unix", 0)))
    load = obj.get("machine", {}).get("load_avg", ["?"])
    return f"{stamp}, {obj.get('machine', {}).get('cpus', '?')} CPUs, load {load[0]}"


def render_tables(reports: dict[str, dict[str, Any]]) -> str:
    """The markdown between the README's speed markers: the goals table, then one line per report saying
    when and under what load it was measured and the command that regenerates it."""
    lines = ["| benchmark | figure | goal | measured | met |", "|---|---|---|---|---|"]
    for name, key, limit, value, met, op in _goal_rows(reports):
        base = key.removesuffix("_cpu")
        label = GOAL_LABELS.get(base, base)
        if key != base:
            label += " (CPU seconds)"
        elif f"{key}_cpu" in reports[name]:
            label += " (wall clock)"
        shown = "missing" if value is None else f"{value:.3g}"
        verdict = "?" if met is None else ("**yes**" if met else "**no**")
        lines.append(f"| `{name}` | `{key}`: {label} | {op} {limit:g} | {shown} | {verdict} |")
    lines.append("")
    for name, obj in sorted(reports.items()):
        lines.append(f"- `{name}`: measured {_when(obj)}; {_summary(obj)}")
    return "\n".join(lines)


def _summary(obj: dict[str, Any]) -> str:
    """One line of the figures behind a report's goals (known benchmarks), else its judged figures."""
    name = obj["benchmark"]
    if name == "simulate":
        cpu = obj["cpu_ms_per_event"]
        split = ", ".join(f"{k} {v:.1f}" for k, v in cpu.items() if k not in ("total",))
        return f"{obj['events']} {obj['process']} events, CPU ms per event: {split}"
    if name == "qg_convert":
        return (
            f"{obj['jets']} jets, K = {obj['ks']}, {obj['compression']}: read {obj['read_jets_per_s']:.0f} jets/s, "
            f"conversion {obj['convert_jets_per_s']:.0f} jets/s (CPU ratio {obj['convert_over_read_cpu']:.2f})"
        )
    if name == "ingest":
        inp = obj["input"]
        cpu = inp["cpu_ms_per_event"]
        return (
            f"{inp['events']} events, CPU ms per event: samples {cpu['samples']:.2f}, point clouds "
            f"{cpu['point_clouds']:.2f}, bare read {cpu['bare_read']:.2f} (CPU ratio {inp['ingest_over_read_cpu']:.2f})"
        )
    if name in ("simulate_qg", "simulate_particles"):
        return _qg_summary(obj)
    if name.startswith("train"):
        return ", ".join(f"{r['model']} {r['samples_per_s']:.1f} samples/s" for r in obj.get("rows", []))
    return ", ".join(f"{k} {obj.get(k)}" for k in obj.get("goal", {}))


def _qg_summary(obj: dict[str, Any]) -> str:
    """The figures behind the quark/gluon simulation goals: jets, shares of the chunks' time, peak RSS."""
    if obj["benchmark"] == "simulate_particles":
        shares = ", ".join(f"{k} {100 * obj[f'{k}_share']:.0f}%" for k in ("pythia", "jets", "select", "write"))
        return (
            f"{obj['n_jets']} particle-level jets, {obj['particle_jets_per_core']:.1f} per CPU second; time shares "
            f"{shares}; peak RSS {obj['peak_rss_mib']:.0f} MiB"
        )
    parts = []
    for key, label in (
        ("images", f"image jets (pile-up mu {obj['pileup_mu']:g})"),
        ("particles", "particle-level jets"),
    ):
        if key in obj:
            fig = obj[key]
            total = 1e3 / fig["jets_per_s_per_core"]  # ms per jet in the chunks and the writing
            shares = ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in fig["cpu_ms_per_jet"].items() if v > 0)
            parts.append(f"{fig['jets']} {label}, {fig['jets_per_cpu_s']:.1f} per CPU second (time shares {shares})")
    return "; ".join(parts) + f"; peak RSS {obj['peak_rss_mib']['self']:.0f} MiB"


def replace_between_markers(text: str, body: str, where: str = "README") -> str:
    """``text`` with everything between :data:`BEGIN_MARKER` and :data:`END_MARKER` replaced by ``body``."""
    if text.count(BEGIN_MARKER) != 1 or text.count(END_MARKER) != 1:
        raise ValueError(f"{where}: needs exactly one {BEGIN_MARKER} and one {END_MARKER} line")
    head, rest = text.split(BEGIN_MARKER)
    _, tail = rest.split(END_MARKER)
    return f"{head}{BEGIN_MARKER}\n{body.strip()}\n{END_MARKER}{tail}"
