"""Masked point-wise losses: only valid points (``target != mask_value``, -1 on track points and padding) count.

Normalisation (``original_normalisation=False``, the default): the mean over the valid points of the batch,

    loss = sum_{valid} l(pred, target) / n_valid        (0 when the batch has no valid point)

With a per-point ``weight`` it is the weighted mean ``sum w l / sum w`` over valid points.

``original_normalisation=True`` reproduces the report's ``masked_*_loss`` (``docs/jetpointnet.md``):

    loss = sum_{valid} l(pred, target) / n_valid / batch_size

i.e. the mean over valid points divided once more by the batch size (Keras' ``reduce_sum`` over the batch
followed by a division by ``reduce_sum(mask)``, then Keras' own averaging of a scalar over ``batch_size``
samples). It makes the loss, and with Adam nothing else (Adam is scale-invariant) but with SGD or gradient
clipping the effective step, depend on the batch size; it is available for side-by-side comparisons only.

Under DistributedDataParallel each rank normalises by its own valid points and the gradients are averaged over
ranks: identical to one process with the whole batch when every rank holds the same number of valid points,
a small re-weighting otherwise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

__all__ = [
    "LOSS_KINDS",
    "valid_mask",
    "masked_loss",
    "masked_mse",
    "masked_mae",
    "masked_bce",
    "masked_huber",
    "MaskedLoss",
    "cell_track_loss",
    "CellTrackLoss",
]

#: Point-wise losses: squared error, absolute error, binary cross-entropy, Huber.
LOSS_KINDS: tuple[str, ...] = ("mse", "mae", "bce", "huber")


def valid_mask(target: Tensor, mask_value: float = -1.0) -> Tensor:
    """Bool mask of the points that count: ``target != mask_value``."""
    return target != mask_value


def _pointwise(kind: str, pred: Tensor, target: Tensor, *, from_logits: bool, huber_delta: float) -> Tensor:
    if kind == "mse":
        return (pred - target) ** 2
    if kind == "mae":
        return (pred - target).abs()
    if kind == "huber":
        return F.huber_loss(pred, target, reduction="none", delta=huber_delta)
    if kind == "bce":
        if from_logits:
            return F.binary_cross_entropy_with_logits(pred, target, reduction="none")
        return F.binary_cross_entropy(pred.clamp(1e-7, 1 - 1e-7), target, reduction="none")
    raise ValueError(f"unknown loss kind {kind!r}; expected one of {', '.join(LOSS_KINDS)}")


def masked_loss(
    pred: Tensor,
    target: Tensor,
    kind: str = "mse",
    *,
    weight: Tensor | None = None,
    mask_value: float = -1.0,
    original_normalisation: bool = False,
    from_logits: bool = True,
    huber_delta: float = 1.0,
    scale: float = 1.0,
) -> Tensor:
    """Masked point-wise loss of ``pred`` against ``target`` (same shape, e.g. ``[B, L]``), a scalar tensor.

    ``scale`` multiplies predictions and targets of the valid points before the point-wise loss (e.g. 1e-3 to
    train on MeV labels with a GeV-scale loss, so that it adds sensibly to regularisers and gradient clipping).
    ``kind`` is one of :data:`LOSS_KINDS`. For ``"bce"`` the target must be in [0, 1] on valid points and
    ``pred`` is a logit (``from_logits=True``) or a probability. Masked points never contribute, not even a NaN
    or an infinity in ``pred`` there. See the module docstring for the normalisation.
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} differs from target shape {tuple(target.shape)}")
    mask = valid_mask(target, mask_value)
    safe_target = torch.where(mask, target, torch.zeros_like(target)) * scale
    safe_pred = torch.where(mask, pred, torch.zeros_like(pred)) * scale
    point = _pointwise(kind, safe_pred, safe_target, from_logits=from_logits, huber_delta=huber_delta)
    point = torch.where(mask, point, torch.zeros_like(point))
    if weight is not None:
        if weight.shape != target.shape:
            raise ValueError(f"weight shape {tuple(weight.shape)} differs from target shape {tuple(target.shape)}")
        w = torch.where(mask, weight, torch.zeros_like(weight))
        norm = w.sum()
        total = (point * w).sum()
    else:
        norm = mask.sum().to(point.dtype)
        total = point.sum()
    floor = torch.finfo(point.dtype).tiny if weight is not None else 1.0  # no valid point (or weight): loss 0
    loss = total / norm.clamp(min=floor)
    if original_normalisation:
        loss = loss / max(int(target.shape[0]), 1)
    return loss


def masked_mse(pred: Tensor, target: Tensor, **kwargs: object) -> Tensor:
    """:func:`masked_loss` with ``kind="mse"`` (the report's training loss)."""
    return masked_loss(pred, target, "mse", **kwargs)


def masked_mae(pred: Tensor, target: Tensor, **kwargs: object) -> Tensor:
    """:func:`masked_loss` with ``kind="mae"`` (the report's metric)."""
    return masked_loss(pred, target, "mae", **kwargs)


