"""Benchmark: E2E images -> point clouds -> top-K (notebook 07) against the raw HDF5 read of the same jets.

    python benchmarks/qg_convert.py [--input data/raw/demo/qg/quark_gluon.h5] [--ks 200 800] [--workers 1]
                                    [--compression lzf] [--repeats 3] [--json] [--save PATH]

Times (1) reading every image of the file with h5py (``jetcloud.qg.e2e.iter_e2e``, the floor any conversion
pays) and (2) the whole conversion (``jetcloud.qg.pointcloud.convert_e2e``: hit counts, point clouds, top-K
for each K, compressed HDF5 output), back to back in one process, ``--repeats`` times after one warm-up read
(so that a shared machine's load hits both alike). Prints jets per second, the conversion / read time ratio
``convert_over_read`` (the median of the repeats; target: <= 1.5 on one worker), the CPU split and peak memory;
``--json`` prints one JSON object instead, ``--save`` also writes it. Without an input file it first writes a
synthetic E2E file of ``--jets`` random sparse jets (hit densities like the simulated ones).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from jetcloud.benchreport import median_ratio, peak_rss_mib, report, timed


def _read(path: str) -> dict:
    """Every image of both splits read with h5py (the floor any conversion pays)."""
    from jetcloud.qg.e2e import iter_e2e

    def run() -> int:
        n = 0
        for split in ("train", "test"):
            for images, _ in iter_e2e(path, split, block=512):
                n += len(images)
        return n

    n, wall, cpu = timed(run)
    return {"jets": n, "wall_s": wall, "cpu_s": cpu}


def _convert(path: str, ks: list[int], workers: int, compression: str) -> dict:
    """The whole conversion of notebook 07 (``convert_e2e``) into a temporary directory."""
    from jetcloud.qg.pointcloud import convert_e2e

    with tempfile.TemporaryDirectory() as tmp:
        out, wall, _ = timed(
            lambda: convert_e2e(
                path, Path(tmp) / "qg", ks, workers=workers, compression=compression, progress=False, manifest=False
            )
        )
        size = sum(f.stat().st_size for f in (Path(tmp) / "qg").glob("*.h5"))
    return {
        "jets": sum(out["jets"].values()),
        "wall_s": wall,
        "cpu_s": out["cpu_s"],
        "max_hit": out["max_hit"],
        "output_mb": size / 2**20,
    }


def measure(path: str, ks: list[int], workers: int, compression: str, repeats: int) -> dict:
    """``repeats`` x (read, then convert) back to back in this process; the ratios' medians and every figure."""
    _read(path)  # warm-up: the file in the page cache for every timed read alike
    pairs = [(_read(path), _convert(path, ks, workers, compression)) for _ in range(repeats)]
    wall = median_ratio([(c["wall_s"], r["wall_s"]) for r, c in pairs])
    cpu = median_ratio([(c["cpu_s"], r["cpu_s"]) for r, c in pairs])
    jets = pairs[0][0]["jets"]
    med = {key: statistics.median(p[i][key] for p in pairs) for i, key in ((0, "wall_s"), (0, "cpu_s"))} | {
        "conv_" + key: statistics.median(p[1][key] for p in pairs) for key in ("wall_s", "cpu_s")
    }
    return {
        "input": Path(path).name,
        "input_mb": Path(path).stat().st_size / 2**20,
        "jets": jets,
        "ks": ks,
        "workers": workers,
        "compression": compression,
        "repeats": repeats,
        "max_hit": pairs[0][1]["max_hit"],
        "output_mb": pairs[0][1]["output_mb"],
        "read_jets_per_s": jets / med["wall_s"],
        "convert_jets_per_s": jets / med["conv_wall_s"],
        "cpu_s": {"read": med["cpu_s"], "convert": med["conv_cpu_s"]},
        "wall_s": {"read": med["wall_s"], "convert": med["conv_wall_s"]},
        "convert_over_read": wall["median"],
        "convert_over_read_all": wall["all"],
        "convert_over_read_cpu": cpu["median"],
        "peak_rss_mib": peak_rss_mib()["self"],
        "goal": {"convert_over_read": 1.5},
    }


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", default="data/raw/demo/qg/quark_gluon.h5")
    parser.add_argument("--ks", type=int, nargs="+", default=[200, 800])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--compression", default="lzf", help="compression of the X arrays: lzf, gzip, none")
    parser.add_argument("--repeats", type=int, default=3, help="read + convert pairs; the median ratio counts")
    parser.add_argument("--jets", type=int, default=5000, help="size of the synthetic file when --input is missing")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--save", help="also write the JSON object to this file (benchmarks/results/qg_convert.json)")
    args = parser.parse_args(argv)
    say = (lambda *a, **k: None) if args.json else print
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.input)
        if not path.is_file():
            path = Path(tmp) / "synthetic.h5"
            say(f"{args.input} not found: writing {args.jets} synthetic jets to {path}")
            _synthetic(path, args.jets)
        r = measure(str(path), args.ks, args.workers, args.compression, args.repeats)
    line = report("qg_convert", r, save=args.save)
    if args.json:
        print(line)
        return 0
    print(f"input: {r['input']}, {r['jets']} jets, {r['input_mb']:.0f} MB; K = {args.ks}; max_hit {r['max_hit']}")
    print(
        f"raw HDF5 read : {r['read_jets_per_s']:8.0f} jets/s  ({r['wall_s']['read']:.1f} s, "
        f"CPU {r['cpu_s']['read']:.1f} s; medians of {args.repeats})"
    )
    print(
        f"conversion    : {r['convert_jets_per_s']:8.0f} jets/s  ({r['wall_s']['convert']:.1f} s with "
        f"{args.workers} worker(s), CPU {r['cpu_s']['convert']:.1f} s in the main process; "
        f"{r['output_mb']:.0f} MB written, {args.compression})"
    )
    ratios = ", ".join(f"{x:.2f}" for x in r["convert_over_read_all"])
    print(
        f"ratio         : {r['convert_over_read']:8.2f} x the read time (median of {ratios}; CPU "
        f"{r['convert_over_read_cpu']:.2f}; target <= 1.5)"
    )
    print(f"peak RSS      : {r['peak_rss_mib']:8.0f} MiB (this process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
