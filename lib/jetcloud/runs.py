"""Run directories and run records: every training run writes its own folder, so parallel runs never collide.

A *run* is one execution of a training notebook (one papermill call, one YAML document of a params file). It
owns one directory, and nothing else it writes is shared with another run::

    build/<profile>/runs/<workflow>/<name>[@<tag>]/      e.g. build/demo/runs/qg/mlp@seed1-epochs4-bs128
        record.json      parameters, git commit (+ dirty flag), package versions, host, profile, time, metrics
        last.pt best.pt history.csv ...                  whatever the workflow writes (checkpoints, scores)

``workflow`` is ``qg`` or ``atlas`` (any lower-case word); ``name`` says what was trained (``mlp``,
``pfn_particle``, ``jetpointnet``); ``tag`` tells apart runs of one name: a sweep over seeds or learning rates
gives one directory per point. :func:`derive_tag` builds the tag from the parameters that differ from a
baseline (the model's preset), always including the seed, so two seeds never share a directory and an identical
rerun finds its own directory again (and resumes from its checkpoint). Records are read back as a table by
:func:`collect_runs` (one flat dict per run), which notebooks 04 and 09 compare::

    from jetcloud import nbtools, runs

    parameters = nbtools.notebook_parameters("08_train_qg_model", globals())   # the papermill parameter values
    tag = run_tag or runs.derive_tag({"seed": seed, "lr": lr}, baseline={"lr": preset_lr}, always=("seed",))
    out = runs.run_dir(profile, "qg", "mlp", tag)                   # build/<profile>/runs/qg/mlp@seed0
    ...                                                             # train into `out`
    runs.write_record(out, parameters=parameters, metrics={"auc": 0.81})
    table = runs.collect_runs(profile, "qg")                        # [{"run": "mlp@seed0", "auc": 0.81, ...}]

**record.json** (schema 1), written whole and atomically (:func:`jetcloud.io.atomic.write_json`)::

    {"schema": 1, "run": "mlp@seed0", "name": "mlp", "tag": "seed0", "workflow": "qg", "profile": "demo",
     "created_utc": "2025-01-01T12:00:00+00:00", "host": "node17",
     "git": {"commit": "<sha>", "dirty": false} | null,
     "versions": {"python": "3.12.3", "numpy": "...", "torch": "...", "jetcloud": "..."},
     "parameters": {...}, "metrics": {...}}

**Rows of collect_runs** are flat: ``run name tag workflow profile created_utc host commit dirty dir`` (``dir``: the
run directory), ``param.<key>`` per parameter, ``version.<package>`` per version, and the metrics under their own
names (nested metric dicts as ``outer.inner``). Metric names therefore must not be one of :data:`RESERVED`
(checked when written). A ``pandas.DataFrame(rows)`` is the table as a frame where pandas is wanted.

A directory without ``record.json`` is a run that is still going or that failed: it is skipped (and logged). A
record that is not valid JSON or misses its keys raises ``ValueError`` naming the file.

Adopting it elsewhere (ATLAS notebook 03): ``out = runs.run_dir(profile, "atlas", model, tag)``, train into it,
``runs.write_record(out, parameters=..., metrics=...)``; notebook 04 reads ``runs.collect_runs(profile, "atlas")``.
Multi-run notebooks write their metrics JSON per run too: ``nbtools.record_metrics(NOTEBOOK, m, profile,
run=out.name)`` -> ``build/<profile>/metrics/<notebook>@<run>.json``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import platform
import re
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from jetcloud import nbtools, paths
from jetcloud.io.atomic import write_json
from jetcloud.io.manifest import git_state, package_versions

__all__ = [
    "RECORD_NAME",
    "RECORD_SCHEMA",
    "RESERVED",
    "VERSIONED",
    "runs_root",
    "run_dir",
    "derive_tag",
    "write_record",
    "read_record",
    "collect_runs",
]

log = logging.getLogger(__name__)

RECORD_NAME = "record.json"
RECORD_SCHEMA = 1
#: Distributions whose versions every record keeps (when installed), besides Python's own.
VERSIONED = ("numpy", "torch", "jetcloud")
#: Column names of :func:`collect_runs` rows that a metric may not take.
RESERVED = ("run", "name", "tag", "workflow", "profile", "created_utc", "host", "commit", "dirty", "dir")
#: Longest tag kept readable; longer ones are cut and end in a hash of the whole tag.
MAX_TAG = 80

_WORD = re.compile(r"^[a-z][a-z0-9_]*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")


# ---- where ----------------------------------------------------------------------------------------------
def runs_root(profile: str, workflow: str) -> Path:
    """``build/<profile>/runs/<workflow>``: the folder holding every run directory of ``workflow``."""
    if not isinstance(workflow, str) or not _WORD.match(workflow):
        raise ValueError(f"workflow must be a lower-case word such as 'qg' or 'atlas', got {workflow!r}")
    return paths.build_dir(profile, "runs", workflow)


def run_dir(profile: str, workflow: str, name: str, tag: str = "") -> Path:
    """``build/<profile>/runs/<workflow>/<name>@<tag>`` (``<name>`` when ``tag`` is empty); not created here.

    ``name`` and ``tag`` are file-name words (letters, digits, ``_ . + -``); ``@`` separates them, so neither may
    contain it.
    """
    for what, value in (("name", name), ("tag", tag)):
        if not isinstance(value, str) or (value and not _NAME.match(value)) or (what == "name" and not value):
            raise ValueError(
                f"run {what} must be letters, digits and _ . + - (not starting with a symbol), got {value!r}"
            )
    return runs_root(profile, workflow) / (f"{name}@{tag}" if tag else name)


def derive_tag(
    values: Mapping[str, Any],
    baseline: Mapping[str, Any] | None = None,
    *,
    always: Iterable[str] = ("seed",),
    short: Mapping[str, str] | None = None,
) -> str:
    """A run tag from the ``values`` that differ from ``baseline`` (and the keys in ``always``), in ``values`` order.

    Each kept key becomes ``<short name><value>`` (``short`` maps long keys to short ones, e.g.
    ``{"batch_size": "bs"}``), joined with ``-``: ``derive_tag({"seed": 1, "lr": 1e-3, "epochs": 20},
    {"lr": 3e-4, "epochs": 20})`` is ``"seed1-lr0.001"``. Values equal to the baseline and None are left out
    (None means "the preset"). Characters unsafe in a file name become ``_``; a tag longer than :data:`MAX_TAG`
    is cut and ends in 8 hex digits of the whole tag's hash, so different values still give different tags.
    """
    always = set(always)
    baseline = dict(baseline or {})
    short = dict(short or {})
    parts = []
    for key, value in values.items():
        if value is None or (key not in always and key in baseline and baseline[key] == value):
            continue
        text = _format_value(value)
        parts.append(f"{short.get(key, key)}{text}")
    tag = _TAG_UNSAFE.sub("_", "-".join(parts))
    if len(tag) > MAX_TAG:
        digest = hashlib.sha256(tag.encode()).hexdigest()[:8]
        tag = f"{tag[: MAX_TAG - 9]}-{digest}"
    return tag


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# ---- write --------------------------------------------------------------------------------------------------
def write_record(
    directory: str | os.PathLike,
    *,
    parameters: Mapping[str, Any],
    metrics: Mapping[str, Any],
    profile: str | None = None,
) -> Path:
    """Write ``<directory>/record.json`` (whole, atomically) and return its path.

    ``parameters`` are the notebook's parameter values (:func:`jetcloud.nbtools.notebook_parameters`);
    ``metrics`` the run's results, checked like :func:`jetcloud.nbtools.record_metrics` (finite numbers,
    strings, bools, None, lists / dicts of those) and not named like a :data:`RESERVED` column. ``profile``
    defaults to ``parameters["profile"]``. The git commit is the one of the repository checkout
    (:data:`jetcloud.paths.ROOT`), None outside git.
    """
    directory = Path(directory)
    where = str(directory / RECORD_NAME)
    if not isinstance(parameters, Mapping) or not isinstance(metrics, Mapping):
        raise TypeError(f"{where}: parameters and metrics must be dicts")
    clash = sorted(set(metrics) & set(RESERVED))
    if clash:
        raise ValueError(f"{where}: metric names {clash} are reserved for the run table ({', '.join(RESERVED)})")
    name, _, tag = directory.name.partition("@")
    versions = {"python": platform.python_version(), **package_versions(VERSIONED)}
    record = {
        "schema": RECORD_SCHEMA,
        "run": directory.name,
        "name": name,
        "tag": tag,
        "workflow": directory.parent.name,
        "profile": profile if profile is not None else parameters.get("profile"),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "git": git_state(paths.ROOT),
        "versions": versions,
        "parameters": nbtools.check_metrics(nbtools.nan_to_none(dict(parameters)), f"{where}: parameter"),
        "metrics": nbtools.check_metrics(metrics, f"{where}: metric"),
    }
    path = write_json(directory / RECORD_NAME, record)
    log.info("wrote run record %s", path)
    return path


# ---- read ---------------------------------------------------------------------------------------------------
def read_record(directory: str | os.PathLike) -> dict[str, Any]:
    """The record of a run directory as written; ``FileNotFoundError`` / ``ValueError`` name the file."""
    path = Path(directory) / RECORD_NAME
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no run record at {path}: the run has not finished (or failed)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: corrupt run record ({err}); rerun the run or delete its directory") from err
    required = ("schema", "run", "parameters", "metrics", "versions")
    if not isinstance(record, dict) or any(key not in record for key in required):
        raise ValueError(f"{path}: not a run record (expected a JSON object with keys {', '.join(required)})")
    if not isinstance(record["parameters"], dict) or not isinstance(record["metrics"], dict):
        raise ValueError(f"{path}: 'parameters' and 'metrics' must be JSON objects")
    if record["schema"] != RECORD_SCHEMA:
        raise ValueError(f"{path}: record schema {record['schema']!r}, this jetcloud reads {RECORD_SCHEMA}")
    return record


def collect_runs(profile: str, workflow: str, root: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """One flat dict per finished run under ``build/<profile>/runs/<workflow>`` (or ``root``), sorted by run.

    Columns: see the module docstring. Directories without a record (running or failed runs) are skipped; a
    corrupt record raises ``ValueError`` naming its file. An absent folder gives an empty list.
    """
    base = Path(root) if root else runs_root(profile, workflow)
    rows = []
    for directory in sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []:
        if directory.name.startswith("."):
            continue
        if not (directory / RECORD_NAME).is_file():
            log.info("%s has no %s (running or failed); skipped", directory, RECORD_NAME)
            continue
        rows.append(_flat_row(read_record(directory), directory))
    return rows


def _flat_row(record: dict[str, Any], directory: Path) -> dict[str, Any]:
    git = record.get("git") or {}
    row: dict[str, Any] = {
        "run": directory.name,
        "name": record.get("name", directory.name.partition("@")[0]),
        "tag": record.get("tag", directory.name.partition("@")[2]),
        "workflow": record.get("workflow"),
        "profile": record.get("profile"),
        "created_utc": record.get("created_utc"),
        "host": record.get("host"),
        "commit": git.get("commit"),
        "dirty": git.get("dirty"),
        "dir": str(directory),
    }
    row.update({f"param.{key}": value for key, value in record["parameters"].items()})
    row.update({f"version.{key}": value for key, value in record["versions"].items()})
    row.update(_flatten(record["metrics"]))
    return row


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
