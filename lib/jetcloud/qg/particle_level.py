"""The pT-hat window of the particle-level set: which window keeps the 500-550 GeV jet spectrum, at what cost.

Pythia generates Z + jet events with the hard-process transverse momentum pT-hat inside a window; the
selection keeps the leading jet when 500 < pT < 550 GeV (and |y| < 1.7). Initial-state radiation, out-of-cone
radiation and the underlying event let jets in that range come from a broad range of pT-hat, so a narrow window
throws away accepted jets (it changes the spectrum), and a wide one generates many events that fail the
selection (it costs time).

:func:`pt_hat_window_study` measures both from one *reference* sample in a wide window: Pythia distributes events
in pT-hat according to the cross section, so a narrower window [lo, hi] generates exactly the reference events
with lo < pT-hat < hi. Its accepted jets are therefore the reference's accepted jets with pT-hat inside the window:
the jets lost per pT bin and in total follow by counting (binomial errors), and so does the number of generated
events per kept jet. :func:`choose_window` picks, from a grid of candidate windows, the one with the fewest events
per kept jet whose loss of accepted jets stays at or below ``max_loss`` in every class (95% upper bound).

**Measurement behind the default** (:data:`jetcloud.qg.simulate.PT_HAT_FACTORS`): 24,000 reference events per class,
pT-hat 300-7000 GeV (seed 11, jetcloud's Pythia 8.317 settings with the c/b veto), 839 accepted quark and 678 gluon
jets; 99 candidates, lo from 300 to 450 GeV, hi from 600 to 7000 GeV. With ``max_loss`` = 2%, :func:`choose_window`
returns (325, 850) GeV (the default is 0.65 x 500 = 325 to 1.55 x 550 = 852.5 GeV): 0.72 +- 0.29% of the quark and
0.74 +- 0.33% of the gluon jets lost, spread evenly over the five 10 GeV bins (ratios 0.98-1.00), with 20.4 (quark)
and 25.5 (gluon) events per kept jet against 28.6 / 35.4 in the reference. A 1% bound at 95% needs (300, 1000): no
jet lost, 28.5 / 35.3 events per jet. The former default (pT-hat > 400 GeV, no upper bound) lost 8.0 +- 0.9% of the
quark and 2.7 +- 0.6% of the gluon jets (also evenly in pT: jets from pT-hat 300-400 GeV that initial-state
radiation pushed above 500 GeV) with 8.7 / 10.9 events per jet: unbiased jets cost about 2.3 times as many events.
Jets from pT-hat below 300 GeV are not measured: the density of accepted quark jets falls towards 300 GeV (0.5% of
them between 300 and 319 GeV), so they are estimated at below 1%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import awkward as ak
import numpy as np

from jetcloud.parallel import default_workers, map_chunks
from jetcloud.qg import simulate as qg
from jetcloud.sim.pythia import chunk_seed, make_pythia

#: Columns of the per-event table of the study.
EVENT_COLUMNS = ("pt_hat", "parton_eta", "jet_pt", "jet_y", "accepted")
_STUDY_STREAM = 3


@dataclass(frozen=True)
class _StudyTask:
    config: qg.ParticleConfig
    label: int
    chunk: int
    n_events: int


def _study_chunk(task: _StudyTask) -> dict[str, np.ndarray]:
    """Generate ``n_events`` events of one class in the config's window; per event: pT-hat, leading jet, pass."""
    cfg = task.config
    seed = chunk_seed(cfg.seed, (_STUDY_STREAM * 1_000_000 + task.chunk) * 2 + task.label)
    hooks = qg.heavy_quark_veto() if task.label == qg.QUARK else None
    pythia = make_pythia("zjet", seed, cfg.settings(task.label), hooks=hooks)
    timers: dict[str, float] = {}
    cols: dict[str, list[np.ndarray]] = {k: [] for k in EVENT_COLUMNS}
    done = 0
    while done < task.n_events:
        n = min(qg.MAX_BATCH_EVENTS, task.n_events - done)
        batch = pythia.nextBatch(n)
        _, jets, lead, ok = qg.select_leading_jets(batch, cfg, task.label, timers)
        has = lead >= 0
        pt, y = np.zeros(n), np.full(n, np.inf)
        pt[has], y[has] = jets.pt[lead[has]], jets.y[lead[has]]
        partons = qg.hard_partons(batch)
        eta = np.full(n, np.inf)
        eta[partons["event"]] = partons["eta"]  # the outgoing parton of Z + parton (one per event)
        cols["pt_hat"].append(np.sqrt(ak.to_numpy(batch.info.pT2Hat).astype(np.float64)))
        cols["parton_eta"].append(eta)
        cols["jet_pt"].append(pt)
        cols["jet_y"].append(y)
        cols["accepted"].append(ok)
        done += n
    return {k: np.concatenate(v) for k, v in cols.items()} | {"label": np.full(done, task.label)}


