"""The quark/gluon objective of the hyperparameter search of notebook 10 (:mod:`jetcloud.hpo`).

Each trial trains one classifier like notebook 08 (the model's preset, :func:`jetcloud.train.fit`) with the
trial's settings, model options and K, chooses its checkpoint on the validation AUC, reports that AUC after every
epoch (Hyperband prunes through :func:`jetcloud.hpo.pruning_callback`) and returns the best one (maximise).
The best trial becomes the preset ``best_<study>`` of ``build/<profile>/hpo/presets_qg.yaml``
(:func:`write_best_preset`), which :func:`load_best_preset` reads back for :func:`jetcloud.qg.runner.train_run`.

May import the floor and :mod:`jetcloud.qg`, never :mod:`jetcloud.atlas`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import optuna

from jetcloud import hpo, paths

__all__ = ["model_options", "Objective", "preset_path", "write_best_preset", "load_best_preset"]


def model_options(model: str, values: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    """Constructor options of ``model`` from the ``model`` section of a trial, given the options (``hparams``)
    ``base`` of a default instance: ``width`` x ``depth`` become ``widths`` where the model has them; other names
    pass when the model has them (``dropout`` ...), else are dropped."""
    values = dict(values)
    width, depth = values.pop("width", None), values.pop("depth", None)
    options = {k: v for k, v in values.items() if k in base}
    if "widths" in base and width is not None:
        options["widths"] = [int(width)] * int(depth or len(base["widths"]))
    elif "width" in base and width is not None:
        options["width"] = int(width)
    return options


class Objective:
    """``objective(trial) -> best validation AUC`` of one quark/gluon classifier (see the module docstring).

    Args:
        profile: the data of the profile (``data/processed/<profile>/qg``) unless ``data`` is given.
        model: a quark/gluon model with a preset (:data:`jetcloud.qg.train.PRESETS`).
        space: a search space (:func:`jetcloud.hpo.load_space`) with sections settings, model, data.
        out_dir: trial ``n`` trains into ``out_dir/trial_<n>``.
        seed: the study's seed; trial ``n`` trains with :func:`jetcloud.hpo.trial_seed` (``seed + n``).
        settings: fixed TrainConfig fields (``epochs``, ``max_steps_per_epoch``, ``device`` ...).
    """

    def __init__(
        self,
        profile: str,
        model: str,
        space: Mapping[str, Any],
        out_dir: str | os.PathLike,
        *,
        seed: int = 0,
        data: str | os.PathLike | None = None,
        val_fraction: float = 0.1,
        **settings: Any,
    ) -> None:
        self.profile, self.model, self.space, self.out_dir = profile, model, space, Path(out_dir)
        self.seed, self.source, self.val_fraction, self.settings = seed, data, val_fraction, settings
        self._data: dict[int, Any] = {}

    def dataset(self, k: int) -> Any:
        """The datasets with ``k`` points per jet (loaded once)."""
        from jetcloud.qg import train as qg_train

        if k not in self._data:
            self._data[k] = qg_train.load_data(
                self.profile, self.model, k=k, val_fraction=self.val_fraction, source=self.source
            )
        return self._data[k]

    def __call__(self, trial: optuna.Trial) -> float:
        from jetcloud import models, nbtools, train
        from jetcloud.qg import train as qg_train

        values = hpo.suggest(trial, self.space)
        seed = hpo.trial_seed(self.seed, trial.number)
        trial.set_user_attr("seed", seed)
        data = self.dataset(int(values.get("data", {}).get("k", 0)))
        settings = qg_train.preset(self.model, **{**values.get("settings", {}), **self.settings, "seed": seed})
        kwargs = qg_train.model_kwargs(self.model, data)
        base = getattr(models.get_model(self.model, **kwargs), "hparams", {})
        nbtools.seed_everything(seed)
        options = model_options(self.model, values.get("model", {}), base)
        trial.set_user_attr("model_options", options)
        net = models.get_model(self.model, **kwargs, **options)
        result = train.fit(
            net,
            data.train,
            data.val,
            qg_train.classification_loss,
            train.TrainConfig(**{"progress": False, **settings}),
            self.out_dir / f"trial_{trial.number}",
            resume=False,
            callbacks=[hpo.pruning_callback(trial, "val_select", sign=-1.0)],
            select_on=_negative_auc(data.val, data.val_labels, settings.get("device", "auto")),
        )
        return -float(result.best_val_loss)


def _negative_auc(dataset: Any, labels: Any, device: str) -> Callable[[Any], float]:
    """``fn(model) -> -AUC`` on the validation set (``fit(select_on=...)`` minimises)."""
    from jetcloud import metrics
    from jetcloud.qg import train as qg_train

    def value(model: Any) -> float:
        return -float(metrics.roc_auc(labels, qg_train.predict_scores(model, dataset, device=device)))

    return value


def preset_path(profile: str) -> Path:
    """``build/<profile>/hpo/presets_qg.yaml``: the presets written by :func:`write_best_preset`."""
    return paths.build_dir(profile, "hpo", "presets_qg.yaml")


def write_best_preset(study: optuna.Study, model: str, profile: str, **fixed: Any) -> tuple[str, dict[str, Any]]:
    """Write the best trial of ``study`` as the preset ``best_<study>`` (the model's preset with the trial's
    settings and ``fixed`` ones) into :func:`preset_path`; return its name and entry (with ``model``,
    ``model_options`` and ``k`` for the metrics)."""
    from jetcloud.qg import train as qg_train

    best = study.best_trial
    values = _grouped(best.params, study)
    settings = qg_train.preset(model, **{**values.get("settings", {}), **fixed, "seed": best.user_attrs.get("seed", 0)})
    options = best.user_attrs.get("model_options", {})
    k = int(values.get("data", {}).get("k", 0))
    source = (
        f"optuna study {study.study_name}, trial {best.number} (validation AUC {best.value:.4f}): model {model}, "
        f"k {k}, model options {options}"
    )
    name = f"best_{study.study_name}"
    hpo.write_preset(preset_path(profile), name, {"source": source, "settings": settings}, _HEADER)
    return name, {"source": source, "settings": settings, "model": model, "model_options": options, "k": k}


def _grouped(params: Mapping[str, Any], study: optuna.Study) -> dict[str, dict[str, Any]]:
    """A trial's parameters grouped by the search-space section stored with the study (``sections``)."""
    sections = study.user_attrs.get("sections", {})
    grouped: dict[str, dict[str, Any]] = {}
    for name, value in params.items():
        grouped.setdefault(sections.get(name, "settings"), {})[name] = value
    return grouped


def load_best_preset(profile: str, name: str) -> dict[str, Any]:
    """The preset ``name`` of :func:`preset_path` (checked like the built-in presets of ``presets/qg.yaml``)."""
    from jetcloud.train.presets import load_presets

    return load_presets("qg", {"source": str}, extra=preset_path(profile))[name]


_HEADER = (
    "Best trials of the hyperparameter searches of notebook 10 (quark/gluon), one preset best_<study> each.\n"
    "Same format as jetcloud/presets/qg.yaml; train with: jetcloud.qg.runner.train_run(profile, model, k=K,\n"
    "**jetcloud.qg.hpo.load_best_preset(profile, name)['settings']) (model, K and options: see source)."
)
