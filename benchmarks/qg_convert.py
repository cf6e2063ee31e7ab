"""Benchmark: E2E images -> point clouds -> top-K (notebook 07) against the raw HDF5 read of the same jets.

    python benchmarks/qg_convert.py [--input data/raw/demo/qg/quark_gluon.h5] [--ks 200 800] [--workers 1]

Times (1) reading every image of the file with h5py (``jetcloud.qg.e2e.iter_e2e``, the floor any conversion
pays) and (2) the whole conversion (``jetcloud.qg.pointcloud.convert_e2e``: hit counts, point clouds, top-K
for each K, compressed HDF5 output), each in a fresh process so that its peak RSS is its own. Prints jets per
second, the conversion / read time ratio (target: <= 1.5 on one worker) and peak memory. Without an input file
it first writes a synthetic E2E file of ``--jets`` random sparse jets (hit densities like the simulated ones).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _read(path: str) -> dict:
    from jetcloud.qg.e2e import iter_e2e

    t0, c0, n = time.perf_counter(), time.process_time(), 0
    for split in ("train", "test"):
        for images, _ in iter_e2e(path, split, block=512):
            n += len(images)
    return {"jets": n, "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}


def _convert(path: str, ks: list[int], workers: int) -> dict:
    from jetcloud.qg.pointcloud import convert_e2e

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        out = convert_e2e(path, Path(tmp) / "qg", ks, workers=workers, progress=False, manifest=False)
        wall = time.perf_counter() - t0
    return {"jets": sum(out["jets"].values()), "wall_s": wall, "cpu_s": out["cpu_s"], "max_hit": out["max_hit"]}


def _synthetic(path: Path, n: int, seed: int = 1) -> None:
    from jetcloud.qg.e2e import E2EWriter

    rng = np.random.default_rng(seed)
    n_test = n // 10
    with E2EWriter(path, n_train=n - n_test, n_test=n_test) as w:
        for split, total in (("train", n - n_test), ("test", n_test)):
            for start in range(0, total, 256):
                m = min(256, total - start)
                img = np.zeros((m, 125, 125, 3), np.float32)
                hit = rng.random((m, 125, 125, 3)) < np.array([0.006, 0.016, 0.03])
                img[hit] = rng.exponential(1.0, hit.sum()).astype(np.float32)
                meta = np.stack([rng.uniform(70, 200, m), rng.uniform(5, 40, m), rng.integers(0, 2, m)], 1)
                w.append(split, img, meta.astype(np.float32))


def _child(args: list[str]) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", default="data/raw/demo/qg/quark_gluon.h5")
    parser.add_argument("--ks", type=int, nargs="+", default=[200, 800])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--jets", type=int, default=5000, help="size of the synthetic file when --input is missing")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        what, path, *rest = args.child
        res = _read(path) if what == "read" else _convert(path, [int(k) for k in rest[1:]], int(rest[0]))
        res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(res))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.input)
        if not path.is_file():
            path = Path(tmp) / "synthetic.h5"
            print(f"{args.input} not found: writing {args.jets} synthetic jets to {path}")
            _synthetic(path, args.jets)
        size_mb = path.stat().st_size / 2**20
        read = _child(["read", str(path)])
        conv = _child(["convert", str(path), str(args.workers), *map(str, args.ks)])
    print(f"input: {path.name}, {read['jets']} jets, {size_mb:.0f} MB; K = {args.ks}; max_hit {conv['max_hit']}")
    print(
        f"raw HDF5 read : {read['jets'] / read['wall_s']:8.0f} jets/s  ({read['wall_s']:.1f} s, "
        f"peak RSS {read['peak_rss_mb']:.0f} MB)"
    )
    print(
        f"conversion    : {conv['jets'] / conv['wall_s']:8.0f} jets/s  ({conv['wall_s']:.1f} s with {args.workers} "
        f"worker(s), peak RSS {conv['peak_rss_mb']:.0f} MB in the main process)"
    )
    print(f"ratio         : {conv['wall_s'] / read['wall_s']:8.2f} x the read time (target <= 1.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
