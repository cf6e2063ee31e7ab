"""One training loop for every jetcloud model (JetPointNet regression and the quark/gluon classifiers).

:func:`fit` trains ``model`` on a map-style dataset whose items are dicts with ``inputs``, ``target`` and
optionally ``weight`` (:mod:`jetcloud.train.data`), with ``loss_fn(pred, target[, weight=...]) -> scalar``.

**Model protocol** (see :mod:`jetcloud.models.registry`): ``model(inputs) -> Tensor``; optionally
``regularization_loss() -> Tensor | None`` (a penalty computed in the last training-mode forward, added to the
training loss and reported as ``train_reg``); optionally ``hparams`` (a dict stored in checkpoints).

**Outputs** in ``out_dir`` (written by rank 0 only):

- ``last.pt``: everything needed to resume (model, optimizer, scheduler, AMP scaler, completed epochs, best
  validation loss, early-stopping counter, history, RNG states of every rank, the config), written atomically
  after every epoch; :func:`fit` resumes from it by default when it was written with the same settings (only
  :data:`RESUMABLE_CHANGES`, such as more ``epochs``, may differ; otherwise training starts over);
- ``best.pt``: model weights of the epoch with the lowest validation loss (train loss without a validation set),
  or with the lowest value of ``select_on(model)`` when :func:`fit` is given that callable (e.g. a resolution
  computed on the whole validation set, which is not a mean over batches; history column ``val_select``);
- ``history.csv``: one row per epoch: ``epoch, train_loss, train_reg, val_loss, <metrics>, lr, epoch_s,
  samples_per_s, data_wait_frac`` (the share of the training time spent waiting for the next batch).

Checkpoints load with ``torch.load(..., weights_only=True)``; one written for another model class or other
``hparams`` (e.g. another ``size_factor``) raises :class:`CheckpointMismatchError` naming the differences.
A NaN or infinite training loss raises :class:`NonFiniteLossError` naming the epoch and the batch.

**Distributed.** Under ``torchrun`` (``WORLD_SIZE > 1``) the same call initialises the process group (NCCL on
GPUs, gloo on CPUs) unless the caller did, wraps the model in ``DistributedDataParallel`` and shards the data with
``DistributedSampler`` (each rank gets ``batch_size`` samples per step: the global batch is
``world_size x batch_size``). BatchNorm statistics are per rank, and rank 0's running statistics are broadcast
at every forward (DDP's default). Validation runs on disjoint shards and the sums are all-reduced. Only rank 0
writes files.

**Reproducibility.** The shuffle order of epoch ``e`` is a function of ``(seed, e)`` only (``DistributedSampler``),
the RNG states (torch, CUDA, numpy, Python) are checkpointed per rank, so an interrupted and resumed run gives the
weights of an uninterrupted one. Given a model *factory* (a callable without arguments returning the module)
instead of a module, :func:`fit` seeds ``random``, numpy and torch with ``config.seed`` and then builds the model,
so its initial weights belong to the run too: the same seed gives the same weights whatever the caller drew from the
global generators before (every rank builds the same model).
"""

from __future__ import annotations

import contextlib
import csv
import gc
import io
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler
from torch.utils.data._utils.collate import default_collate

from jetcloud.io.atomic import atomic_path, write_text

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "AMP_MODES",
    "CHECKPOINT_FORMAT",
    "TrainConfig",
    "FitResult",
    "NonFiniteLossError",
    "CheckpointMismatchError",
    "RESUMABLE_CHANGES",
    "changed_settings",
    "fit",
    "evaluate",
    "predict",
    "resolve_device",
    "unwrap",
    "model_spec",
    "load_checkpoint",
    "load_weights",
    "bn_momentum_for_epoch",
]

log = logging.getLogger(__name__)

OPTIMIZERS: tuple[str, ...] = ("adam", "adamw")
SCHEDULES: tuple[str, ...] = ("none", "step", "cosine")
AMP_MODES: tuple[str, ...] = ("none", "bf16", "fp16")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
CHECKPOINT_FORMAT = "jetcloud-checkpoint-1"
LAST_NAME, BEST_NAME, HISTORY_NAME = "last.pt", "best.pt", "history.csv"
_HISTORY_FIRST = ("epoch", "train_loss", "train_reg", "val_loss")
_HISTORY_LAST = ("lr", "epoch_s", "samples_per_s", "data_wait_frac")

