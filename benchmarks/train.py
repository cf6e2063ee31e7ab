"""Training throughput: samples per second, peak memory and share of time waiting for data, per model.

Usage::

    python benchmarks/train.py                              # JetPointNet: synthetic clouds (L = 859, F = 6), CPU
    python benchmarks/train.py --data data/processed/demo/atlas_pointclouds --models small,attention
    python benchmarks/train.py --device cuda --steps 50     # on a GPU (every model, report size included)
    python benchmarks/train.py --task qg                    # quark/gluon classifiers (synthetic QG{K} clouds)
    python benchmarks/train.py --task qg --data data/processed/demo/qg --models mlp,particlenet_lite

Each model runs in its own subprocess (so that the peak resident memory belongs to that model alone) through the
real training loop, :func:`jetcloud.train.fit`, reading memory-mapped npz chunks through
:class:`jetcloud.train.PointCloudDataset`: epoch 1 warms up, then ``--repeats`` epochs of ``--steps`` steps are
measured and the fastest counts (the CPU of a shared machine is noisy; all measured values go to ``--json``, which
prints one JSON object instead of the table; ``--save PATH`` also writes it). Without
``--data`` the script writes synthetic point clouds of the report's shape into a temporary directory: L = 859
points of 6 features, sample lengths log-normal with a 99th percentile near L (median ~0.35 L), up to 19
focused-track points, cells, a few other-track points, padding; coordinates O(1) as with
``coordinates="centred"``, energies in GeV.

Columns: ``samples/s`` (training samples per second of the fastest measured epoch), ``ms/step``, ``data wait``
(share of the step time spent waiting for the next batch; target < 10 %), ``peak MB`` (peak resident set size of
the process on CPU, ``torch.cuda.max_memory_allocated`` on CUDA). For reference, the original trained a
3.1 M-parameter model at ~300 samples/s on an RTX 2080 Ti (batch 128, 0.42 s per step).

``--task qg`` measures the quark/gluon classifiers of :mod:`jetcloud.qg.train` the same way, each with its
training preset (optimizer, learning rate, batch size; AMP on CUDA only) and the report's K for its name
(``qg_train.default_k``). ``--data`` is a directory of ``QG{K}.h5`` files (notebook 07); without it each model
gets synthetic clouds of K points x 5 features (track pT, ECAL, HCAL, column, row) in the original's ascending
order with padding first, with log-normal hit counts around 700 (the demo jets' median), so most jets fill K.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from jetcloud.benchreport import report

#: name -> (registry name, model kwargs, batch size, CPU steps per epoch, GPU steps per epoch)
MODELS: dict[str, tuple[str, dict, int, int, int]] = {
    "small": ("pointnet", {"size_factor": 0.25, "tnet_size_factor": 0.25}, 24, 20, 50),
    "f1": ("pointnet", {"size_factor": 1.0}, 24, 6, 50),
    "report": ("pointnet", {"size_factor": 10.0, "faithful_tnet": True}, 24, 2, 20),
    "attention": ("pointnet_attention", {"size_factor": 0.25}, 24, 10, 50),
}
DEFAULT_MODELS = "small,f1,report,attention"
#: quark/gluon models measured by default with ``--task qg`` (every preset is accepted with --models)
DEFAULT_QG_MODELS = (
    "mlp,pfn,sparse_cnn_200,sparse_cnn_800,resnet_pc_256_s,resnet_pc_1024_m,particlenet_lite,"
    "particlenet,transformer_small,transformer"
)
#: full-size models left out of the default list on a CPU (particlenet: 8 samples/s on 2 cores, 12 minutes)
GPU_DEFAULT_ONLY = ("particlenet", "transformer")
QG_STEPS = {"cpu": 5, "cuda": 50}  # default steps per epoch for --task qg


def write_synthetic(root: Path, n_samples: int, length: int, chunk: int = 512, seed: int = 0) -> Path:
    """Synthetic point clouds with the npz layout of jetcloud.atlas.pointcloud (uncompressed, memory-mappable)."""
    rng = np.random.default_rng(seed)
    (root / "train").mkdir(parents=True, exist_ok=True)
    files = []
    for start in range(0, n_samples, chunk):
        n = min(chunk, n_samples - start)
        feats = np.zeros((n, length, 6), np.float32)
        feats[..., 5] = -1.0
        labels = np.full((n, length), -1.0, np.float32)
        lengths = np.clip(rng.lognormal(np.log(0.35 * length), 0.45, n).astype(int), 30, length)
        for i, m in enumerate(lengths):
            n_track = min(19, int(rng.integers(4, 20)))
            n_other = int(rng.integers(0, max(1, m // 20)))
            n_cell = m - n_track - n_other
            feats[i, :m, :3] = rng.normal(0.0, 0.3, (m, 3))
            feats[i, :m, 3] = np.abs(rng.normal(0.0, 0.1, m))
            feats[i, :m, 4] = rng.exponential(0.5, m)
            feats[i, :n_track, 5] = 1.0
            feats[i, n_track : n_track + n_cell, 5] = 0.0
            feats[i, n_track + n_cell : m, 5] = 2.0
            frac = rng.uniform(0.0, 1.0, n_cell) * (rng.uniform(size=n_cell) < 0.5)
            labels[i, n_track : n_track + n_cell] = feats[i, n_track : n_track + n_cell, 4] * frac
        name = f"train/chunk_{start // chunk:03d}.npz"
        np.savez(root / name, feats=feats, focus_labels=labels, track_pt=rng.uniform(1, 50, n).astype(np.float32))
        files.append(name)
    meta = {
        "length": length,
        "features": ["x", "y", "z", "distance_to_track", "energy", "type"],
        "n_features": 6,
        "labels": ["focus_labels"],
        "files": {"train": files},
        "synthetic": True,
    }
    (root / "point_cloud_meta.json").write_text(json.dumps(meta))
    return root


def synthetic_qg(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(X [n, k, 5] float32, Y [n])``: top-K clouds like ``QG{K}.h5`` (ascending energy, padding first)."""
    rng = np.random.default_rng(seed)
    hits = np.clip(rng.lognormal(np.log(700.0), 0.5, n).astype(int), 10, k)
    energy = rng.exponential(1.0, (n, k, 3)).astype(np.float32) * (rng.uniform(size=(n, k, 3)) < 0.4)
    energy[..., 1] += 0.01  # every hit has ECAL or HCAL energy
    x = np.concatenate([energy, rng.integers(0, 125, (n, k, 2)).astype(np.float32)], axis=-1)
    x[np.arange(k)[None, :] < (k - hits)[:, None]] = 0.0  # padding first
    x = np.take_along_axis(x, np.argsort((x[..., :3] ** 2).sum(-1), axis=1, kind="stable")[..., None], axis=1)
    return x, rng.integers(0, 2, n)


