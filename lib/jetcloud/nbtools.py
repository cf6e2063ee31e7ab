"""Small helpers every notebook uses: seeding, metrics JSON, cleaning a notebook's own outputs.

A notebook's derived cell calls :func:`seed_everything` with its ``seed`` parameter; its last cell calls
:func:`record_metrics` with named scalars, which ``build/<profile>/metrics/<notebook>.json`` keeps for tests
and comparisons (the recommenders ``store_metadata`` pattern, as a file)::

    rng = nbtools.seed_everything(seed)
    pythia.readString(f"Random:seed = {seeds.pythia_seed(seed, chunk)}")
    ...
    nbtools.record_metrics("04_evaluate_jetpointnet", {"resolution_mean": float(x)}, profile)

A notebook that runs many times per profile (one training run per model, seed or learning rate) passes
``run=``: each run then writes its own ``build/<profile>/metrics/<notebook>@<run>.json``, whole and atomically,
and no run reads or rewrites another run's file, so parallel runs lose nothing (:func:`read_run_metrics` gathers
them). :func:`notebook_parameters` returns the values of a notebook's parameters cell after papermill's
injection, for the run record of :mod:`jetcloud.runs`.
"""

from __future__ import annotations

import ast
import datetime as _dt
import importlib.util
import json
import logging
import math
import os
import random
import re
from collections.abc import Iterable, Mapping
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np

from jetcloud import paths
from jetcloud.io.atomic import write_json
from jetcloud.seeds import check_seed

log = logging.getLogger(__name__)

_NOTEBOOK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+@-]*$")
_last_seed: int | None = None


# ---- seeding ------------------------------------------------------------------------------------------
def seed_everything(seed: int, *, deterministic_torch: bool = False) -> np.random.Generator:
    """Seed Python's ``random``, numpy's global state and torch (if installed); return a numpy Generator.

    The returned ``np.random.default_rng(seed)`` is what new code should draw from. The seed is remembered
    (:func:`current_seed`) so that Pythia can be seeded from the same value through :func:`jetcloud.seeds.pythia_seed`.
    ``deterministic_torch=True`` also asks torch for deterministic algorithms (slower; warns where none).
    """
    seed = check_seed(seed)
    global _last_seed
    _last_seed = seed
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - legacy global state, for libraries that still use it
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.manual_seed(seed)  # also seeds every CUDA device
        if deterministic_torch:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
    log.debug("seeded random, numpy and torch with %d", seed)
    return np.random.default_rng(seed)


def current_seed() -> int | None:
    """The seed given to the last :func:`seed_everything` call in this process, or None."""
    return _last_seed


# ---- metrics --------------------------------------------------------------------------------------------
def metrics_path(notebook: str, profile: str, run: str = "") -> Path:
    """``build/<profile>/metrics/<notebook>.json``, or ``<notebook>@<run>.json`` for one run of a multi-run notebook."""
    if not isinstance(notebook, str) or not _NOTEBOOK_NAME.match(notebook) or notebook.endswith(".ipynb"):
        raise ValueError(
            f"notebook must be a notebook stem such as '00_simulate_atlas_events' (no directory, no .ipynb), "
            f"got {notebook!r}"
        )
    if run and (not isinstance(run, str) or not _RUN_NAME.match(run)):
        raise ValueError(f"run must be a run directory name such as 'mlp@seed0' (letters, digits, _.+-@), got {run!r}")
    return paths.metrics_dir(profile) / (f"{notebook}@{run}.json" if run else f"{notebook}.json")


