"""Helper of tests/test_train.py::test_ddp_matches_single_process (not a test module).

``python -m torch.distributed.run --standalone --nproc_per_node 2 tests/ddp_fit_worker.py OUT_DIR BATCH``
trains :func:`build_model` on :func:`make_dataset` with :func:`jetcloud.train.fit` under DDP (gloo on CPU); the
test runs the same in one process with twice the batch and compares the weights.

The model has no BatchNorm and no dropout, and every point is valid, so 2 ranks x batch b and 1 process x
batch 2b see the same samples per step (DistributedSampler's order depends only on seed and epoch) and the
same averaged gradient.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from torch import nn

from jetcloud import train

EPOCHS = 3


class TinyPointRegressor(nn.Module):
    """A per-point MLP ``[B, L, F] -> [B, L]``."""

    def __init__(self, n_features: int = 4, hidden: int = 8) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.hparams = {"n_features": n_features, "hidden": hidden}

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Per-point output."""
        return self.net(feats).squeeze(-1)


def build_model() -> TinyPointRegressor:
    """The same initial weights in every process."""
    torch.manual_seed(0)
    return TinyPointRegressor()


def make_dataset(n: int = 32, length: int = 6, n_features: int = 4) -> train.ArrayDataset:
    """Deterministic regression data, every point valid."""
    rng = np.random.default_rng(7)
    feats = rng.normal(size=(n, length, n_features)).astype(np.float32)
    target = (np.sin(feats[..., 0]) + 0.5 * feats[..., 1]).astype(np.float32)
    return train.ArrayDataset([{"feats": feats, "y": target}], target_key="y")


def config(batch_size: int) -> train.TrainConfig:
    """The training settings shared by the DDP and the single-process run."""
    return train.TrainConfig(epochs=EPOCHS, batch_size=batch_size, lr=0.05, device="cpu", progress=False, seed=3)


def main(out_dir: str, batch_size: int) -> None:
    """Train under torchrun and write ``out_dir/last.pt`` (rank 0)."""
    torch.set_num_threads(1)
    data = make_dataset()
    train.fit(build_model(), data, data, train.MaskedLoss("mse"), config(batch_size), out_dir)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
