"""Hyperparameter search with Optuna and Hyperband, independent of the workflow (notebook 10).

A *search space* is a YAML file (``jetcloud/presets/search_<workflow>.yaml``, or any path) mapping *sections*
to parameters; every parameter is one of::

    lr: {low: 1.0e-4, high: 1.0e-2, log: true}   # float (log scale with log: true)
    depth: {low: 1, high: 4}                      # int (both bounds integers)
    batch_size: {choices: [64, 128, 256]}         # categorical

The sections are the workflow's (``settings``: :class:`~jetcloud.train.TrainConfig` fields; ``model``: model
options; ``data``, ``loss`` ...); a top-level ``direction`` (``minimize`` / ``maximize``) and ``metric`` (what the
objective returns, for people) complete the file. Parameter names are unique across sections (Optuna's names).

:func:`create_study` opens (or resumes: ``load_if_exists``) a study with a seeded ``TPESampler`` and a
``HyperbandPruner``; its default storage is SQLite under ``build/<profile>/hpo/<study>.db`` (:func:`default_storage`),
so an interrupted study resumes with its finished trials, and any database URL Optuna accepts (PostgreSQL, MySQL)
lets several processes on several machines share one study. The objectives live with their workflow
(:mod:`jetcloud.atlas.hpo`, :mod:`jetcloud.qg.hpo`); they report the validation figure of merit after every epoch
through :func:`pruning_callback` (a :func:`jetcloud.train.fit` callback), which raises ``optuna.TrialPruned``
when Hyperband stops the trial.

The figures (:func:`history_figure`, :func:`importance_figure`, :func:`parallel_figure`,
:func:`intermediate_figure`) are drawn with matplotlib from ``study.trials`` (no plotly).

May import the core modules and :mod:`jetcloud.io` only (never a workflow, never :mod:`jetcloud.train`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import matplotlib.figure
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import optuna
import yaml

from jetcloud import paths
from jetcloud.io.atomic import write_text

__all__ = [
    "SEARCH_DIR",
    "DIRECTIONS",
    "space_file",
    "load_space",
    "suggest",
    "trial_seed",
    "default_storage",
    "create_study",
    "run_study",
    "finished_trials",
    "pruning_callback",
    "best_summary",
    "write_preset",
    "history_figure",
    "importance_figure",
    "parallel_figure",
    "intermediate_figure",
]

#: Where the built-in search spaces live (package data, beside the training presets).
SEARCH_DIR = Path(__file__).resolve().parent / "presets"
DIRECTIONS = ("minimize", "maximize")
_FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def space_file(workflow: str) -> Path:
    """``jetcloud/presets/search_<workflow>.yaml``."""
    return SEARCH_DIR / f"search_{workflow}.yaml"


def load_space(path: str | os.PathLike) -> dict[str, Any]:
    """The search space in ``path``, checked: ``{"direction", "metric", "sections": {section: {name: spec}}}``.

    Raises:
        ValueError: unknown direction, a parameter without choices or low/high, low >= high, a log range that is
            not positive, or a name used in two sections (the message names the file and the parameter).
    """
    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"search space {path}: expected a mapping, got {type(data).__name__}")
    direction = data.pop("direction", "minimize")
    metric = str(data.pop("metric", "objective"))
    if direction not in DIRECTIONS:
        raise ValueError(f"search space {path}: direction {direction!r} is not one of {', '.join(DIRECTIONS)}")
    seen: set[str] = set()
    for section, params in data.items():
        if not isinstance(params, dict):
            raise ValueError(f"search space {path}: section {section!r} must map parameter names to ranges")
        for name, spec in params.items():
            if name in seen:
                raise ValueError(f"search space {path}: parameter {name!r} appears in two sections")
            seen.add(name)
            _check_spec(spec, f"search space {path}, {section}.{name}")
    return {"direction": direction, "metric": metric, "sections": data}


def _check_spec(spec: Any, where: str) -> None:
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: expected a mapping with choices or low / high, got {spec!r}")
    if "choices" in spec:
        if not isinstance(spec["choices"], list) or not spec["choices"] or set(spec) - {"choices"}:
            raise ValueError(f"{where}: choices must be a non-empty list (and the only key)")
        return
    if set(spec) - {"low", "high", "log"} or not {"low", "high"} <= set(spec):
        raise ValueError(f"{where}: expected keys low, high (and log), got {sorted(spec)}")
    low, high = spec["low"], spec["high"]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or not low < high:
        raise ValueError(f"{where}: low and high must be numbers with low < high (floats need a dot: 1.0e-3)")
    if spec.get("log") and low <= 0:
        raise ValueError(f"{where}: a log range needs low > 0")


def suggest(trial: optuna.Trial, space: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """One value per parameter of ``space`` (:func:`load_space`) from ``trial``, grouped by section."""
    values: dict[str, dict[str, Any]] = {}
    for section, params in space["sections"].items():
        values[section] = {}
        for name, spec in params.items():
            if "choices" in spec:
                value = trial.suggest_categorical(name, spec["choices"])
            elif isinstance(spec["low"], int) and isinstance(spec["high"], int) and not spec.get("log"):
                value = trial.suggest_int(name, spec["low"], spec["high"])
            else:
                value = trial.suggest_float(name, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log")))
            values[section][name] = value
    return values


def trial_seed(seed: int, number: int) -> int:
    """The training seed of trial ``number`` of a study seeded with ``seed`` (``seed + number``)."""
    return int(seed) + int(number)


def default_storage(profile: str, study: str) -> str:
    """``sqlite:///<build>/<profile>/hpo/<study>.db`` (the directory is created)."""
    if not study or any(c in study for c in "/\\ "):
        raise ValueError(f"a study name must be a plain word (no slashes or spaces), got {study!r}")
    path = paths.build_dir(profile, "hpo") / f"{study}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def create_study(
    name: str,
    storage: str,
    direction: str,
    seed: int,
    *,
    max_epochs: int,
    min_epochs: int = 1,
    reduction_factor: int = 3,
    space: Mapping[str, Any] | None = None,
    data: str | None = None,
) -> optuna.Study:
    """Create, or load when it exists, the study ``name`` in ``storage`` (a database URL).

    Sampler: ``TPESampler(seed=seed)`` (a study run by one process is reproducible for a seed). Pruner:
    ``HyperbandPruner(min_epochs, max_epochs, reduction_factor)``: the epochs are Hyperband's resource.
    ``space`` (:func:`load_space`): stored with the study (user attribute ``sections``: parameter -> section).
    ``data`` (:func:`data_fingerprint` of the training data): stored with a new study; resuming a study that was run
    on other data is a ``ValueError`` (its trials would rank settings on data that is no longer there).
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction {direction!r} is not one of {', '.join(DIRECTIONS)}")
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        direction=direction,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.HyperbandPruner(
            min_resource=min_epochs, max_resource=max(max_epochs, min_epochs), reduction_factor=reduction_factor
        ),
        load_if_exists=True,
    )
    if data is not None:
        earlier = study.user_attrs.get("data")
        if earlier is not None and earlier != data and study.trials:
            where = storage if storage.startswith("sqlite") else storage.split("://")[0]  # no passwords
            raise ValueError(
                f"study {name!r} ({where}) was run on other data (fingerprint {earlier}, now {data}): give another "
                "study name (-p study NAME) or storage; nothing was changed"
            )
        study.set_user_attr("data", data)
    if space is not None:
        sections = {name: section for section, params in space["sections"].items() for name in params}
        study.set_user_attr("sections", sections)
    return study


def data_fingerprint(directory: str | os.PathLike) -> str:
    """A short fingerprint of the training data in ``directory``: the sha256 of its ``manifest.json`` inputs (the
    files it was made from, by content hash), or, without a manifest (data made elsewhere), of the names, sizes and
    modification times of its files. 12 hex digits."""
    from jetcloud.io.manifest import manifest_path

    folder = Path(directory)
    manifest = manifest_path(folder)
    if manifest.is_file():
        try:
            key = json.dumps(json.loads(manifest.read_text()).get("inputs"), sort_keys=True)
        except (OSError, ValueError) as err:
            raise ValueError(f"{manifest}: unreadable manifest ({err})") from err
    elif folder.is_dir():
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        key = json.dumps([(str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files])
    else:
        raise FileNotFoundError(f"{folder}: no training data (run the notebooks that make it first)")
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def finished_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The complete and pruned trials of ``study`` (what an interrupted study keeps)."""
    return study.get_trials(deepcopy=False, states=_FINISHED)