def check_metrics(metrics: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``metrics`` with numpy values converted to Python ones; raise naming ``where`` and the key when invalid.

    Values may be ints, floats, bools, strings or None, numpy scalars / arrays, or lists / dicts of those.
    NaN and infinities raise ``ValueError``; other types ``TypeError``.
    """
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics for {where} must be a dict of name -> value, got {type(metrics).__name__}")
    return {str(_check_key(key, where)): _clean_value(value, f"{where} {key!r}") for key, value in metrics.items()}


def record_metrics(notebook: str, metrics: Mapping[str, Any], profile: str, *, run: str = "") -> Path:
    """Write ``metrics`` (named numbers / strings) to ``build/<profile>/metrics/<notebook>.json`` atomically.

    Values may be ints, floats, bools, strings or None, numpy scalars (converted), or lists / dicts of those
    (e.g. a per-bin table). NaN and infinities are rejected with a ``ValueError`` naming the key, because a
    metric that silently became NaN is exactly what the file exists to catch. With ``run`` (a run directory name
    of :mod:`jetcloud.runs`) the file is ``<notebook>@<run>.json``, the run's own. Returns the path written.
    """
    path = metrics_path(notebook, profile, run)
    clean = check_metrics(metrics, f"{notebook}: metric")
    record = {
        "notebook": notebook,
        "profile": profile,
        "written_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seed": current_seed(),
        "metrics": clean,
    }
    if run:
        record["run"] = run
    write_json(path, record)
    log.info("wrote %d metrics to %s", len(clean), path)
    return path


def read_metrics(notebook: str, profile: str, run: str = "") -> dict[str, Any]:
    """The ``metrics`` dict written by :func:`record_metrics`; ``FileNotFoundError`` names the notebook."""
    path = metrics_path(notebook, profile, run)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no metrics for {notebook}{f' run {run}' if run else ''} (profile {profile}) at {path}: run the "
            f"notebook first (./run_all.sh --profile {profile})"
        ) from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: corrupt metrics file ({err})") from err
    if not isinstance(record, dict) or not isinstance(record.get("metrics"), dict):
        raise ValueError(f"{path}: expected a JSON object with a 'metrics' object")
    return record["metrics"]


def read_run_metrics(notebook: str, profile: str) -> dict[str, dict[str, Any]]:
    """``{run: metrics}`` of every per-run file ``<notebook>@<run>.json`` of ``profile`` (sorted by run)."""
    metrics_path(notebook, profile)  # checks the name
    found = sorted(paths.metrics_dir(profile).glob(f"{notebook}@*.json"))
    return {p.stem.partition("@")[2]: read_metrics(notebook, profile, p.stem.partition("@")[2]) for p in found}


def notebook_parameters(notebook: str, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """``{name: value}`` of the names assigned in ``notebooks/<notebook>.ipynb``'s ``parameters`` cell.

    The values come from ``namespace`` (pass ``globals()``), so they are the ones the run used, after
    papermill's injected parameters. Raises ``FileNotFoundError`` / ``ValueError`` naming the notebook file.
    """
    names = list(parameter_annotations(notebook)[0])  # in the order of the parameters cell
    path = paths.ROOT / "notebooks" / f"{notebook}.ipynb"
    missing = [name for name in names if name not in namespace]
    if missing:
        raise KeyError(f"{path}: parameters {missing} are not defined; run the parameters cell first")
    return {name: namespace[name] for name in names}


# ---- parameter validation ----------------------------------------------------------------------------
#: Names IPython / papermill put into a notebook's namespace that are not parameters.
_KERNEL_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "open"})


def _notebook_cells(notebook: str | os.PathLike) -> tuple[Path, list[dict[str, Any]]]:
    """``(path, cells)`` of a notebook given by stem (``notebooks/<stem>.ipynb``) or by path."""
    path = Path(notebook)
    if path.suffix != ".ipynb":
        path = paths.ROOT / "notebooks" / f"{notebook}.ipynb"
    try:
        return path, json.loads(path.read_text())["cells"]
    except FileNotFoundError:
        raise FileNotFoundError(
            f"notebook {path} not found (its parameters cell is read to check parameters)"
        ) from None
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a notebook ({err})") from err


def parameter_annotations(notebook: str | os.PathLike) -> tuple[dict[str, str], set[str]]:
    """``({parameter: annotation source}, names defined before the parameters cell)`` of a notebook.

    Parameters are the annotated assignments of the cell tagged ``parameters`` (an unannotated one has
    annotation ``""``); the second set holds the names that the cells before it define (imports ...).
    """
    path, cells = _notebook_cells(notebook)
    code = [c for c in cells if c.get("cell_type") == "code"]
    index = [i for i, c in enumerate(code) if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(index) != 1:
        raise ValueError(f"{path}: expected one cell tagged 'parameters', found {len(index)}")
    annotations: dict[str, str] = {}
    for node in _parse_cell(code[index[0]], path).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            annotations[node.target.id] = _refine(ast.unparse(node.annotation), node.value)
        for target in getattr(node, "targets", []):
            if isinstance(target, ast.Name):
                annotations.setdefault(target.id, "")
    earlier: set[str] = set()
    for cell in code[: index[0]]:
        for node in ast.walk(_parse_cell(cell, path)):
            if isinstance(node, ast.Import | ast.ImportFrom):
                earlier.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                earlier.add(node.id)
            elif isinstance(node, ast.FunctionDef | ast.ClassDef):
                earlier.add(node.name)
    return annotations, earlier


def _refine(annotation: str, default: ast.expr | None) -> str:
    """A bare ``list`` annotation made ``list[int]`` / ``list[float]`` / ``list[str]`` from its default's items."""
    if annotation not in ("list", "List") or default is None:
        return annotation
    try:
        items = ast.literal_eval(default)
    except ValueError:
        return annotation
    if not isinstance(items, list) or not items:
        return annotation
    for name, kinds in (("int", (int,)), ("float", (int, float)), ("str", (str,))):
        if all(isinstance(v, kinds) and not isinstance(v, bool) for v in items):
            return f"list[{name}]"
    return annotation


def _parse_cell(cell: Mapping[str, Any], path: Path) -> ast.Module:
    source = cell.get("source", "")
    text = "".join(source) if isinstance(source, list) else str(source)
    lines = [line for line in text.splitlines() if not line.lstrip().startswith(("%", "!"))]  # magics
    return ast.parse("\n".join(lines), filename=str(path))


def _matches(value: Any, annotation: ast.expr) -> bool | None:
    """Whether ``value`` fits ``annotation`` (None: a type this check does not know, accepted)."""
    if isinstance(annotation, ast.Constant) and annotation.value is None:
        return value is None
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        parts = [_matches(value, annotation.left), _matches(value, annotation.right)]
        return True if True in parts else (None if None in parts else False)
    if isinstance(annotation, ast.Subscript):
        outer = ast.unparse(annotation.value).split(".")[-1]
        inner = annotation.slice.elts if isinstance(annotation.slice, ast.Tuple) else [annotation.slice]
        if outer in ("Union", "Optional"):
            parts = [_matches(value, a) for a in inner] + ([value is None] if outer == "Optional" else [])
            return True if True in parts else (None if None in parts else False)
        if outer in ("list", "List", "Sequence", "tuple"):
            if not isinstance(value, list | tuple):
                return False
            checks = [_matches(v, inner[0]) for v in value]
            return False if False in checks else True
        return None
    simple = {
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "str": lambda v: isinstance(v, str),
        "dict": lambda v: isinstance(v, dict),
        "list": lambda v: isinstance(v, list | tuple),
        "List": lambda v: isinstance(v, list | tuple),
    }
    name = ast.unparse(annotation)
    return simple[name](value) if name in simple else None


def _how_to_pass(name: str, annotation: str) -> str:
    """How to give parameter ``name`` on the papermill command line / in a params file."""
    if annotation.startswith(("list", "List", "tuple", "Sequence")) or "list[" in annotation:
        return f'pass a list with papermill -y "{name}: [200, 800]" (or a YAML list in the params file)'
    return f"pass it with papermill -p {name} VALUE (or '{name}: VALUE' in the params file)"


def check_parameters(notebook: str | os.PathLike, namespace: Mapping[str, Any]) -> None:
    """Check a notebook's parameters before any work: call ``nbtools.check_parameters(NOTEBOOK, globals())``
    first thing after the ``parameters`` cell.

    Every parameter's value must fit the annotation in the parameters cell (``int``, ``float`` (ints accepted),
    ``bool``, ``str``, ``list[int]`` / ``list[float]``, unions, ``| None``), and no other name may have been
    injected (papermill only warns about an unknown ``-p`` name). Raises a ``TypeError`` (wrong type) or
    ``NameError`` (unknown name) naming the notebook, the parameter, the expected type and how to pass it.
    """
    path, _ = _notebook_cells(notebook)
    annotations, earlier = parameter_annotations(path)
    problems = []
    for name, annotation in annotations.items():
        if not annotation or name not in namespace:
            continue
        value = namespace[name]
        if _matches(value, ast.parse(annotation, mode="eval").body) is False:
            problems.append(
                f"parameter {name!r} must be {annotation}, got {value!r} ({type(value).__name__}); "
                f"{_how_to_pass(name, annotation)}"
            )
    if problems:
        raise TypeError(f"{path}: " + "; ".join(problems))
    unknown = sorted(
        n
        for n in namespace
        if n not in annotations
        and n not in earlier
        and not n.startswith("_")
        and n not in _KERNEL_NAMES
        and n not in dir(__builtins__ if isinstance(__builtins__, dict) else __builtins__)
    )
    if unknown:
        raise NameError(
            f"{path}: unknown parameter(s) {unknown}; the notebook's parameters are {sorted(annotations)} "
            f"(check the spelling in the params file or the papermill -p / -y options)"
        )


def _check_key(key: Any, notebook: str) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError(f"{notebook}: metric names must be non-empty strings, got {key!r}")
    return key


def _clean_value(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, np.bool_)):
        return None if value is None else bool(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (Integral, np.integer)):
        return int(value)
    if isinstance(value, (Real, np.floating)):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{where} is {number}; metrics must be finite numbers")
        return number
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return _clean_value(value.item(), where)
        return [_clean_value(v, f"{where}[{i}]") for i, v in enumerate(value.tolist())]
    if isinstance(value, Mapping):
        return {str(_check_key(k, where)): _clean_value(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(
        f"{where} has type {type(value).__name__}; use numbers, strings, bools or lists/dicts of those "
        f"(convert tensors with float(x) or x.tolist())"
    )


def nan_to_none(value: Any) -> Any:
    """``value`` with arrays turned into lists and NaN / infinite floats into None (JSON null), recursively.

    :func:`record_metrics` refuses non-finite numbers on purpose; use this where "not measured" is a legitimate
    value (an empty bin of a binned resolution, say).
    """
    if isinstance(value, np.ndarray):
        return nan_to_none(value.tolist())
    if isinstance(value, Mapping):
        return {k: nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [nan_to_none(v) for v in value]
    if isinstance(value, (Real, np.floating)) and not isinstance(value, (Integral, np.integer, bool, np.bool_)):
        return float(value) if math.isfinite(float(value)) else None
    return value


# ---- cleaning -------------------------------------------------------------------------------------------
def clean_outputs(profile: str, notebook: str, figure_globs: Iterable[str] = ()) -> list[Path]:
    """Delete a notebook's stale outputs before it runs: its metrics JSON and matching figures.

    ``figure_globs`` are patterns inside ``figures/<profile>/`` such as ``"atlas_*"``; nothing outside
    that folder and the metrics folder is touched. Returns the removed paths.
    """
    removed: list[Path] = []
    path = metrics_path(notebook, profile)
    if path.is_file():
        path.unlink()
        removed.append(path)
    fig_dir = paths.figures_dir(profile)
    for pattern in figure_globs:
        if "/" in pattern or pattern.startswith(".."):
            raise ValueError(f"figure pattern {pattern!r} must be a file-name pattern inside {fig_dir}")
        for fig in sorted(fig_dir.glob(pattern)):
            if fig.is_file():
                fig.unlink()
                removed.append(fig)
    log.info("removed %d stale outputs of %s (%s)", len(removed), notebook, profile)
    return removed
