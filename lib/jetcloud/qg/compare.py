"""Comparison of the quark/gluon runs of notebook 08 (used by notebook 09): run loading, tables, figures, and the
published reference numbers (papers in ``docs/references.md``; [U] = unverified there, [V] = verified).

The runs are the rows of :func:`jetcloud.runs.collect_runs` (``build/<profile>/runs/qg/<name>@<tag>``), one per
run: ``run`` is the directory name, ``name`` the model (``<model>_particle`` at particle level). Runs of one model
that differ only in their seed are summarised as mean and spread by :func:`seed_table`.

Evaluation protocol (issue 13): the runs of one model that differ only in their seed form a group
(:func:`seed_groups`); :func:`group_summaries` gives per group the seed-mean AUC, its spread over seeds (sample
standard deviation; "n/a" for one seed) and a bootstrap interval over the test jets, and the difference of
seed-mean AUCs to the level's reference (``resnet_pc_1024_m``; ``pfn_particle`` at particle level) with a
**paired** bootstrap interval: every resample draws one set of test-jet indices used for every run of both models
(:func:`jetcloud.metrics.bootstrap_auc`), so the jet-to-jet correlation of two models on the same jets cancels (a
narrower interval than two independent ones). The compared quantity is the mean AUC over seeds, not the
AUC of seed-averaged scores (an ensemble, a different and stronger model). The intervals describe the finite test
set only; the seed-to-seed spread is reported beside them and, for the ΔAUC, also added to a second, wider
interval (:func:`with_seed_spread`: with 200 training steps a model's seeds can scatter far more than the test
set's resolution). :func:`goals` counts a goal as met only when the intervals exclude the threshold. "New"
models are all models that are not the report's (:func:`is_new_model`).
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np

from jetcloud import metrics
from jetcloud.runs import collect_runs, runs_root

__all__ = [
    "PUBLISHED_CMS",
    "PUBLISHED_PARTICLE",
    "PUBLISHED_LEARNING",
    "REPORT_MODELS",
    "REFERENCE",
    "REPORT_BEST",
    "GOAL_MARGIN",
    "GOAL_PARTICLE_AUC",
    "REPORT_MLP_AUC",
    "REALISM_TOLERANCE",
    "GOAL_KEYS",
    "model_of",
    "is_report_model",
    "is_new_model",
    "load_runs",
    "results_table",
    "seed_groups",
    "seed_table",
    "reference_table",
    "check_same_jets",
    "paired_difference",
    "group_summaries",
    "summary_table",
    "goals",
    "goals_text",
    "learning_curve",
    "learning_curve_models",
    "learning_curve_figure",
    "delta_figure",
    "roc_figure",
    "histories_figure",
    "auc_versus_figure",
]

log = logging.getLogger(__name__)

#: e2e_sparse on the real CMS Open Data jets (validation = test_jet, 55,494 jets), docs/e2e-format.md
PUBLISHED_CMS: list[dict[str, Any]] = [
    {"model": "MLP (report)", "K": "(200)", "params": "86,370", "auc": "0.7780", "acc": "71.38 %", "status": ""},
    {
        "model": "Sparse CNN 200 (report)",
        "K": "200",
        "params": "79,590",
        "auc": "0.7626",
        "acc": "69.74 %",
        "status": "",
    },
    {
        "model": "Sparse CNN 800 (report)",
        "K": "800",
        "params": "610,278",
        "auc": "0.7847 (best 0.7851)",
        "acc": "71.65 %",
        "status": "",
    },
    {
        "model": "ResNet_PC_1024_M (report, best)",
        "K": "1024",
        "params": "1,067,489",
        "auc": "0.78-0.79 (range)",
        "acc": "-",
        "status": "",
    },
    {
        "model": "ResNet-15 images (Andrews et al.)",
        "K": "images",
        "params": "~86 k",
        "auc": "0.80-0.81",
        "acc": "-",
        "status": "[U]",
    },
]

#: Pythia 8 QG benchmark (particle level, test 200 k), docs/e2e-format.md
PUBLISHED_PARTICLE: list[dict[str, Any]] = [
    {"model": "PFN (no PID)", "acc": "-", "auc": "0.891", "rej50": "30.8", "rej30": "-", "status": "[U]"},
    {"model": "PFN-Ex", "acc": "-", "auc": "0.9005", "rej50": "34.7", "rej30": "-", "status": "[U]"},
    {"model": "PFN-ID", "acc": "-", "auc": "0.9052", "rej50": "37.4", "rej30": "-", "status": "[U]"},
    {"model": "ParticleNet-Lite", "acc": "0.835", "auc": "0.908", "rej50": "37.1", "rej30": "94.5", "status": "[U]"},
    {"model": "ParticleNet", "acc": "0.840", "auc": "0.9116", "rej50": "39.8", "rej30": "98.6", "status": "[U]"},
    {
        "model": "LorentzNet (released checkpoint)",
        "acc": "0.84424",
        "auc": "0.91613",
        "rej50": "43.16",
        "rej30": "112.87",
        "status": "[V]",
    },
    {"model": "ParT (from scratch)", "acc": "0.840", "auc": "0.9151", "rej50": "41.3", "rej30": "107", "status": "[U]"},
]


#: Published particle-level AUCs on the Pythia 8 QG benchmark, all trained on 1.6 M jets (200 k test jets); the
#: reference lines of :func:`learning_curve_figure`. Values as quoted in the project's QG reference notes (section
#: 6.3, marked there as not yet checked against the papers).
PUBLISHED_LEARNING: list[dict[str, Any]] = [
    {"model": "PFN-ID", "auc": 0.9052, "train_jets": 1_600_000, "source": "Komiske et al., JHEP 01 (2019) 121"},
    {"model": "ParticleNet", "auc": 0.9116, "train_jets": 1_600_000, "source": "Qu & Gouskos, PRD 101 (2020) 056019"},
    {"model": "ParT", "auc": 0.9151, "train_jets": 1_600_000, "source": "Qu, Li & Qian, ICML 2022"},
    {
        "model": "ParT (JetClass pre-trained)",
        "auc": 0.9230,
        "train_jets": 1_600_000,
        "source": "Qu, Li & Qian, ICML 2022",
    },
]

#: The report's architectures (e2e_sparse): ``mlp``, ``sparse_cnn_*``, ``resnet_pc_*``. Every other model, including
#: any a teammate registers later, is a "new" model for the goals (:func:`is_new_model`).
REPORT_MODELS = ("mlp", "sparse_cnn_", "resnet_pc_")
#: The reference of the ΔAUC column per level: the report's best architecture; PFN at particle level.
REFERENCE = {"detector": "resnet_pc_1024_m", "particle": "pfn_particle"}
#: The report's best architecture, which the best new model should beat by GOAL_MARGIN in AUC.
REPORT_BEST = REFERENCE["detector"]
GOAL_MARGIN = 0.02
#: Particle-level AUC a ParticleNet-style model should reach with the full profile.
GOAL_PARTICLE_AUC = 0.90
#: The report's MLP on the real CMS jets and the realism goal's tolerance (our MLP within 0.778 ± 0.02).
REPORT_MLP_AUC = 0.778
REALISM_TOLERANCE = 0.02
#: The keys of the ``goals`` block of notebook 09's metrics (:func:`goals`).
GOAL_KEYS = (
    "mlp_auc",
    "mlp_auc_ci_low",
    "mlp_auc_ci_high",
    "best_new_model",
    "best_new_model_auc",
    "resnet_pc_1024_m_auc",
    "delta_auc_vs_resnet_pc_1024_m",
    "delta_auc_ci_low",
    "delta_auc_ci_high",
    "delta_auc_ci_low_with_seeds",
    "delta_auc_ci_high_with_seeds",
    "particle_level_best_model",
    "particle_level_best_auc",
    "particle_level_best_auc_ci_low",
    "particle_level_best_auc_ci_high",
    "confidence",
    "met",
)


def model_of(row: dict[str, Any]) -> str:
    """The model of a run row (``param.model``, else its name without ``_particle``)."""
    return str(row.get("param.model") or row.get("model") or row["name"].removesuffix("_particle"))


def is_report_model(model: str) -> bool:
    """True for the report's architectures (:data:`REPORT_MODELS`)."""
    return model == "mlp" or model.startswith(REPORT_MODELS[1:])