def masked_bce(pred: Tensor, target: Tensor, **kwargs: object) -> Tensor:
    """:func:`masked_loss` with ``kind="bce"`` (logits by default)."""
    return masked_loss(pred, target, "bce", **kwargs)


def masked_huber(pred: Tensor, target: Tensor, **kwargs: object) -> Tensor:
    """:func:`masked_loss` with ``kind="huber"`` (``huber_delta`` 1 as in the original)."""
    return masked_loss(pred, target, "huber", **kwargs)


class MaskedLoss(nn.Module):
    """A configured :func:`masked_loss`, callable as ``loss_fn(pred, target, weight=None)`` (the loop's API)."""

    def __init__(
        self,
        kind: str = "mse",
        *,
        mask_value: float = -1.0,
        original_normalisation: bool = False,
        from_logits: bool = True,
        huber_delta: float = 1.0,
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        if kind not in LOSS_KINDS:
            raise ValueError(f"unknown loss kind {kind!r}; expected one of {', '.join(LOSS_KINDS)}")
        self.kind = kind
        self.mask_value = float(mask_value)
        self.original_normalisation = bool(original_normalisation)
        self.from_logits = bool(from_logits)
        self.huber_delta = float(huber_delta)
        self.scale = float(scale)

    def forward(self, pred: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
        """The masked loss (scalar)."""
        return masked_loss(
            pred,
            target,
            self.kind,
            weight=weight,
            mask_value=self.mask_value,
            original_normalisation=self.original_normalisation,
            from_logits=self.from_logits,
            huber_delta=self.huber_delta,
            scale=self.scale,
        )

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, original_normalisation={self.original_normalisation}"


def cell_track_loss(
    pred: Tensor,
    target: Tensor,
    weight: Tensor,
    *,
    cell_weight: float = 1.0,
    track_weight: float = 1.0,
    mask_value: float = -1.0,
    min_target: float = 0.1,
) -> Tensor:
    """Loss of a two-output model (per-point fraction logits and a per-sample log energy), a scalar tensor.

    ``pred [B, L + 1]``: ``[:, :L]`` per-point logits, ``[:, L]`` the predicted log energy. ``target [B, L + 1]``:
    ``[:, :L]`` the per-point fractions in [0, 1] (``mask_value`` on points without a label), ``[:, L]`` the true
    energy (> 0). ``weight [B, L + 1]``: ``[:, :L]`` the per-point energies (negative ones count 0), ``[:, L]``
    the per-sample weight (0 drops a sample).

    ``cell_weight x`` the energy-weighted soft-label cross-entropy ``sum_i E_i BCE(logit_i, f_i) / sum_i E_i``
    over the labelled points of the batch (so that the energetic cells, where the energy is, dominate without a
    single cell's squared error swamping the rest), ``+ track_weight x`` the mean of ``w |log E_pred - log
    E_true|`` over the samples with ``E_true >= min_target`` (a relative error, so that a 2 GeV and a 200 GeV
    track count alike; its minimum is the median of the response).
    """
    if pred.shape != target.shape or weight.shape != target.shape:
        raise ValueError(
            f"pred {tuple(pred.shape)}, target {tuple(target.shape)} and weight {tuple(weight.shape)} must agree"
        )
    frac, energy = target[:, :-1], target[:, -1]
    mask = valid_mask(frac, mask_value)
    e_cell = torch.where(mask, weight[:, :-1].clamp(min=0), torch.zeros_like(frac))
    bce = F.binary_cross_entropy_with_logits(pred[:, :-1], torch.where(mask, frac, 0).clamp(0, 1), reduction="none")
    cell = (bce * e_cell).sum() / e_cell.sum().clamp(min=torch.finfo(bce.dtype).tiny)
    use = (energy >= min_target) & (weight[:, -1] > 0)
    log_true = torch.log(torch.where(use, energy, torch.ones_like(energy)))
    err = torch.where(use, (pred[:, -1] - log_true).abs() * weight[:, -1], torch.zeros_like(energy))
    track = err.sum() / use.sum().clamp(min=1)
    return cell_weight * cell + track_weight * track


class CellTrackLoss(nn.Module):
    """A configured :func:`cell_track_loss`, callable as ``loss_fn(pred, target, weight)`` (the loop's API)."""

    def __init__(
        self, cell_weight: float = 1.0, track_weight: float = 1.0, mask_value: float = -1.0, min_target: float = 0.1
    ) -> None:
        super().__init__()
        self.cell_weight, self.track_weight = float(cell_weight), float(track_weight)
        # not ``mask_value``: the loop would then weight batches by their labelled points, not their samples
        self.label_mask_value, self.min_target = float(mask_value), float(min_target)

    def forward(self, pred: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
        """The combined loss (scalar); ``weight`` is required."""
        if weight is None:
            raise ValueError("CellTrackLoss needs a weight: the per-point energies and the per-sample weights")
        return cell_track_loss(
            pred,
            target,
            weight,
            cell_weight=self.cell_weight,
            track_weight=self.track_weight,
            mask_value=self.label_mask_value,
            min_target=self.min_target,
        )

    def extra_repr(self) -> str:
        return f"cell_weight={self.cell_weight}, track_weight={self.track_weight}"
