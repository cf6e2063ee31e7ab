"""Quark/gluon classification with the shared training loop: data, presets, loss, scores and the run summary.

::

    from jetcloud import train
    from jetcloud.qg import train as qg_train
    from jetcloud.models import get_model

    data = qg_train.load_data("demo", "mlp")                        # QG200.h5 of notebook 07
    model = get_model("mlp", **qg_train.model_kwargs("mlp", data))
    config = train.TrainConfig(**qg_train.preset("mlp", epochs=5))   # the report's settings, overridden
    result = train.fit(model, data.train, data.val, qg_train.classification_loss, config, run_dir,
                       metrics={"acc": qg_train.accuracy})
    scores = qg_train.predict_scores(model, data.test)
    summary = qg_train.summarize(data.test_labels, scores)           # AUC, accuracy, Rej50, Rej30

**Run directories.** Each run trains into its own ``build/<profile>/runs/qg/<run_name>@<tag>``
(:func:`run_dir`, :mod:`jetcloud.runs`); the default tag (:func:`run_tag`) is the seed plus every setting that
differs from the preset, so sweeps over seeds or learning rates never share a directory. The run's results are
its ``record.json`` (:func:`jetcloud.runs.write_record`), next to the checkpoints, ``history.csv`` and the
``scores_{val,test}.npz`` of :func:`write_scores`.

**Validation split.** The ``QG{K}.h5`` files (like the report's) hold only ``train_dataset`` and
``test_dataset``; the report validated on the test jets. Here a validation set is carved out of
``train_dataset``: a fraction ``val_fraction`` (default 0.1) of the jets chosen by a permutation seeded with
``split_seed`` (default 0, independent of the training seed), so the split is identical for every model and
run, and the test set stays untouched until the final evaluation.

**Labels and scores.** Quark = 1 (positive class), gluon = 0. Two-logit models: ``score = softmax[:, 1]``,
cross-entropy; one-logit models (ResNet_PC as in its code): ``score = sigmoid``, BCE-with-logits.

**Rejection.** ``1 / eps_b`` at quark efficiency ``eps_s`` = 0.5 and 0.3, with ``eps_b`` **linearly interpolated**
on the ROC curve at that ``eps_s`` (:func:`jetcloud.metrics.background_rejection`); infinite (reported as None)
when the interpolated ``eps_b`` is 0.

**Detector-level inputs.** The report's models (``mlp``, ``sparse_cnn_*``, ``resnet_pc_*``) read the report's
point clouds ``QG{K}.h5`` unchanged. The stronger models (:data:`PHYSICS_MODELS`: ParticleNet, the transformers,
the Deep Sets network) read the **physics points** of notebook 07 (``qg_physics_points.h5``,
:mod:`jetcloud.qg.physics_points`: one point per track pixel, ECAL crystal and HCAL tower, log E, E / sum E,
coordinates relative to the jet axis, type flags) and the per-jet globals (counts and energies per type).
``load_data(points=...)`` overrides the choice. A physics sample is ``[1 + K, 8]``: **row 0 holds the globals**
(:data:`jetcloud.qg.physics_points.GLOBAL_FEATURES`, zero padded to 8 columns), rows 1.. the points by decreasing
energy, padding last; the models built with ``n_globals`` split the header row off
(:func:`jetcloud.models.qg_common.split_globals`). K = every point of the file by default (no jet is cut), except
for the CPU-sized ``particlenet_lite`` and ``transformer_small`` (:data:`PHYSICS_K`: the 64 most energetic points);
batches are trimmed to their longest jet (:class:`TrimmedDataset`), so the padding costs nothing.

**Particle level.** With ``particle_level=True`` the EnergyFlow-layout set of notebook 06 (``X`` = pT, y, phi,
pid per particle) becomes point clouds of :data:`PARTICLE_FEATURES` (pT fractions, charge and experimental PID
flags, coordinates relative to the pT-weighted jet axis), sorted by pT with zero padding at the end; the
80 % / 20 % train / test split is the file order (the first 80 % train), and the validation set is carved from
train as above.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from jetcloud import metrics, paths, runs
from jetcloud.io.atomic import atomic_path
from jetcloud.qg.physics_points import COORD_INDEX, E_FRAC_INDEX, FEATURES, GLOBAL_FEATURES, PHYSICS_NAME
from jetcloud.qg.pointcloud import QG_FEATURES, check_labels, read_qg, trim_top_k
from jetcloud.train import ArrayDataset
from jetcloud.train.presets import load_presets

__all__ = [
    "PRESETS",
    "PRESET_SOURCES",
    "PARTICLE_FEATURES",
    "PHYSICS_MODELS",
    "PHYSICS_K",
    "QGData",
    "TrimmedDataset",
    "default_points",
    "default_k",
    "preset",
    "model_kwargs",
    "load_data",
    "particle_features",
    "split_train_val",
    "classification_loss",
    "accuracy",
    "scores_from_logits",
    "predict_scores",
    "summarize",
    "TAG_KEYS",
    "run_name",
    "run_tag",
    "run_dir",
    "write_scores",
]

log = logging.getLogger(__name__)

REJECTION_NOTE = "1/eps_b at eps_s (quark efficiency), eps_b linearly interpolated on the ROC curve"

_PRESET_DATA = load_presets("qg", {"source": str})
#: model -> TrainConfig keyword arguments of its training preset (``jetcloud/presets/qg.yaml``).
PRESETS: dict[str, dict[str, Any]] = {model: entry["settings"] for model, entry in _PRESET_DATA.items()}
#: model -> where its preset comes from (``jetcloud/presets/qg.yaml``).
PRESET_SOURCES: dict[str, str] = {model: entry["source"] for model, entry in _PRESET_DATA.items()}

#: Per-particle features of the particle-level point clouds (ParT's set plus ``pt_rel``; coordinates last).
PARTICLE_FEATURES = (
    "log_pt",
    "log_e",
    "log_pt_rel",
    "log_e_rel",
    "pt_rel",
    "delta_r",
    "charge",
    "is_photon",
    "is_electron",
    "is_muon",
    "is_neutral_hadron",
    "dy",
    "dphi",
)
_DETECTOR_OPTIONS = {"coord_index": (4, 3), "log_features": (0, 1, 2)}
_PARTICLE_OPTIONS = {"coord_index": (11, 12), "log_features": ()}
_PHYSICS_OPTIONS = {"coord_index": COORD_INDEX, "log_features": ()}
#: Models that read the physics points (and their globals) at detector level; the others read ``QG{K}.h5``.
PHYSICS_MODELS = ("particlenet", "particlenet_lite", "transformer", "transformer_small", "deepsets")
POINTS = ("report", "physics")
#: Physics points kept (highest energy first) by the CPU-sized models when ``k = 0``; the others keep every point.
#: Measured on the smoke jets (training step at batch 128, one thread, CPU time): ParticleNet-Lite 0.19 s and the
#: small transformer 0.20 s per step at K = 64 (400 steps: ~1.3 minutes), against 2.5 s and 7.2 s with every
#: point (up to 348 per batch); the Deep Sets network 0.16 s with every point.
PHYSICS_K = {"particlenet_lite": 64, "transformer_small": 64}
_DEFAULT_K = {
    "mlp": 200,
    "pfn": 200,
    "deepsets": 0,
    "particlenet": 200,
    "particlenet_lite": 200,
    "transformer": 200,
    "transformer_small": 200,
}


def _check_model(model: str) -> None:
    if model not in PRESETS:
        raise KeyError(f"unknown quark/gluon model {model!r}; known: {', '.join(sorted(PRESETS))}")


def default_k(model: str) -> int:
    """Number of points the report used for ``model`` (from its name, e.g. ``resnet_pc_768_m`` -> 768)."""
    _check_model(model)
    match = re.search(r"_(\d+)(?:_[a-z])?$", model)
    return int(match.group(1)) if match else _DEFAULT_K[model]


def preset(model: str, **overrides: Any) -> dict[str, Any]:
    """``TrainConfig`` keyword arguments of ``model``'s preset, updated with ``overrides`` (None values ignored)."""
    _check_model(model)
    settings = dict(PRESETS[model])
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return settings