def is_new_model(model: str) -> bool:
    """True for every model none of the report's architectures is (ParticleNet, transformer, PFN, any later one)."""
    return not is_report_model(model)


def _history(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    with path.open() as fh:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(fh)]


def load_runs(profile: str, root: str | Path | None = None) -> list[dict[str, Any]]:
    """Every finished run of notebook 08 (:func:`jetcloud.runs.collect_runs` of ``qg``, sorted by run).

    Each run: its flat record row plus ``history`` (rows of ``history.csv``) and ``labels`` / ``scores`` of the
    test set; a run without ``scores_test.npz`` is skipped with a warning. ``root`` replaces
    ``build/<profile>/runs/qg``.
    """
    found = []
    for run in collect_runs(profile, "qg", root):
        directory = Path(run["dir"])
        scores = directory / "scores_test.npz"
        if not scores.is_file():
            log.warning("%s has no scores_test.npz; skipped", directory)
            continue
        run["history"] = _history(directory / "history.csv")
        with np.load(scores) as f:
            run["labels"], run["scores"] = f["labels"], f["scores"]
        found.append(run)
    if not found:  # zero runs is an error, not an empty comparison that overwrites the metrics with nothing
        raise FileNotFoundError(
            f"no finished runs (record.json and scores_test.npz) under {root or runs_root(profile, 'qg')}: "
            f"train models with notebook 08 first (./run_all.sh --profile {profile} --only 08)"
        )
    return found


