"""The JetPointNet workflow of notebooks 03 and 04: build a model for a point-cloud dataset, train, reload.

A *run* is a directory ``build/<profile>/models/jetpointnet/<model>/`` holding what :func:`jetcloud.train.fit`
writes (``last.pt``, ``best.pt``, ``history.csv``) and ``run.json``: the registry name and keyword arguments
of the model, the target and the dataset's point length, features and energy unit, so that notebook 04 (or a
user) rebuilds exactly the trained model and refuses a dataset it was not trained for.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from jetcloud.io.atomic import write_json
from jetcloud.train.presets import PresetError, load_presets, preset_file

RUN_FILE = "run.json"
#: The model names of this workflow (registry names, :func:`jetcloud.models.get_model`).
MODELS = ("pointnet", "pointnet_attention")


def input_scale(meta: Mapping[str, Any]) -> list[float]:
    """Fixed factors bringing every input feature to order one: mm -> m for raw coordinates and distances,
    MeV -> GeV for energies; 1 for centred coordinates (already in m), GeV and the type columns."""
    coord = 1e-3 if meta.get("coordinates", "raw") == "raw" else 1.0
    energy = 1e-3 if meta.get("energy_unit") == "MeV" else 1.0
    per_name = {"x": coord, "y": coord, "z": coord, "distance_to_track": coord, "energy": energy}
    return [per_name.get(name, 1.0) for name in meta["features"]]


class ScaledInputs(nn.Module):
    """A model fed with its inputs times fixed factors (a buffer, saved in checkpoints).

    The output is divided by the energy column's factor, so the energy bypass still predicts in the dataset's
    energy unit (labels need no change). The raw point clouds stay as the original wrote them (mm, MeV) while
    the network sees O(1) numbers.
    """

    def __init__(self, model: nn.Module, scale: Sequence[float], energy_index: int) -> None:
        super().__init__()
        self.model = model
        self.energy_index = int(energy_index)
        self.register_buffer("scale", torch.tensor([float(v) for v in scale], dtype=torch.float32))

    def forward(self, feats: Tensor) -> Tensor:  # noqa: D102
        return self.model(feats * self.scale) / self.scale[self.energy_index]

    def regularization_loss(self) -> Tensor | None:  # noqa: D102
        fn = getattr(self.model, "regularization_loss", None)
        return fn() if fn is not None else None

    @property
    def hparams(self) -> dict[str, Any]:  # noqa: D102
        return {**dict(getattr(self.model, "hparams", {}) or {}), "input_scale": self.scale.tolist()}


def build_model(name: str, meta: Mapping[str, Any], **options: Any) -> nn.Module:
    """``models.get_model(name, ...)`` for the dataset described by ``meta``, wrapped in :class:`ScaledInputs`."""
    from jetcloud import models
    from jetcloud.train import model_inputs_from_meta

    inputs = model_inputs_from_meta(meta)
    if "energy_index" not in inputs:
        raise KeyError(f"point_cloud_meta.json features {list(meta['features'])} have no 'energy' column (bypass)")
    model = models.get_model(name, **inputs, **options)
    return ScaledInputs(model, input_scale(meta), inputs["energy_index"])


def save_run(
    out_dir: str | os.PathLike, name: str, options: Mapping[str, Any], meta: Mapping[str, Any], **extra: Any
) -> Path:
    """Write ``run.json`` (model name and options, dataset description, anything in ``extra``)."""
    return write_json(
        Path(out_dir) / RUN_FILE,
        {
            "model": name,
            "options": dict(options),
            "length": meta["length"],
            "features": list(meta["features"]),
            "energy_unit": meta["energy_unit"],
            "coordinates": meta.get("coordinates", "raw"),
            **extra,
        },
    )


def load_run(
    out_dir: str | os.PathLike, meta: Mapping[str, Any] | None = None, checkpoint: str = "best.pt"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model of a run with the weights of ``checkpoint``; returns ``(model in eval mode, run)``.

    With ``meta`` (the point clouds to evaluate) the features and energy unit must match the training data.
    """
    from jetcloud.train import load_weights

    out_dir = Path(out_dir)
    path = out_dir / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: train the model with notebook 03 first")
    run = json.loads(path.read_text())
    if meta is not None:
        for key in ("features", "energy_unit", "coordinates"):
            if (list(meta[key]) if key == "features" else meta.get(key, "raw")) != run[key]:
                raise ValueError(f"{out_dir}: trained on {key} {run[key]!r}, the point clouds have {meta[key]!r}")
    described = {k: run[k] for k in ("features", "energy_unit", "coordinates", "length")}
    model = build_model(run["model"], described, **run["options"])
    load_weights(model, out_dir / checkpoint)
    return model.eval(), run


#: The keys of a preset in ``jetcloud/presets/atlas.yaml`` besides ``settings`` (its comments say what they mean).
_PRESET_KEYS = {"description": str, "accepts": list, "loss": ("energy_unit", "original_normalisation")}


def _load_presets() -> dict[str, dict[str, Any]]:
    """The presets of ``jetcloud/presets/atlas.yaml``, checked (``accepts`` must name TrainConfig fields)."""
    from dataclasses import fields

    from jetcloud.train import TrainConfig

    presets = load_presets("atlas", _PRESET_KEYS, optional=("accepts",))
    names = {f.name for f in fields(TrainConfig)}
    for name, entry in presets.items():
        unknown = [k for k in entry.get("accepts", ()) if not isinstance(k, str) or k not in names]
        if unknown:
            raise PresetError(
                f"preset file {preset_file('atlas')}, preset {name!r}: accepts names unknown TrainConfig fields "
                f"{unknown}"
            )
    return presets


_PRESETS = _load_presets()
#: Training presets of notebook 03 (``jetcloud/presets/atlas.yaml``).
PRESETS = tuple(_PRESETS)


def training_setup(preset: str, meta: Mapping[str, Any], loss: str = "mse", **settings: Any) -> tuple[Any, nn.Module]:
    """``(TrainConfig, loss_fn)`` of a preset of ``jetcloud/presets/atlas.yaml`` for the point clouds ``meta``.

    ``"default"``: AdamW, cosine schedule, gradient clipping at 5, a masked ``loss`` on GeV-scale values;
    ``settings`` (lr, weight_decay, batch_size, epochs, patience, seed, device, max_steps_per_epoch or any other
    TrainConfig field) override the preset's.
    ``"report"``: the report's settings (Adam at lr 1e-9, batch 24, x0.5 every 2 epochs, no shuffling; only
    epochs, seed, device and max_steps_per_epoch of ``settings`` apply) with the original's double loss
    normalisation on the dataset's energy unit.
    """
    from jetcloud.atlas.pointcloud import ENERGY_UNITS
    from jetcloud.train import MaskedLoss, TrainConfig

    if preset not in _PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
    entry = _PRESETS[preset]
    accepts = entry.get("accepts")
    chosen = settings if accepts is None else {k: v for k, v in settings.items() if k in accepts}
    config = TrainConfig(**{**entry["settings"], **chosen})
    options = dict(entry["loss"])
    unit = options.pop("energy_unit", None)
    if unit is not None:
        if unit not in ENERGY_UNITS:
            raise PresetError(
                f"preset file {preset_file('atlas')}, preset {preset!r}: loss energy_unit {unit!r} is not one of "
                f"{', '.join(ENERGY_UNITS)}"
            )
        options["scale"] = ENERGY_UNITS[unit] / ENERGY_UNITS[meta["energy_unit"]]
    return config, MaskedLoss(loss, **options)