Metric = Callable[[Tensor, Tensor], Tensor]
Callback = Callable[[int, Mapping[str, float]], None]
#: What :func:`fit` accepts as its model: a module (its weights are the caller's) or a factory that builds one.
ModelOrFactory = nn.Module | Callable[[], nn.Module]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite (the message names the epoch and the batch)."""


class CheckpointMismatchError(ValueError):
    """A checkpoint was written for another model class, other hyperparameters or other weight shapes."""


# --------------------------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    """Everything :func:`fit` needs besides the model, the data and the loss.

    Attributes:
        optimizer: ``"adam"`` (L2 through ``weight_decay``, as Keras' Adam has none) or ``"adamw"``.
        lr, weight_decay: optimiser settings.
        batch_size: samples per step *per process* (the global batch under DDP is ``world_size`` times larger).
        epochs: total epochs (a resumed run continues up to this number).
        schedule: ``"none"``, ``"step"`` (x ``gamma`` every ``step_size`` epochs; the report: 0.5 every 2) or
            ``"cosine"`` (to ``min_lr`` over ``epochs``).
        bn_momentum_schedule: the report's ``BatchNormalizationMomentumScheduler`` (defined there, never used):
            Keras momentum ``bn_momentum_start -> bn_momentum_end`` linearly over ``epochs``
            (:func:`bn_momentum_for_epoch`); PyTorch momentum is ``1 -`` that.
        grad_clip: max global gradient norm (None = no clipping).
        amp: ``"none"``, ``"bf16"`` or ``"fp16"`` (autocast + GradScaler); CUDA only, ignored with a warning on CPU.
        patience: stop after this many epochs without a validation-loss improvement larger than ``min_delta``
            (None = never).
        seed: seeds torch / numpy / random at the start (``seed + rank`` per process) and the shuffle order.
        num_workers: DataLoader workers (the loader only slices memory maps; 0-2 is usually enough).
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        progress: tqdm bars (rank 0 only).
        max_steps_per_epoch: cap on training steps per epoch (smoke runs, benchmarks); None = the whole split.
        shuffle: shuffle the training set every epoch.
        checkpoint: write ``last.pt`` / ``best.pt`` every epoch (benchmarks switch it off; resume needs it).
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 32
    epochs: int = 10
    schedule: str = "none"
    step_size: int = 2
    gamma: float = 0.5
    min_lr: float = 0.0
    bn_momentum_schedule: bool = False
    bn_momentum_start: float = 0.5
    bn_momentum_end: float = 0.99
    grad_clip: float | None = None
    amp: str = "none"
    patience: int | None = None
    min_delta: float = 0.0
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"
    progress: bool = True
    max_steps_per_epoch: int | None = None
    shuffle: bool = True
    checkpoint: bool = True

    def __post_init__(self) -> None:
        choices = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "amp": AMP_MODES, "device": DEVICES}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"TrainConfig.{name} = {getattr(self, name)!r}; expected one of {', '.join(allowed)}")
        positive = {"batch_size": self.batch_size, "epochs": self.epochs, "step_size": self.step_size}
        for name, value in positive.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {value!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"TrainConfig.lr must be a positive number, got {self.lr!r}")
        if self.weight_decay < 0 or self.min_lr < 0 or not 0 < self.gamma <= 1:
            raise ValueError("TrainConfig: weight_decay and min_lr must be >= 0 and gamma in (0, 1]")
        if not 0 <= self.bn_momentum_start <= 1 or not 0 <= self.bn_momentum_end <= 1:
            raise ValueError("TrainConfig: BatchNorm momenta (Keras convention) must be in [0, 1]")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"TrainConfig.grad_clip must be > 0 or None, got {self.grad_clip!r}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"TrainConfig.patience must be >= 1 or None, got {self.patience!r}")
        if self.max_steps_per_epoch is not None and self.max_steps_per_epoch < 1:
            raise ValueError(f"TrainConfig.max_steps_per_epoch must be >= 1 or None, got {self.max_steps_per_epoch!r}")
        if self.num_workers < 0 or self.seed < 0:
            raise ValueError("TrainConfig: num_workers and seed must be >= 0")


def bn_momentum_for_epoch(epoch: int, epochs: int, start: float = 0.5, end: float = 0.99) -> float:
    """Keras BatchNorm momentum of 0-based ``epoch``: ``min(start + (end - start) * epoch / epochs, end)``.

    The original callback set it at the *end* of epoch ``e`` from ``e`` (so epoch ``e + 1`` used the value
    meant for ``e`` and epoch 0 Keras' default 0.99); here epoch ``e`` uses its own value from the start.
    PyTorch's ``BatchNorm.momentum`` is ``1 -`` this value.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    value = start + (end - start) * epoch / epochs
    return float(min(max(value, min(start, end)), max(start, end)))


@dataclass
class FitResult:
    """What :func:`fit` returns."""

    history: list[dict[str, float]]
    best_epoch: int | None
    best_val_loss: float
    stopped_early: bool
    out_dir: Path
    start_epoch: int = 0
    checkpoints: dict[str, Path] = field(default_factory=dict)
    model: nn.Module | None = field(default=None, repr=False)  # the trained module (unwrapped): last epoch's weights

    @property
    def epochs_done(self) -> int:
        """Completed epochs (including those of earlier, resumed runs)."""
        return int(self.history[-1]["epoch"]) if self.history else 0


# --------------------------------------------------------------------------------------------------------------
# devices, distributed
# --------------------------------------------------------------------------------------------------------------


def resolve_device(device: str | torch.device = "auto", local_rank: int | None = None) -> torch.device:
    """``"auto"`` -> ``cuda[:local_rank]`` when CUDA is available, else ``cpu``; ``"cuda"`` without CUDA is an error."""
    if isinstance(device, torch.device):
        return device
    if device not in DEVICES:
        if device.startswith("cuda:") or device == "cpu":
            return torch.device(device)
        raise ValueError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was requested but torch sees no CUDA device (CPU-only build or no GPU)")
    if device == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank if local_rank is not None else torch.cuda.current_device())


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owned: bool = False

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def sum(self, values: Sequence[float], device: torch.device) -> list[float]:
        if not self.active:
            return [float(v) for v in values]
        tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def any(self, flag: bool, device: torch.device) -> bool:
        return self.sum([1.0 if flag else 0.0], device)[0] > 0

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def _setup_distributed(config: TrainConfig) -> _Dist:
    if not dist.is_available():
        return _Dist()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_initialized():
        return _Dist(dist.get_rank(), dist.get_world_size(), local_rank, owned=False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    use_cuda = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    log.info("initialised process group (%s): rank %d of %d", backend, dist.get_rank(), world)
    return _Dist(dist.get_rank(), world, local_rank, owned=True)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` / ``DataParallel`` wrapper (or ``model`` itself)."""
    return model.module if isinstance(model, (DistributedDataParallel, nn.DataParallel)) else model


# --------------------------------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------------------------------


