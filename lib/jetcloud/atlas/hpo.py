"""The ATLAS objective of the hyperparameter search of notebook 10 (:mod:`jetcloud.hpo`).

Each trial is one run of notebook 03's track-conditioned network (:func:`jetcloud.atlas.jetpointnet.train_track_run`
with the preset ``track``) with the trial's settings, model options (width, dropout) and loss weights
(``cell_weight``, ``track_weight``); it reports the validation sigma68 / median of the track energy after every
epoch (Hyperband prunes through :func:`jetcloud.hpo.pruning_callback`) and returns the best one (minimise).
The best trial becomes the preset ``best_<study>`` of ``build/<profile>/hpo/presets_atlas.yaml``
(:func:`write_best_preset`), which :func:`jetcloud.atlas.jetpointnet.training_setup` and ``train_track_run`` load
with ``presets_file=`` :func:`preset_path`.

May import the floor and :mod:`jetcloud.atlas`, never :mod:`jetcloud.qg`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna

from jetcloud import hpo, paths

__all__ = ["Objective", "preset_path", "write_best_preset"]


class Objective:
    """``objective(trial) -> best validation sigma68 / median`` of one track-conditioned run.

    Args:
        data_dir: the point clouds of notebook 02.
        model: ``track_conditioned`` or ``track_conditioned_knn``.
        space: a search space (:func:`jetcloud.hpo.load_space`) with sections settings, model, loss.
        out_dir: trial ``n`` trains into ``out_dir/trial_<n>``.
        seed: the study's seed; trial ``n`` trains with :func:`jetcloud.hpo.trial_seed` (``seed + n``).
        options: fixed model options (the trial's ``model`` section replaces them).
        settings: fixed TrainConfig fields (``epochs``, ``max_steps_per_epoch``, ``device`` ...).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike,
        model: str,
        space: Mapping[str, Any],
        out_dir: str | os.PathLike,
        *,
        seed: int = 0,
        options: Mapping[str, Any] | None = None,
        **settings: Any,
    ) -> None:
        from jetcloud.atlas import jetpointnet, pointcloud

        if model not in jetpointnet.TRACK_MODELS:
            raise ValueError(f"the ATLAS search trains {', '.join(jetpointnet.TRACK_MODELS)}, not {model!r}")
        self.data_dir, self.model, self.space, self.out_dir = Path(data_dir), model, space, Path(out_dir)
        self.seed, self.options, self.settings = seed, dict(options or {}), settings
        meta = pointcloud.read_point_cloud_meta(data_dir)
        train_arrays = pointcloud.load_point_clouds(data_dir, "train", jetpointnet.TEMPLATE_KEYS)
        self.templates = jetpointnet.track_template(train_arrays, meta)

    def __call__(self, trial: optuna.Trial) -> float:
        from jetcloud.atlas import jetpointnet

        values = hpo.suggest(trial, self.space)
        seed = hpo.trial_seed(self.seed, trial.number)
        trial.set_user_attr("seed", seed)
        options = {**self.options, **values.get("model", {})}
        trial.set_user_attr("model_options", options)
        result = jetpointnet.train_track_run(
            self.out_dir / f"trial_{trial.number}",
            self.data_dir,
            self.model,
            options,
            self.templates,
            resume=False,
            callbacks=[hpo.pruning_callback(trial, "val_select")],
            loss_options=values.get("loss", {}),
            **{"progress": False, **self.settings, **values.get("settings", {}), "seed": seed},
        )
        return float(result["fit"].best_val_loss)


def preset_path(profile: str) -> Path:
    """``build/<profile>/hpo/presets_atlas.yaml``: the presets written by :func:`write_best_preset`."""
    return paths.build_dir(profile, "hpo", "presets_atlas.yaml")


def write_best_preset(study: optuna.Study, profile: str, **fixed: Any) -> tuple[str, dict[str, Any]]:
    """Write the best trial of ``study`` as the preset ``best_<study>`` (the preset ``track`` with the trial's
    settings, loss weights and ``fixed`` settings) into :func:`preset_path`; return its name and entry (with the
    trial's ``model_options`` for the metrics; notebook 03 takes the width from its own parameter)."""
    best = study.best_trial
    sections = study.user_attrs.get("sections", {})
    by_section: dict[str, dict[str, Any]] = {}
    for name, value in best.params.items():
        by_section.setdefault(sections.get(name, "settings"), {})[name] = value
    base = _track_preset()
    settings = {**base["settings"], **by_section.get("settings", {}), **fixed}
    loss = {**base["loss"], **by_section.get("loss", {})}
    options = best.user_attrs.get("model_options", {})
    description = (
        f"optuna study {study.study_name}, trial {best.number} (validation sigma68/median {best.value:.4f}); "
        f"model options {options}"
    )
    entry = {"description": description, "settings": settings, "loss": loss}
    name = f"best_{study.study_name}"
    hpo.write_preset(preset_path(profile), name, entry, _HEADER)
    return name, {**entry, "model_options": options}


def _track_preset() -> dict[str, Any]:
    """The built-in preset ``track`` of ``jetcloud/presets/atlas.yaml``."""
    from jetcloud.train.presets import load_presets

    return load_presets("atlas", {"description": str, "accepts": list, "loss": None}, optional=("accepts",))["track"]


_HEADER = (
    "Best trials of the hyperparameter searches of notebook 10 (ATLAS), one preset best_<study> each.\n"
    "Same format as jetcloud/presets/atlas.yaml; load with jetpointnet.training_setup / train_track_run\n"
    "(preset='best_<study>', presets_file=this file); the model width and dropout: see the description."
)