#: Parameters that do not make two runs different experiments (grouped by :func:`seed_groups`).
NOT_EXPERIMENT = ("param.seed", "param.run_tag", "param.device", "param.resume", "param.profile")
#: Columns summarised by :func:`seed_table`.
SPREAD_KEYS = ("auc", "accuracy", "rej50")


def seed_groups(rows: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Runs grouped by model and every parameter except the seed (and run tag, device, resume), in first-seen order."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        params = tuple(
            sorted((k, repr(v)) for k, v in row.items() if k.startswith("param.") and k not in NOT_EXPERIMENT)
        )
        groups.setdefault((row["name"], params), []).append(row)
    return list(groups.values())


def _spread(values: list[Any]) -> str:
    finite = [float(v) for v in values if v is not None]
    if not finite:
        return "inf"
    mean = float(np.mean(finite))
    if len(finite) == 1:
        return f"{mean:.4g}"
    return f"{mean:.4g} ± {float(np.std(finite, ddof=1)):.2g}"


def seed_table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown table, one row per group of :func:`seed_groups`: seeds, and mean ± sample standard deviation.

    Rejections that were infinite (None) are left out of their mean; a single run shows its value alone.
    """
    lines = ["| model | runs | seeds | " + " | ".join(SPREAD_KEYS) + " |", "|---|---|---|" + "---|" * len(SPREAD_KEYS)]
    for group in seed_groups(rows):
        seeds = ", ".join(str(r.get("param.seed")) for r in group)
        cells = " | ".join(_spread([r.get(key) for r in group]) for key in SPREAD_KEYS)
        lines.append(f"| {group[0]['name']} | {len(group)} | {seeds} | {cells} |")
    return "\n".join(lines)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "inf"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def results_table(runs: Sequence[dict[str, Any]]) -> str:
    """Markdown table of our runs (test set)."""
    lines = [
        "| run | level | K | params | test AUC | acc | Rej50 | Rej30 | epochs | train s | test jets |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r['run']} | {r['level']} | {r['k']} | {r['params']:,} | {r['auc']:.4f} | {r['accuracy']:.3f} | "
            f"{_fmt(r['rej50'], 3)} | {_fmt(r['rej30'], 3)} | {r['epochs']} | {r['train_seconds']:.0f} | {r['n']} |"
        )
    return "\n".join(lines)


def reference_table(rows: Sequence[dict[str, Any]], title: str) -> str:
    """Markdown table of published numbers (all columns of ``rows``), headed by ``title``."""
    keys = list(rows[0])
    lines = [f"**{title}**", "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


# ---- paired bootstrap on the same test jets -----------------------------------------------------------------


def check_same_jets(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming both runs unless they scored the same test jets (same labels, same order)."""
    la, lb = np.asarray(a["labels"]), np.asarray(b["labels"])
    if la.shape != lb.shape:
        raise ValueError(
            f"runs {a['run']} and {b['run']} were scored on different test sets ({len(la)} and {len(lb)} jets): "
            "a paired comparison needs the same jets; retrain the stale one or move its run directory away"
        )
    differ = int(np.count_nonzero(la != lb))
    if differ:
        raise ValueError(
            f"runs {a['run']} and {b['run']} have different test labels at {differ} of {len(la)} jets (another "
            "data set or jet order): a paired comparison needs the same jets; retrain the stale run"
        )


def paired_difference(
    runs_a: Sequence[dict[str, Any]],
    runs_b: Sequence[dict[str, Any]],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, float]:
    """Seed-mean AUC of ``runs_a`` minus that of ``runs_b`` with a paired bootstrap interval (same test jets).

    Each list holds the seed runs of one model (rows of :func:`load_runs`). The difference is that of the mean
    AUCs over seeds (not the AUC of seed-averaged scores, which would be an ensemble, another model); the
    interval resamples the test jets jointly for every run of both (:func:`jetcloud.metrics.paired_auc_difference`),
    so it reflects the finite test set, not the seed-to-seed spread (shown separately). Every run must have
    scored the same jets as the first of ``runs_a`` (:func:`check_same_jets`).
    """
    if not runs_a or not runs_b:
        raise ValueError("paired_difference needs at least one run on each side")
    for other in [*runs_a[1:], *runs_b]:
        check_same_jets(runs_a[0], other)
    return metrics.paired_auc_difference(
        runs_a[0]["labels"],
        np.stack([r["scores"] for r in runs_a]),
        np.stack([r["scores"] for r in runs_b]),
        n_resamples=n_resamples,
        seed=seed,
        confidence=confidence,
    )