#: TrainConfig fields a resumed run may change (all others must match the checkpoint's, else training starts over).
RESUMABLE_CHANGES = frozenset({"epochs", "progress", "num_workers", "device", "checkpoint"})


def changed_settings(saved: Mapping[str, Any], config: TrainConfig) -> list[str]:
    """``"name old -> new"`` for every setting of ``config`` that differs from the checkpoint's ``saved`` config
    (ignoring :data:`RESUMABLE_CHANGES`)."""
    names = [f.name for f in fields(TrainConfig) if f.name not in RESUMABLE_CHANGES and f.name in saved]
    return [f"{k} {saved[k]!r} -> {getattr(config, k)!r}" for k in names if saved[k] != getattr(config, k)]


def model_spec(model: nn.Module) -> dict[str, Any]:
    """Identity of a model for checkpoints: class path, qualified name, ``hparams`` and parameter count."""
    inner = unwrap(model)
    cls = type(inner)
    return {
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "qualname": cls.__qualname__,
        "hparams": dict(getattr(inner, "hparams", None) or {}),
        "n_parameters": int(sum(p.numel() for p in inner.parameters())),
    }


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A jetcloud checkpoint, loaded with ``torch.load(..., weights_only=True)`` (no arbitrary code)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # the unpickler raises several types; all mean "not a checkpoint we can read"
        raise CheckpointMismatchError(
            f"{path} cannot be loaded with weights_only=True (corrupt, truncated or not a checkpoint: {err}); "
            f"{_START_OVER.format(run_dir=path.parent)}"
        ) from err
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointMismatchError(
            f"{path} is not a jetcloud checkpoint (format {CHECKPOINT_FORMAT}); "
            f"{_START_OVER.format(run_dir=path.parent)}"
        )
    return checkpoint


_START_OVER = (
    "to start the run over, pass resume=False (notebook parameter resume: false) or delete the run directory {run_dir}"
)


def _check_model(checkpoint: Mapping[str, Any], model: nn.Module, path: Path) -> None:
    saved, current = checkpoint["model"], model_spec(model)
    # The qualified name, not the module path: checkpoints stay loadable when a module moves (issue 11); a
    # checkpoint written before "qualname" was stored gives it as the last part of its class path.
    if saved.get("qualname", saved["class"].rsplit(".", 1)[-1]) != current["qualname"]:
        raise CheckpointMismatchError(
            f"{path} holds a checkpoint of {saved['class']} but the model is {current['class']}; "
            f"use another out_dir or build the model the checkpoint was written for"
        )
    a, b = saved.get("hparams") or {}, current["hparams"]
    diffs = [
        f"{k}: checkpoint {a.get(k)!r} vs model {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)
    ]
    if diffs:
        raise CheckpointMismatchError(
            f"{path} was written for {saved['class']} with other settings: {'; '.join(diffs)}"
        )
    state = checkpoint["model_state"]
    own = unwrap(model).state_dict()
    bad = [f"missing {k}" for k in own if k not in state] + [f"unexpected {k}" for k in state if k not in own]
    bad += [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if bad:
        raise CheckpointMismatchError(
            f"{path}: weights do not fit the model ({len(bad)} problems): {'; '.join(bad[:5])}"
        )


def load_weights(model: nn.Module, path: str | os.PathLike) -> dict[str, Any]:
    """Load the weights of ``last.pt`` / ``best.pt`` into ``model`` after checking class, hparams and shapes.

    Returns the checkpoint dict (``epoch``, ``history`` ...). The model stays on its device.
    """
    path = Path(path)
    checkpoint = load_checkpoint(path)
    _check_model(checkpoint, model, path)
    unwrap(model).load_state_dict(checkpoint["model_state"])
    return checkpoint


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()  # noqa: NPY002 - the legacy global state is what libraries draw from
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "numpy": [
            str(np_state[0]),
            torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            *map(int, np_state[2:4]),
            float(np_state[4]),
        ],
        "python": random.getstate(),
    }


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def _gather_rng(ctx: _Dist) -> list[dict[str, Any]]:
    state = _rng_state()
    if not ctx.active:
        return [state]
    gathered: list[Any] = [None] * ctx.world
    dist.all_gather_object(gathered, state)
    return gathered


# --------------------------------------------------------------------------------------------------------------
# loops
# --------------------------------------------------------------------------------------------------------------


def _make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=config.lr, weight_decay=config.weight_decay)


def _make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> Any:
    if config.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs, eta_min=config.min_lr)
    return None


def _batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def _loader(
    dataset: Dataset,
    batch_size: int,
    sampler: Sampler | Iterable[int],
    *,
    num_workers: int,
    seed: int,
    device: torch.device,
    drop_last: bool = False,
) -> DataLoader:
    workers = num_workers
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        drop_last=drop_last,
        collate_fn=getattr(dataset, "collate_fn", None) or default_collate,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(seed),
    )


def _split_batch(batch: Any, device: torch.device) -> tuple[Tensor, Tensor | None, Tensor | None]:
    if isinstance(batch, Mapping):
        inputs, target, weight = batch["inputs"], batch.get("target"), batch.get("weight")
    elif isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
        inputs, target, weight = batch[0], batch[1], batch[2] if len(batch) == 3 else None
    else:
        raise TypeError("a batch must be a dict with 'inputs' / 'target' [/ 'weight'] or a tuple (inputs, target)")
    non_blocking = device.type == "cuda"
    move = lambda t: None if t is None else t.to(device, non_blocking=non_blocking)  # noqa: E731
    return move(inputs), move(target), move(weight)