def run_study(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    n_trials: int,
    *,
    timeout: float | None = None,
    total: bool = True,
) -> int:
    """Run trials of ``objective``; return how many this call started.

    ``total=True``: bring the study to ``n_trials`` finished trials (a resumed study runs only the missing ones;
    several workers together stop there, give or take the trials in flight). ``total=False``: this call adds
    ``n_trials`` trials. ``timeout`` (seconds, None = none) stops starting new trials after that time.
    """
    before = len(study.trials)
    todo = max(0, n_trials - len(finished_trials(study))) if total else n_trials
    if todo:
        callbacks = [optuna.study.MaxTrialsCallback(n_trials, states=_FINISHED)] if total else []
        study.optimize(objective, n_trials=todo, timeout=timeout, callbacks=callbacks, gc_after_trial=True)
    return len(study.trials) - before


def pruning_callback(trial: optuna.Trial, key: str, sign: float = 1.0) -> Callable[[int, Mapping[str, float]], None]:
    """A :func:`jetcloud.train.fit` callback: report ``sign * row[key]`` as the value at ``epoch`` and raise
    ``optuna.TrialPruned`` when the pruner stops the trial (``fit`` lets it through after the epoch's files)."""

    def report(epoch: int, row: Mapping[str, float]) -> None:
        value = sign * float(row[key])
        trial.report(value if math.isfinite(value) else float("nan"), epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch} (reported {value:.4g})")

    return report


