"""The catalogue of bad inputs (issue 15): every one is a clear error or a counted skip, nothing lost or left behind.

Each case runs one stage (or reader) on one damaged input. An error case asserts the error type, that the message
names the file (and the tree / branch / key / entry where there is one), and that the output location holds
byte for byte what it held before (a user's file in it included). A skip case asserts the count in the report.
Inputs are built once per module from the schema examples (:mod:`jetcloud.atlas.mltree_schema`), a tiny E2E file
(:class:`jetcloud.qg.e2e.E2EWriter`) and tiny npz files, so the whole catalogue runs in seconds.
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pytest

from jetcloud.io.atomic import NotOwnedError
from jetcloud.io.errors import DiskFullError
from jetcloud.io.npz import PointCloudFormatError
from jetcloud.train.loop import CheckpointMismatchError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[1]


# ---- inputs, built once -----------------------------------------------------------------------------------------


@dataclass
class Inputs:
    """The valid inputs every case starts from (read only) and a fresh output location per case."""

    base: Path
    events: Path
    geometry: Path
    samples: Path
    clouds: Path
    e2e: Path
    qg_npz: Path
    out_root: Path = field(default=Path())

    @property
    def out(self) -> Path:
        """Where the stage under test writes (inside ``out_root``, beside the user's file)."""
        return self.out_root / "out"

    def variant(self, name: str) -> Path:
        """A path for a damaged copy of an input, outside the watched output location."""
        path = self.out_root.parent / "inputs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


def _events(n: int = 6) -> dict[str, Any]:
    from jetcloud.atlas import mltree_schema

    return dict(mltree_schema.example_events(n))


def _write_events(path: Path, events: dict[str, Any], cellgeo: bool = True, **kw: Any) -> Path:
    from jetcloud.atlas import mltree_schema
    from jetcloud.atlas.sim.writers import write_mltree

    return write_mltree(path, events, mltree_schema.example_cellgeo() if cellgeo else None, **kw)


def _write_e2e(path: Path, n_train: int = 6, n_test: int = 3, edit: Callable | None = None) -> Path:
    from jetcloud.qg.e2e import E2EWriter

    rng = np.random.default_rng(1)
    with E2EWriter(path, n_train, n_test, overwrite=True, compression=None) as writer:
        for split, n in (("train", n_train), ("test", n_test)):
            images = np.zeros((n, 125, 125, 3), np.float32)
            for i in range(n):
                rows, cols = rng.integers(0, 125, 20), rng.integers(0, 125, 20)
                images[i, rows, cols, rng.integers(0, 3, 20)] = rng.exponential(2.0, 20)
            meta = np.stack([rng.uniform(70, 90, n), rng.uniform(0, 20, n), np.arange(n) % 2], axis=1)
            if edit is not None:
                edit(split, images, meta)
            writer.append(split, images, meta)
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    from jetcloud.atlas import mltree_schema
    from jetcloud.atlas.pointcloud import build_atlas_point_clouds
    from jetcloud.atlas.samples import build_samples
    from jetcloud.atlas.sim.writers import write_cellgeo
    from jetcloud.qg.energyflow import write_qg_npz

    base = tmp_path_factory.mktemp("bad-inputs")
    events = _write_events(base / "events.root", _events())
    geometry = write_cellgeo(base / "geometry.root", mltree_schema.example_cellgeo())
    samples = base / "samples"
    build_samples(events, geometry, samples, workers=1, progress=False)
    clouds = base / "clouds"
    build_atlas_point_clouds(samples, clouds, length=8, min_cells=0, workers=1, progress=False)
    e2e = _write_e2e(base / "e2e.h5")
    rng = np.random.default_rng(2)
    counts = np.array([3, 2, 4])
    particles = np.column_stack([rng.uniform(1, 5, 9), rng.normal(size=9), rng.normal(size=9), np.full(9, 211.0)])
    qg_npz = write_qg_npz(base / "qg.npz", counts, particles, np.array([0, 1, 1]))
    return Inputs(base, events, geometry, samples, clouds, e2e, qg_npz)


@pytest.fixture
def inputs(built: Inputs, tmp_path: Path) -> Inputs:
    """``built`` with a fresh output location holding a user's file (which must survive every case)."""
    out_root = tmp_path / "watched"
    out_root.mkdir()
    (out_root / "users_notes.txt").write_text("mine, never delete\n")
    return Inputs(**{**built.__dict__, "out_root": out_root})


def listing(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` (hidden temporaries included) with its bytes (None for a directory)."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


# ---- helpers used by the cases ----------------------------------------------------------------------------------


def truncated(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def dead_pid() -> int:
    """The id of a process that has exited (for debris of a killed run)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def enospc(*_: Any, **__: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def samples(inp: Inputs, out: Path | None = None, files: Any = None, geometry: Any = None) -> dict[str, Any]:
    from jetcloud.atlas.samples import build_samples

    return build_samples(
        files or inp.events, geometry or inp.geometry, out or inp.out, workers=1, progress=False, manifest=False
    )


def clouds(inp: Inputs, samples_dir: Path | None = None, **kw: Any) -> dict[str, Any]:
    from jetcloud.atlas.pointcloud import build_atlas_point_clouds

    options = {"length": 8, "min_cells": 0, "workers": 1, "progress": False, "manifest": False, **kw}
    return build_atlas_point_clouds(samples_dir or inp.samples, inp.out, **options)


def convert(inp: Inputs, e2e: Path | None = None, ks: tuple[int, ...] = (4,)) -> dict[str, Any]:
    from jetcloud.qg.pointcloud import convert_e2e

    return convert_e2e(e2e or inp.e2e, inp.out, ks, workers=1, progress=False, manifest=False)


def events_with(inp: Inputs, name: str, edit: Callable[[dict[str, Any]], None], **kw: Any) -> Path:
    events = _events()
    edit(events)
    return _write_events(inp.variant(name), events, **kw)


def set_value(events: dict[str, Any], branch: str, value: float, depth: int = 1) -> None:
    """Set the first value of ``branch`` in event 1 (events are lists; depth 2 = cluster cells)."""
    data = ak.to_list(events[branch])
    if depth == 1:
        data[1][0] = value
    else:
        data[1][0][0] = value
    dtype = ak.flatten(events[branch], axis=None).to_numpy().dtype
    events[branch] = ak.values_astype(ak.Array(data), dtype)


def set_all_track_pt(events: dict[str, Any], value: float) -> None:
    data = [[value] * len(row) for row in ak.to_list(events["trackPt"])]
    events["trackPt"] = ak.values_astype(ak.Array(data), np.float32)


def copy_samples(inp: Inputs, edit: Callable[[ak.Array], ak.Array]) -> Path:
    """A copy of the sample directory with its first train part edited."""
    root = inp.variant("samples")
    shutil.copytree(inp.samples, root)
    part = sorted((root / "train").glob("*.parquet"))[0]
    ak.to_parquet(edit(ak.from_parquet(part)), part)
    return root


def copy_clouds(inp: Inputs, edit: Callable[[Path, Path], None]) -> Path:
    """A copy of the point-cloud directory; ``edit(root, first train npz)``."""
    root = inp.variant("clouds")
    shutil.copytree(inp.clouds, root)
    meta = json.loads((root / "point_cloud_meta.json").read_text())
    edit(root, root / meta["files"]["train"][0])
    return root


def rewrite_npz(path: Path, edit: Callable[[dict[str, np.ndarray]], None], save: Callable = np.savez) -> None:
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    edit(arrays)
    with open(path, "wb") as handle:
        save(handle, **arrays)


def nan_at(key: str, value: float = np.nan) -> Callable[[dict[str, np.ndarray]], None]:
    def edit(arrays: dict[str, np.ndarray]) -> None:
        arrays[key] = arrays[key].copy()
        arrays[key].reshape(-1)[0] = value

    return edit


def dataset(root: Path) -> Any:
    from jetcloud.train.data import PointCloudDataset

    return PointCloudDataset(root, "train")


def load(root: Path, **kw: Any) -> Any:
    from jetcloud.atlas.pointcloud import load_point_clouds

    return load_point_clouds(root, "train", **kw)


def write_h5(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    import h5py

    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)
    return path


def e2e_edit(inp: Inputs, name: str, edit: Callable) -> Path:
    return _write_e2e(inp.variant(name), edit=edit)


def e2e_keys(inp: Inputs, name: str, drop: str = "", **replace: np.ndarray) -> Path:
    import h5py

    with h5py.File(inp.e2e, "r") as f:
        arrays = {k: f[k][()] for k in f if k != drop}
    arrays.update(replace)
    return write_h5(inp.variant(name), arrays)


def qg_file(inp: Inputs, name: str, **replace: np.ndarray) -> Path:
    x = np.random.default_rng(0).uniform(0, 1, (4, 6, 5)).astype(np.float32)
    arrays = {"train_dataset/X": x, "train_dataset/Y": np.array([0, 1, 0, 1], np.float32)}
    arrays.update({f"train_dataset/{k}": v for k, v in replace.items()})
    return write_h5(inp.variant(name), arrays)


def read_qg(path: Path) -> Any:
    from jetcloud.qg.pointcloud import read_qg as reader

    return reader(path, "train")


def qg_npz(inp: Inputs, name: str, **arrays: Any) -> Path:
    path = inp.variant(name)
    np.savez(path.with_suffix(".npz"), **arrays)
    return path.with_suffix(".npz")


def read_npz(path: Path) -> Any:
    from jetcloud.qg.energyflow import read_qg_npz

    return read_qg_npz(path)


# ---- training helpers -------------------------------------------------------------------------------------------


def tiny_training(inp: Inputs, epochs: int = 1, seed: int = 0, data: Any = None, **config: Any) -> Any:
    import torch

    from jetcloud import models, train

    torch.manual_seed(seed)
    model = models.get_model("pointnet", size_factor=0.125, tnet_size_factor=0.0625)
    rng = np.random.default_rng(0)
    if data is None:
        feats = rng.normal(size=(8, 10, 6)).astype(np.float32)
        feats[..., 5] = 0
        data = train.ArrayDataset([{"feats": feats, "focus_labels": rng.uniform(size=(8, 10)).astype(np.float32)}])
    settings = {"epochs": epochs, "batch_size": 4, "progress": False, "seed": seed, **config}
    return train.fit(model, data, None, train.MaskedLoss(), train.TrainConfig(**settings), inp.out)


def corrupt_last(inp: Inputs, content: bytes | None = None, obj: Any = None) -> Path:
    """A run directory whose ``last.pt`` is garbage (``content``) or a foreign pickle (``obj``)."""
    import torch

    inp.out.mkdir()
    if obj is not None:
        torch.save(obj, inp.out / "last.pt")
    else:
        (inp.out / "last.pt").write_bytes(content or b"not a checkpoint at all")
    return inp.out / "last.pt"


# ---- parameters -------------------------------------------------------------------------------------------------


def notebook_namespace(stem: str, **overrides: Any) -> dict[str, Any]:
    """The namespace a notebook has after its parameters cell (defaults, then ``overrides`` as papermill would)."""
    import typing

    from jetcloud import nbtools

    _, earlier = nbtools.parameter_annotations(stem)
    cells = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text())["cells"]
    source = next(c for c in cells if "parameters" in c["metadata"].get("tags", []))["source"]
    namespace = {name: getattr(typing, name, object()) for name in earlier}
    exec("".join(source), namespace)  # noqa: S102 - the notebook's own parameters cell
    namespace.update(overrides)
    return namespace


def check_params(stem: str, **overrides: Any) -> None:
    from jetcloud import nbtools

    nbtools.check_parameters(stem, notebook_namespace(stem, **overrides))


def split_params(inp: Inputs, text: str, stem: str = "07_qg_point_clouds") -> Any:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import split_params as module
    finally:
        sys.path.pop(0)
    params = inp.variant(f"notebooks/params/demo/{stem}.yaml")
    params.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "notebooks" / f"{stem}.ipynb", params.parents[2] / f"{stem}.ipynb")
    params.write_text(text)
    return module.split(params, inp.out)


# ---- small builders used by the table -----------------------------------------------------------------------


def _check_dtype(inp: Inputs) -> Any:
    """A TTree whose trackPt is float64 (the schema says float32), written with uproot; checked as stage 01 does."""
    import uproot

    from jetcloud.atlas.mltree import check_schema

    events = _events()
    path = inp.variant("dtype.root")
    with uproot.recreate(path) as f:
        f["EventTree"] = {
            "nTrack": np.asarray(events["nTrack"]),
            "trackPt": ak.values_astype(events["trackPt"], np.float64),
        }
    return check_schema(path, ["nTrack", "trackPt"])


def _shifted_geometry(inp: Inputs) -> Path:
    from jetcloud.atlas import mltree_schema
    from jetcloud.atlas.sim.writers import write_cellgeo

    geo = mltree_schema.example_cellgeo()
    geo["cell_geo_ID"] = geo["cell_geo_ID"] + np.uint64(1)
    return write_cellgeo(inp.variant("shifted-geo.root"), geo)


def _samples_without(inp: Inputs, split: str) -> Path:
    root = inp.variant("samples")
    shutil.copytree(inp.samples, root)
    shutil.rmtree(root / split)
    return root


def _corrupt_part(inp: Inputs) -> Path:
    root = inp.variant("samples")
    shutil.copytree(inp.samples, root)
    part = sorted((root / "train").glob("*.parquet"))[0]
    part.write_bytes(b"PAR1 but not really")
    return root


def _bad_json(root: Path, _: Path) -> None:
    (root / "point_cloud_meta.json").write_text('{"length": 8, "files": ')


def _meta_edit(**changes: Any) -> Callable[[Path, Path], None]:
    def edit(root: Path, _: Path) -> None:
        path = root / "point_cloud_meta.json"
        meta = json.loads(path.read_text())
        for key, value in changes.items():
            if value is None:
                meta.pop(key, None)
            else:
                meta[key] = value
        path.write_text(json.dumps(meta))

    return edit


def _npz_drop(key: str) -> Callable[[Path, Path], None]:
    return lambda root, part: rewrite_npz(part, lambda arrays: arrays.pop(key))


def _npz_truncate(root: Path, part: Path) -> None:
    truncated(part, part, 0.5)


def _npz_empty(root: Path, part: Path) -> None:
    part.write_bytes(b"")


def _npz_pickled(root: Path, part: Path) -> None:
    def edit(arrays: dict[str, np.ndarray]) -> None:
        arrays["feats"] = np.array([{"not": "an array"}] * len(arrays["feats"]), dtype=object)

    rewrite_npz(part, edit)


def _npz_compressed(root: Path, part: Path) -> None:
    rewrite_npz(part, lambda arrays: None, save=np.savez_compressed)


def _npz_flat_feats(root: Path, part: Path) -> None:
    rewrite_npz(part, lambda arrays: arrays.__setitem__("feats", arrays["feats"].reshape(len(arrays["feats"]), -1)))


def _get_model(name: str) -> Any:
    from jetcloud import models

    return models.get_model(name)


def _truncated_checkpoint(inp: Inputs) -> None:
    tiny_training(inp)
    truncated(inp.out / "last.pt", inp.out / "last.pt", 0.5)


def _other_model_checkpoint(inp: Inputs) -> None:
    import torch

    from jetcloud import models, train

    torch.manual_seed(0)
    model = models.get_model("pointnet", size_factor=0.25, tnet_size_factor=0.0625)
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(4, 10, 6)).astype(np.float32)
    data = train.ArrayDataset([{"feats": feats, "focus_labels": np.ones((4, 10), np.float32)}])
    train.fit(model, data, None, train.MaskedLoss(), train.TrainConfig(epochs=1, progress=False), inp.out)


def _nan_data() -> Any:
    from jetcloud import train

    feats = np.ones((4, 10, 6), np.float32)
    feats[0, 1, 4] = np.nan
    return train.ArrayDataset([{"feats": feats, "focus_labels": np.ones((4, 10), np.float32)}])


def _empty_data() -> Any:
    from jetcloud import train

    return train.ArrayDataset([{"feats": np.zeros((0, 10, 6), np.float32), "focus_labels": np.zeros((0, 10))}])


def _qg_without_y(inp: Inputs) -> Path:
    x = np.zeros((4, 6, 5), np.float32)
    return write_h5(inp.variant("QGnoy.h5"), {"train_dataset/X": x})


def _presets(inp: Inputs, text: str) -> Any:
    from jetcloud.train.presets import load_presets

    path = inp.variant("bad_presets.yaml")
    path.write_text(text)
    return load_presets(path)


def _ntrack_mismatch(inp: Inputs) -> Path:
    """An MLTree file whose nTrack of entry 1 is one more than its track branches hold (the writer's own check off)."""
    from unittest import mock

    events = _events()
    n_track = np.asarray(events["nTrack"]).copy()
    n_track[1] += 1
    events["nTrack"] = n_track
    with mock.patch("jetcloud.atlas.sim.writers.validate_events", lambda *a, **k: []):
        return _write_events(inp.variant("ntrack.root"), events)


def _no_jets_images(inp: Inputs) -> Any:
    from jetcloud.qg import simulate

    config = simulate.ImageConfig(n_quark=2, n_gluon=0, pt_hat=(20.0, 25.0), jet_pt_min=300.0, give_up_after=100)
    return simulate.simulate_images(config, inp.out_root / "e2e.h5", workers=1, progress=False)


def _no_jets_particles(inp: Inputs) -> Any:
    from jetcloud.qg import simulate

    config = simulate.ParticleConfig(n_quark=0, n_gluon=2, jet_pt=(6900.0, 6990.0), pt_hat_min=20.0, give_up_after=100)
    return simulate.simulate_particles(config, inp.out_root / "qg.npz", workers=1, progress=False)


def qg_dir(inp: Inputs, name: str, n_train: int = 6, n_test: int = 3, k: int = 4) -> Path:
    """A directory holding one ``QG{k}.h5`` with ``n_train`` / ``n_test`` jets (as notebook 07 writes it)."""
    rng = np.random.default_rng(3)
    arrays = {}
    for group, n in (("train_dataset", n_train), ("test_dataset", n_test)):
        arrays[f"{group}/X"] = rng.uniform(0, 1, (n, k, 5)).astype(np.float32)
        arrays[f"{group}/Y"] = (np.arange(n) % 2).astype(np.float32)
    directory = inp.variant(name)
    directory.mkdir(parents=True)
    write_h5(directory / f"QG{k}.h5", arrays)
    return directory


def qg_load(source: Path, model: str = "mlp", k: int = 4) -> Any:
    from jetcloud.qg import train as qg_train

    return qg_train.load_data("smoke", model, k=k, source=source)


def _no_runs(inp: Inputs) -> Any:
    """Notebook 09's lib call on a runs folder without any finished run (the notebook then stops)."""
    from jetcloud.qg import compare

    root = inp.variant("runs")
    (root / "mlp@seed0").mkdir(parents=True)  # a run that never finished: no record.json
    return compare.load_runs("smoke", root)


# ---- the catalogue ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One bad input: ``run(inputs)`` must raise ``error`` whose message contains every one of ``names``."""

    run: Callable[[Inputs], Any]
    error: type[BaseException]
    names: tuple[str, ...]  # format strings over the Inputs' attributes, e.g. "{events}"
    patch: tuple[str, str, Callable] | None = None  # (module, attribute, replacement): e.g. a full disk
    prepare: Callable[[Inputs], Any] | None = None  # puts something in the output location before the snapshot
    needs: str = ""  # a library change this case waits for (strict xfail until it is in)


def garbage(inp: Inputs, name: str, content: bytes = b"this is not the file you are looking for\n" * 20) -> Path:
    path = inp.variant(name)
    path.write_bytes(content)
    return path


def user_file(inp: Inputs) -> None:
    """A user's directory where the stage wants to write: it must be refused and left untouched."""
    inp.out.mkdir()
    (inp.out / "thesis.tex").write_text("a user's file\n")


def missing(name: str) -> Callable[[Inputs], Path]:
    return lambda inp: inp.variant(name)


CASES: dict[str, Case] = {
    # ---- stage 01: MLTree files -> samples
    "01 missing MLTree file": Case(
        lambda i: samples(i, files=i.variant("nope.root")), FileNotFoundError, ("nope.root",)
    ),
    "01 empty MLTree file": Case(lambda i: samples(i, files=garbage(i, "empty.root", b"")), OSError, ("empty.root",)),
    "01 non-ROOT MLTree file": Case(lambda i: samples(i, files=garbage(i, "text.root")), OSError, ("text.root",)),
    "01 truncated MLTree file": Case(
        lambda i: samples(i, files=truncated(i.events, i.variant("cut.root"))), OSError, ("cut.root",)
    ),
    "01 MLTree file without EventTree": Case(
        lambda i: samples(i, files=i.geometry), ValueError, ("{geometry}", "EventTree")
    ),
    "01 missing branch": Case(
        lambda i: samples(
            i,
            files=events_with(
                i, "nobranch.root", lambda e: None, branches=[b for b in _events(1) if b != "trackChiSquared"]
            ),
        ),
        ValueError,
        ("nobranch.root", "trackChiSquared"),
    ),
    "01 wrong dtype": Case(lambda i: _check_dtype(i), ValueError, ("dtype.root", "trackPt", "float64")),
    "01 nTrack disagrees with the track branches": Case(
        lambda i: samples(i, files=_ntrack_mismatch(i)), ValueError, ("ntrack.root", "entry 1", "nTrack", "trackPt")
    ),
    "01 cell IDs absent from the geometry": Case(
        lambda i: samples(i, geometry=_shifted_geometry(i)), KeyError, ("{events}", "entry")
    ),
    "01 missing geometry file": Case(
        lambda i: samples(i, geometry=i.variant("geo.root")), FileNotFoundError, ("geo.root",)
    ),
    "01 truncated geometry file": Case(
        lambda i: samples(i, geometry=truncated(i.geometry, i.variant("geo-cut.root"), 0.6)),
        OSError,
        ("geo-cut.root",),
    ),
    "01 non-ROOT geometry file": Case(lambda i: samples(i, geometry=garbage(i, "geo.txt")), ValueError, ("geo.txt",)),
    "01 geometry file without CellGeo": Case(
        lambda i: samples(i, geometry=events_with(i, "nogeo.root", lambda e: None, cellgeo=False)),
        ValueError,
        ("nogeo.root", "CellGeo"),
    ),
    "01 zero samples (every trackPt NaN)": Case(
        lambda i: samples(i, files=events_with(i, "nanpt.root", lambda e: set_all_track_pt(e, np.nan))),
        ValueError,
        ("no samples", "nanpt.root", "trackPt"),
    ),
    "01 out_dir holds a user's file": Case(lambda i: samples(i), NotOwnedError, ("{out}",), prepare=user_file),
    "01 disk full": Case(
        lambda i: samples(i), DiskFullError, ("{out}", "disk is full"), ("awkward", "to_parquet", enospc)
    ),
    # ---- stage 02: samples -> point clouds
    "02 missing samples directory": Case(
        lambda i: clouds(i, i.variant("no-samples")), FileNotFoundError, ("no-samples",)
    ),
    "02 samples without a split": Case(
        lambda i: clouds(i, _samples_without(i, "val")), FileNotFoundError, ("samples", "val")
    ),
    "02 corrupt parquet part": Case(lambda i: clouds(i, _corrupt_part(i)), ValueError, ("part-", ".parquet")),
    "02 zero samples after min_cells": Case(lambda i: clouds(i, min_cells=10**6), ValueError, ("min_cells",)),
    "02 out_dir holds a user's file": Case(lambda i: clouds(i), NotOwnedError, ("{out}",), prepare=user_file),
    "02 disk full": Case(lambda i: clouds(i), DiskFullError, ("{out}", "disk is full"), ("numpy", "savez", enospc)),
    # ---- point clouds read back (notebook 03)
    "03 invalid JSON meta (load_point_clouds)": Case(
        lambda i: load(copy_clouds(i, _bad_json)), PointCloudFormatError, ("point_cloud_meta.json", "JSON")
    ),
    "03 invalid JSON meta (dataset)": Case(
        lambda i: dataset(copy_clouds(i, _bad_json)), PointCloudFormatError, ("point_cloud_meta.json", "JSON")
    ),
    "03 meta without length": Case(
        lambda i: load(copy_clouds(i, _meta_edit(length=None))),
        PointCloudFormatError,
        ("point_cloud_meta.json", "length"),
    ),
    "03 meta length disagrees with feats": Case(
        lambda i: load(copy_clouds(i, _meta_edit(length=5))), PointCloudFormatError, ("train/", ".npz", "feats")
    ),
    "03 npz without feats (load)": Case(
        lambda i: load(copy_clouds(i, _npz_drop("feats")), keys=["feats"]), KeyError, ("train/", ".npz", "feats")
    ),
    "03 npz without feats (dataset)": Case(
        lambda i: dataset(copy_clouds(i, _npz_drop("feats"))), PointCloudFormatError, ("train/", ".npz", "feats")
    ),
    "03 truncated npz (load)": Case(
        lambda i: load(copy_clouds(i, _npz_truncate)), PointCloudFormatError, ("train/", ".npz")
    ),
    "03 truncated npz (dataset)": Case(
        lambda i: dataset(copy_clouds(i, _npz_truncate)), PointCloudFormatError, ("train/", ".npz")
    ),
    "03 empty npz (load)": Case(lambda i: load(copy_clouds(i, _npz_empty)), PointCloudFormatError, ("train/", ".npz")),
    "03 empty npz (dataset)": Case(
        lambda i: dataset(copy_clouds(i, _npz_empty)), PointCloudFormatError, ("train/", ".npz")
    ),
    "03 pickled objects in npz (load)": Case(
        lambda i: load(copy_clouds(i, _npz_pickled)), PointCloudFormatError, ("train/", ".npz")
    ),
    "03 pickled objects in npz (dataset)": Case(
        lambda i: dataset(copy_clouds(i, _npz_pickled)), PointCloudFormatError, ("train/", ".npz", "feats")
    ),
    "03 compressed npz (dataset, memory-mapped)": Case(
        lambda i: dataset(copy_clouds(i, _npz_compressed)), PointCloudFormatError, ("train/", ".npz", "compressed")
    ),
    "03 wrong feats shape (dataset)": Case(
        lambda i: dataset(copy_clouds(i, _npz_flat_feats)), PointCloudFormatError, ("train/", ".npz", "feats")
    ),
    "03 wrong feats shape (load)": Case(
        lambda i: load(copy_clouds(i, _npz_flat_feats)), PointCloudFormatError, ("train/", ".npz", "feats")
    ),
    "03 NaN feature in npz (dataset)": Case(
        lambda i: dataset(copy_clouds(i, lambda r, p: rewrite_npz(p, nan_at("feats")))),
        PointCloudFormatError,
        ("train/", ".npz", "feats", "sample 0"),
    ),
    "03 inf feature in npz (dataset)": Case(
        lambda i: dataset(copy_clouds(i, lambda r, p: rewrite_npz(p, nan_at("feats", np.inf)))),
        PointCloudFormatError,
        ("train/", ".npz", "feats", "sample 0"),
    ),
    # ---- training
    "03 unknown model": Case(lambda i: _get_model("no_such_net"), KeyError, ("no_such_net",)),
    "03 corrupt last.pt": Case(
        tiny_training, CheckpointMismatchError, ("last.pt", "resume=False"), prepare=corrupt_last
    ),
    "03 truncated last.pt": Case(
        tiny_training, CheckpointMismatchError, ("last.pt", "resume=False"), prepare=_truncated_checkpoint
    ),
    "03 foreign checkpoint": Case(
        tiny_training,
        CheckpointMismatchError,
        ("last.pt", "not a jetcloud checkpoint", "resume=False"),
        prepare=lambda i: corrupt_last(i, obj={"weights": [1, 2, 3]}),
    ),
    "03 checkpoint of another model": Case(
        tiny_training, CheckpointMismatchError, ("last.pt", "model"), prepare=_other_model_checkpoint
    ),
    "03 NaN loss": Case(
        lambda i: tiny_training(i, data=_nan_data(), shuffle=False), FloatingPointError, ("epoch 1", "batch 1")
    ),
    "03 empty training set": Case(lambda i: tiny_training(i, data=_empty_data()), ValueError, ("empty",)),
    "03 disk full while saving a checkpoint": Case(
        lambda i: tiny_training(i), DiskFullError, ("out/", ".pt", "disk is full"), ("torch", "save", enospc)
    ),
    # ---- notebook 06: a simulation that selects no jet
    "06 zero jets selected (images)": Case(
        _no_jets_images, RuntimeError, ("no quark jet passed the selection", "100 events", "jet pT > 300 GeV")
    ),
    "06 zero jets selected (particle level)": Case(
        _no_jets_particles, RuntimeError, ("no gluon jet passed the selection", "100 events", "jet pT 6900-6990 GeV")
    ),
    # ---- notebook 06 outputs -> 07 conversion
    "07 E2E file with 0 training jets": Case(
        lambda i: convert(i, _write_e2e(i.variant("notrain.h5"), n_train=0)),
        ValueError,
        ("notrain.h5", "train_jet is empty"),
    ),
    "07 missing E2E file": Case(lambda i: convert(i, i.variant("none.h5")), FileNotFoundError, ("none.h5",)),
    "07 empty E2E file": Case(lambda i: convert(i, garbage(i, "empty.h5", b"")), OSError, ("empty.h5",)),
    "07 non-HDF5 E2E file": Case(lambda i: convert(i, garbage(i, "text.h5")), OSError, ("text.h5",)),
    "07 truncated E2E file": Case(
        lambda i: convert(i, truncated(i.e2e, i.variant("cut.h5"), 0.3)), OSError, ("cut.h5",)
    ),
    "07 E2E missing key": Case(
        lambda i: convert(i, e2e_keys(i, "nokey.h5", drop="test_meta")), ValueError, ("nokey.h5", "test_meta")
    ),
    "07 E2E wrong shape": Case(
        lambda i: convert(i, e2e_keys(i, "shape.h5", train_jet=np.zeros((6, 64, 64, 3), np.float32))),
        ValueError,
        ("shape.h5", "train_jet"),
    ),
    "07 E2E wrong dtype": Case(
        lambda i: convert(i, e2e_keys(i, "dtype.h5", train_meta=np.zeros((6, 3), np.int32))),
        ValueError,
        ("dtype.h5", "train_meta"),
    ),
    "07 E2E labels outside {0, 1}": Case(
        lambda i: convert(i, e2e_edit(i, "labels.h5", lambda s, im, m: m.__setitem__((1, 2), 7.0))),
        ValueError,
        ("labels.h5", "train_meta", "0 (gluon) or 1 (quark)"),
    ),
    "07 NaN pixel": Case(
        lambda i: convert(i, e2e_edit(i, "nan.h5", lambda s, im, m: im.__setitem__((2, 5, 5, 1), np.nan))),
        ValueError,
        ("nan.h5", "train_jet", "jet 2"),
    ),
    "07 inf pixel in the test split": Case(
        lambda i: convert(
            i, e2e_edit(i, "inf.h5", lambda s, im, m: s == "test" and im.__setitem__((1, 9, 9, 0), np.inf))
        ),
        ValueError,
        ("inf.h5", "test_jet", "jet 1"),
    ),
    "07 NaN jet pt in meta": Case(
        lambda i: convert(i, e2e_edit(i, "nanpt.h5", lambda s, im, m: s == "train" and m.__setitem__((3, 0), np.nan))),
        ValueError,
        ("nanpt.h5", "train_meta", "jet 3"),
    ),
    "07 K = 0": Case(lambda i: convert(i, ks=(0,)), ValueError, ("K = [0]", ">= 1")),
    "07 K above max_hit": Case(lambda i: convert(i, ks=(10_000,)), ValueError, ("10000", "max_hit")),
    "07 out_dir holds a user's file": Case(lambda i: convert(i), NotOwnedError, ("{out}",), prepare=user_file),
    "07 disk full": Case(
        lambda i: convert(i),
        DiskFullError,
        ("{out}", "disk is full"),
        ("jetcloud.qg.pointcloud", "_write_chunk", enospc),
    ),
    # ---- QG{K}.h5 read back (notebook 08)
    "08 missing QG file": Case(lambda i: read_qg(i.variant("QG9.h5")), FileNotFoundError, ("QG9.h5",)),
    "08 truncated QG file": Case(
        lambda i: read_qg(truncated(qg_file(i, "QGfull.h5"), i.variant("QGcut.h5"), 0.4)), OSError, ("QGcut.h5",)
    ),
    "08 QG file missing Y": Case(lambda i: read_qg(_qg_without_y(i)), KeyError, ("QGnoy.h5", "train_dataset/Y")),
    "08 QG file wrong shape": Case(
        lambda i: read_qg(qg_file(i, "QGshape.h5", X=np.zeros((4, 6), np.float32))),
        ValueError,
        ("QGshape.h5", "train_dataset/X"),
    ),
    "08 QG file wrong dtype": Case(
        lambda i: read_qg(qg_file(i, "QGdtype.h5", Y=np.array([b"q", b"g", b"q", b"g"]))),
        ValueError,
        ("QGdtype.h5", "train_dataset/Y"),
    ),
    "08 QG labels outside {0, 1}": Case(
        lambda i: read_qg(qg_file(i, "QGlab.h5", Y=np.array([0, 1, 2, 1], np.float32))),
        ValueError,
        ("QGlab.h5", "train_dataset/Y"),
    ),
    "08 QG NaN in X": Case(
        lambda i: read_qg(qg_file(i, "QGnan.h5", X=np.full((4, 6, 5), np.nan, np.float32))),
        ValueError,
        ("QGnan.h5", "train_dataset/X", "jet 0"),
    ),
    "08 QG file with 0 training jets": Case(
        lambda i: qg_load(qg_dir(i, "qg-notrain", n_train=0)),
        ValueError,
        ("qg-notrain", "QG4.h5", "0 training"),
    ),
    "08 QG file with 1 training jet (nothing left after validation)": Case(
        lambda i: qg_load(qg_dir(i, "qg-onetrain", n_train=1)),
        ValueError,
        ("qg-onetrain", "QG4.h5", "1 training"),
    ),
    "08 QG file with 0 test jets (converted from an E2E file without test jets)": Case(
        lambda i: qg_load(qg_dir(i, "qg-notest", n_test=0)),
        ValueError,
        ("qg-notest", "QG4.h5", "0 test"),
    ),
    "08 K larger than every QG file": Case(
        lambda i: qg_load(qg_dir(i, "qg-k"), k=9), ValueError, ("qg-k", "K = 9", "available K: [4]")
    ),
    "08 unknown QG model": Case(
        lambda i: qg_load(qg_dir(i, "qg-model"), model="no_such_net"), KeyError, ("no_such_net",)
    ),
    # ---- particle-level npz (notebook 06 / 08 particle_level)
    "08 missing particle npz": Case(lambda i: read_npz(i.variant("pl.npz")), FileNotFoundError, ("pl.npz",)),
    "08 particle npz not a zip": Case(lambda i: read_npz(garbage(i, "plz.npz")), ValueError, ("plz.npz",)),
    "08 particle npz missing y": Case(
        lambda i: read_npz(qg_npz(i, "noy", X=np.zeros((2, 3, 4)))), ValueError, ("noy.npz", "y")
    ),
    "08 particle npz pickled y": Case(
        lambda i: read_npz(qg_npz(i, "pick", X=np.zeros((2, 3, 4)), y=np.array([0, "1"], dtype=object))),
        ValueError,
        ("pick.npz",),
    ),
    "08 particle npz wrong shape": Case(
        lambda i: read_npz(qg_npz(i, "shape", X=np.zeros((2, 3)), y=np.zeros(2))), ValueError, ("shape.npz", "X")
    ),
    "08 particle npz labels outside {0, 1}": Case(
        lambda i: read_npz(qg_npz(i, "lab", X=np.zeros((2, 3, 4)), y=np.array([0.0, 3.0]))),
        ValueError,
        ("lab.npz", "y"),
    ),
    "08 particle npz NaN": Case(
        lambda i: read_npz(qg_npz(i, "nan", X=np.full((2, 3, 4), np.nan), y=np.zeros(2))),
        ValueError,
        ("nan.npz", "X", "jet 0"),
    ),
    # ---- notebook 09: comparison
    "09 zero finished runs": Case(_no_runs, FileNotFoundError, ("runs", "no finished runs")),
    # ---- notebook parameters and params files
    "params int given a string": Case(
        lambda i: check_params("07_qg_point_clouds", chunk_size="64"),
        TypeError,
        ("07_qg_point_clouds", "chunk_size", "-p"),
    ),
    "params list given a string": Case(
        lambda i: check_params("07_qg_point_clouds", ks="[200]"), TypeError, ("07_qg_point_clouds", "ks", "-y")
    ),
    "params list[float] given strings": Case(
        lambda i: check_params("03_train_jetpointnet", train_fractions=["a"]),
        TypeError,
        ("03_train_jetpointnet", "train_fractions", "-y"),
    ),
    "params bool given a string": Case(
        lambda i: check_params("07_qg_point_clouds", descending="yes"), TypeError, ("descending", "bool")
    ),
    "params unknown name": Case(
        lambda i: check_params("07_qg_point_clouds", chunksize=64), NameError, ("07_qg_point_clouds", "chunksize")
    ),
    "params file unknown key": Case(
        lambda i: split_params(i, "chunksize: 64\n"), ValueError, ("07_qg_point_clouds.yaml", "chunksize")
    ),
    "params file unknown key in a later document": Case(
        lambda i: split_params(i, "ks: [200]\n---\nks: [800]\nwrokers: 2\n"),
        ValueError,
        ("07_qg_point_clouds.yaml", "document 1", "wrokers"),
    ),
    "params file malformed YAML": Case(
        lambda i: split_params(i, "ks: [200\nseed: 1\n"), ValueError, ("07_qg_point_clouds.yaml", "YAML")
    ),
    "params file unsafe YAML": Case(
        lambda i: split_params(i, "seed: !!python/object/apply:os.system ['echo hi']\n"),
        ValueError,
        ("07_qg_point_clouds.yaml", "YAML"),
    ),
    "presets malformed YAML": Case(lambda i: _presets(i, "model: [oops\n"), Exception, ("bad_presets.yaml",)),
    "presets unsafe YAML": Case(
        lambda i: _presets(i, "pointnet: !!python/object/apply:os.system ['echo hi']\n"),
        Exception,
        ("bad_presets.yaml",),
    ),
}


# ---- the tests ----------------------------------------------------------------------------------------------


def _case_params() -> list[Any]:
    return [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=case.needs)) if case.needs else name
        for name, case in CASES.items()
    ]


@pytest.mark.parametrize("name", _case_params())
def test_bad_input(name: str, inputs: Inputs, monkeypatch: pytest.MonkeyPatch) -> None:
    """The case's error, with a message naming the file (branch / key / entry), and the output location as before."""
    case = CASES[name]
    if case.patch is not None:
        module, attribute, replacement = case.patch
        monkeypatch.setattr(f"{module}.{attribute}", replacement)
    if case.prepare is not None:
        case.prepare(inputs)
    before = listing(inputs.out_root)
    with pytest.raises(case.error) as info:
        case.run(inputs)
    message = str(info.value)
    for needle in case.names:
        expected = needle.format(**{k: v for k, v in inputs.__dict__.items()}, out=inputs.out)
        assert expected in message, f"{name}: {expected!r} not in the message {message!r}"
    assert listing(inputs.out_root) == before, f"{name}: the output location changed"


def test_catalogue_is_large_enough() -> None:
    assert len(CASES) + len(SKIPS) >= 60


# ---- counted skips: the output is written, the report counts what was dropped -----------------------------------

SKIPS: dict[str, tuple[Callable[[Inputs], dict[str, Any]], Callable[[dict[str, Any]], int]]] = {
    "01 tracks without EMB2/EME2": (lambda i: samples(i), lambda s: s["report"]["skipped_no_reference"]),
    "01 NaN cluster_cell_E": (
        lambda i: samples(i, files=events_with(i, "nanE.root", lambda e: set_value(e, "cluster_cell_E", np.nan, 2))),
        lambda s: s["report"]["nan_cell_energy"],
    ),
    "01 inf cluster_cell_E": (
        lambda i: samples(i, files=events_with(i, "infE.root", lambda e: set_value(e, "cluster_cell_E", np.inf, 2))),
        lambda s: s["report"]["nan_cell_energy"],
    ),
    "01 NaN trackPt": (
        lambda i: samples(i, files=events_with(i, "nanpt1.root", lambda e: set_value(e, "trackPt", np.nan))),
        lambda s: s["report"]["nonfinite_track_pt"],
    ),
    "01 inf trackPt": (
        lambda i: samples(i, files=events_with(i, "infpt1.root", lambda e: set_value(e, "trackPt", -np.inf))),
        lambda s: s["report"]["nonfinite_track_pt"],
    ),
    "02 NaN trackPt in a sample": (
        lambda i: clouds(i, copy_samples(i, _nan_sample_pt)),
        lambda s: s["counts"]["train"]["removed_nonfinite"],
    ),
    "02 inf track point coordinate in a sample": (
        lambda i: clouds(i, copy_samples(i, _inf_track_point)),
        lambda s: s["counts"]["train"]["removed_nonfinite"],
    ),
}


def _nan_sample_pt(arr: ak.Array) -> ak.Array:
    pt = arr["trackPt"].to_numpy().copy()
    pt[0] = np.nan
    return ak.with_field(arr, pt, "trackPt")


def _inf_track_point(arr: ak.Array) -> ak.Array:
    counts = ak.num(arr["track_points"]).to_numpy()
    x = ak.flatten(arr["track_points", "X"]).to_numpy().copy()
    first = int(np.argmax(counts > 0))
    x[int(counts[:first].sum())] = np.inf
    return ak.with_field(arr, ak.unflatten(x, counts), ["track_points", "X"])


@pytest.mark.parametrize("name", list(SKIPS))
def test_counted_skip(name: str, inputs: Inputs) -> None:
    """The stage succeeds; the report counts the dropped items; no NaN / inf reaches the output."""
    run, count = SKIPS[name]
    summary = run(inputs)
    assert count(summary) >= 1, f"{name}: nothing counted in {summary.get('report', summary.get('counts'))}"
    if (inputs.out / "point_cloud_meta.json").is_file():
        from jetcloud.atlas.pointcloud import load_point_clouds

        for split in ("train", "val", "test"):
            feats = load_point_clouds(inputs.out, split, ["feats"])["feats"]
            assert np.isfinite(feats).all()
    else:
        for part in inputs.out.rglob("*.parquet"):
            arr = ak.from_parquet(part)
            assert np.isfinite(arr["trackPt"].to_numpy()).all()
            assert np.isfinite(ak.flatten(arr["cells", "E"]).to_numpy()).all()
    assert not [p for p in inputs.out_root.rglob(".*tmp-*")], "temporaries left behind"


# ---- cases that need more than one call ----------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["01", "02", "07"])
def test_rerun_after_sigkill_removes_debris(stage: str, inputs: Inputs) -> None:
    """A killed run leaves ``.out.tmp-<pid>-*``; the next run removes it and writes the same output as a clean run."""
    run = {"01": samples, "02": clouds, "07": convert}[stage]
    run(inputs)
    clean = {k: v for k, v in listing(inputs.out).items() if not k.endswith((".json", ".h5"))}
    debris = inputs.out_root / f".out.tmp-{dead_pid()}-deadbeef"
    shutil.copytree(inputs.out, debris)
    (debris / "half-written.part").write_bytes(b"\0" * 100)
    run(inputs)
    assert not debris.exists()
    again = {k: v for k, v in listing(inputs.out).items() if not k.endswith((".json", ".h5"))}
    assert again == clean
    assert sorted(p.name for p in inputs.out_root.iterdir()) == ["out", "users_notes.txt"]


def test_convert_disk_full_closes_every_file(inputs: Inputs, monkeypatch: pytest.MonkeyPatch) -> None:
    """After ENOSPC in the middle of the conversion every HDF5 handle is closed (no crash at exit), no debris."""
    import h5py

    open_before = len(h5py.h5f.get_obj_ids())
    monkeypatch.setattr("jetcloud.qg.pointcloud._write_chunk", enospc)
    with pytest.raises(DiskFullError, match="disk is full"):
        convert(inputs, ks=(4, 8, 16))
    assert len(h5py.h5f.get_obj_ids()) == open_before
    assert sorted(p.name for p in inputs.out_root.iterdir()) == ["users_notes.txt"]


def test_close_all_survives_a_failing_close() -> None:
    """The cleanup closes every handle even when the first ``close()`` raises (the old code stopped there)."""
    from jetcloud.qg.pointcloud import _close_all

    closed = []

    class Handle:
        def __init__(self, name: str, fail: bool) -> None:
            self.name, self.fail = name, fail

        def close(self) -> None:
            closed.append(self.name)
            if self.fail:
                raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        _close_all([Handle("a", True), Handle("b", False), Handle("c", True)])
    assert closed == ["a", "b", "c"]


def test_fit_seed_fixes_data_order_and_dropout(inputs: Inputs, tmp_path: Path) -> None:
    """Same ``TrainConfig.seed`` (and the same initial weights) -> the same history; another seed -> another."""
    from jetcloud import models, train

    rng = np.random.default_rng(0)
    feats = rng.normal(size=(12, 10, 6)).astype(np.float32)
    feats[..., 5] = 0
    data = train.ArrayDataset([{"feats": feats, "focus_labels": rng.uniform(size=(12, 10)).astype(np.float32)}])

    def run(seed: int, where: str) -> list[float]:
        import torch

        torch.manual_seed(123)  # the caller seeds the model it builds
        model = models.get_model("pointnet", size_factor=0.125, tnet_size_factor=0.0625, dropout=0.5)
        torch.manual_seed(999)  # whatever the global state: config.seed must decide the run
        config = train.TrainConfig(epochs=2, batch_size=4, progress=False, seed=seed, checkpoint=False)
        result = train.fit(model, data, None, train.MaskedLoss(), config, tmp_path / where)
        return [row["train_loss"] for row in result.history]

    assert run(1, "a") == run(1, "b")
    assert run(1, "c") != run(2, "d")


def test_every_notebook_default_passes_its_parameter_check() -> None:
    from jetcloud import nbtools

    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nbtools.check_parameters(notebook.stem, notebook_namespace(notebook.stem))
        first = _first_cell_after_parameters(notebook)
        assert first.startswith(f'nbtools.check_parameters("{notebook.stem}", globals())'), notebook.name


def _first_cell_after_parameters(notebook: Path) -> str:
    cells = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    index = next(i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", []))
    return "".join(cells[index + 1]["source"])


def test_shipped_params_files_have_only_known_keys(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import split_params
    finally:
        sys.path.pop(0)
    for params in sorted((ROOT / "notebooks" / "params").glob("*/*.yaml")):
        split_params.split(params, tmp_path / params.parent.name)


# ---- real faults in a child process: SIGKILL mid-stage, a full (tiny) filesystem ------------------------------

#: The child: runs one stage (01 samples, 07 conversion, 03 training) on the inputs given as JSON. ``slow``: the
#: stage's writer sleeps after its first write (and says so in ``marker``), to be killed there. Otherwise the child
#: writes a user's file beside ``out``, runs the stage and prints the error and the folder's listing before / after.
CHILD = r"""
import hashlib, json, sys, time
from pathlib import Path

import numpy as np

args = json.loads(sys.argv[1])
root, out = Path(args["root"]), Path(args["root"]) / "out"


def slow(original):
    def wrapper(*a, **k):
        result = original(*a, **k)
        Path(args["marker"]).write_text("mid-stage")
        time.sleep(300)
        return result
    return wrapper


def run():
    if args["stage"] == "01":
        import awkward
        from jetcloud.atlas.samples import build_samples

        if args.get("slow"):
            awkward.to_parquet = slow(awkward.to_parquet)
        build_samples(args["events"], args["geometry"], out, workers=1, progress=False, manifest=False)
    elif args["stage"] == "07":
        import jetcloud.qg.pointcloud as pc

        if args.get("slow"):
            pc._write_chunk = slow(pc._write_chunk)
        pc.convert_e2e(args["e2e"], out, (4, 8), chunk_size=2, workers=1, progress=False, manifest=False)
    else:
        import torch
        from jetcloud import models, train

        torch.set_num_threads(1)
        rng = np.random.default_rng(0)
        feats = rng.normal(size=(8, 10, 6)).astype(np.float32)
        data = train.ArrayDataset([{"feats": feats, "focus_labels": rng.uniform(size=(8, 10)).astype(np.float32)}])
        build = lambda: models.get_model("pointnet", size_factor=0.125, tnet_size_factor=0.0625)
        config = train.TrainConfig(epochs=1, batch_size=4, progress=False)
        train.fit(build, data, None, train.MaskedLoss(), config, out)


def listing():
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
        for p in sorted(root.rglob("*"))
    }


if args.get("slow"):
    run()
    sys.exit(0)
(root / "users_notes.txt").write_text("mine, never delete\n")
before, result = listing(), {"error": None}
try:
    run()
except BaseException as err:
    result = {"error": type(err).__name__, "bases": [c.__name__ for c in type(err).__mro__], "message": str(err)}
result.update(before=before, after=listing())
print("RESULT " + json.dumps(result))
"""


def _child_env() -> dict[str, str]:
    import os

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "lib"), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def _child_args(inp: Inputs, stage: str, root: Path, **extra: Any) -> str:
    paths = {"events": inp.events, "geometry": inp.geometry, "e2e": inp.e2e, "root": root}
    return json.dumps({"stage": stage, **{k: str(v) for k, v in paths.items()}, **extra})


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["01", "07"])
def test_sigkill_mid_stage_then_rerun(stage: str, inputs: Inputs) -> None:
    """A real SIGKILL while the stage writes its output; the re-run removes the killed run's debris, writes what a
    clean run writes and keeps the user's file."""
    import os
    import signal
    import time

    marker = inputs.variant("killed-mid-stage")
    args = _child_args(inputs, stage, inputs.out_root, slow=True, marker=str(marker))
    child = subprocess.Popen([sys.executable, "-c", CHILD, args], env=_child_env())
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), f"the child never reached the middle of stage {stage} (exit code {child.poll()})"
        debris = [p.name for p in inputs.out_root.iterdir() if p.name.startswith(".out.tmp-")]
        assert debris, "the killed run had not started writing"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert not inputs.out.exists()  # nothing under the final name
    run = {"01": samples, "07": convert}[stage]
    run(inputs)
    assert sorted(p.name for p in inputs.out_root.iterdir()) == ["out", "users_notes.txt"]
    clean = inputs.variant("clean-root")
    clean.mkdir()
    run(Inputs(**{**inputs.__dict__, "out_root": clean}))
    skip = (".json", ".h5")  # JSON summaries carry timings; HDF5 byte equality is tested by the stage's own tests
    assert {k: v for k, v in listing(inputs.out).items() if not k.endswith(skip)} == {
        k: v for k, v in listing(clean / "out").items() if not k.endswith(skip)
    }


def _tiny_filesystem_allowed(path: Path) -> bool:
    """True where this process may mount a tmpfs in a private mount namespace (root in a container, usually)."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", 'mount -t tmpfs -o size=4k tmpfs "$0"', str(path)],
        capture_output=True,
    )
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize(("stage", "size"), [("01", "8k"), ("07", "8k"), ("03", "64k")])
def test_disk_full_on_a_tiny_filesystem(stage: str, size: str, inputs: Inputs) -> None:
    """The stage writes onto a real tmpfs of ``size``: a DiskFullError naming the output, no crash (the segfault of
    issue 15 was a SIGSEGV after ENOSPC in stage 07), and the filesystem holds what it held before."""
    root = inputs.variant("tiny-fs")
    root.mkdir()
    if not _tiny_filesystem_allowed(root):
        pytest.skip("this machine does not allow mounting a tmpfs in a private mount namespace")
    script = 'mount -t tmpfs -o size="$1" tmpfs "$2" && exec "$3" -c "$4" "$5"'
    args = _child_args(inputs, stage, root)
    command = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", size, str(root)]
    done = subprocess.run(
        [*command, sys.executable, CHILD, args], env=_child_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"the child crashed ({done.returncode}): {done.stderr[-3000:]}"
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    assert "DiskFullError" in (result.get("bases") or []), result
    assert str(root / "out") in result["message"] and "disk is full" in result["message"], result["message"]
    assert result["after"] == result["before"], "the full filesystem was left holding something else"


@pytest.mark.slow
def test_notebook_09_without_runs_fails_and_writes_no_metrics(inputs: Inputs, tmp_path: Path) -> None:
    """Notebook 09 (papermill) on a runs folder without a finished run: it stops with FileNotFoundError naming the
    folder, writes no metrics and leaves the folder as it was (issue 15: zero runs is not an empty success)."""
    pytest.importorskip("papermill")
    from jupyter_client.kernelspec import KernelSpecManager

    from jetcloud import nbtools

    root = inputs.out_root / "runs"
    (root / "mlp@seed0").mkdir(parents=True)  # a run that never finished: no record.json
    before = listing(inputs.out_root)
    kernel = "jetcloud" if "jetcloud" in KernelSpecManager().find_kernel_specs() else "python3"
    notebook = ROOT / "notebooks" / "09_compare_qg_models.ipynb"
    command = [sys.executable, "-m", "papermill", str(notebook), str(tmp_path / "09.ipynb"), "-k", kernel]
    command += ["--cwd", str(notebook.parent), "--no-progress-bar", "-p", "runs_dir", str(root)]
    done = subprocess.run(command, env=_child_env(), capture_output=True, text=True, timeout=600)
    log = done.stdout + done.stderr
    assert done.returncode != 0, log[-3000:]
    assert all(needle in log for needle in ("FileNotFoundError", "no finished runs", str(root))), log[-3000:]
    assert not nbtools.metrics_path("09_compare_qg_models", "smoke").exists()
    assert listing(inputs.out_root) == before
