"""Training for both workflows: masked losses, memory-mapped point-cloud datasets and the one training loop.

Imports core modules, :mod:`jetcloud.io` and torch; never a workflow (:mod:`jetcloud.atlas`, :mod:`jetcloud.qg`).

::

    from jetcloud import models, train

    train_ds = train.PointCloudDataset(root, "train", target_key="focus_labels")
    val_ds = train.PointCloudDataset(root, "val", target_key="focus_labels")
    model = models.get_model("pointnet", **train.model_inputs_from_meta(train_ds.meta), size_factor=1)
    result = train.fit(model, train_ds, val_ds, train.MaskedLoss("mse"), train.TrainConfig(epochs=5), out_dir)
    pred = train.predict(model, test_ds, batch_size=64)      # [N, L] numpy

Under ``torchrun --nproc_per_node K script.py`` the same ``fit`` call trains with DistributedDataParallel.
"""

from jetcloud.train.data import (
    ArrayDataset,
    PointCloudDataset,
    PointCloudFormatError,
    collate_batch,
    feature_index,
    load_meta,
    model_inputs_from_meta,
    npz_memmap,
    split_files,
)
from jetcloud.train.loop import (
    CheckpointMismatchError,
    FitResult,
    NonFiniteLossError,
    TrainConfig,
    bn_momentum_for_epoch,
    evaluate,
    fit,
    load_checkpoint,
    load_weights,
    model_spec,
    predict,
    resolve_device,
    unwrap,
)
from jetcloud.train.losses import (
    LOSS_KINDS,
    CellTrackLoss,
    MaskedLoss,
    cell_track_loss,
    masked_bce,
    masked_huber,
    masked_loss,
    masked_mae,
    masked_mse,
    valid_mask,
)

__all__ = [
    "ArrayDataset",
    "PointCloudDataset",
    "PointCloudFormatError",
    "collate_batch",
    "feature_index",
    "load_meta",
    "model_inputs_from_meta",
    "npz_memmap",
    "split_files",
    "CheckpointMismatchError",
    "FitResult",
    "NonFiniteLossError",
    "TrainConfig",
    "bn_momentum_for_epoch",
    "evaluate",
    "fit",
    "load_checkpoint",
    "load_weights",
    "model_spec",
    "predict",
    "resolve_device",
    "unwrap",
    "LOSS_KINDS",
    "MaskedLoss",
    "CellTrackLoss",
    "cell_track_loss",
    "masked_bce",
    "masked_huber",
    "masked_loss",
    "masked_mae",
    "masked_mse",
    "valid_mask",
]
