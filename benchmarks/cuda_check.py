"""The CUDA paths on a GPU machine: AMP training through the one loop, and DistributedDataParallel over NCCL.

Usage (on a machine with a CUDA build of torch; prints one JSON object and exits non-zero on the first failure)::

    python benchmarks/cuda_check.py                 # AMP (bf16, fp16) through train.fit, NCCL DDP
    torchrun --nproc_per_node 2 benchmarks/cuda_check.py --ddp-only   # NCCL DDP with one rank per GPU

Checks, each reported as ``ok`` or the error:

- ``amp_<mode>``: :func:`jetcloud.train.fit` trains a small JetPointNet for two epochs on synthetic clouds with
  ``amp="bf16"`` / ``"fp16"`` (autocast, plus GradScaler for fp16); the forward pass must run in the reduced
  precision (checked with a hook on the first linear layer) and the losses stay finite.
- ``ddp_nccl``: a NCCL process group (one rank per visible GPU when launched with torchrun; a single rank
  otherwise), an all-reduce, and one DDP step of the same model; with one rank this exercises the NCCL
  library and the DDP wrapper, not the gradient exchange between GPUs (that needs two GPUs).

Speed is measured by ``benchmarks/train.py --device cuda`` (samples per second per model); this script only
checks that the paths work.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from jetcloud import models, train


def _data(n: int = 256, length: int = 128) -> train.ArrayDataset:
    """Synthetic ATLAS-like clouds: 6 features (x, y, z, distance, energy, type), every point a cell."""
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(n, length, 6)).astype(np.float32)
    feats[..., 4] = rng.exponential(1.0, size=(n, length))
    feats[..., 5] = 0.0
    target = (0.5 * feats[..., 4]).astype(np.float32)
    return train.ArrayDataset([{"feats": feats, "focus_labels": target}], target_key="focus_labels")


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return models.get_model("pointnet", size_factor=0.25, tnet_size_factor=0.25)


def check_amp(mode: str) -> dict:
    """Train two epochs with autocast in ``mode`` and report the dtype seen by the first linear layer."""
    model = _model()
    seen: list[torch.dtype] = []
    first_linear = next(m for m in model.modules() if isinstance(m, torch.nn.Linear | torch.nn.Conv1d))
    first_linear.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    data = _data()
    config = train.TrainConfig(epochs=2, batch_size=32, lr=1e-3, device="cuda", amp=mode, progress=False, seed=1)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        result = train.fit(model, data, data, train.MaskedLoss("mse"), config, out)
    losses = [row["train_loss"] for row in result.history]
    expected = torch.bfloat16 if mode == "bf16" else torch.float16
    if expected not in seen:
        raise AssertionError(f"autocast {mode}: the first linear layer ran in {sorted(set(map(str, seen)))}")
    if not all(np.isfinite(losses)):
        raise AssertionError(f"non-finite losses {losses}")
    return {"losses": losses, "seconds": round(time.perf_counter() - t0, 2)}


def check_ddp() -> dict:
    """NCCL process group, all-reduce and one DDP step (one rank per GPU)."""
    owned = not dist.is_initialized()
    if owned:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29511")
        os.environ.setdefault("RANK", "0")
        os.environ.setdefault("WORLD_SIZE", "1")
        dist.init_process_group("nccl")
    rank, world = dist.get_rank(), dist.get_world_size()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local)
    value = torch.ones(1, device="cuda") * (rank + 1)
    dist.all_reduce(value)
    if value.item() != world * (world + 1) / 2:
        raise AssertionError(f"all_reduce gave {value.item()}")
    model = torch.nn.parallel.DistributedDataParallel(_model().cuda(), device_ids=[local])
    x = torch.randn(8, 64, 6, device="cuda")
    x[..., 4], x[..., 5] = x[..., 4].abs(), 0.0  # energies >= 0, every point a cell
    loss = model(x).square().mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads or not all(torch.isfinite(g).all() for g in grads):
        raise AssertionError("DDP step produced no or non-finite gradients")
    if owned:
        dist.destroy_process_group()
    return {"backend": "nccl", "world_size": world, "nccl_version": ".".join(map(str, torch.cuda.nccl.version()))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ddp-only", action="store_true", help="only the NCCL DDP check (for torchrun)")
    parser.add_argument("--json", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(json.dumps({"error": "torch sees no CUDA device"}))
        return 1
    report: dict = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name(0),
        "devices": torch.cuda.device_count(),
    }
    checks = {"ddp_nccl": check_ddp} if args.ddp_only else {"amp_bf16": lambda: check_amp("bf16")}
    if not args.ddp_only:
        checks |= {"amp_fp16": lambda: check_amp("fp16"), "ddp_nccl": check_ddp}
    failed = False
    for name, check in checks.items():
        try:
            report[name] = {"ok": True, **check()}
        except Exception as err:  # report every check, then fail
            report[name] = {"ok": False, "error": f"{type(err).__name__}: {err}"}
            failed = True
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