def _batch_weight(loss_fn: Callable[..., Tensor], batch: Any) -> float:
    """Weight of a batch's mean loss when averaging over batches.

    For a loss with a ``mask_value`` (:class:`~jetcloud.train.losses.MaskedLoss`) the number of valid points
    (or the sum of their weights), so that the epoch value is the exact mean over all valid points whatever the
    batch composition; otherwise the number of samples.
    """
    target = batch.get("target") if isinstance(batch, Mapping) else batch[1]
    weight = batch.get("weight") if isinstance(batch, Mapping) else (batch[2] if len(batch) == 3 else None)
    mask_value = getattr(loss_fn, "mask_value", None)
    if mask_value is None or target is None:
        inputs = batch["inputs"] if isinstance(batch, Mapping) else batch[0]
        return float(inputs.shape[0])
    valid = target != mask_value
    return float(torch.where(valid, weight, 0).sum() if weight is not None else valid.sum())


def _loss(loss_fn: Callable[..., Tensor], pred: Tensor, target: Tensor | None, weight: Tensor | None) -> Tensor:
    if target is None:
        raise ValueError("the dataset yields no 'target': build it with a target key to train or evaluate")
    return loss_fn(pred, target) if weight is None else loss_fn(pred, target, weight=weight)


def _autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    if amp == "none" or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def _evaluate_sums(
    model: nn.Module,
    loader: DataLoader,
    loss_fn: Callable[..., Tensor],
    metrics: Mapping[str, Metric],
    device: torch.device,
    amp: str,
) -> list[float]:
    """``[total_weight, loss_sum, *metric_sums]`` (sums weighted by :func:`_batch_weight`) on this shard."""
    was_training = model.training
    model.eval()
    sums = [0.0] * (2 + len(metrics))
    try:
        with torch.inference_mode():
            for batch in loader:
                n = _batch_weight(loss_fn, batch)
                inputs, target, weight = _split_batch(batch, device)
                with _autocast(device, amp):
                    pred = model(inputs)
                pred = pred.float()
                sums[0] += n
                sums[1] += float(_loss(loss_fn, pred, target, weight)) * n
                for i, fn in enumerate(metrics.values()):
                    sums[2 + i] += float(fn(pred, target)) * n
    finally:
        model.train(was_training)
    return sums


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    loss_fn: Callable[..., Tensor],
    *,
    batch_size: int = 64,
    metrics: Mapping[str, Metric] | None = None,
    device: str | torch.device = "auto",
    num_workers: int = 0,
) -> dict[str, float]:
    """Loss and metrics of ``model`` (eval mode) on ``dataset``: ``{"loss": ..., <metric>: ...}``.

    Values are means over batches, weighted by the number of valid points (or their summed weight) when
    ``loss_fn`` has a ``mask_value`` (:class:`~jetcloud.train.losses.MaskedLoss`: then the result is the exact
    mean over all valid points, independent of ``batch_size``), else by the number of samples.
    """
    device = resolve_device(device)
    model = unwrap(model).to(device)
    loader = _loader(dataset, batch_size, range(len(dataset)), num_workers=num_workers, seed=0, device=device)
    metrics = dict(metrics or {})
    sums = _evaluate_sums(model, loader, loss_fn, metrics, device, "none")
    n = sums[0] if sums[0] > 0 else 1.0
    return {"loss": sums[1] / n, **{name: sums[2 + i] / n for i, name in enumerate(metrics)}}


def predict(
    model: nn.Module,
    dataset: Dataset,
    batch_size: int = 64,
    *,
    device: str | torch.device = "auto",
    num_workers: int = 0,
    progress: bool = False,
) -> np.ndarray:
    """Model outputs (eval mode, no gradients) for every sample of ``dataset`` in order, as one numpy array.

    For the point-cloud models this is ``[N, L]`` float32 with 0 on padding points.
    """
    from tqdm.auto import tqdm

    device = resolve_device(device)
    model = unwrap(model).to(device)
    loader = _loader(dataset, batch_size, range(len(dataset)), num_workers=num_workers, seed=0, device=device)
    outputs = []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for batch in tqdm(loader, desc="predict", disable=not progress, leave=False):
                inputs, _, _ = _split_batch(batch, device)
                outputs.append(model(inputs).float().cpu().numpy())
    finally:
        model.train(was_training)
    if not outputs:
        return np.zeros((0,), np.float32)
    return np.concatenate(outputs)


def _write_history(path: Path, history: Sequence[Mapping[str, float]]) -> None:
    keys = list(_HISTORY_FIRST)
    for row in history:
        keys += [k for k in row if k not in keys and k not in _HISTORY_LAST]
    keys += list(_HISTORY_LAST)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys, restval="", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (int(v) if k == "epoch" else f"{v:.8g}") for k, v in row.items()})
    write_text(path, buffer.getvalue())


def _save(path: Path, state: Mapping[str, Any]) -> None:
    """Write a checkpoint atomically; a full disk is a :class:`~jetcloud.io.errors.DiskFullError` naming ``path``.

    Written through a Python file object: torch's own file writer loses the ``errno`` of a full disk (``RuntimeError:
    ... unexpected pos``), Python's keeps it.
    """
    from jetcloud.io.errors import disk_full_guard

    with disk_full_guard(path), atomic_path(path) as tmp, open(tmp, "wb") as handle:
        torch.save(dict(state), handle)


