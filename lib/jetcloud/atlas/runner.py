"""What the ``jetcloud`` command runs for the ATLAS workflow: the MLTree file check and one JetPointNet training run.

:func:`check_mltree` runs the schema checks of notebooks 00 / 01 (:func:`jetcloud.atlas.mltree.check_schema` on
``EventTree`` and ``CellGeo``, TTree or RNTuple) and optionally the invariants I1-I12 of notebook 00
(:func:`jetcloud.atlas.mltree.validate_events`), and returns a one-line summary. :func:`train_run` is notebook 03
without its figures and evaluation: read the point clouds of notebook 02, build the model
(:func:`jetcloud.atlas.jetpointnet.build_model`), write ``run.json`` (:func:`~jetcloud.atlas.jetpointnet.save_run`)
and train with a preset of ``jetcloud/presets/atlas.yaml`` (:func:`~jetcloud.atlas.jetpointnet.training_setup`,
:func:`jetcloud.train.fit`, DDP under ``torchrun``), into the run directory notebook 04 reads
(``build/<profile>/models/jetpointnet/<model>``).

May import the floor and :mod:`jetcloud.atlas`, never :mod:`jetcloud.qg`.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["POINTNETS", "check_mltree", "TrainRun", "train_run"]

#: The models :func:`train_run` trains: the report's PointNets on the per-point inputs of notebook 02.
POINTNETS = ("pointnet", "pointnet_attention")

_KINDS = {"ROOT::RNTuple": "RNTuple", "TTree": "TTree"}


def _tree_classes(path: Path) -> dict[str, str]:
    """Tree name -> class name of the top-level objects of ``path`` ({} when uproot cannot open it)."""
    import uproot

    try:
        with uproot.open(path) as f:
            return {key.split(";")[0]: cls for key, cls in f.classnames().items()}
    except Exception:  # noqa: BLE001 - check_schema then raises the error that names the file and the problem
        return {}


def _invariant_problems(path: Path, branches: list[str], cell_geo_ID: Any) -> tuple[list[str], int]:
    """(errors, warnings) of the MLTree invariants over every event of ``path``, read in chunks."""
    from jetcloud.atlas import mltree

    errors: list[str] = []
    warnings = 0
    for start, chunk in _chunks(mltree.iterate_events(path, branches, step_size=1000)):
        for problem in mltree.validate_events(chunk, cell_geo_ID):
            if "warning" in problem:
                warnings += 1
            else:
                errors.append(f"events from {start}: {problem}")
    return errors, warnings


def _chunks(chunks: Any) -> Any:
    """``(first entry, chunk)`` pairs."""
    start = 0
    for chunk in chunks:
        yield start, chunk
        start += len(chunk)


def check_mltree(
    path: str | os.PathLike,
    *,
    all_branches: bool = False,
    invariants: bool = False,
    geometry: str | os.PathLike | None = None,
) -> str:
    """Check an MLTree ROOT file; return a one-line summary, or raise naming the file and the problem.

    ``EventTree`` (when present, or when the file has no ``CellGeo`` either) is checked for the 49 branches
    JetPointNet reads (notebook 01), or all 120 with ``all_branches`` (notebook 00); ``CellGeo`` for its 19
    branches. ``invariants`` also reads every event and checks the MLTree invariants (notebook 00; I12 is a
    warning, counted only); I9 (cell IDs in the geometry) needs the file's ``CellGeo`` or ``geometry``.

    Raises ``FileNotFoundError``, :class:`jetcloud.atlas.mltree.CorruptFileError` (not ROOT, truncated) or
    :class:`jetcloud.atlas.mltree.SchemaError` (missing tree, missing or mistyped branches; invariant violations).
    """
    from jetcloud.atlas import mltree
    from jetcloud.atlas.mltree_schema import (
        CELLGEO_BRANCHES,
        CELLGEO_TREE,
        EVENT_BRANCHES,
        EVENT_TREE,
        JETPOINTNET_BRANCHES,
    )

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    classes = _tree_classes(path)
    present = [tree for tree in (EVENT_TREE, CELLGEO_TREE) if tree in classes] or [EVENT_TREE]
    event_branches = list(EVENT_BRANCHES if all_branches else JETPOINTNET_BRANCHES)
    parts, cell_geo_ID = [], None
    for tree in present:
        mltree.check_schema(path, event_branches if tree == EVENT_TREE else "all", tree)
        kind = _KINDS.get(classes.get(tree, ""), classes.get(tree, "?"))
        if tree == EVENT_TREE:
            parts.append(f"EventTree ({kind}) {_entries(path, tree)} entries, {len(event_branches)} branches OK")
        else:
            cell_geo_ID = mltree.read_cellgeo(path, ["cell_geo_ID"])["cell_geo_ID"]
            parts.append(f"CellGeo ({kind}) {cell_geo_ID.size} cells, {len(CELLGEO_BRANCHES)} branches OK")
    if invariants and EVENT_TREE in present:
        if geometry is not None:
            cell_geo_ID = mltree.read_cellgeo(geometry, ["cell_geo_ID"])["cell_geo_ID"]
        errors, warnings = _invariant_problems(path, event_branches, cell_geo_ID)
        if errors:
            shown = "\n  ".join(errors[:20]) + (f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else "")
            raise mltree.SchemaError(f"{path}: MLTree invariants violated:\n  {shown}")
        i9 = "" if cell_geo_ID is not None else ", I9 skipped: no CellGeo"
        parts.append(f"invariants OK ({warnings} I12 warnings{i9})")
    return f"{path}: MLTree, " + "; ".join(parts)


def _entries(path: Path, tree: str) -> int:
    """Number of entries of ``tree`` (TTree or RNTuple) of ``path``."""
    import uproot

    with uproot.open(path) as f:
        return int(f[tree].num_entries)


@dataclass
class TrainRun:
    """What :func:`train_run` returns: the run directory, the fit result and the settings used."""

    out_dir: Path
    result: Any  # jetcloud.train.FitResult
    settings: dict[str, Any]


def train_run(
    profile: str,
    model: str = "pointnet",
    *,
    data: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    preset: str = "",
    size_factor: float = 0.25,
    target: str = "focus_labels",
    loss: str = "mse",
    seed: int = 0,
    resume: bool = True,
    **settings: Any,
) -> TrainRun:
    """Train JetPointNet like notebook 03 (same options, presets and run directory); returns a :class:`TrainRun`.

    Args:
        profile: selects the default data (``data/processed/<profile>/atlas``) and run directory.
        model: ``pointnet`` or ``pointnet_attention``.
        data: the point-cloud directory of notebook 02 (``point_cloud_meta.json`` and split folders).
        out: run directory; None: ``build/<profile>/models/jetpointnet/<model>``.
        preset: a preset of ``jetcloud/presets/atlas.yaml``; empty: the PointNets' (``pointnet`` where the file has
            it, else ``default``).
        size_factor, target, loss: as in notebook 03.
        seed: seeds numpy, torch and the shuffling.
        resume: continue from ``last.pt`` of an earlier run with the same settings.
        settings: ``TrainConfig`` fields overriding the preset's (``epochs``, ``batch_size``, ``lr``,
            ``weight_decay``, ``device``, ``max_steps_per_epoch``, ...); None values keep the preset's.
    """
    from jetcloud import nbtools, paths, train
    from jetcloud.atlas import jetpointnet, pointcloud

    if model not in POINTNETS:
        raise ValueError(
            f"ATLAS model {model!r} is not trained by this command; expected one of {', '.join(POINTNETS)} "
            f"(the other models of jetcloud.atlas.jetpointnet.MODELS: notebook 03)"
        )
    preset = preset or "pointnet"
    nbtools.seed_everything(seed)
    data_path = Path(data) if data else paths.data_dir(profile, "processed", "atlas")
    run_dir = Path(out) if out else paths.build_dir(profile, "models", "jetpointnet", model)
    options: dict[str, Any] = {"size_factor": size_factor}
    if model == "pointnet":
        options["tnet_size_factor"] = min(size_factor, 1.0)  # the report scales the T-Nets by 1 at factor 10
    meta = pointcloud.read_point_cloud_meta(data_path)
    datasets = {split: train.PointCloudDataset(data_path, split, target_key=target) for split in ("train", "val")}
    build = functools.partial(jetpointnet.build_model, model, meta, **options)  # fit seeds, then builds it
    chosen = {key: value for key, value in {**settings, "seed": seed}.items() if value is not None}
    config, loss_fn = jetpointnet.training_setup(preset, meta, loss, **chosen)
    if int(os.environ.get("RANK", "0")) == 0:
        jetpointnet.save_run(run_dir, model, options, meta, target=target, preset=preset, loss=loss)
    val = datasets["val"] if len(datasets["val"]) else None
    result = train.fit(build, datasets["train"], val, loss_fn, config, run_dir, resume=resume)
    return TrainRun(run_dir, result, {**chosen, "preset": preset})
