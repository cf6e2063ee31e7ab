"""The JetPointNet workflow of notebooks 03 and 04: build a model for a point-cloud dataset, train, reload.

A *run* is a directory ``build/<profile>/models/jetpointnet/<model>/`` holding what :func:`jetcloud.train.fit`
writes (``last.pt``, ``best.pt``, ``history.csv``) and ``run.json``: the registry name and keyword arguments
of the model, the target and the dataset's point length, features and energy unit, so that notebook 04 (or a
user) rebuilds exactly the trained model and refuses a dataset it was not trained for.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from jetcloud.io.atomic import write_json
from jetcloud.train.presets import PresetError, load_presets, preset_file

RUN_FILE = "run.json"
#: The model names of this workflow (registry names, :func:`jetcloud.models.get_model`).
MODELS = ("track_conditioned", "track_conditioned_knn", "pointnet", "pointnet_attention")
#: The track-conditioned models (inputs of :class:`TrackInputs`, two outputs; :mod:`jetcloud.models.track_conditioned`).
TRACK_MODELS = ("track_conditioned", "track_conditioned_knn")


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
    if run["model"] in TRACK_MODELS:
        model = build_track_model(run["model"], **run["options"])
    else:
        model = build_model(run["model"], described, **run["options"])
    load_weights(model, out_dir / checkpoint)
    return model.eval(), run


#: The keys of a preset in ``jetcloud/presets/atlas.yaml`` besides ``settings`` (its comments say what they mean).
_PRESET_KEYS = {
    "description": str,
    "accepts": list,
    "loss": ("kind", "energy_unit", "original_normalisation", "cell_weight", "track_weight"),
}


def _load_presets(extra: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """The presets of ``jetcloud/presets/atlas.yaml`` (plus those of the file ``extra``, e.g. the best trial of a
    search of notebook 10), checked (``accepts`` must name TrainConfig fields)."""
    from dataclasses import fields

    from jetcloud.train import TrainConfig

    presets = load_presets("atlas", _PRESET_KEYS, optional=("accepts",), extra=extra)
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


def training_setup(
    preset: str,
    meta: Mapping[str, Any],
    loss: str = "mse",
    *,
    presets_file: str | os.PathLike | None = None,
    loss_options: Mapping[str, Any] | None = None,
    **settings: Any,
) -> tuple[Any, nn.Module]:
    """``(TrainConfig, loss_fn)`` of a preset of ``jetcloud/presets/atlas.yaml`` for the point clouds ``meta``.

    ``"track"``: the track-conditioned networks' :class:`~jetcloud.train.CellTrackLoss` (``loss`` is ignored);
    ``"pointnet"`` (the PointNets): AdamW, cosine schedule, clipping at 5, a masked ``loss`` on GeV-scale values;
    ``settings`` (lr, weight_decay, batch_size, epochs, patience, seed, device, max_steps_per_epoch or any other
    TrainConfig field) override the preset's.
    ``"report"``: the report's settings (Adam at lr 1e-9, batch 24, x0.5 every 2 epochs, no shuffling; only
    epochs, seed, device and max_steps_per_epoch of ``settings`` apply) with the original's double loss
    normalisation on the dataset's energy unit.
    ``presets_file``: a file of more presets (the ``best_<study>`` presets of notebook 10,
    ``build/<profile>/hpo/presets_atlas.yaml``); ``loss_options`` override the preset's ``loss`` options
    (``cell_weight``, ``track_weight``: the search of notebook 10).
    """
    from jetcloud.atlas.pointcloud import ENERGY_UNITS
    from jetcloud.train import MaskedLoss, TrainConfig

    presets = _PRESETS if presets_file is None else _load_presets(presets_file)
    if preset not in presets:
        raise ValueError(f"unknown preset {preset!r}; expected one of {', '.join(presets)}")
    entry = presets[preset]
    accepts = entry.get("accepts")
    chosen = settings if accepts is None else {k: v for k, v in settings.items() if k in accepts}
    config = TrainConfig(**{**entry["settings"], **chosen})
    options = {**entry["loss"], **dict(loss_options or {})}
    if options.pop("kind", "masked") == "cell_track":
        from jetcloud.train import CellTrackLoss

        return config, CellTrackLoss(**options)
    unit = options.pop("energy_unit", None)
    if unit is not None:
        if unit not in ENERGY_UNITS:
            raise PresetError(
                f"preset file {preset_file('atlas')}, preset {preset!r}: loss energy_unit {unit!r} is not one of "
                f"{', '.join(ENERGY_UNITS)}"
            )
        options["scale"] = ENERGY_UNITS[unit] / ENERGY_UNITS[meta["energy_unit"]]
    return config, MaskedLoss(loss, **options)


# --------------------------------------------------------------------------------------------------------------
# the track-conditioned network: its inputs, data set, template, selection metric and predictions
# --------------------------------------------------------------------------------------------------------------

#: Columns of the inputs of the track-conditioned models (:func:`track_inputs`): per point, then per track.
N_SAMPLINGS = 24
TRACK_INPUTS: tuple[str, ...] = (
    "log_energy",  # log(E / GeV) of a cell (E clipped at 1 MeV); log(p / GeV) of a track point
    "energy_over_expected",  # cell E over the template's EM-scale expectation <E/p> p (0 on track points)
    "deta",  # x10: to the focused track's point in the same sampling, else to its reference direction
    "dphi",  # x10, idem (wrapped)
    "has_layer_point",  # 1 where the focused track crosses the point's sampling
    "dr_other",  # x10: Delta R to the nearest other-track point (clipped at 1 = none within 0.1)
    "log_p_other",  # log(p / GeV) of that other track (0: none)
    "is_cell",
    "is_focus_track",
    "is_other_track",
    "is_padding",
    "x",  # m, centred on the focused track's EMB2 (else EME2, else mean) intersection
    "y",
    "z",
    "distance",  # m, to the focused track's intersections
    "depth",  # a sampling's longitudinal position (0 presampler ... 7 HEC3) / 2: a kNN coordinate
    *(f"sampling_{i}" for i in range(N_SAMPLINGS)),
    "log_p",  # per track from here: log(p / GeV)
    "abs_eta",
    "log_expected",  # log of the template's truth-scale energy k(p, eta) p / GeV
    "energy_gev",  # the point's energy in GeV (the output bypass; never a raw network input)
)
_COL = {name: i for i, name in enumerate(TRACK_INPUTS)}
#: Per-track columns and the kNN coordinates of the models.
TRACK_COLUMNS = ("log_p", "abs_eta", "log_expected")
KNN_COLUMNS = ("deta", "dphi", "depth")
#: Longitudinal position of every CaloSampling number (PreSamplerB, EMB1-3, PreSamplerE, EME1-3, HEC0-3, Tile
#: barrel / gap / extended 0-2, FCAL0-2).
_DEPTH = np.array([0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 7, 4, 5, 6, 4, 5, 6, 4, 5, 6, 1, 4, 5], np.float32)
#: Point-cloud keys the inputs are built from.
TRACK_INPUT_KEYS = (
    "feats",
    "frac_labels",
    "point_sampling",
    "point_eta",
    "point_phi",
    "track_p",
    "track_eta",
    "track_phi",
    "focus_truth_energy",
)


def build_track_model(name: str, **options: Any) -> nn.Module:
    """``models.get_model(name, ...)`` for the inputs of :func:`track_inputs` (columns filled in here)."""
    from jetcloud import models

    columns = {
        "in_features": len(TRACK_INPUTS),
        "bypass_index": _COL["energy_gev"],
        "padding_index": _COL["is_padding"],
        "log_expected_index": _COL["log_expected"],
        "track_indices": [_COL[c] for c in TRACK_COLUMNS],
        "knn_indices": [_COL[c] for c in KNN_COLUMNS],
    }
    return models.get_model(name, **columns, **options)


def track_template(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], min_tracks: int = 10) -> Any:
    """The E/p templates (:func:`jetcloud.atlas.baselines.measure_templates`) of the training ``arrays``."""
    from jetcloud.atlas import baselines, pointcloud

    unit = pointcloud.ENERGY_UNITS[meta["energy_unit"]]
    feats = np.asarray(arrays["feats"])
    return baselines.measure_templates(
        feats[..., list(meta["features"]).index("energy")],
        arrays["frac_labels"],
        arrays["focus_labels"],
        np.asarray(arrays["frac_labels"]) != -1,
        arrays["track_p"],
        arrays["track_eta"],
        min_tracks=min_tracks,
        unit_per_gev=unit,
    )


def template_energy(templates: Any, p_gev: np.ndarray, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(EM-scale <E/p> p, truth-scale calib <E/p> p)`` in GeV for tracks of momentum ``p_gev`` (floor 10 MeV)."""
    p_gev = np.asarray(p_gev, np.float64)
    em = templates.expected_fraction(p_gev, eta) * p_gev
    return np.maximum(em, 0.01), np.maximum(em * templates.calibration(p_gev, eta), 0.01)


