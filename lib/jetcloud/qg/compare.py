"""Comparison of the quark/gluon runs of notebook 08 (used by notebook 09): run loading, tables, figures, and the
published reference numbers (papers in ``docs/references.md``; [U] = unverified there, [V] = verified).

The runs are the rows of :func:`jetcloud.runs.collect_runs` (``build/<profile>/runs/qg/<name>@<tag>``), one per
run: ``run`` is the directory name, ``name`` the model (``<model>_particle`` at particle level). Runs of one model
that differ only in their seed are summarised as mean and spread by :func:`seed_table`.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np

from jetcloud import metrics
from jetcloud.runs import collect_runs

__all__ = [
    "PUBLISHED_CMS",
    "PUBLISHED_PARTICLE",
    "STRONGER",
    "GOAL_MARGIN",
    "GOAL_PARTICLE_AUC",
    "load_runs",
    "results_table",
    "seed_groups",
    "seed_table",
    "reference_table",
    "goals",
    "goals_text",
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


#: Run-name prefixes of the stronger models (none of the report's architectures).
STRONGER = ("particlenet", "transformer")
#: The report's best architecture, which the best stronger model should beat by GOAL_MARGIN in AUC.
REPORT_BEST = "resnet_pc_1024_m"
GOAL_MARGIN = 0.02
#: Particle-level AUC a ParticleNet-style model should reach with the full profile.
GOAL_PARTICLE_AUC = 0.90


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


def goals(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The issue's two goals, measured on ``runs``.

    Detector level: the best stronger run (:data:`STRONGER`) against the best ``resnet_pc_1024_m`` run on the same
    test jets (met when ahead by :data:`GOAL_MARGIN`; None when either was not trained, and then the best of the
    report's architectures that were trained is given for context). Particle level: the best ParticleNet-style run
    against :data:`GOAL_PARTICLE_AUC`. Values are None where a run is missing.
    """
    detector = [r for r in runs if r["level"] == "detector"]
    stronger = [r for r in detector if r["name"].startswith(STRONGER)]
    report = [r for r in detector if not r["name"].startswith(STRONGER + ("pfn",))]
    best = max(stronger, key=lambda r: r["auc"], default=None)
    reference = max((r for r in detector if r["name"] == REPORT_BEST), key=lambda r: r["auc"], default=None)
    best_report = max(report, key=lambda r: r["auc"], default=None)
    particlenet = [r for r in runs if r["level"] == "particle" and r["name"].startswith("particlenet")]
    best_pn = max(particlenet, key=lambda r: r["auc"], default=None)
    margin = best["auc"] - reference["auc"] if best and reference else None
    return {
        "best_stronger_run": best and best["run"],
        "best_stronger_auc": best and best["auc"],
        "report_best_run": REPORT_BEST,
        "report_best_auc": reference and reference["auc"],
        "margin": margin,
        "detector_goal_met": None if margin is None else bool(margin >= GOAL_MARGIN),
        "best_report_trained_run": best_report and best_report["run"],
        "best_report_trained_auc": best_report and best_report["auc"],
        "particle_run": best_pn and best_pn["run"],
        "particle_auc": best_pn and best_pn["auc"],
        "particle_goal_met": None if best_pn is None else bool(best_pn["auc"] >= GOAL_PARTICLE_AUC),
    }


def goals_text(g: dict[str, Any]) -> str:
    """Markdown bullets stating each goal, what was measured and whether it is met."""
    verdict = {True: "**met**", False: "**not met**", None: "**not measured**"}
    if g["best_stronger_run"] is None:
        detector = "no stronger model (ParticleNet-style, transformer) was trained"
    elif g["report_best_auc"] is None:
        trained = (
            (
                f"; the best of the report's architectures trained here, {g['best_report_trained_run']}, "
                f"has {g['best_report_trained_auc']:.4f}"
            )
            if g["best_report_trained_run"]
            else ""
        )
        detector = (
            f"best stronger model {g['best_stronger_run']} AUC {g['best_stronger_auc']:.4f}; "
            f"{REPORT_BEST} was not trained in this profile{trained}"
        )
    else:
        detector = (
            f"best stronger model {g['best_stronger_run']} AUC {g['best_stronger_auc']:.4f} against "
            f"{REPORT_BEST} {g['report_best_auc']:.4f}: margin {g['margin']:+.4f}"
        )
    particle = (
        f"{g['particle_run']} AUC {g['particle_auc']:.4f}"
        if g["particle_run"]
        else "no particle-level ParticleNet-style run"
    )
    return "\n".join(
        [
            f"- Detector level, goal: the best stronger model beats {REPORT_BEST} by >= {GOAL_MARGIN} AUC on the same "
            f"jets. Measured: {detector}. {verdict[g['detector_goal_met']]}.",
            f"- Particle level, goal: a ParticleNet-style model reaches AUC {GOAL_PARTICLE_AUC} (full profile). "
            f"Measured: {particle}. {verdict[g['particle_goal_met']]}.",
        ]
    )


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