def fit(
    model: ModelOrFactory,
    train_dataset: Dataset,
    val_dataset: Dataset | None,
    loss_fn: Callable[..., Tensor],
    config: TrainConfig,
    out_dir: str | os.PathLike,
    *,
    metrics: Mapping[str, Metric] | None = None,
    resume: bool = True,
    callbacks: Sequence[Callback] = (),
    select_on: Callable[[nn.Module], float] | None = None,
) -> FitResult:
    """Train ``model`` and return its :class:`FitResult` (see the module docstring for files and protocol).

    Seeding: ``config.seed`` seeds the shuffle order, dropout and every global generator (``random``, numpy,
    torch) when training starts, and the initial weights when ``model`` is a factory: ``fit`` seeds ``random``,
    numpy and torch with ``config.seed`` (as ``nbtools.seed_everything``) and then calls it. A module passed in
    arrives with the caller's weights (seed before building it).

    Args:
        model: an ``nn.Module``, or a factory ``fn() -> nn.Module`` (e.g. ``functools.partial(models.get_model,
            "mlp", in_features=5)``) called after seeding. The module is moved to the device (wrapped in DDP under
            ``torchrun``); after ``fit`` it holds the weights of the last epoch (``FitResult.model``);
            :func:`load_weights` loads ``best.pt``.
        train_dataset, val_dataset: map-style datasets of dicts (``inputs``, ``target``, optional ``weight``);
            ``val_dataset`` may be None (early stopping and ``best.pt`` then use the training loss).
        loss_fn: ``loss_fn(pred, target)`` or, when batches carry a weight, ``loss_fn(pred, target, weight=w)``.
        config: :class:`TrainConfig`.
        out_dir: where ``last.pt``, ``best.pt`` and ``history.csv`` go.
        metrics: extra validation metrics ``name -> fn(pred, target) -> scalar tensor`` (history columns
            ``val_<name>``).
        resume: continue from ``out_dir/last.pt`` when it exists and was written with the same settings (only
            :data:`RESUMABLE_CHANGES` may differ, e.g. more ``epochs``); otherwise, or with ``resume=False``,
            training starts over and overwrites it (a warning names the changed settings). Never with
            ``config.checkpoint=False``.
        callbacks: ``fn(epoch, row)`` called on every rank after each epoch (after the checkpoint is written).
        select_on: ``fn(model) -> float`` (lower is better), called after each epoch's validation with the
            unwrapped model in eval mode; when given, it replaces the validation loss for ``best.pt`` and early
            stopping (history column ``val_select``). None: the validation loss, as before.
    """
    if len(train_dataset) == 0:  # type: ignore[arg-type]
        raise ValueError("the training dataset is empty")
    ctx = _setup_distributed(config)
    created = not Path(out_dir).exists()
    try:
        return _fit(
            model,
            train_dataset,
            val_dataset,
            loss_fn,
            config,
            Path(out_dir),
            dict(metrics or {}),
            resume,
            callbacks,
            ctx,
            select_on,
        )
    except BaseException:
        _remove_if_empty(Path(out_dir), created and ctx.is_main)
        raise
    finally:
        if ctx.owned and dist.is_initialized():
            gc.collect()  # free the DDP wrapper (and its reducer's reference to the group) before destroying it
            dist.destroy_process_group()


def _remove_if_empty(out_dir: Path, created: bool) -> None:
    """After a failed run: remove ``out_dir`` when this run created it and left nothing in it (never a user's)."""
    if created and out_dir.is_dir() and not any(out_dir.iterdir()):
        out_dir.rmdir()


def _fit(
    model: ModelOrFactory,
    train_dataset: Dataset,
    val_dataset: Dataset | None,
    loss_fn: Callable[..., Tensor],
    config: TrainConfig,
    out_dir: Path,
    metrics: dict[str, Metric],
    resume: bool,
    callbacks: Sequence[Callback],
    ctx: _Dist,
    select_on: Callable[[nn.Module], float] | None = None,
) -> FitResult:
    """The body of :func:`fit` once the process group is set up.

    Build the model of a factory (:func:`_build_model`), set up (:func:`_build_engine`), resume or start over
    (:func:`_resume_or_start`), build the loaders (:func:`_make_loaders`), then per epoch: train
    (:func:`_train_epoch`), validate (:func:`_epoch_row`), track the best loss and early stopping
    (:func:`_record_epoch`), write checkpoints and history (:func:`_save_epoch`), wait for every rank, call the
    callbacks.
    """
    engine = _build_engine(_build_model(model, config.seed), loss_fn, config, out_dir, ctx)
    progress = _resume_or_start(engine, resume)
    result_kw = {
        "out_dir": out_dir,
        "start_epoch": progress.start_epoch,
        "checkpoints": {"last": engine.last_path, "best": engine.best_path} if config.checkpoint else {},
        "model": engine.model,
    }
    if progress.start_epoch >= config.epochs or progress.stopped:
        stopped_note = ", stopped early" * progress.stopped
        log.info("%s: training already complete (%d epochs%s)", out_dir, progress.start_epoch, stopped_note)
        return FitResult(progress.history, progress.best_epoch, progress.best, progress.stopped, **result_kw)

    loaders = _make_loaders(engine, train_dataset, val_dataset)
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    for epoch in range(progress.start_epoch, config.epochs):
        t_epoch = time.perf_counter()
        lr, sums = _train_epoch(engine, loaders, epoch)
        row = _epoch_row(engine, loaders.val, metrics, epoch, lr, sums, t_epoch)
        if select_on is not None:
            row["val_select"] = _selection_value(engine.model, select_on)
        improved, monitored = _record_epoch(progress, row, epoch, config, validated=loaders.val is not None)
        _save_epoch(engine, progress, epoch, row, improved, monitored)
        ctx.barrier()
        for callback in callbacks:
            callback(epoch + 1, row)
        if progress.stopped:
            log.info("early stopping after epoch %d: no improvement for %d epochs", epoch + 1, progress.bad_epochs)
            break
    return FitResult(progress.history, progress.best_epoch, progress.best, progress.stopped, **result_kw)


# --------------------------------------------------------------------------------------------------------------
# the steps of _fit
# --------------------------------------------------------------------------------------------------------------