def _group_labels(groups: Sequence[list[dict[str, Any]]]) -> list[str]:
    """Per group its run name, with ``(N training jets)`` for a limited training set; names still shared by several
    groups get their tag without the seed instead (``mlp@lr0.001-steps100``)."""
    labels = []
    for group in groups:
        limit = int(group[0].get("param.max_train_jets") or 0)
        labels.append(f"{group[0]['name']} ({limit} training jets)" if limit else group[0]["name"])
    for i, group in enumerate(groups):
        if labels.count(labels[i]) > 1:
            rest = re.sub(r"(^|-)seed[^-]*", "", str(group[0].get("tag") or "")).strip("-")
            labels[i] = f"{group[0]['name']}@{rest}"
    return labels


def _mean_std(values: Sequence[Any]) -> tuple[float | None, float | None]:
    finite = [float(v) for v in values if v is not None and np.isfinite(float(v))]
    if not finite:
        return None, None
    return float(np.mean(finite)), (float(np.std(finite, ddof=1)) if len(finite) > 1 else None)


def _resampled_aucs(runs: Sequence[dict[str, Any]], n_resamples: int, seed: int) -> dict[str, np.ndarray]:
    """Bootstrap AUC resamples per run, one joint bootstrap per distinct test set (shared jet indices)."""
    sets: dict[bytes, list[dict[str, Any]]] = {}
    for r in runs:
        sets.setdefault(np.asarray(r["labels"], np.int64).tobytes(), []).append(r)
    out = {}
    for members in sets.values():
        try:
            _, resampled = metrics.bootstrap_auc(
                members[0]["labels"], np.stack([r["scores"] for r in members]), n_resamples=n_resamples, seed=seed
            )
        except ValueError as err:
            raise ValueError(f"test scores of {', '.join(r['dir'] for r in members)}: {err}") from err
        out.update({r["run"]: resampled[:, i] for i, r in enumerate(members)})
    return out


def group_summaries(
    runs: Sequence[dict[str, Any]], *, n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95
) -> list[dict[str, Any]]:
    """One row per seed group (:func:`seed_groups`): AUC and Rej50 over seeds, intervals, ΔAUC to the reference.

    Row keys: ``label`` (the run name, with the training-set limit or the tag without the seed where needed), ``name``,
    ``model``, ``level``, ``new`` (:func:`is_new_model`), ``runs``, ``seeds``, ``n_seeds``, ``n_train`` (training
    jets; None for runs recorded before it was), ``max_train_jets``, ``auc`` / ``auc_std`` (mean and sample standard
    deviation over seeds; std None for one seed), ``auc_lo`` / ``auc_hi`` (bootstrap interval of the seed-mean AUC
    over the test jets), ``rej50`` / ``rej50_std``, and ``reference`` (label of the level's reference group,
    :data:`REFERENCE`, the best one on the full training set), ``delta`` / ``delta_lo`` / ``delta_hi``
    (:func:`paired_difference` against it; None without a reference). Deterministic for ``seed``: every test set
    is bootstrapped once with the same jet indices for all its runs, so each difference equals
    :func:`paired_difference` with that seed. Runs of one group, or a group and its reference, scored on
    different jets raise ``ValueError`` naming both (:func:`check_same_jets`).
    """
    groups = seed_groups(runs)
    resampled = _resampled_aucs(runs, n_resamples, seed)
    rows = []
    for group, label in zip(groups, _group_labels(groups), strict=True):
        for other in group[1:]:
            check_same_jets(group[0], other)
        aucs = np.mean([resampled[r["run"]] for r in group], axis=0)
        lo, hi = metrics.percentile_interval(aucs, confidence)
        auc, auc_std = _mean_std([r["auc"] for r in group])
        rej, rej_std = _mean_std([r.get("rej50") for r in group])
        n_train = [r.get("n_train") for r in group]
        rows.append(
            {
                "label": label,
                "name": group[0]["name"],
                "model": model_of(group[0]),
                "level": group[0]["level"],
                "new": is_new_model(model_of(group[0])),
                "runs": [r["run"] for r in group],
                "seeds": [r.get("param.seed") for r in group],
                "n_seeds": len(group),
                "n_train": int(n_train[0]) if None not in n_train else None,
                "max_train_jets": int(group[0].get("param.max_train_jets") or 0),
                **{"auc": auc, "auc_std": auc_std, "auc_lo": float(lo), "auc_hi": float(hi)},
                **{"rej50": rej, "rej50_std": rej_std, "group": group},
            }
        )
    for row in rows:
        _add_delta(row, rows, resampled, confidence)
    return rows