def _centred_xyz(feats: np.ndarray, names: list[str], types: np.ndarray, sampling: np.ndarray, raw: bool) -> Any:
    """``(xyz [B, L, 3] in m centred on the focused track, distance [B, L] in m)``."""
    xyz = feats[..., [names.index(c) for c in ("x", "y", "z")]].astype(np.float64)
    dist = feats[..., names.index("distance_to_track")].astype(np.float64)
    if not raw:  # already centred and divided by the coordinate scale (1000 mm by default)
        return xyz, dist
    focus = types == 1
    n_focus = focus.sum(1)
    centre = (xyz * focus[..., None]).sum(1) / np.maximum(n_focus, 1)[:, None]
    for s in (6, 2):  # EME2, then EMB2 (it wins)
        rows, cols = np.nonzero(focus & (sampling == s))
        centre[rows] = xyz[rows, cols]
    return (xyz - centre[:, None, :]) * 1e-3, dist * 1e-3


def _layer_deltas(a: Mapping[str, np.ndarray], types: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per point ``(deta, dphi, has_layer_point)``: to the focused track's point in the same sampling, else to
    its reference direction."""
    from jetcloud.kinematics import wrap_phi

    n = len(types)
    sampling = np.clip(a["point_sampling"].astype(np.int64), 0, N_SAMPLINGS - 1)
    ref_eta = np.repeat(np.asarray(a["track_eta"], np.float64)[:, None], N_SAMPLINGS, 1)
    ref_phi = np.repeat(np.asarray(a["track_phi"], np.float64)[:, None], N_SAMPLINGS, 1)
    has = np.zeros((n, N_SAMPLINGS), bool)
    rows, cols = np.nonzero(types == 1)
    s = sampling[rows, cols]
    ref_eta[rows, s], ref_phi[rows, s], has[rows, s] = a["point_eta"][rows, cols], a["point_phi"][rows, cols], True
    b = np.arange(n)[:, None]
    deta = np.nan_to_num(a["point_eta"] - ref_eta[b, sampling])
    dphi = np.nan_to_num(wrap_phi(a["point_phi"] - ref_phi[b, sampling]))
    return deta, dphi, has[b, sampling]


def _nearest_other(a: Mapping[str, np.ndarray], types: np.ndarray, p_point: np.ndarray) -> tuple[np.ndarray, Any]:
    """Per point ``(Delta R to the nearest other-track point, log p of its track)`` (1e3 and 0 without one)."""
    from jetcloud.kinematics import wrap_phi

    other = types == 2
    eta, phi = np.nan_to_num(a["point_eta"]), np.nan_to_num(a["point_phi"])
    width = max(int(other.sum(1).max(initial=0)), 1)
    order = np.argsort(~other, axis=1, kind="stable")[:, :width]  # the other-track points first
    o_ok = np.take_along_axis(other, order, 1)
    o_eta, o_phi = np.take_along_axis(eta, order, 1), np.take_along_axis(phi, order, 1)
    dr = np.hypot(eta[:, :, None] - o_eta[:, None, :], wrap_phi(phi[:, :, None] - o_phi[:, None, :]))
    dr = np.where(o_ok[:, None, :], dr, 1e3)
    nearest = dr.argmin(2)
    o_p = np.take_along_axis(np.take_along_axis(p_point, order, 1), nearest, 1)
    dmin = np.take_along_axis(dr, nearest[..., None], 2)[..., 0]
    return dmin, np.where(dmin < 1e3, np.log(np.maximum(o_p, 1e-3)), 0.0)


def track_inputs(a: Mapping[str, np.ndarray], meta: Mapping[str, Any], templates: Any) -> np.ndarray:
    """The inputs ``[B, L, len(TRACK_INPUTS)]`` (float32) of the track-conditioned models for point-cloud arrays.

    ``a`` holds :data:`TRACK_INPUT_KEYS` for ``B`` samples (the contract arrays of :mod:`jetcloud.atlas.pointcloud`);
    ``templates`` are those of the training split (:func:`track_template`). Columns: :data:`TRACK_INPUTS`.
    """
    from jetcloud.atlas import pointcloud

    names = list(meta["features"])
    feats = np.asarray(a["feats"])
    unit = pointcloud.ENERGY_UNITS[meta["energy_unit"]]
    types = pointcloud.point_types(feats, names)
    b, length = types.shape
    sampling = np.asarray(a["point_sampling"]).astype(np.int64)
    energy = feats[..., names.index("energy")].astype(np.float64) / unit
    p = np.asarray(a["track_p"], np.float64)
    em_exp, truth_exp = template_energy(templates, p, a["track_eta"])
    p_point = np.where(types == 1, p[:, None], energy * np.cosh(np.nan_to_num(a["point_eta"])))
    cell = types == 0
    out = np.zeros((b, length, len(TRACK_INPUTS)), np.float32)
    out[..., _COL["log_energy"]] = np.where(cell, np.log(np.maximum(energy, 1e-3)), np.log(np.maximum(p_point, 1e-3)))
    out[..., _COL["log_energy"]] *= types >= 0
    out[..., _COL["energy_over_expected"]] = np.where(cell, energy / em_exp[:, None], 0.0)
    deta, dphi, has = _layer_deltas(a, types)
    out[..., _COL["deta"]], out[..., _COL["dphi"]], out[..., _COL["has_layer_point"]] = 10 * deta, 10 * dphi, has
    dmin, log_p_other = _nearest_other(a, types, p_point)
    out[..., _COL["dr_other"]], out[..., _COL["log_p_other"]] = np.minimum(10 * dmin, 1.0), log_p_other
    for code, name in ((0, "is_cell"), (1, "is_focus_track"), (2, "is_other_track"), (-1, "is_padding")):
        out[..., _COL[name]] = types == code
    xyz, dist = _centred_xyz(feats, names, types, sampling, meta.get("coordinates", "raw") == "raw")
    out[..., _COL["x"] : _COL["z"] + 1] = xyz * (types >= 0)[..., None]
    out[..., _COL["distance"]] = np.where(types >= 0, dist, 0.0)
    valid_s = (sampling >= 0) & (types >= 0)
    out[..., _COL["depth"]] = np.where(valid_s, _DEPTH[np.clip(sampling, 0, N_SAMPLINGS - 1)] / 2, 0.0)
    rows, cols = np.nonzero(valid_s)
    out[rows, cols, _COL["sampling_0"] + sampling[rows, cols]] = 1.0
    track = {"log_p": np.log(np.maximum(p, 1e-3)), "abs_eta": np.abs(a["track_eta"]), "log_expected": np.log(truth_exp)}
    for name, values in track.items():
        out[..., _COL[name]] = np.asarray(values)[:, None]
    out[..., _COL["energy_gev"]] = np.where(types >= 0, energy, 0.0)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


class TrackInputs(torch.utils.data.Dataset):
    """One split of a point-cloud directory as the track-conditioned models read it (memory-mapped npz files).

    Items (and whole batches through ``__getitems__``, one fancy index per file) are dicts: ``inputs``
    (:func:`track_inputs`), ``target [L + 1]`` (the fraction labels, then the focused truth energy in GeV) and
    ``weight [L + 1]`` (the point energies in GeV, then 1): the layout of :class:`jetcloud.train.CellTrackLoss`.
    ``indices`` restricts the split to those samples (a training fraction).
    """

    def __init__(self, root: str | os.PathLike, split: str, templates: Any, indices: Any = None) -> None:
        from jetcloud.atlas import pointcloud

        self.meta = pointcloud.read_point_cloud_meta(root)
        missing = [
            k for k in ("point_sampling", "point_eta", "point_phi") if k not in self.meta.get("point_arrays", ())
        ]
        missing += [k for k in ("track_p", "track_phi") if k not in self.meta["scalars"]]
        if missing:
            raise KeyError(f"{root}: point clouds without {missing}: rebuild them with notebook 02")
        self.templates = templates
        self.unit = pointcloud.ENERGY_UNITS[self.meta["energy_unit"]]
        self.files = [f for f in pointcloud.point_cloud_files(root, split)]
        self.chunks = [pointcloud.open_npz(f, TRACK_INPUT_KEYS, mmap=True) for f in self.files]
        sizes = np.array([len(c["track_p"]) for c in self.chunks], np.int64)
        self.starts = np.concatenate([[0], np.cumsum(sizes)])
        total = int(self.starts[-1])
        self.indices = np.arange(total) if indices is None else np.asarray(indices, np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def arrays(self, positions: Any) -> dict[str, np.ndarray]:
        """The point-cloud arrays (:data:`TRACK_INPUT_KEYS`) of dataset positions ``positions``."""
        glob = self.indices[np.asarray(positions, np.int64)]
        chunk = np.searchsorted(self.starts, glob, side="right") - 1
        out = {}
        for key in TRACK_INPUT_KEYS:
            parts = [np.asarray(self.chunks[c][key][glob[chunk == c] - self.starts[c]]) for c in np.unique(chunk)]
            order = np.argsort(np.argsort(chunk, kind="stable"), kind="stable")
            out[key] = np.concatenate(parts)[order]
        return out

    def __getitems__(self, positions: Any) -> dict[str, Tensor]:  # noqa: D105
        a = self.arrays(positions)
        frac = np.asarray(a["frac_labels"], np.float32)
        names = list(self.meta["features"])
        energy = np.asarray(a["feats"])[..., names.index("energy")] / self.unit
        truth = np.asarray(a["focus_truth_energy"], np.float32) / self.unit
        target = np.concatenate([frac, truth[:, None]], axis=1)
        weight = np.concatenate([np.clip(energy, 0, None), np.ones((len(frac), 1))], axis=1).astype(np.float32)
        inputs = track_inputs(a, self.meta, self.templates)
        return {
            "inputs": torch.from_numpy(inputs),
            "target": torch.from_numpy(target),
            "weight": torch.from_numpy(weight),
        }

    def __getitem__(self, index: int) -> dict[str, Tensor]:  # noqa: D105
        return {k: v[0] for k, v in self.__getitems__([index]).items()}

    @staticmethod
    def collate_fn(batch: Any) -> Any:
        """Batches come whole from ``__getitems__``."""
        from jetcloud.train import collate_batch

        return collate_batch(batch)


def track_outputs(model: nn.Module, dataset: TrackInputs, batch_size: int = 256) -> dict[str, np.ndarray]:
    """``cell_energy [N, L]`` (EM scale, GeV, 0 off cells) and ``track_energy [N]`` (truth scale, GeV) of a
    track-conditioned ``model`` (eval mode, no gradients) on ``dataset``."""
    cells, tracks = [], []
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(dataset), batch_size):
            batch = dataset.__getitems__(range(start, min(start + batch_size, len(dataset))))
            x = batch["inputs"].to(device)
            out = model(x).float().cpu()
            is_cell = batch["inputs"][..., _COL["is_cell"]] > 0.5
            energy = batch["inputs"][..., _COL["energy_gev"]]
            cells.append(torch.where(is_cell, torch.sigmoid(out[:, :-1]) * energy, 0.0).numpy())
            tracks.append(torch.exp(out[:, -1]).numpy())
    model.train(was_training)
    length = dataset.meta["length"]
    return {
        "cell_energy": np.concatenate(cells).astype(np.float32) if cells else np.zeros((0, length), np.float32),
        "track_energy": np.concatenate(tracks).astype(np.float32) if tracks else np.zeros(0, np.float32),
    }


def relative_resolution(predicted: np.ndarray, target: np.ndarray, min_target: float = 0.1) -> tuple[float, float]:
    """``(median R, sigma68(R) / median R)`` of the response ``R = predicted / target`` (target >= min_target)."""
    from jetcloud import metrics

    target = np.asarray(target, np.float64)
    ok = target >= min_target
    return metrics.median_and_sigma68(np.asarray(predicted, np.float64)[ok] / target[ok], relative=True)


def bootstrap_resolution(
    predicted: np.ndarray, target: np.ndarray, n_boot: int = 200, seed: int = 0, min_target: float = 0.1
) -> dict[str, float]:
    """Median response and sigma68/median with bootstrap standard errors (``n_boot`` resamples of the tracks)."""
    predicted, target = np.asarray(predicted, np.float64), np.asarray(target, np.float64)
    ok = target >= min_target
    predicted, target = predicted[ok], target[ok]
    rng = np.random.default_rng(seed)
    boots = (
        np.array(
            [
                relative_resolution(predicted[i], target[i], min_target)
                for i in rng.integers(0, len(target), (n_boot, len(target)))
            ]
        )
        if len(target)
        else np.full((1, 2), np.nan)
    )
    median, width = relative_resolution(predicted, target, min_target)
    return {
        "tracks": int(len(target)),
        "median": median,
        "median_err": float(np.std(boots[:, 0])),
        "sigma68_rel": width,
        "sigma68_rel_err": float(np.std(boots[:, 1])),
    }


def track_selection_metric(dataset: TrackInputs, batch_size: int = 256) -> Any:
    """``fn(model) -> sigma68 / median`` of the truth-scale track energy on ``dataset`` (``fit(select_on=...)``)."""
    truth = np.asarray(dataset.arrays(range(len(dataset)))["focus_truth_energy"], np.float64) / dataset.unit

    def sigma68(model: nn.Module) -> float:
        pred = track_outputs(model, dataset, batch_size)["track_energy"]
        return relative_resolution(pred, truth)[1]

    return sigma68


def write_predictions(out_dir: str | os.PathLike, split: str, arrays: Mapping[str, np.ndarray], **pred: Any) -> Path:
    """``out_dir/predictions_<split>.npz`` (atomically): ``eventNumber``, ``trackID``, ``cell_energy [N, L]`` and
    ``track_energy [N]`` (GeV; the contract of notebook 04)."""
    from jetcloud.io.atomic import atomic_path

    target = Path(out_dir) / f"predictions_{split}.npz"
    content = {
        "eventNumber": np.asarray(arrays["eventNumber"], np.int64),
        "trackID": np.asarray(arrays["trackID"], np.int32),
        "cell_energy": np.asarray(pred["cell_energy"], np.float32),
        "track_energy": np.asarray(pred["track_energy"], np.float32),
    }
    with atomic_path(target) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **content)
    return target


def fraction_indices(n: int, fraction: float, seed: int) -> np.ndarray:
    """The first ``round(fraction x n)`` samples of a permutation fixed by ``seed`` (sorted): nested subsets, so a
    learning curve adds samples instead of drawing new ones."""
    if not 0 < fraction <= 1:
        raise ValueError(f"a training fraction must be in (0, 1], got {fraction!r}")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: max(1, round(fraction * n))])


def fraction_run_dir(run_dir: str | os.PathLike, model: str, fraction: float) -> Path:
    """The run directory of the track-conditioned ``model`` trained on ``fraction`` of the training split:
    ``run_dir`` itself for the whole split, else ``<model>_frac<fraction>`` beside it."""
    run_dir = Path(run_dir)
    return run_dir if float(fraction) == 1.0 else run_dir.with_name(f"{model}_frac{float(fraction):g}")


def train_track_fractions(
    run_dir: str | os.PathLike,
    data_dir: str | os.PathLike,
    model: str,
    options: Mapping[str, Any],
    templates: Any,
    fractions: Sequence[float],
    **settings: Any,
) -> dict[float, dict[str, Any]]:
    """:func:`train_track_run` once per training-set fraction (nested subsets fixed by the seed), each into its
    own directory (:func:`fraction_run_dir`); returns the results keyed by fraction (notebook 03's learning curve)."""
    return {
        float(fraction): train_track_run(
            fraction_run_dir(run_dir, model, fraction),
            data_dir,
            model,
            options,
            templates,
            fraction=float(fraction),
            **settings,
        )
        for fraction in fractions
    }


def describe_track_runs(results: Mapping[float, Mapping[str, Any]]) -> list[str]:
    """One line per fraction: training tracks, best epoch, validation and test sigma68/median with errors."""
    lines = []
    for fraction, r in results.items():
        v, t = r["val"], r["test"]
        lines.append(
            f"fraction {fraction:g} ({r['n_train_samples']} tracks): best epoch {r['fit'].best_epoch}; "
            f"val sigma68/median {v['sigma68_rel']:.3f} +- {v['sigma68_rel_err']:.3f}, median {v['median']:.3f}; "
            f"test {t['sigma68_rel']:.3f} +- {t['sigma68_rel_err']:.3f}"
        )
    return lines


def record_track_runs(
    run_dir: str | os.PathLike, model: str, results: Mapping[float, Mapping[str, Any]], parameters: Mapping[str, Any]
) -> dict[str, Any]:
    """Write ``record.json`` (:func:`jetcloud.runs.write_record`) into every fraction's run directory; return the
    per-fraction summaries (training tracks, best epoch, validation and test resolution) keyed by fraction."""
    from jetcloud import runs

    summaries = {}
    for fraction, result in results.items():
        summary = {
            "n_train_samples": result["n_train_samples"],
            "best_epoch": result["fit"].best_epoch,
            "val": result["val"],
            "test": result["test"],
        }
        record_parameters = {**parameters, "fraction": float(fraction)}
        runs.write_record(fraction_run_dir(run_dir, model, fraction), parameters=record_parameters, metrics=summary)
        summaries[f"{float(fraction):g}"] = summary
    return summaries


def train_track_run(
    run_dir: str | os.PathLike,
    data_dir: str | os.PathLike,
    model: str,
    options: Mapping[str, Any],
    templates: Any,
    *,
    fraction: float = 1.0,
    preset: str = "track",
    resume: bool = True,
    callbacks: Sequence[Callable[[int, Mapping[str, float]], None]] = (),
    presets_file: str | os.PathLike | None = None,
    loss_options: Mapping[str, Any] | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """One training run of a track-conditioned ``model`` on ``fraction`` of the training split (notebook 03).

    :func:`jetcloud.train.fit` builds the model after seeding with ``settings["seed"]`` (a factory: identical
    initial weights for a seed, whatever the caller drew before), trains with
    the ``preset`` (checkpoint chosen on the validation sigma68 / median of the track energy), writes
    ``run.json`` (with ``n_train_samples``, ``seed``, ``fraction``), ``templates.json`` and
    ``predictions_{val,test}.npz`` of the best checkpoint. Returns ``{"fit", "model", "n_train_samples",
    "val", "test"}`` (the last two: :func:`bootstrap_resolution` of the track energy). ``callbacks`` go to
    :func:`jetcloud.train.fit` (e.g. the pruning of notebook 10); ``presets_file`` and ``loss_options`` to
    :func:`training_setup`.
    """
    from jetcloud import train
    from jetcloud.atlas import pointcloud

    run_dir = Path(run_dir)
    seed = int(settings.get("seed", 0))
    meta = pointcloud.read_point_cloud_meta(data_dir)
    full = TrackInputs(data_dir, "train", templates)
    ds = {
        "train": TrackInputs(data_dir, "train", templates, fraction_indices(len(full), fraction, seed)),
        **{s: TrackInputs(data_dir, s, templates) for s in ("val", "test")},
    }
    config, loss_fn = training_setup(preset, meta, presets_file=presets_file, loss_options=loss_options, **settings)
    n_train = len(ds["train"])
    save_run(run_dir, model, options, meta, preset=preset, n_train_samples=n_train, seed=seed, fraction=fraction)
    templates.save(run_dir / "templates.json")
    select = track_selection_metric(ds["val"])
    build = functools.partial(build_track_model, model, **options)  # built by fit after seeding with config.seed
    fit = train.fit(
        build, ds["train"], ds["val"], loss_fn, config, run_dir, resume=resume, select_on=select, callbacks=callbacks
    )
    net = fit.model
    train.load_weights(net, run_dir / "best.pt")
    out: dict[str, Any] = {"fit": fit, "model": net.eval(), "n_train_samples": n_train}
    for split in ("val", "test"):
        arrays = pointcloud.load_point_clouds(data_dir, split, ["eventNumber", "trackID", "focus_truth_energy"])
        pred = track_outputs(net, ds[split])
        write_predictions(run_dir, split, arrays, **pred)
        truth = np.asarray(arrays["focus_truth_energy"], np.float64) / ds[split].unit
        out[split] = bootstrap_resolution(pred["track_energy"], truth, seed=seed)
    return out


def pointnet_predictions(net: nn.Module, dataset: Any, arrays: Mapping[str, np.ndarray], unit: float) -> dict:
    """Contract predictions of a per-cell truth-scale model (the report's PointNet): ``cell_energy`` its output in
    GeV (0 off cells), ``track_energy`` their sum."""
    from jetcloud import train

    pred = train.predict(net, dataset, batch_size=128, device="cpu", progress=False)
    cells = np.where(np.asarray(arrays["frac_labels"]) != -1, pred / unit, 0.0).astype(np.float32)
    return {"cell_energy": cells, "track_energy": cells.sum(axis=1, dtype=np.float64).astype(np.float32)}


#: The training-split arrays :func:`track_template` reads.
TEMPLATE_KEYS = ("feats", "frac_labels", "focus_labels", "track_p", "track_eta")
