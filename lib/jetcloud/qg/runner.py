"""What the ``jetcloud`` command runs for the quark/gluon workflow: the E2E layout check and one training run.

:func:`check_e2e` is the layout check of notebooks 06 and 07 (:func:`jetcloud.qg.e2e.check_layout`) with a
one-line summary. :func:`train_run` is notebook 08 without its figures: load the ``QG{K}.h5`` point clouds of
notebook 07 (:func:`jetcloud.qg.train.load_data`), build the model, train it with the model's preset
(:func:`jetcloud.train.fit`, DDP under ``torchrun``), reload ``best.pt``, write ``scores_{val,test}.npz`` and the
run's ``record.json`` (:func:`jetcloud.runs.write_record`, with notebook 08's parameter names) into the same run
directory (``build/<profile>/runs/qg/<model>@<tag>``, :func:`jetcloud.qg.train.run_dir`), so notebook 09 compares
a run of the command line like one of the notebook.

Under ``torchrun`` every process trains; only rank 0 (``RANK``) evaluates and writes the scores and the summary.

May import the floor and :mod:`jetcloud.qg`, never :mod:`jetcloud.atlas`.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from jetcloud import runs

__all__ = ["check_e2e", "TrainRun", "train_run", "limit_training_set", "train_tag"]


def check_e2e(path: str | os.PathLike) -> str:
    """Check the E2E layout of ``path`` (notebooks 06 / 07); return a one-line summary.

    Raises ``FileNotFoundError`` or ``ValueError`` naming the file and the problem.
    """
    from jetcloud.qg.e2e import check_layout

    sizes = check_layout(path)
    jets = ", ".join(f"{split} {n} jets" for split, n in sizes.items())
    return f"{path}: E2E HDF5, {jets}; layout OK (train/test _jet (N, 125, 125, 3) and _meta (pt, m0, label))"


@dataclass
class TrainRun:
    """What :func:`train_run` returns: the run directory, the fit result and (rank 0 only) the test summary."""

    out_dir: Path
    result: Any  # jetcloud.train.FitResult
    summary: dict[str, Any] | None
    settings: dict[str, Any]


def limit_training_set(data: Any, max_train_jets: int) -> Any:
    """``data`` (a :class:`jetcloud.qg.train.QGData`) with its training set cut to the first ``max_train_jets`` jets.

    0 keeps every jet. The first N jets of the training split (after the fixed validation split, in file order:
    the same jets for every seed and model, and each smaller set inside every larger one) make the points of a
    learning curve (the training files are shuffled); validation and test jets are untouched. Raises
    ``ValueError`` naming the data when N is negative or larger than the training set.
    """
    from torch.utils.data import Subset

    n = len(data.train)
    if max_train_jets < 0 or max_train_jets > n:
        raise ValueError(f"max_train_jets must be in [0, {n}] (0: all; {data.source} has {n}), got {max_train_jets}")
    if max_train_jets in (0, n):
        return data
    subset = Subset(data.train, range(max_train_jets))
    subset.collate_fn = getattr(data.train, "collate_fn", None)  # the batch collation of jetcloud.train
    return replace(data, train=subset)


def train_tag(
    model: str, settings: dict[str, Any], *, k_points: int = 0, val_fraction: float = 0.1, max_train_jets: int = 0
) -> str:
    """The default run tag: :func:`jetcloud.qg.train.run_tag`, plus ``-train<N>`` when ``max_train_jets`` limits
    the training set (so the points of a learning curve live side by side)."""
    from jetcloud.qg import train as qg_train

    tag = qg_train.run_tag(model, settings, k_points=k_points, val_fraction=val_fraction)
    return f"{tag}-train{max_train_jets}" if max_train_jets else tag


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def train_run(
    profile: str,
    model: str,
    *,
    data: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    tag: str = "",
    k: int = 0,
    particle_level: bool = False,
    val_fraction: float = 0.1,
    max_train_jets: int = 0,
    seed: int = 0,
    resume: bool = True,
    callbacks: Sequence[Callable[[int, Mapping[str, float]], None]] = (),
    **overrides: Any,
) -> TrainRun:
    """Train ``model`` like notebook 08 and write its run directory; returns a :class:`TrainRun`.

    Args:
        profile: selects the default data (``data/processed/<profile>/qg``) and run directory.
        model: a quark/gluon model with a preset (:data:`jetcloud.qg.train.PRESETS`).
        data: directory of the ``QG{K}.h5`` files (or the particle-level ``.npz``); None: the profile's.
        out: run directory; None: :func:`jetcloud.qg.train.run_dir` with ``tag``.
        tag: run directory tag; empty: :func:`jetcloud.qg.train.run_tag` (the seed and the changed settings).
        k, particle_level, val_fraction: as in :func:`jetcloud.qg.train.load_data`.
        max_train_jets: train on the first N training jets only (:func:`limit_training_set`; 0: all); part of
            the default tag (:func:`train_tag`).
        seed: seeds numpy, torch and the shuffling.
        resume: continue from ``last.pt`` of an earlier run with the same settings.
        callbacks: ``fn(epoch, row)`` after every epoch (:func:`jetcloud.train.fit`; may raise to stop).
        overrides: ``TrainConfig`` fields replacing the preset's (``epochs``, ``batch_size``, ``lr``, ``device``,
            ``max_steps_per_epoch``, ...); None values keep the preset's.
    """
    from jetcloud import models, nbtools, train
    from jetcloud.qg import train as qg_train

    nbtools.seed_everything(seed)
    settings = qg_train.preset(model, **overrides, seed=seed)
    tag = tag or train_tag(model, settings, k_points=k, val_fraction=val_fraction, max_train_jets=max_train_jets)
    out_dir = Path(out) if out else qg_train.run_dir(profile, model, particle_level, tag)
    dataset = qg_train.load_data(
        profile, model, k=k, particle_level=particle_level, val_fraction=val_fraction, source=data
    )
    dataset = limit_training_set(dataset, max_train_jets)
    build = functools.partial(models.get_model, model, **qg_train.model_kwargs(model, dataset))  # fit seeds, builds
    t0 = time.perf_counter()
    result = train.fit(
        build,
        dataset.train,
        dataset.val,
        qg_train.classification_loss,
        train.TrainConfig(**settings),
        out_dir,
        metrics={"acc": qg_train.accuracy},
        resume=resume,
        callbacks=callbacks,
    )
    net = result.model
    if _rank() != 0:
        return TrainRun(out_dir, result, None, settings)
    train.load_weights(net, out_dir / "best.pt")
    summary = _evaluate(net, dataset, result, settings, model, out_dir)
    parameters = {
        "profile": profile,
        "seed": seed,
        "model": model,
        **{key: overrides.get(key) or 0 for key in ("epochs", "batch_size", "lr", "max_steps_per_epoch")},
        "k_points": k,
        "particle_level": particle_level,
        "val_fraction": val_fraction,
        "max_train_jets": max_train_jets,
        "device": settings.get("device", "auto"),
        "resume": resume,
        "run_tag": tag,
        "data": str(dataset.source),
    }
    summary["wall_seconds"] = time.perf_counter() - t0
    runs.write_record(out_dir, parameters=parameters, metrics=nbtools.nan_to_none(summary))
    return TrainRun(out_dir, result, summary, settings)


def _evaluate(net: Any, dataset: Any, result: Any, settings: dict[str, Any], model: str, out_dir: Path) -> dict:
    """Scores of val and test (``scores_*.npz``) and the summary notebook 08 records."""
    from jetcloud import models
    from jetcloud.qg import train as qg_train

    scores = {
        split: qg_train.predict_scores(net, getattr(dataset, split), device=settings.get("device", "auto"))
        for split in ("val", "test")
    }
    labels = {"val": dataset.val_labels, "test": dataset.test_labels}
    for split in scores:
        qg_train.write_scores(out_dir, split, labels[split], scores[split])
    summary = qg_train.summarize(labels["test"], scores["test"])
    last = result.history[-1] if result.history else {}
    summary.update(
        model=model,
        level=dataset.level,
        k=dataset.k,
        params=models.parameter_counts(net)["trainable"],
        n_train=len(dataset.train),
        source=dataset.source,
        epochs=result.epochs_done,
        best_epoch=result.best_epoch,
        train_seconds=float(sum(row["epoch_s"] for row in result.history)),
        val_auc=qg_train.summarize(labels["val"], scores["val"])["auc"],
        preset=qg_train.PRESET_SOURCES[model],
        settings=settings,
        samples_per_s=last.get("samples_per_s"),
    )
    return summary