@dataclass
class _Engine:
    """What the steps of one :func:`fit` call work with (built once by :func:`_build_engine`)."""

    model: nn.Module  # the unwrapped model, on ``device``
    optimizer: torch.optim.Optimizer
    scheduler: Any  # None with schedule "none"
    scaler: torch.amp.GradScaler
    batchnorms: list[nn.modules.batchnorm._BatchNorm]
    device: torch.device
    amp: str  # config.amp, or "none" off CUDA
    config: TrainConfig
    ctx: _Dist
    loss_fn: Callable[..., Tensor]
    out_dir: Path

    @property
    def last_path(self) -> Path:
        return self.out_dir / LAST_NAME

    @property
    def best_path(self) -> Path:
        return self.out_dir / BEST_NAME

    @property
    def history_path(self) -> Path:
        return self.out_dir / HISTORY_NAME


@dataclass
class _Progress:
    """Where training stands after ``start_epoch`` completed epochs (what ``last.pt`` records besides states)."""

    start_epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best: float = math.inf
    best_epoch: int | None = None
    bad_epochs: int = 0
    stopped: bool = False


@dataclass
class _Loaders:
    """The model to train (DDP-wrapped under torchrun), the training sampler and loaders, and the steps per epoch."""

    train_model: nn.Module
    sampler: DistributedSampler
    train: DataLoader
    val: DataLoader | None
    steps: int


def _build_engine(
    model: nn.Module, loss_fn: Callable[..., Tensor], config: TrainConfig, out_dir: Path, ctx: _Dist
) -> _Engine:
    """Set-up step: move ``model`` to its device, build optimiser, schedule and AMP scaler (AMP is CUDA-only: off
    elsewhere, with a warning)."""
    device = resolve_device(config.device, ctx.local_rank if ctx.active else None)
    amp = config.amp
    if amp != "none" and device.type != "cuda":
        log.warning("amp=%r is CUDA-only; training in float32 on %s", amp, device)
        amp = "none"
    inner = model.to(device)
    optimizer = _make_optimizer(inner, config)
    return _Engine(
        model=inner,
        optimizer=optimizer,
        scheduler=_make_scheduler(optimizer, config),
        scaler=torch.amp.GradScaler("cuda", enabled=amp == "fp16"),
        batchnorms=_batchnorms(inner),
        device=device,
        amp=amp,
        config=config,
        ctx=ctx,
        loss_fn=loss_fn,
        out_dir=out_dir,
    )


def _resume_or_start(engine: _Engine, resume: bool) -> _Progress:
    """Resume step: continue from ``last.pt`` when :func:`_resumable_checkpoint` allows it (:func:`_restore`),
    otherwise start over with ``random``, numpy and torch seeded with ``seed + rank`` (dropout, augmentation and
    anything drawn from the global generators; the shuffle order is seeded separately from ``config.seed``)."""
    checkpoint = _resumable_checkpoint(engine, resume)
    if checkpoint is not None:
        return _restore(engine, checkpoint)
    _seed_globals(engine.config.seed + engine.ctx.rank)
    return _Progress()