def best_summary(study: optuna.Study) -> dict[str, Any]:
    """Trial counts by state and the best trial (number, value, parameters, seed) for the metrics JSON."""
    states = [t.state.name.lower() for t in study.trials]
    summary: dict[str, Any] = {f"n_{s}": states.count(s) for s in ("complete", "pruned", "fail", "running")}
    summary["n_trials"] = len(states)
    if summary["n_complete"]:
        best = study.best_trial
        summary.update(best_trial=best.number, best_value=best.value, best_params=dict(best.params))
        summary["best_seed"] = best.user_attrs.get("seed")
    return summary


def write_preset(path: str | os.PathLike, name: str, entry: Mapping[str, Any], header: str = "") -> Path:
    """Merge the preset ``name: entry`` into the YAML file ``path`` (created with ``header`` comment lines;
    an existing preset of that name is replaced, the others kept), atomically."""
    path = Path(path)
    presets = yaml.safe_load(path.read_text()) if path.is_file() else None
    presets = dict(presets or {})
    presets[name] = _plain(entry)
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text(path, comment + yaml.safe_dump(presets, sort_keys=False, default_flow_style=False))


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars and tuples made plain YAML types."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


# ---- figures ----------------------------------------------------------------------------------------------------
def history_figure(study: optuna.Study, metric: str = "objective") -> matplotlib.figure.Figure:
    """Objective value of every complete trial against its number, with the best value so far."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    x = np.array([t.number for t in done])
    y = np.array([t.value for t in done], float)
    ax.plot(x, y, "o", label="complete trial")
    if len(y):
        best = np.maximum.accumulate(y) if study.direction.name == "MAXIMIZE" else np.minimum.accumulate(y)
        ax.step(x, best, where="post", color="C3", label="best so far")
    pruned = [t.number for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    for number in pruned:
        ax.axvline(number, color="0.8", lw=0.8, zorder=0)
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.legend(title=f"{len(pruned)} pruned (grey lines)" if pruned else None)
    return fig


def importance_figure(study: optuna.Study) -> matplotlib.figure.Figure:
    """fANOVA importance of every parameter (Optuna's default evaluator, seeded); a note when too few trials."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        importances = optuna.importance.get_param_importances(study, evaluator=evaluator) if len(done) > 1 else {}
    except (RuntimeError, ValueError):
        importances = {}
    if importances:
        names = list(importances)[::-1]
        ax.barh(names, [importances[n] for n in names])
        ax.set_xlabel("importance (fANOVA)")
    else:
        ax.text(
            0.5, 0.5, f"{len(done)} complete trial(s): too few for importances", ha="center", transform=ax.transAxes
        )
        ax.set_axis_off()
    return fig


def parallel_figure(study: optuna.Study, metric: str = "objective") -> matplotlib.figure.Figure:
    """Parallel coordinates: one line per complete trial through its parameters (each axis scaled to [0, 1];
    log-scale parameters in log, choices by index), coloured by its value."""
    fig, ax = plt.subplots(figsize=(8.0, 4.2))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    names = sorted({n for t in done for n in t.params})
    if not done or not names:
        ax.text(0.5, 0.5, "no complete trials", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    columns = np.array([[_axis_value(t, n) for n in names] for t in done], float)
    low, high = np.nanmin(columns, 0), np.nanmax(columns, 0)
    scaled = (columns - low) / np.where(high > low, high - low, 1.0)
    values = np.array([t.value for t in done], float)
    norm = matplotlib.colors.Normalize(values.min(), values.max() if values.max() > values.min() else values.min() + 1)
    cmap = matplotlib.colormaps["viridis"]
    for row, value in zip(scaled, values, strict=True):
        ax.plot(range(len(names)), row, color=cmap(norm(value)), alpha=0.8)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel("parameter (scaled to its range)")
    fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=metric)
    return fig


def _axis_value(trial: optuna.trial.FrozenTrial, name: str) -> float:
    """A parameter's position on its parallel-coordinates axis (log for log ranges, index for choices)."""
    if name not in trial.params:
        return math.nan
    dist = trial.distributions[name]
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return float(dist.to_internal_repr(trial.params[name]))
    value = float(trial.params[name])
    return math.log10(value) if getattr(dist, "log", False) else value


def intermediate_figure(study: optuna.Study, metric: str = "objective") -> matplotlib.figure.Figure:
    """The value reported after every epoch of every trial: complete trials in colour, pruned ones in grey
    ending with a cross where Hyperband stopped them."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    labelled: set[str] = set()
    for t in study.trials:
        if not t.intermediate_values:
            continue
        steps = sorted(t.intermediate_values)
        values = [t.intermediate_values[s] for s in steps]
        pruned = t.state == optuna.trial.TrialState.PRUNED
        label = "pruned" if pruned else t.state.name.lower()
        kw = {"color": "0.6", "ls": "--"} if pruned else {"color": "C0"}
        ax.plot(steps, values, marker="o", ms=3, label=None if label in labelled else label, **kw)
        labelled.add(label)
        if pruned:
            ax.plot(steps[-1], values[-1], "x", color="C3", ms=8)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    if labelled:
        ax.legend()
    return fig