@dataclass
class QGData:
    """Train / validation / test datasets (items ``inputs`` [K, F] float32, ``target`` int64) and their labels."""

    train: Any
    val: Any
    test: Any
    val_labels: np.ndarray
    test_labels: np.ndarray
    k: int
    features: tuple[str, ...]
    level: str
    source: str
    points: str = "report"
    n_globals: int = 0

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def model_kwargs(model: str, data: QGData) -> dict[str, Any]:
    """Constructor arguments of ``model`` for ``data`` (input width; coordinate and energy columns)."""
    _check_model(model)
    kwargs: dict[str, Any] = {"in_features": len(data.features)}
    physics = data.level == "detector" and data.points == "physics"
    if model.startswith(("particlenet", "transformer")):
        kwargs.update(
            _PARTICLE_OPTIONS if data.level == "particle" else _PHYSICS_OPTIONS if physics else _DETECTOR_OPTIONS
        )
    if model.startswith("transformer"):
        energy = (PARTICLE_FEATURES.index("pt_rel"),) if data.level == "particle" else (0, 1, 2)
        kwargs["energy_index"] = (E_FRAC_INDEX,) if physics else energy
    if data.n_globals:
        kwargs["n_globals"] = data.n_globals
    return kwargs


def default_points(model: str) -> str:
    """The detector-level representation ``model`` reads: ``"physics"`` (:data:`PHYSICS_MODELS`) or ``"report"``."""
    _check_model(model)
    return "physics" if model in PHYSICS_MODELS else "report"