def _seed_globals(seed: int) -> None:
    """Seed ``random``, numpy's global state and torch (every device) with ``seed``, as ``nbtools.seed_everything``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002
    torch.manual_seed(seed)


def _build_model(model: ModelOrFactory, seed: int) -> nn.Module:
    """``model`` itself, or the module its factory builds after :func:`_seed_globals` with ``seed`` (the same on
    every rank: identical initial weights for a seed, whatever the global generators held before)."""
    if isinstance(model, nn.Module):
        return model
    if not callable(model):
        raise TypeError(f"fit: model must be an nn.Module or a factory returning one, got {type(model).__name__}")
    _seed_globals(seed)
    built = model()
    if not isinstance(built, nn.Module):
        raise TypeError(f"fit: the model factory {model!r} returned {type(built).__name__}, not an nn.Module")
    return built


def _resumable_checkpoint(engine: _Engine, resume: bool) -> dict[str, Any] | None:
    """``last.pt`` when training may continue from it, else None.

    None without ``resume``, with ``config.checkpoint`` off, when the file is missing, or when it was written with
    settings other than :data:`RESUMABLE_CHANGES` (a warning names them). A checkpoint of another model raises
    :class:`CheckpointMismatchError`.
    """
    config, path = engine.config, engine.last_path
    if not (resume and config.checkpoint and path.is_file()):
        return None
    checkpoint = load_checkpoint(path, map_location=engine.device)
    _check_model(checkpoint, engine.model, path)
    diffs = changed_settings(checkpoint.get("config") or {}, config)
    if diffs:
        log.warning("%s was written with other settings (%s): starting over", path, "; ".join(diffs))
        return None
    return checkpoint


def _restore(engine: _Engine, checkpoint: Mapping[str, Any]) -> _Progress:
    """Load model, optimiser, schedule, scaler and this rank's RNG states from ``checkpoint``; its progress.

    With another number of processes than the checkpoint's, the RNG streams are re-seeded (a warning says so).
    """
    engine.model.load_state_dict(checkpoint["model_state"])
    engine.optimizer.load_state_dict(checkpoint["optimizer_state"])
    if engine.scheduler is not None and checkpoint.get("scheduler_state") is not None:
        engine.scheduler.load_state_dict(checkpoint["scheduler_state"])
    if checkpoint.get("scaler_state"):
        engine.scaler.load_state_dict(checkpoint["scaler_state"])
    progress = _Progress(
        start_epoch=int(checkpoint["epoch"]),
        history=[dict(row) for row in checkpoint["history"]],
        best=float(checkpoint["best_val_loss"]),
        best_epoch=checkpoint["best_epoch"],
        bad_epochs=int(checkpoint["bad_epochs"]),
        stopped=bool(checkpoint["stopped_early"]),
    )
    ctx, states = engine.ctx, checkpoint["rng"]
    _set_rng_state(states[ctx.rank] if len(states) == ctx.world else states[0])
    if len(states) != ctx.world:
        log.warning(
            "checkpoint written by %d process(es), resuming with %d: RNG streams re-seeded", len(states), ctx.world
        )
        torch.manual_seed(engine.config.seed + 1000 * progress.start_epoch + ctx.rank)
    log.info("resuming from %s after epoch %d", engine.last_path, progress.start_epoch)
    return progress


def _make_loaders(engine: _Engine, train_dataset: Dataset, val_dataset: Dataset | None) -> _Loaders:
    """Data step: wrap the model in DDP (several processes), shard the data and build the loaders.

    The training set is sharded by ``DistributedSampler`` (shuffled per epoch from ``seed``); its last batch is
    dropped when it would hold one sample and the model has BatchNorm. Validation shards are ``rank::world``.
    """
    config, ctx, device = engine.config, engine.ctx, engine.device
    train_model: nn.Module = engine.model
    if ctx.active:
        train_model = DistributedDataParallel(
            engine.model, device_ids=[device.index] if device.type == "cuda" else None
        )
    sampler = DistributedSampler(
        train_dataset, num_replicas=ctx.world, rank=ctx.rank, shuffle=config.shuffle, seed=config.seed, drop_last=False
    )
    per_rank = len(sampler)
    drop_last = bool(engine.batchnorms) and per_rank > 1 and per_rank % config.batch_size == 1
    if drop_last:
        log.info("dropping the last training batch of every epoch: it would hold 1 sample (BatchNorm needs 2)")
    loader_kw = {"num_workers": config.num_workers, "seed": config.seed, "device": device}
    train_loader = _loader(train_dataset, config.batch_size, sampler, drop_last=drop_last, **loader_kw)
    val_loader = None
    if val_dataset is not None and len(val_dataset) > 0:  # type: ignore[arg-type]
        shard = range(ctx.rank, len(val_dataset), ctx.world)  # type: ignore[arg-type]
        val_loader = _loader(val_dataset, config.batch_size, shard, **loader_kw)
    steps = len(train_loader)
    if config.max_steps_per_epoch is not None:
        steps = min(steps, config.max_steps_per_epoch)
    return _Loaders(train_model, sampler, train_loader, val_loader, steps)


def _train_epoch(engine: _Engine, loaders: _Loaders, epoch: int) -> tuple[float, list[float]]:
    """Epoch step: ``loaders.steps`` optimiser steps (:func:`_train_step`) on this rank's shard, then one schedule step.

    Sets the shuffle order and (with ``bn_momentum_schedule``) the BatchNorm momentum of ``epoch`` first. Returns
    the learning rate the epoch used and this rank's ``[samples, loss weight, weighted loss sum, weighted
    regularisation sum, seconds waiting for data, seconds training]``.
    """
    from tqdm.auto import tqdm

    config = engine.config
    loaders.sampler.set_epoch(epoch)
    if config.bn_momentum_schedule:
        keras = bn_momentum_for_epoch(epoch, config.epochs, config.bn_momentum_start, config.bn_momentum_end)
        for bn in engine.batchnorms:
            bn.momentum = 1.0 - keras
    lr = float(engine.optimizer.param_groups[0]["lr"])
    loaders.train_model.train()
    loss_sum = reg_sum = 0.0
    n_seen, seen_weight, wait = 0, 0.0, 0.0
    batches = iter(loaders.train)
    show = config.progress and engine.ctx.is_main
    bar = tqdm(total=loaders.steps, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not show, leave=False)
    t_train = time.perf_counter()
    for step in range(loaders.steps):
        t_wait = time.perf_counter()
        batch = next(batches)
        wait += time.perf_counter() - t_wait
        n, batch_weight, loss, value = _train_step(engine, loaders, batch, epoch, step)
        n_seen += n
        seen_weight += batch_weight
        loss_sum += loss * batch_weight
        reg_sum += (value - loss) * batch_weight
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{value:.4g}")
    bar.close()
    train_s = time.perf_counter() - t_train
    del batches
    if engine.scheduler is not None:
        engine.scheduler.step()
    return lr, [n_seen, seen_weight, loss_sum, reg_sum, wait, train_s]


def _train_step(
    engine: _Engine, loaders: _Loaders, batch: Any, epoch: int, step: int
) -> tuple[int, float, float, float]:
    """One optimiser step on ``batch``: ``(samples, loss weight of the batch, loss, loss + regularisation)``.

    A NaN or infinite loss on any rank raises :class:`NonFiniteLossError` on every rank (before the update).
    """
    ctx, device, optimizer, scaler = engine.ctx, engine.device, engine.optimizer, engine.scaler
    batch_weight = _batch_weight(engine.loss_fn, batch)
    inputs, target, weight = _split_batch(batch, device)
    with _autocast(device, engine.amp):
        pred = loaders.train_model(inputs)
    loss = _loss(engine.loss_fn, pred.float(), target, weight)
    reg_fn = getattr(engine.model, "regularization_loss", None)
    reg = reg_fn() if callable(reg_fn) else None
    total = loss if reg is None else loss + reg.float()
    value = float(total.detach())
    if ctx.any(not math.isfinite(value), device):
        raise NonFiniteLossError(
            f"non-finite training loss at epoch {epoch + 1}, batch {step + 1} (of {loaders.steps}): loss "
            f"{float(loss.detach())!r}, regularisation {None if reg is None else float(reg.detach())!r} "
            f"(on rank {ctx.rank}: {value!r}); check the inputs for NaN/inf, lower lr or set grad_clip"
        )
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(total).backward()
    if engine.config.grad_clip is not None:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(engine.model.parameters(), engine.config.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return int(inputs.shape[0]), batch_weight, float(loss.detach()), value


def _epoch_row(
    engine: _Engine,
    val_loader: DataLoader | None,
    metrics: Mapping[str, Metric],
    epoch: int,
    lr: float,
    sums: Sequence[float],
    t_epoch: float,
) -> dict[str, float]:
    """Validate step: the history row of ``epoch`` from every rank's training ``sums`` (:func:`_train_epoch`),
    the validation loss and metrics (:func:`_validate`) and the timings (``epoch_s`` from ``t_epoch``)."""
    ctx = engine.ctx
    n_total, weight_total, loss_total, reg_total, wait_total, train_s_total = ctx.sum(sums, engine.device)
    weight_total = weight_total if weight_total > 0 else 1.0
    row: dict[str, float] = {
        "epoch": epoch + 1,
        "train_loss": loss_total / weight_total,
        "train_reg": reg_total / weight_total,
    }
    row.update(_validate(engine, val_loader, metrics))
    mean_train_s = train_s_total / ctx.world
    row.update(
        {
            "lr": lr,
            "epoch_s": time.perf_counter() - t_epoch,
            "samples_per_s": n_total / mean_train_s if mean_train_s > 0 else math.nan,
            "data_wait_frac": wait_total / train_s_total if train_s_total > 0 else math.nan,
        }
    )
    return row


def _validate(engine: _Engine, val_loader: DataLoader | None, metrics: Mapping[str, Metric]) -> dict[str, float]:
    """``val_loss`` and ``val_<metric>`` over the validation shards of every rank (``val_loss`` NaN without a
    validation set)."""
    if val_loader is None:
        return {"val_loss": math.nan}
    sums = _evaluate_sums(engine.model, val_loader, engine.loss_fn, metrics, engine.device, engine.amp)
    sums = engine.ctx.sum(sums, engine.device)
    n_val = sums[0] if sums[0] > 0 else 1.0
    return {"val_loss": sums[1] / n_val, **{f"val_{name}": sums[2 + i] / n_val for i, name in enumerate(metrics)}}


def _selection_value(model: nn.Module, select_on: Callable[[nn.Module], float]) -> float:
    """``select_on(model)`` with the model in eval mode and without gradients (NaN becomes +inf: never best)."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            value = float(select_on(model))
    finally:
        model.train(was_training)
    return value if math.isfinite(value) else math.inf