def run_one_qg(
    name: str,
    data: str | None,
    device: str,
    steps: int | None,
    batch: int | None,
    workers: int,
    repeats: int = 2,
    threads: int | None = None,
) -> dict:
    """Quark/gluon model ``name`` with its preset for (1 + repeats) epochs; the fastest measured epoch."""
    import torch

    if threads:
        torch.set_num_threads(threads)

    from jetcloud import models, train
    from jetcloud.qg import train as qg_train
    from jetcloud.qg.pointcloud import QG_FEATURES

    dev = train.resolve_device(device)
    settings = qg_train.preset(name, batch_size=batch)
    steps = steps or QG_STEPS[dev.type]
    n = steps * settings["batch_size"]
    if data:
        qg = qg_train.load_data("", name, source=data, val_fraction=0.01)
        if len(qg.train) < n:
            raise SystemExit(f"{data}: {len(qg.train)} training jets, need {n} (lower --steps or --batch-size)")
    else:
        x, y = synthetic_qg(n, qg_train.default_k(name))
        none = np.zeros(0, np.int64)
        qg = qg_train.QGData(
            train.ArrayDataset([{"X": x, "Y": y}], input_key="X", target_key="Y"),
            None,
            None,
            none,
            none,
            x.shape[1],
            tuple(QG_FEATURES),
            "detector",
            "synthetic",
        )
    torch.manual_seed(0)
    model = models.get_model(name, **qg_train.model_kwargs(name, qg))
    counts = models.parameter_counts(model)
    settings.update(
        epochs=1 + repeats,
        max_steps_per_epoch=steps,
        progress=False,
        checkpoint=False,
        device=device,
        num_workers=workers,
    )
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as out:
        result = train.fit(model, qg.train, None, qg_train.classification_loss, train.TrainConfig(**settings), out)
    return _row(name, dev, counts, settings["batch_size"], steps, result.history, qg.k, amp=settings["amp"])