def split_train_val(n: int, val_fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(train, val)`` indices of ``n`` jets: a seeded random ``val_fraction`` (at least one) is val."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if n < 2:
        raise ValueError(f"need at least 2 training jets to carve a validation set, got {n}")
    n_val = min(max(1, round(n * val_fraction)), n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _detector_arrays(directory: Path, k: int) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str]:
    files = {int(m.group(1)): p for p in directory.glob("QG*.h5") if (m := re.fullmatch(r"QG(\d+)\.h5", p.name))}
    if not files:
        raise FileNotFoundError(f"no QG{{K}}.h5 files in {directory}: run notebook 07 first")
    larger = sorted(kk for kk in files if kk >= k)
    if not larger:
        raise ValueError(
            f"K = {k} is larger than the padded length of every point-cloud file in {directory} "
            f"(available K: {sorted(files)}); write QG{k}.h5 with notebook 07 (parameter ks) or use a smaller K"
        )
    path = files[larger[0]]
    out = {}
    for split in ("train", "test"):
        x, y = read_qg(path, split)
        out[split] = (x if x.shape[1] == k else trim_top_k(x, k), y)
    return out, str(path)


def particle_features(x: np.ndarray, k: int = 0) -> np.ndarray:
    """EnergyFlow ``X (N, M, 4)`` (pT, y, phi, pid; zero padded) -> ``(N, K, 13)`` :data:`PARTICLE_FEATURES`.

    Particles sorted by decreasing pT, the first ``k`` kept (``k = 0``: all ``M``; ``k > M`` pads with zeros).
    ParT's features (Qu, Li, Qian 2022): ``log pT``, ``log E``, ``log pT / pT_jet``, ``log E / E_jet`` (jet = the
    sum over its particles), ``delta R`` to the axis, and ``pt_rel`` (the pair-feature weight), charge and the
    "experimental PID" flags (photon, electron, muon, neutral hadron; charged hadrons have only the charge),
    ``dy``, ``dphi`` relative to the pT-weighted centroid. ``E = sqrt(pT^2 + m^2) cosh y`` with the PDG mass of each
    particle's id (:func:`pid_masses`, from the ``particle`` package).
    """
    x = np.asarray(x, np.float64)
    if x.ndim != 3 or x.shape[2] < 4:
        raise ValueError(f"particle-level X must be (N, M, 4) = pT, y, phi, pid; got {x.shape}")
    order = np.argsort(-x[..., 0], axis=1, kind="stable")
    x = np.take_along_axis(x, order[..., None], axis=1)
    k = k or x.shape[1]
    if k > x.shape[1]:
        x = np.concatenate([x, np.zeros((x.shape[0], k - x.shape[1], x.shape[2]))], axis=1)
    x = x[:, :k]
    pt, rap, phi, pid = x[..., 0], x[..., 1], x[..., 2], x[..., 3].astype(np.int64)
    real = pt > 0
    energy = np.sqrt(pt**2 + pid_masses(pid) ** 2) * np.cosh(rap) * real
    pt_rel, e_rel = _fraction(pt), _fraction(energy)
    y_c = (pt_rel * rap).sum(axis=1, keepdims=True)
    phi_c = (pt_rel * phi).sum(axis=1, keepdims=True)
    apid = np.abs(pid)
    charged_hadron = np.isin(apid, (211, 321, 2212))
    charge = np.where(charged_hadron, np.sign(pid), 0) - np.where(np.isin(apid, (11, 13)), np.sign(pid), 0)
    safe_log = lambda v: np.log(np.where(real, v, 1.0))  # noqa: E731
    feats = np.stack(
        [
            safe_log(pt),
            safe_log(energy),
            safe_log(pt_rel),
            safe_log(e_rel),
            pt_rel,
            np.hypot(rap - y_c, phi - phi_c),
            charge,
            apid == 22,
            apid == 11,
            apid == 13,
            real & ~charged_hadron & ~np.isin(apid, (22, 11, 13)),
            rap - y_c,
            phi - phi_c,
        ],
        axis=-1,
    ).astype(np.float32)
    return feats * real[..., None]


def _fraction(v: np.ndarray) -> np.ndarray:
    """``v / v.sum(axis=1)`` per jet (0 for an empty jet)."""
    total = v.sum(axis=1, keepdims=True)
    return np.divide(v, total, out=np.zeros_like(v), where=total > 0)


def pid_masses(pid: np.ndarray) -> np.ndarray:
    """PDG masses in GeV of the ids ``pid`` (any shape; 0 = padding -> 0), from the ``particle`` package."""
    from particle import Particle
    from particle.particle import InvalidParticle, ParticleNotFound

    pid = np.asarray(pid, np.int64)
    ids = np.unique(pid)
    masses = np.zeros(len(ids))
    for i, code in enumerate(ids):
        if code == 0:
            continue
        try:
            mass = Particle.from_pdgid(int(code)).mass
        except (ParticleNotFound, InvalidParticle) as err:
            raise ValueError(f"particle id {code} is not a PDG id known to the particle package") from err
        masses[i] = (mass or 0.0) / 1000.0  # MeV -> GeV
    return masses[np.searchsorted(ids, pid)]


class TrimmedDataset(ArrayDataset):
    """An :class:`~jetcloud.train.ArrayDataset` of padded-last point clouds whose batches are cut to their longest
    sample (``header`` leading rows, e.g. the globals row, always kept), so that K = every point costs only what
    the batch holds. The models are padding invariant, so the outputs do not change."""

    def __init__(self, chunks: Any, *, header: int = 0, **kwargs: Any) -> None:
        super().__init__(chunks, **kwargs)
        self.header = header

    def __getitems__(self, indices: Any) -> dict[str, Tensor]:
        batch = super().__getitems__(indices)
        x = batch["inputs"]
        real = (x[:, self.header :] != 0).any(dim=-1)
        width = int(real.sum(dim=1).max()) if len(x) else 0
        batch["inputs"] = x[:, : self.header + max(width, 1)].contiguous()
        return batch


def _particle_arrays(path: Path, k: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from jetcloud.qg.energyflow import read_qg_npz

    if not path.is_file():
        raise FileNotFoundError(f"particle-level file {path} does not exist (run notebook 06)")
    x, y = read_qg_npz(path)
    feats = particle_features(x, k)
    n_train = int(round(0.8 * len(feats)))
    return {"train": (feats[:n_train], y[:n_train]), "test": (feats[n_train:], y[n_train:])}


def _physics_arrays(directory: Path, k: int) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str]:
    """``[N, 1 + K, 8]`` physics samples (row 0: the globals, zero padded) and labels per split."""
    from jetcloud.qg.physics_points import read_physics_points

    path = directory / PHYSICS_NAME
    if not path.is_file():
        raise FileNotFoundError(f"physics-points file {path} does not exist: run notebook 07 (convert_physics_points)")
    out = {}
    for split in ("train", "test"):
        arrays = read_physics_points(path, split, k)
        x = arrays["X"]
        header = np.zeros((len(x), 1, x.shape[2]), np.float32)
        header[:, 0, : len(GLOBAL_FEATURES)] = arrays["globals"]
        out[split] = (np.concatenate([header, x], axis=1), arrays["Y"])
    return out, str(path)


def load_data(
    profile: str,
    model: str,
    *,
    k: int = 0,
    particle_level: bool = False,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    source: str | os.PathLike | None = None,
    points: str | None = None,
) -> QGData:
    """Datasets for ``model``: at detector level the report's ``QG{K}.h5`` of notebook 07 (K = ``k`` or
    :func:`default_k`) or the physics points ``qg_physics_points.h5`` (``points``, default
    :func:`default_points`; K = ``k`` highest-energy points, or all with ``k = 0``), or the particle-level file of
    notebook 06 (``particle_level``; K = ``k`` or the file's padded length).

    ``source`` overrides the directory of the ``QG{K}.h5`` / physics files (or the particle-level ``.npz``). When
    no file has exactly K points the smallest one with more is trimmed to its top K (:func:`trim_top_k`). Missing
    files, a K larger than every file's and labels outside {0, 1} raise clear errors.
    """
    _check_model(model)
    if k < 0:
        raise ValueError(f"k must be >= 0 (0: the model's default), got {k}")
    points = points or default_points(model)
    if points not in POINTS:
        raise ValueError(f"points must be one of {POINTS}, got {points!r}")
    physics = not particle_level and points == "physics"
    if particle_level:
        path = Path(source) if source else paths.data_dir(profile, "raw", "qg") / "qg_particle_level.npz"
        arrays, features, src = _particle_arrays(path, k), PARTICLE_FEATURES, str(path)
    else:
        directory = Path(source) if source else paths.data_dir(profile, "processed", "qg")
        if physics:
            (arrays, src), features = _physics_arrays(directory, k or PHYSICS_K.get(model, 0)), FEATURES
        else:
            arrays, src = _detector_arrays(directory, k or default_k(model))
            features = tuple(QG_FEATURES)
    x_train, y_train = arrays["train"]
    x_test, y_test = arrays["test"]
    if len(x_train) < 3 or len(x_test) == 0:  # zero jets is an error with its reason, not an empty success
        raise ValueError(
            f"{src}: {len(x_train)} training and {len(x_test)} test jets; training needs at least 3 training jets "
            "(a share becomes the validation set, BatchNorm needs 2 per batch) and 1 test jet: simulate more jets "
            "(notebook 06, test_fraction > 0)"
        )
    y_train, y_test = check_labels(y_train, f"{src} train"), check_labels(y_test, f"{src} test")
    train_idx, val_idx = split_train_val(len(x_train), val_fraction, split_seed)

    def dataset(x: np.ndarray, y: np.ndarray) -> ArrayDataset:
        chunks = [{"X": np.ascontiguousarray(x, np.float32), "Y": y}]
        if physics:
            return TrimmedDataset(chunks, header=1, input_key="X", target_key="Y")
        return ArrayDataset(chunks, input_key="X", target_key="Y")

    return QGData(
        train=dataset(x_train[train_idx], y_train[train_idx]),
        val=dataset(x_train[val_idx], y_train[val_idx]),
        test=dataset(x_test, y_test),
        val_labels=y_train[val_idx],
        test_labels=y_test,
        k=int(x_train.shape[1]) - int(physics),
        features=features,
        level="particle" if particle_level else "detector",
        source=src,
        points="particle" if particle_level else points,
        n_globals=len(GLOBAL_FEATURES) if physics else 0,
    )


# ---- loss, metric, scores -------------------------------------------------------------------------------------
def classification_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy on ``[B, 2]`` logits with integer labels, or BCE-with-logits on one logit ``[B, 1]`` / ``[B]``."""
    if pred.ndim == 2 and pred.shape[1] >= 2:
        return F.cross_entropy(pred, target.long())
    return F.binary_cross_entropy_with_logits(pred.reshape(-1), target.reshape(-1).to(pred.dtype))


def accuracy(pred: Tensor, target: Tensor) -> Tensor:
    """Fraction correct (argmax of two logits, or logit > 0 for one)."""
    if pred.ndim == 2 and pred.shape[1] >= 2:
        guess = pred.argmax(dim=1)
    else:
        guess = (pred.reshape(-1) > 0).long()
    return (guess == target.reshape(-1).long()).float().mean()


def scores_from_logits(logits: np.ndarray | Tensor) -> np.ndarray:
    """P(quark): ``softmax[:, 1]`` of two logits, ``sigmoid`` of one."""
    t = torch.as_tensor(np.asarray(logits, np.float32))
    if t.ndim == 2 and t.shape[1] >= 2:
        return torch.softmax(t, dim=1)[:, 1].numpy()
    return torch.sigmoid(t.reshape(-1)).numpy()


def predict_scores(model: nn.Module, dataset: Any, batch_size: int = 256, device: str = "auto") -> np.ndarray:
    """Quark probability of every sample of ``dataset`` (eval mode, :func:`jetcloud.train.predict`)."""
    from jetcloud.train import predict

    return scores_from_logits(predict(model, dataset, batch_size, device=device))


def summarize(labels: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """AUC (quark positive), accuracy (score > 0.5), Rej50 / Rej30 (interpolated; None when infinite), counts."""
    labels = np.asarray(labels).astype(int)
    scores = np.asarray(scores, np.float64)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} must be equal 1-D shapes")
    rej = {eff: metrics.background_rejection(labels, scores, eff) for eff in (0.5, 0.3)}
    return {
        "auc": metrics.roc_auc(labels, scores),
        "accuracy": float(np.mean((scores > 0.5) == (labels == 1))),
        "rej50": rej[0.5] if np.isfinite(rej[0.5]) else None,
        "rej30": rej[0.3] if np.isfinite(rej[0.3]) else None,
        "n": int(labels.size),
        "n_quark": int(labels.sum()),
        "rejection_note": REJECTION_NOTE,
    }


# ---- run directories ------------------------------------------------------------------------------------------
#: Settings that make a run differ from another run of the same model, in tag order, with their short names.
TAG_KEYS = {
    "seed": "seed",
    "epochs": "epochs",
    "batch_size": "bs",
    "lr": "lr",
    "max_steps_per_epoch": "steps",
    "k": "k",
    "val_fraction": "val",
}


def run_name(model: str, particle_level: bool = False) -> str:
    """``<model>``, or ``<model>_particle`` for the particle-level set: what a run trained, without its tag."""
    _check_model(model)
    return f"{model}_particle" if particle_level else model


def run_tag(model: str, settings: Mapping[str, Any], *, k_points: int = 0, val_fraction: float = 0.1) -> str:
    """Default tag of a run: its seed and every setting that differs from ``model``'s preset.

    ``settings`` are the ``TrainConfig`` keyword arguments the run uses (:func:`preset` with overrides, including
    ``seed``); ``k_points`` (0: the default K) and ``val_fraction`` (default 0.1) join them. For example
    ``seed1-epochs4-bs128-steps100``: two seeds, or two learning rates, never share a run directory, and a rerun
    with the same settings finds its directory again (and resumes there).
    """
    _check_model(model)
    values = {key: settings.get(key) for key in TAG_KEYS if key in settings}
    values.update(k=k_points or None, val_fraction=val_fraction)
    values = {key: values.get(key) for key in TAG_KEYS}
    baseline = {**PRESETS[model], "val_fraction": 0.1}
    return runs.derive_tag(values, baseline, always=("seed",), short=TAG_KEYS)


def run_dir(profile: str, model: str, particle_level: bool = False, tag: str = "") -> Path:
    """``build/<profile>/runs/qg/<run_name>@<tag>`` (:func:`jetcloud.runs.run_dir`; ``<run_name>`` without a tag)."""
    return runs.run_dir(profile, "qg", run_name(model, particle_level), tag)


def write_scores(directory: str | os.PathLike, split: str, labels: np.ndarray, scores: np.ndarray) -> Path:
    """``scores_<split>.npz`` with ``labels`` (int, quark = 1) and ``scores`` (P(quark)), written atomically."""
    path = Path(directory) / f"scores_{split}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, labels=np.asarray(labels, np.int64), scores=np.asarray(scores, np.float32))
    return path