def window_table(events: dict[str, np.ndarray], windows: list[tuple[float, float]]) -> list[dict[str, float]]:
    """For each candidate window: accepted jets kept, fraction lost (binomial error ``lost_err`` and 95% upper
    bound ``lost_upper``), generated events per kept jet.

    ``events``: one class's per-event table from the reference sample; every window must lie inside it.
    """
    acc = events["accepted"].astype(bool)
    n_ref = int(acc.sum())
    out = []
    for lo, hi in windows:
        inside = (events["pt_hat"] > lo) & (events["pt_hat"] < hi)
        kept = int((acc & inside).sum())
        lost = 1.0 - kept / n_ref if n_ref else float("nan")
        err = math.sqrt(lost * (1 - lost) / n_ref) if n_ref else float("nan")
        out.append(
            {
                "lo": float(lo),
                "hi": float(hi),
                "kept": kept,
                "lost": lost,
                "lost_err": err,
                "lost_upper": _wilson_upper(lost, n_ref),
                "events_per_jet": int(inside.sum()) / kept if kept else float("inf"),
            }
        )
    return out


def _wilson_upper(fraction: float, n: int, z: float = 1.96) -> float:
    """Upper end of the Wilson score interval (95% for z = 1.96) of a binomial fraction; 1 when n = 0."""
    if n == 0:
        return 1.0
    centre = fraction + z * z / (2 * n)
    half = z * math.sqrt(fraction * (1 - fraction) / n + z * z / (4 * n * n))
    return (centre + half) / (1 + z * z / n)


def choose_window(scan: dict[int, list[dict[str, float]]], max_loss: float = 0.01) -> tuple[float, float]:
    """The candidate window with the fewest events per kept jet (summed over classes) whose loss of accepted
    jets stays at or below ``max_loss`` in every class at 95% confidence (``lost_upper``, the Wilson upper bound).
    Raises if none qualifies."""
    n = len(next(iter(scan.values())))
    best, best_cost = None, math.inf
    for i in range(n):
        rows = [scan[c][i] for c in scan]
        if all(r["lost_upper"] <= max_loss for r in rows):
            cost = sum(r["events_per_jet"] for r in rows)
            if cost < best_cost:
                best, best_cost = (rows[0]["lo"], rows[0]["hi"]), cost
    if best is None:
        raise ValueError(f"no candidate window loses at most {max_loss:.1%} of the accepted jets in every class")
    return best


def pt_hat_window_study(
    config: qg.ParticleConfig,
    n_events: int,
    *,
    reference: tuple[float, float] | None = None,
    candidates: list[tuple[float, float]] | None = None,
    n_bins: int = 10,
    chunk_events: int = 1000,
    workers: int | None = None,
    scheduler: Any = None,
) -> dict[str, Any]:
    """Compare the leading-jet pT spectrum (inside ``config.jet_pt``) of a wide reference window with
    ``config``'s pT-hat window, on ``n_events`` reference events per class (module docstring).

    ``reference`` defaults to (0.6 x the lower jet pT bound, sqrt(s) / 2). Returns per class (keys 1 quark,
    0 gluon) ``events`` (the per-event table), ``reference`` and ``window`` (accepted jets per pT bin),
    ``chosen`` (the window's row of :func:`window_table`: ``lost``, ``lost_err``, ``events_per_jet``),
    ``reference_events_per_jet``, ``scan`` (rows for ``candidates``), and ``edges``, ``windows``.
    """
    if n_events <= 0 or chunk_events <= 0:
        raise ValueError(f"n_events and chunk_events must be > 0, got {n_events}, {chunk_events}")
    ref = reference or (0.6 * config.jet_pt[0], config.sqrt_s / 2)
    chosen = config.pt_hat
    if not (ref[0] <= chosen[0] and chosen[1] <= ref[1]):
        raise ValueError(f"the chosen pT-hat window {chosen} GeV must lie inside the reference window {ref} GeV")
    ref_cfg = replace(config, pt_hat_min=ref[0], pt_hat_max=ref[1])
    sizes = [min(chunk_events, n_events - i) for i in range(0, n_events, chunk_events)]
    tasks = [_StudyTask(ref_cfg, c, i, k) for c in (qg.QUARK, qg.GLUON) for i, k in enumerate(sizes)]
    workers = default_workers() if workers is None else max(1, int(workers))
    parts = list(map_chunks(_study_chunk, tasks, workers=workers, scheduler=scheduler, progress=False))
    edges = np.linspace(*config.jet_pt, n_bins + 1)
    candidates = list(candidates or [])
    out: dict[str, Any] = {"edges": edges, "windows": {"reference": ref, "chosen": chosen}}
    for c in (qg.QUARK, qg.GLUON):
        ev = {k: np.concatenate([p[k] for p in parts if p["label"][0] == c]) for k in EVENT_COLUMNS}
        acc = ev["accepted"].astype(bool)
        inside = acc & (ev["pt_hat"] > chosen[0]) & (ev["pt_hat"] < chosen[1])
        out[c] = {
            "events": ev,
            "reference": np.histogram(ev["jet_pt"][acc], edges)[0],
            "window": np.histogram(ev["jet_pt"][inside], edges)[0],
            "chosen": window_table(ev, [chosen])[0],
            "reference_events_per_jet": len(acc) / max(int(acc.sum()), 1),
            "scan": window_table(ev, candidates),
        }
    return out