def _best(rows: Sequence[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    """The full-training-set row with the highest seed-mean AUC among those matching every ``key=value``."""
    found = [r for r in rows if r["max_train_jets"] == 0 and all(r[k] == v for k, v in match.items())]
    return max(found, key=lambda r: r["auc"], default=None)


def _add_delta(
    row: dict[str, Any], rows: Sequence[dict[str, Any]], resampled: dict[str, np.ndarray], confidence: float
) -> None:
    ref = _best(rows, name=REFERENCE.get(row["level"], ""), level=row["level"])
    row.update(reference=ref and ref["label"], delta=None, delta_lo=None, delta_hi=None)
    if ref is None:
        return
    check_same_jets(ref["group"][0], row["group"][0])
    diff = np.mean([resampled[r["run"]] for r in row["group"]], axis=0)
    diff = diff - np.mean([resampled[r["run"]] for r in ref["group"]], axis=0)
    lo, hi = metrics.percentile_interval(diff, confidence)
    point = np.mean([r["auc"] for r in row["group"]]) - np.mean([r["auc"] for r in ref["group"]])
    row.update(delta=float(point), delta_lo=float(lo), delta_hi=float(hi))
    row.update(zip(("delta_seed_lo", "delta_seed_hi"), with_seed_spread(row, ref, confidence), strict=True))


def with_seed_spread(row: dict[str, Any], ref: dict[str, Any], confidence: float) -> tuple[float | None, ...]:
    """The ΔAUC interval widened by the seed-to-seed spread of both groups: the paired bootstrap's half-widths
    (test jets) added in quadrature to a Welch t half-width of the difference of seed means,
    ``t_df * sqrt(s_a^2 / n_a + s_b^2 / n_b)`` (Welch-Satterthwaite df). (None, None) unless both groups have at
    least two seeds. The jets are the same for every run, so the two sources of spread are independent."""
    from scipy import stats

    groups = [[r["auc"] for r in g["group"]] for g in (row, ref)]
    if row is ref:
        return 0.0, 0.0
    if min(len(g) for g in groups) < 2:
        return None, None
    var = [np.var(g, ddof=1) / len(g) for g in groups]
    se2 = sum(var)
    df = se2**2 / sum(v**2 / (len(g) - 1) for v, g in zip(var, groups, strict=True)) if se2 > 0 else np.inf
    seed_hw = float(stats.t.ppf(0.5 + confidence / 2, df) * np.sqrt(se2)) if se2 > 0 else 0.0
    lo_hw, hi_hw = row["delta"] - row["delta_lo"], row["delta_hi"] - row["delta"]
    return row["delta"] - float(np.hypot(lo_hw, seed_hw)), row["delta"] + float(np.hypot(hi_hw, seed_hw))


def _pm(mean: float | None, std: float | None, digits: int = 4) -> str:
    if mean is None:
        return "inf"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if std is not None else f"{mean:.{digits}f} ± n/a"


def _seeds_interval(row: dict[str, Any]) -> str:
    lo, hi = row.get("delta_seed_lo"), row.get("delta_seed_hi")
    return "" if lo is None or row["label"] == row["reference"] else f"; with seeds [{lo:+.4f}, {hi:+.4f}]"


def summary_table(rows: Sequence[dict[str, Any]], confidence: float = 0.95) -> str:
    """Markdown table of :func:`group_summaries`: seeds, AUC mean ± sd, its interval, Rej50, ΔAUC to the reference.

    "± n/a": one seed, no spread; "inf" Rej50: every seed rejected all gluons at that efficiency. The ΔAUC cell
    gives the paired interval over the test jets and, where both groups have two seeds or more, the interval with
    the seed-to-seed spread added (:func:`with_seed_spread`).
    """
    pct = f"{100 * confidence:g}%"
    lines = [
        f"| model | level | train jets | seeds (n) | AUC mean ± sd | AUC {pct} CI | Rej50 mean ± sd | "
        f"ΔAUC vs reference [{pct} CI] |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        delta = (
            f"{r['delta']:+.4f} [{r['delta_lo']:+.4f}, {r['delta_hi']:+.4f}]{_seeds_interval(r)} vs {r['reference']}"
            if r["delta"] is not None
            else "n/a (no reference run)"
        )
        seeds = ", ".join(str(s) for s in r["seeds"])
        lines.append(
            f"| {r['label']} | {r['level']} | {r['n_train'] if r['n_train'] is not None else '?'} | {seeds} "
            f"({r['n_seeds']}) | {_pm(r['auc'], r['auc_std'])} | [{r['auc_lo']:.4f}, {r['auc_hi']:.4f}] | "
            f"{_pm(r['rej50'], r['rej50_std'], 1)} | {delta} |"
        )
    return "\n".join(lines)


def goals(rows: Sequence[dict[str, Any]], confidence: float = 0.95) -> dict[str, Any]:
    """The issue's goals measured on :func:`group_summaries` rows; the keys are :data:`GOAL_KEYS`.

    Only groups trained on the full training set count; where a model has several, the one with the highest
    seed-mean AUC. ``mlp_auc``: the MLP's seed-mean AUC with its interval. ``best_new_model``: the detector-level
    new model (:func:`is_new_model`) with the highest seed-mean AUC, and its paired difference to
    ``resnet_pc_1024_m`` (``delta_auc_*``). ``particle_level_best_*``: the best particle-level group with its
    interval. ``met`` holds one flag per measured value, True only when the interval excludes the threshold:
    ``delta_auc_ci_low > GOAL_MARGIN``, ``particle_level_best_auc_ci_low > GOAL_PARTICLE_AUC``, and the MLP's
    interval inside ``REPORT_MLP_AUC ± REALISM_TOLERANCE``; None when not measured. (Choosing the best of several
    new models by the same test jets favours it slightly.)
    """
    mlp = _best(rows, model="mlp", level="detector")
    new = [r for r in rows if r["level"] == "detector" and r["new"] and r["max_train_jets"] == 0]
    best_new = max(new, key=lambda r: r["auc"], default=None)
    ref = _best(rows, name=REPORT_BEST, level="detector")
    particle = _best(rows, level="particle")
    delta = best_new if best_new is not None and best_new["delta"] is not None else None
    window = (REPORT_MLP_AUC - REALISM_TOLERANCE, REPORT_MLP_AUC + REALISM_TOLERANCE)
    return {
        "mlp_auc": mlp and mlp["auc"],
        "mlp_auc_ci_low": mlp and mlp["auc_lo"],
        "mlp_auc_ci_high": mlp and mlp["auc_hi"],
        "best_new_model": best_new and best_new["label"],
        "best_new_model_auc": best_new and best_new["auc"],
        "resnet_pc_1024_m_auc": ref and ref["auc"],
        "delta_auc_vs_resnet_pc_1024_m": delta and delta["delta"],
        "delta_auc_ci_low": delta and delta["delta_lo"],
        "delta_auc_ci_high": delta and delta["delta_hi"],
        "delta_auc_ci_low_with_seeds": delta and delta.get("delta_seed_lo"),
        "delta_auc_ci_high_with_seeds": delta and delta.get("delta_seed_hi"),
        "particle_level_best_model": particle and particle["label"],
        "particle_level_best_auc": particle and particle["auc"],
        "particle_level_best_auc_ci_low": particle and particle["auc_lo"],
        "particle_level_best_auc_ci_high": particle and particle["auc_hi"],
        "confidence": confidence,
        "met": {
            "mlp_auc": None if mlp is None else bool(window[0] < mlp["auc_lo"] and mlp["auc_hi"] < window[1]),
            "delta_auc_vs_resnet_pc_1024_m": None if delta is None else _beats(delta),
            "particle_level_best_auc": None if particle is None else bool(particle["auc_lo"] > GOAL_PARTICLE_AUC),
        },
    }


def _beats(row: dict[str, Any]) -> bool:
    """The margin goal: both intervals (test jets; test jets and seeds, where measured) lie above the margin."""
    seeds_lo = row.get("delta_seed_lo")
    return bool(row["delta_lo"] > GOAL_MARGIN and (seeds_lo is None or seeds_lo > GOAL_MARGIN))


def goals_text(g: dict[str, Any], profile: str = "") -> str:
    """Markdown bullets stating each goal, what was measured (with its interval) and whether it is met."""
    verdict = {True: "**met**", False: "**not met**", None: "**not measured**"}
    pct = f"{100 * g['confidence']:g}%"
    met = g["met"]
    on = f" (this is the {profile} profile)" if profile else ""
    mlp = (
        f"mlp AUC {g['mlp_auc']:.4f}, {pct} interval [{g['mlp_auc_ci_low']:.4f}, {g['mlp_auc_ci_high']:.4f}]"
        if g["mlp_auc"] is not None
        else "no mlp run"
    )
    if g["best_new_model"] is None:
        detector = "no new model (none of the report's architectures) was trained on the full training set"
    elif g["delta_auc_vs_resnet_pc_1024_m"] is None:
        detector = f"best new model {g['best_new_model']} AUC {g['best_new_model_auc']:.4f}; {REPORT_BEST} not trained"
    else:
        detector = (
            f"best new model {g['best_new_model']} AUC {g['best_new_model_auc']:.4f} against {REPORT_BEST} "
            f"{g['resnet_pc_1024_m_auc']:.4f}: ΔAUC {g['delta_auc_vs_resnet_pc_1024_m']:+.4f}, paired {pct} "
            f"interval [{g['delta_auc_ci_low']:+.4f}, {g['delta_auc_ci_high']:+.4f}] over the test jets"
        )
        if g["delta_auc_ci_low_with_seeds"] is not None:
            detector += (
                f", [{g['delta_auc_ci_low_with_seeds']:+.4f}, {g['delta_auc_ci_high_with_seeds']:+.4f}] with the "
                "seed-to-seed spread added"
            )
    particle = (
        f"{g['particle_level_best_model']} AUC {g['particle_level_best_auc']:.4f}, {pct} interval "
        f"[{g['particle_level_best_auc_ci_low']:.4f}, {g['particle_level_best_auc_ci_high']:.4f}]"
        if g["particle_level_best_model"]
        else "no particle-level run"
    )
    return "\n".join(
        [
            f"- Realism, goal: the report's MLP lands at {REPORT_MLP_AUC} ± {REALISM_TOLERANCE} AUC (full profile, "
            f"report settings){on}. Measured: {mlp}. {verdict[met['mlp_auc']]} (met when the interval lies inside "
            "the window).",
            f"- Detector level, goal: a new model beats {REPORT_BEST} by >= {GOAL_MARGIN} AUC on the same jets. "
            f"Measured: {detector}. {verdict[met['delta_auc_vs_resnet_pc_1024_m']]} (met when the intervals lie "
            f"above {GOAL_MARGIN}).",
            f"- Particle level, goal: AUC >= {GOAL_PARTICLE_AUC} (full profile){on}. Measured: {particle}. "
            f"{verdict[met['particle_level_best_auc']]} (met when the interval lies above {GOAL_PARTICLE_AUC}).",
        ]
    )


# ---- learning curve (particle level) ------------------------------------------------------------------------


def learning_curve(rows: Sequence[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The points of ``name``'s learning curve: its groups with a known training-set size, by ``n_train``.

    Each point: ``n_train``, ``auc`` (seed mean), ``auc_std`` (None for one seed), ``auc_lo`` / ``auc_hi``
    (bootstrap interval over the test jets), ``n_seeds``, ``label``. Several groups at one size (other settings)
    keep the best.
    """
    best: dict[int, dict[str, Any]] = {}
    for r in rows:
        if r["name"] != name or r["n_train"] is None:
            continue
        if r["n_train"] not in best or r["auc"] > best[r["n_train"]]["auc"]:
            best[r["n_train"]] = r
    keys = ("n_train", "auc", "auc_std", "auc_lo", "auc_hi", "n_seeds", "label")
    return [{k: best[n][k] for k in keys} for n in sorted(best)]


def learning_curve_models(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The particle-level names whose curve is shown: PFN and the best particle-level model (full training set)."""
    names = [REFERENCE["particle"]] if any(r["name"] == REFERENCE["particle"] for r in rows) else []
    best = _best(rows, level="particle")
    if best is not None and best["name"] not in names:
        names.append(best["name"])
    return names


def learning_curve_figure(rows: Sequence[dict[str, Any]]) -> matplotlib.figure.Figure:
    """Particle-level AUC against training jets (log x) for :func:`learning_curve_models`, seed mean with the
    bootstrap interval as error bar, and the published AUCs at 1.6 M training jets (:data:`PUBLISHED_LEARNING`)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, name in enumerate(learning_curve_models(rows)):
        points = learning_curve(rows, name)
        x = [p["n_train"] for p in points]
        y = np.array([p["auc"] for p in points])
        err = np.array([[p["auc"] - p["auc_lo"], p["auc_hi"] - p["auc"]] for p in points]).T
        ax.errorbar(x, y, yerr=err, fmt="o-", color=f"C{i}", capsize=3, label=f"{name} (ours)")
    colors = ("tab:blue", "tab:green", "tab:purple", "tab:brown")
    for ref, color in zip(PUBLISHED_LEARNING, colors, strict=False):
        ax.axhline(ref["auc"], ls=":", color=color, lw=1)
        ax.plot([ref["train_jets"]], [ref["auc"]], "*", color=color, label=f"{ref['model']} {ref['auc']}")
    ax.set_xscale("log")
    ax.set_xlabel("training jets")
    ax.set_ylabel("test AUC")
    ax.set_title("particle level; published values: 1.6 M training jets", fontsize="small")
    ax.legend(fontsize="x-small")
    fig.tight_layout()
    return fig


def delta_figure(rows: Sequence[dict[str, Any]], confidence: float = 0.95) -> matplotlib.figure.Figure:
    """ΔAUC to the reference per group with its paired bootstrap interval, one panel per level; vertical lines at 0
    and, at detector level, at the goal +GOAL_MARGIN."""
    levels = [lv for lv in ("detector", "particle") if any(r["delta"] is not None for r in rows if r["level"] == lv)]
    fig, axes = plt.subplots(1, max(1, len(levels)), figsize=(6 * max(1, len(levels)), 4.5), squeeze=False)
    for ax, level in zip(axes[0], levels, strict=False):
        shown = [r for r in rows if r["level"] == level and r["delta"] is not None]
        y = np.arange(len(shown))
        x = np.array([r["delta"] for r in shown])
        err = np.array([[r["delta"] - r["delta_lo"], r["delta_hi"] - r["delta"]] for r in shown]).T
        for new, color, what in ((False, "C0", "report's models"), (True, "C1", "new models")):
            sel = np.array([r["new"] == new for r in shown])
            if sel.any():
                ax.errorbar(x[sel], y[sel], xerr=err[:, sel], fmt="o", color=color, capsize=3, label=what)
        wide = [i for i, r in enumerate(shown) if r.get("delta_seed_lo") is not None and r["label"] != r["reference"]]
        if wide:
            seeds = np.array([[x[i] - shown[i]["delta_seed_lo"], shown[i]["delta_seed_hi"] - x[i]] for i in wide]).T
            ax.errorbar(x[wide], y[wide] - 0.2, xerr=seeds, fmt="none", ecolor="0.4", lw=1, label="with seed spread")
        ax.set_yticks(y, [f"{r['label']} (n={r['n_seeds']})" for r in shown], fontsize="x-small")
        ax.axvline(0, color="grey", lw=1)
        if level == "detector":
            ax.axvline(GOAL_MARGIN, color="tab:red", ls="--", lw=1, label=f"goal +{GOAL_MARGIN}")
            ax.legend(fontsize="x-small")
        ax.set_xlabel(f"ΔAUC vs {shown[0]['reference']} ({100 * confidence:g}% paired bootstrap)")
        ax.set_title(f"{level} level", fontsize="small")
    if not levels:
        axes[0][0].text(0.5, 0.5, "no reference run: no ΔAUC", ha="center", va="center")
        axes[0][0].set_axis_off()
    fig.tight_layout()
    return fig


def roc_figure(runs: Sequence[dict[str, Any]]) -> matplotlib.figure.Figure:
    """ROC (quark efficiency vs gluon mistag) and gluon rejection 1/eps_b vs quark efficiency, one line per run."""
    fig, (ax_roc, ax_rej) = plt.subplots(1, 2, figsize=(11, 4.5))
    for i, r in enumerate(runs):
        eps_b, eps_s = metrics.roc_curve(r["labels"], r["scores"])
        label = f"{r['run']} (AUC {r['auc']:.3f})"
        ax_roc.plot(eps_b, eps_s, color=f"C{i}", label=label)
        ok = eps_b > 0
        ax_rej.plot(eps_s[ok], 1 / eps_b[ok], color=f"C{i}", label=label)
    ax_roc.plot([0, 1], [0, 1], ":", color="grey", label="random")
    ax_roc.set_xlim(0, 1)
    ax_roc.set_ylim(0, 1.05)
    ax_roc.set_xlabel(r"gluon mistag rate $\epsilon_g$")
    ax_roc.set_ylabel(r"quark efficiency $\epsilon_q$")
    ax_roc.legend(fontsize="x-small")
    ax_rej.set_yscale("log")
    ax_rej.set_xlabel(r"quark efficiency $\epsilon_q$")
    ax_rej.set_ylabel(r"gluon rejection $1/\epsilon_g$")
    for eff in (0.3, 0.5):
        ax_rej.axvline(eff, ls=":", color="grey")
    fig.tight_layout()
    return fig


def histories_figure(runs: Sequence[dict[str, Any]]) -> matplotlib.figure.Figure:
    """Training / validation loss and validation accuracy per epoch, side by side for every run."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, r in enumerate(runs):
        rows = r["history"]
        if not rows:
            continue
        epoch = [row["epoch"] for row in rows]
        ax_loss.plot(epoch, [row["train_loss"] for row in rows], "o-", color=f"C{i}", label=f"{r['run']} train")
        ax_loss.plot(epoch, [row.get("val_loss", np.nan) for row in rows], "s--", color=f"C{i}", label="val")
        ax_acc.plot(epoch, [row.get("val_acc", np.nan) for row in rows], "o-", color=f"C{i}", label=r["run"])
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy")
    ax_loss.legend(fontsize="x-small", ncol=2)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("validation accuracy")
    ax_acc.legend(fontsize="x-small")
    fig.tight_layout()
    return fig


def auc_versus_figure(runs: Sequence[dict[str, Any]]) -> matplotlib.figure.Figure:
    """Test AUC against the trainable parameter count and against the training time (log x)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for i, r in enumerate(runs):
        for ax, x in zip(axes, (r["params"], max(r["train_seconds"], 1e-2)), strict=True):
            ax.scatter([x], [r["auc"]], color=f"C{i}", label=r["run"], marker="o" if r["level"] == "detector" else "^")
    axes[0].set_xlabel("trainable parameters")
    axes[1].set_xlabel("training time [s]")
    axes[0].set_ylabel("test AUC")
    for ax in axes:
        ax.set_xscale("log")
    axes[0].legend(fontsize="x-small")
    fig.tight_layout()
    return fig