def _record_epoch(
    progress: _Progress, row: dict[str, float], epoch: int, config: TrainConfig, validated: bool
) -> tuple[bool, float]:
    """Early-stopping step: append ``row`` to the history, update the best loss, the patience counter and
    ``progress.stopped``; returns ``(improved, monitored loss)``.

    The monitored loss is the validation loss, or the training loss without a validation set; an improvement
    must exceed ``config.min_delta``. Training stops after ``patience`` epochs without one (never after the last).
    """
    progress.history.append(row)
    monitored = row["val_select"] if "val_select" in row else row["val_loss"] if validated else row["train_loss"]
    improved = monitored < progress.best - config.min_delta
    if improved:
        progress.best, progress.best_epoch, progress.bad_epochs = monitored, epoch + 1, 0
    else:
        progress.bad_epochs += 1
    patience = config.patience
    progress.stopped = patience is not None and progress.bad_epochs >= patience and epoch + 1 < config.epochs
    return improved, monitored


def _save_epoch(
    engine: _Engine, progress: _Progress, epoch: int, row: Mapping[str, float], improved: bool, monitored: float
) -> None:
    """Checkpoint step: gather every rank's RNG states, then on rank 0 write ``best.pt`` (when ``improved``),
    ``last.pt`` (both only with ``config.checkpoint``) and ``history.csv``, and log the epoch."""
    config = engine.config
    rng = _gather_rng(engine.ctx) if config.checkpoint else []
    if not engine.ctx.is_main:
        return
    spec = model_spec(engine.model)
    if config.checkpoint:
        if improved:
            _save(
                engine.best_path,
                {
                    "format": CHECKPOINT_FORMAT,
                    "model": spec,
                    "model_state": engine.model.state_dict(),
                    "epoch": epoch + 1,
                    "val_loss": monitored,
                },
            )
        _save(engine.last_path, _last_state(engine, progress, epoch, spec, rng))
    _write_history(engine.history_path, progress.history)
    log.info(
        "epoch %d/%d: train %.5g, val %.5g, %.1f samples/s, data wait %.1f%%",
        epoch + 1,
        config.epochs,
        row["train_loss"],
        row["val_loss"],
        row["samples_per_s"],
        100 * row["data_wait_frac"],
    )


def _last_state(
    engine: _Engine, progress: _Progress, epoch: int, spec: Mapping[str, Any], rng: list[dict[str, Any]]
) -> dict[str, Any]:
    """The contents of ``last.pt`` after ``epoch``: everything :func:`_restore` needs to continue."""
    scheduler, scaler = engine.scheduler, engine.scaler
    return {
        "format": CHECKPOINT_FORMAT,
        "model": spec,
        "model_state": engine.model.state_dict(),
        "optimizer_state": engine.optimizer.state_dict(),
        "scheduler_state": scheduler.state_dict() if scheduler is not None else None,
        "scaler_state": scaler.state_dict() if scaler.is_enabled() else None,
        "epoch": epoch + 1,
        "best_val_loss": progress.best,
        "best_epoch": progress.best_epoch,
        "bad_epochs": progress.bad_epochs,
        "stopped_early": progress.stopped,
        "history": progress.history,
        "rng": rng,
        "config": asdict(engine.config),
        "world_size": engine.ctx.world,
    }