def _row(name: str, dev, counts: dict, batch: int, steps: int, history: list[dict], length: int, **extra) -> dict:
    import torch

    row = max(history[1:], key=lambda r: r["samples_per_s"])  # epoch 1 warms up
    peak = (
        torch.cuda.max_memory_allocated()
        if dev.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    return {
        "model": name,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "params_M": counts["trainable"] / 1e6,
        "batch": batch,
        "steps": steps,
        "samples_per_s": row["samples_per_s"],
        "ms_per_step": 1000 * batch / row["samples_per_s"],
        "data_wait": row["data_wait_frac"],
        "peak_MB": peak / 2**20,
        "length": length,
        "all_samples_per_s": [r["samples_per_s"] for r in history[1:]],
        **extra,
    }


def run_one(
    name: str,
    data: str,
    device: str,
    steps: int | None,
    batch: int | None,
    workers: int,
    repeats: int = 2,
    threads: int | None = None,
) -> dict:
    """Train model ``name`` for (1 + repeats) epochs of ``steps`` steps; measurements of the fastest measured epoch."""
    import torch

    if threads:
        torch.set_num_threads(threads)

    from jetcloud import models, train

    registry_name, kwargs, default_batch, cpu_steps, gpu_steps = MODELS[name]
    dev = train.resolve_device(device)
    batch = batch or default_batch
    steps = steps or (gpu_steps if dev.type == "cuda" else cpu_steps)
    dataset = train.PointCloudDataset(data, "train", target_key="focus_labels")
    if len(dataset) < steps * batch:
        raise SystemExit(f"{data}: {len(dataset)} training samples, need {steps * batch} (lower --steps)")
    energy = train.feature_index(dataset.meta, "energy")
    type_index = train.feature_index(dataset.meta, "type")
    torch.manual_seed(0)
    model = models.get_model(
        registry_name, in_features=dataset.n_features, energy_index=energy, type_index=type_index, **kwargs
    )
    counts = models.parameter_counts(model)
    config = train.TrainConfig(
        epochs=1 + repeats,
        batch_size=batch,
        lr=1e-4,
        max_steps_per_epoch=steps,
        progress=False,
        checkpoint=False,
        device=device,
        num_workers=workers,
        grad_clip=10.0,
    )
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as out:
        result = train.fit(model, dataset, None, train.MaskedLoss("mse"), config, out)
    return _row(name, dev, counts, batch, steps, result.history, dataset.length)


def table(rows: list[dict]) -> str:
    """A fixed-width table of the measurements."""
    head = (
        f"{'model':<18} {'device':<7} {'params':>9} {'points':>6} {'batch':>5} {'steps':>5} {'samples/s':>10} "
        f"{'ms/step':>9} {'data wait':>9} {'peak MB':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['model']:<18} {r['device']:<7} {r['params_M']:>8.2f}M {r['length']:>6} {r['batch']:>5} "
            f"{r['steps']:>5} {r['samples_per_s']:>10.1f} {r['ms_per_step']:>9.0f} {100 * r['data_wait']:>8.1f}% "
            f"{r['peak_MB']:>8.0f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=("jetpointnet", "qg"), default="jetpointnet", help="which models")
    parser.add_argument(
        "--data",
        help="jetpointnet: point-cloud directory (point_cloud_meta.json + train/*.npz); "
        "qg: directory of QG{K}.h5 files; default synthetic",
    )
    parser.add_argument(
        "--models",
        help=f"comma-separated; jetpointnet: among {', '.join(MODELS)} (default all); "
        f"qg: any quark/gluon preset (default {DEFAULT_QG_MODELS}; on a CPU without "
        f"{', '.join(GPU_DEFAULT_ONLY)})",
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda, or auto (= cpu, plus cuda when available)")
    parser.add_argument("--steps", type=int, help="steps per epoch (default per model and device)")
    parser.add_argument("--batch-size", type=int, help="default: 24 (the report's); qg: the preset's")
    parser.add_argument("--length", type=int, default=859, help="synthetic: points per sample (report: 859)")
    parser.add_argument("--samples", type=int, default=2048, help="synthetic: number of samples")
    parser.add_argument("--workers", type=int, help="DataLoader workers (default 0 on CPU, 4 on CUDA)")
    parser.add_argument("--repeats", type=int, default=2, help="measured epochs after the warm-up (the fastest counts)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", action="store_true", help="print one JSON object (the rows) instead of the table")
    parser.add_argument("--save", help="also write the JSON object to this file (benchmarks/results/train.json)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one model in this process
    args = parser.parse_args(argv)

    run = run_one_qg if args.task == "qg" else run_one
    if args.one:
        row = run(
            args.one, args.data, args.device, args.steps, args.batch_size, args.workers or 0, args.repeats, args.threads
        )
        print("RESULT " + json.dumps(row), flush=True)
        return 0

    import torch

    from jetcloud.qg.train import PRESETS

    known = PRESETS if args.task == "qg" else MODELS
    models = args.models or (DEFAULT_QG_MODELS if args.task == "qg" else DEFAULT_MODELS)
    names = [n.strip() for n in models.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown {args.task} model(s) {unknown}; choose among {', '.join(known)}")

    say = functools.partial(print, file=sys.stderr if args.json else sys.stdout, flush=True)
    devices = [args.device] if args.device != "auto" else ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None and args.task == "jetpointnet":
            t0 = time.perf_counter()
            data = str(write_synthetic(Path(tmp) / "clouds", args.samples, args.length))
            say(f"synthetic point clouds: {args.samples} x {args.length} x 6 in {time.perf_counter() - t0:.1f} s")
        rows = []
        for device in devices:
            for name in names:
                if device == "cpu" and not args.models and name in GPU_DEFAULT_ONLY:
                    continue
                workers = args.workers if args.workers is not None else (4 if device == "cuda" else 0)
                cmd = [
                    sys.executable,
                    __file__,
                    "--task",
                    args.task,
                    "--one",
                    name,
                    "--device",
                    device,
                    "--workers",
                    str(workers),
                ] + (["--data", data] if data else [])
                if args.steps:
                    cmd += ["--steps", str(args.steps)]
                if args.batch_size:
                    cmd += ["--batch-size", str(args.batch_size)]
                cmd += ["--repeats", str(args.repeats)] + (["--threads", str(args.threads)] if args.threads else [])
                t0 = time.perf_counter()
                done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
                lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
                if done.returncode != 0 or not lines:
                    print(f"{name} on {device} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
                    continue
                rows.append(json.loads(lines[-1][len("RESULT ") :]))
                say(f"{name} on {device}: {rows[-1]['samples_per_s']:.1f} samples/s ({time.perf_counter() - t0:.0f} s)")
    figures = {
        "task": args.task,
        "data": args.data or "synthetic",
        "rows": rows,
        "data_wait_max": max((r["data_wait"] for r in rows), default=None),
        "peak_rss_mib": max((r["peak_MB"] for r in rows if r["device"] == "cpu"), default=None),
        "goal": {"data_wait_max": 0.1},
    }
    line = report(f"train_{args.task}", figures, save=args.save)
    if args.json:
        print(line)
        return 0 if rows else 1
    print()
    print(f"threads: {rows[0]['threads'] if rows else '?'}")
    print(table(rows))
    return 0 if rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
