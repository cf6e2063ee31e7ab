"""Tests of jetcloud.atlas.pointcloud (ATLAS): samples -> fixed-length point arrays, hand-built and simulated."""

from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from jetcloud.atlas import pointcloud as pc
from jetcloud.atlas.samples import SAMPLE_TYPE

PAD = [0, 0, 0, 0, 0, -1]


# --------------------------------------------------------------------------------------------------------------
# hand-built samples (the jetcloud.atlas.samples schema)
# --------------------------------------------------------------------------------------------------------------


def cell(i: int, e: float, frac: float = 0.0, focus: float = 0.0, truth: float = 0.0, total: float = 0.0) -> dict:
    """Cell number i: position (1000 + i, 10 i, 100 i) mm, distance 5 i mm."""
    return dict(
        ID=100 + i,
        E=e,
        X=1000.0 + i,
        Y=10.0 * i,
        Z=100.0 * i,
        eta=0.1,
        phi=0.2,
        sampling=2,
        distance_to_track=5.0 * i,
        frac_label=frac,
        focus_energy=focus,
        truth_energy=truth,
        total_label=total,
    )


def sample(
    event: int,
    track: int,
    pt: float,
    track_points: list,
    cells: list,
    others: list | None = None,
    other_points: list | None = None,
) -> dict:
    return dict(
        eventNumber=event,
        trackID=track,
        trackEta=0.5,
        trackPhi=0.2,
        trackPt=pt,
        track_part_Idx=track,
        trackChi2PerNDOF=1.0,
        trackSubtractedCaloEnergy=-999.0,
        delta_r=0.2,
        total_associated_cell_energy=sum(c["E"] for c in cells),
        focus_truth_energy=sum(c["focus_energy"] for c in cells),
        n_cells=len(cells),
        track_points=track_points,
        cells=cells,
        other_tracks=others or [],
        other_track_points=other_points or [],
    )


def tp(layer: int, x: float, y: float, z: float) -> dict:
    return dict(layer=layer, X=x, Y=y, Z=z)


def make(samples: list[dict]) -> ak.Array:
    """An ak.Array of exactly ``SAMPLE_TYPE`` (dtypes included) from sample dicts.

    A first dummy row with one element in every list avoids unknown types for lists that are empty in all
    samples; it is sliced off again (``ak.enforce_type`` cannot do this for lists of records, awkward 2.6).
    """
    dummy = sample(0, 0, 1.0, [tp(0, 0, 0, 0)], [cell(0, 0)], [A_OTHER], [A_OTHER_POINTS[0]])
    raw = ak.from_iter([dummy, *samples])
    record = ak.types.from_datashape(SAMPLE_TYPE, highlevel=False)
    columns = {}
    for name, kind in zip(record.fields, record.contents, strict=True):
        if isinstance(kind, ak.types.ListType):
            inner = kind.content
            columns[name] = ak.zip(
                {
                    f: ak.values_astype(raw[name][f], t.primitive)
                    for f, t in zip(inner.fields, inner.contents, strict=True)
                }
            )
        else:
            columns[name] = ak.values_astype(raw[name], kind.primitive)
    return ak.to_packed(ak.zip(columns, depth_limit=1)[1:])


A_OTHER = dict(trackID=3, track_part_Idx=7, trackPt=3.0)
A_OTHER_POINTS = [
    dict(track=0, layer=1, X=1600.0, Y=50.0, Z=860.0, distance_to_track=40.0),
    dict(track=0, layer=2, X=1900.0, Y=60.0, Z=1010.0, distance_to_track=45.0),
]
# sample A: 3 focused points (EMB1, EMB2, EMB3), 5 cells, 1 other track with 2 points -> 10 points
A_CELLS = [
    cell(0, 0.5, frac=1.0, focus=0.5, truth=0.5, total=0.5),
    cell(1, 2.0, frac=0.25, focus=0.5, truth=2.0, total=2.0),
    cell(2, 1.0),
    cell(3, 2.0, frac=0.5, focus=1.0, truth=2.0, total=2.0),
    cell(4, 2.0),
]
A_POINTS = [tp(0, 1500.0, 0.0, 800.0), tp(1, 1600.0, 10.0, 850.0), tp(2, 1900.0, 20.0, 1000.0)]
A = sample(1, 0, 10.0, A_POINTS, A_CELLS, others=[A_OTHER], other_points=A_OTHER_POINTS)
# sample B: 1 focused point (EME2 only), 2 cells -> 3 points; sample C: no cells
B_CELLS = [cell(0, 0.3), cell(1, 0.2, frac=1.0, focus=0.2, truth=0.2, total=0.2)]
B = sample(2, 1, 4.0, [tp(4, 300.0, 400.0, 3700.0)], B_CELLS)
C = sample(3, 0, 1.0, [tp(1, 1500.0, 0.0, 0.0), tp(2, 1800.0, 0.0, 0.0)], [])


@pytest.fixture
def samples() -> ak.Array:
    return make([A, B, C])


def test_lengths_order_padding_and_types(samples: ak.Array) -> None:
    assert pc.atlas_sample_lengths(samples).tolist() == [10, 3, 2]
    out = pc.atlas_point_arrays(samples, 12)
    feats = out["feats"]
    assert feats.shape == (3, 12, 6) and feats.dtype == np.float32
    a = feats[0]
    assert a[:, 5].tolist() == [1, 1, 1, 0, 0, 0, 0, 0, 2, 2, -1, -1]
    np.testing.assert_array_equal(a[:3, :3], [[1500, 0, 800], [1600, 10, 850], [1900, 20, 1000]])
    np.testing.assert_array_equal(a[3:8, 0], [1000, 1001, 1002, 1003, 1004])  # cells in ID order
    np.testing.assert_array_equal(a[3:8, 3], [0, 5, 10, 15, 20])  # distance to the track
    np.testing.assert_array_equal(a[:3, 3], 0)  # focused points: distance 0
    np.testing.assert_array_equal(a[8:10, 3], [40, 45])
    np.testing.assert_array_equal(a[10:], [PAD, PAD])
    np.testing.assert_array_equal(feats[1, 3:], np.tile(PAD, (9, 1)))
    assert feats[1, :3, 5].tolist() == [1, 0, 0]
    assert out["n_points"].tolist() == [10, 3, 2] and out["n_cells"].tolist() == [5, 2, 0]
    assert out["eventNumber"].tolist() == [1, 2, 3] and out["trackID"].tolist() == [0, 1, 0]
    assert out["eventNumber"].dtype == np.int64 and out["trackID"].dtype == np.int32


def test_units_track_points_share_the_cell_unit(samples: ak.Array) -> None:
    mev = pc.atlas_point_arrays(samples, 12, energy_unit="MeV")
    gev = pc.atlas_point_arrays(samples, 12, energy_unit="GeV")
    np.testing.assert_allclose(mev["feats"][0, :, 4], [1e4] * 3 + [500, 2000, 1000, 2000, 2000] + [3000] * 2 + [0] * 2)
    np.testing.assert_allclose(gev["feats"][0, :, 4], [10] * 3 + [0.5, 2, 1, 2, 2] + [3] * 2 + [0] * 2)
    np.testing.assert_allclose(mev["track_pt"], [1e4, 4e3, 1e3])
    np.testing.assert_allclose(gev["focus_truth_energy"], [2.0, 0.2, 0.0])
    np.testing.assert_allclose(mev["focus_truth_energy"], [2000.0, 200.0, 0.0])
    for key in ("tot_labels", "tot_truth_e", "focus_labels"):
        np.testing.assert_allclose(mev[key], np.where(gev[key] == -1, -1, 1000 * gev[key]), rtol=1e-6)
    np.testing.assert_array_equal(mev["frac_labels"], gev["frac_labels"])  # fractions are not scaled


def test_label_masking(samples: ak.Array) -> None:
    out = pc.atlas_point_arrays(samples, 12, energy_unit="GeV")
    mask = [-1] * 3
    np.testing.assert_allclose(out["frac_labels"][0], mask + [1.0, 0.25, 0, 0.5, 0] + [-1] * 4)
    np.testing.assert_allclose(out["focus_labels"][0], mask + [0.5, 0.5, 0, 1.0, 0] + [-1] * 4)
    np.testing.assert_allclose(out["tot_labels"][0], mask + [0.5, 2.0, 0, 2.0, 0] + [-1] * 4)
    np.testing.assert_allclose(out["tot_truth_e"][0], mask + [0.5, 2.0, 0, 2.0, 0] + [-1] * 4)
    np.testing.assert_allclose(out["focus_labels"][1], [-1, 0, 0.2] + [-1] * 9)
    np.testing.assert_array_equal(out["frac_labels"][2], -1)  # no cells: everything masked
    for key in pc.ATLAS_LABELS:
        assert out[key].dtype == np.float32 and out[key].shape == (3, 12)
        np.testing.assert_array_equal(out[key] == -1, out["feats"][:, :, 5] != 0)  # mask = not a cell


@pytest.mark.parametrize(
    ("length", "types", "cell_x"),
    [
        (9, [1, 1, 1, 0, 0, 0, 0, 0, 2], [1000, 1001, 1002, 1003, 1004]),  # one other-track point dropped
        (6, [1, 1, 1, 0, 0, 0], [1001, 1003, 1004]),  # the three 2 GeV cells, in ID order
        (5, [1, 1, 1, 0, 0], [1001, 1003]),  # tie at 2 GeV: lower IDs win
        (4, [1, 1, 1, 0], [1001]),
        (3, [1, 1, 1], []),  # all focused points, no cell
        (2, [1, 1], []),
    ],
)
def test_truncation_keeps_focus_points_and_highest_energy_cells(
    samples: ak.Array, length: int, types: list, cell_x: list
) -> None:
    out = pc.atlas_point_arrays(samples, length, energy_unit="GeV")
    a = out["feats"][0]
    assert a[:, 5].tolist() == types
    np.testing.assert_array_equal(a[a[:, 5] == 0, 0], cell_x)
    np.testing.assert_array_equal(a[:, 0][: min(3, length)], [1500, 1600, 1900][:length])
    assert out["n_points"][0] == 10  # before truncation
    kept = out["frac_labels"][0] != -1
    np.testing.assert_array_equal(a[kept, 0], cell_x)  # labels follow their cells


def test_centred_coordinates_and_one_hot(samples: ak.Array) -> None:
    out = pc.atlas_point_arrays(samples, 12, coordinates="centred", one_hot_type=True, coordinate_scale=100.0)
    feats = out["feats"]
    assert feats.shape == (3, 12, 9)
    names = pc.atlas_feature_names(one_hot_type=True)
    assert names[5:] == ("is_cell", "is_focus_track", "is_other_track", "is_padding")
    a = feats[0]
    np.testing.assert_allclose(a[1, :3], 0)  # the EMB2 point is the centre
    np.testing.assert_allclose(a[0, :3], [-1.0, -0.1, -0.5])  # (1500-1600, 0-10, 800-850) / 100
    np.testing.assert_allclose(a[3, :4], [-6.0, -0.1, -8.5, 0.0])  # cell 0: (1000-1600, -10, -850) / 100
    np.testing.assert_allclose(a[4, 3], 0.05)  # distance 5 mm / 100
    np.testing.assert_allclose(feats[1, 0, :3], 0)  # sample B: its EME2 point is the centre
    onehot = a[:, 5:]
    np.testing.assert_array_equal(onehot.sum(axis=1), 1)
    np.testing.assert_array_equal(onehot.argmax(axis=1), [1, 1, 1, 0, 0, 0, 0, 0, 2, 2, 3, 3])
    np.testing.assert_array_equal(a[10], [0, 0, 0, 0, 0, 0, 0, 0, 1])
    np.testing.assert_allclose(a[0, 4], 1e4)  # energy column unchanged (MeV)


def test_nan_distance_becomes_zero() -> None:
    s = sample(5, 0, 2.0, [], [dict(cell(0, 1.0), distance_to_track=float("nan"))])
    out = pc.atlas_point_arrays(make([s]), 2)
    np.testing.assert_array_equal(out["feats"][0], [[1000, 0, 0, 0, 1000, 0], PAD])


def test_empty_input() -> None:
    out = pc.atlas_point_arrays(make([A])[:0], 7, one_hot_type=True)
    assert out["feats"].shape == (0, 7, 9) and out["focus_labels"].shape == (0, 7) and out["n_points"].shape == (0,)


def test_choose_length_and_min_cells(samples: ak.Array) -> None:
    lengths = np.arange(1, 101)
    assert pc.choose_length(lengths) == 99
    assert pc.choose_length(lengths, 1.0) == 100
    assert pc.choose_length(lengths, 0.5) == 50
    assert pc.choose_length([7]) == 7
    assert np.mean(lengths <= pc.choose_length(lengths, 0.33)) >= 0.33
    for bad in (0.0, -0.1, 1.01, float("nan")):
        with pytest.raises(ValueError, match="quantile"):
            pc.choose_length(lengths, bad)
    with pytest.raises(ValueError, match="no samples"):
        pc.choose_length([])
    kept, removed = pc.select_min_cells(samples, 3)
    assert removed == 2 and kept["eventNumber"].tolist() == [1]
    assert pc.select_min_cells(samples, 0)[1] == 0
    assert pc.select_min_cells(samples, 1)[1] == 1


def test_bad_options(samples: ak.Array) -> None:
    with pytest.raises(ValueError, match="energy_unit 'keV'"):
        pc.atlas_point_arrays(samples, 5, energy_unit="keV")
    with pytest.raises(ValueError, match="coordinates 'minmax'"):
        pc.atlas_point_arrays(samples, 5, coordinates="minmax")
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="length must be an integer >= 1"):
            pc.atlas_point_arrays(samples, bad)


# --------------------------------------------------------------------------------------------------------------
# directories
# --------------------------------------------------------------------------------------------------------------


def write_samples_dir(root: Path, parts: dict[str, list[list[dict]]]) -> Path:
    for split in pc.SPLIT_NAMES:
        (root / split).mkdir(parents=True, exist_ok=True)
        for i, rows in enumerate(parts.get(split, [])):
            ak.to_parquet(make(rows), root / split / f"part-{i:04d}-0000.parquet")
    return root


def many(n: int, n_cells: int, event0: int) -> list[dict]:
    """n samples with 1 focused point and n_cells + k cells (k = 0..n-1), i.e. lengths 1 + n_cells + k."""
    return [
        sample(event0 + k, 0, 5.0, [tp(1, 1600.0, 0.0, 0.0)], [cell(j, 0.1 * (j + 1)) for j in range(n_cells + k)])
        for k in range(n)
    ]


@pytest.fixture
def samples_dir(tmp_path: Path) -> Path:
    # train: 10 samples of lengths 3..12 in one part, plus A, B, C in another; val: A, C; test: no parts
    return write_samples_dir(tmp_path / "samples", {"train": [many(10, 2, 100), [A, B, C]], "val": [[A, C]]})


def test_build_directory(samples_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pc"
    summary = pc.build_atlas_point_clouds(samples_dir, out, length_quantile=0.9, min_cells=2, workers=1, progress=False)
    # train lengths after the filter (C removed): 3..12, 10 (A), 3 (B) -> inverted-CDF 0.9 quantile = 11
    assert summary["length"] == 11
    assert sorted(summary["lengths"]["train"].tolist()) == sorted([*range(3, 13), 10, 3])
    counts = summary["counts"]
    assert counts["train"] == dict(
        samples_in=13,
        removed_min_cells=1,
        removed_nonfinite=0,
        written=12,
        truncated=1,
        cells_in=72,
        cells_dropped=1,
        points_in=88,
        files=2,
    )
    assert counts["val"]["written"] == 1 and counts["val"]["removed_min_cells"] == 1
    assert counts["test"] == dict(
        samples_in=0,
        removed_min_cells=0,
        removed_nonfinite=0,
        written=0,
        truncated=0,
        cells_in=0,
        cells_dropped=0,
        points_in=0,
        files=0,
    )
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        ".jetcloud-output.json",
        "manifest.json",
        "point_cloud_meta.json",
        "train/part-0000-0000.npz",
        "train/part-0001-0000.npz",
        "val/part-0000-0000.npz",
    ]
    assert not list(tmp_path.glob(".pc.tmp-*"))
    meta = json.loads((out / "point_cloud_meta.json").read_text())
    assert meta == pc.read_point_cloud_meta(out)
    assert meta["length"] == 11 and meta["length_quantile"] == 0.9 and meta["mask_value"] == -1
    assert meta["features"] == list(pc.ATLAS_FEATURES) and meta["energy_unit"] == "MeV"
    assert meta["coordinates"] == "raw" and meta["one_hot_type"] is False and meta["min_cells"] == 2
    assert meta["labels"] == ["frac_labels", "tot_labels", "tot_truth_e", "focus_labels"]
    assert meta["counts"] == counts
    # npz round trip without pickle; identical to the in-memory conversion
    with np.load(out / "train" / "part-0001-0000.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(
            ["feats", *pc.ATLAS_LABELS, *pc.ATLAS_SCALARS, *pc.ATLAS_CELL_ARRAYS, *pc.ATLAS_POINT_ARRAYS]
        )
        expected = pc.atlas_point_arrays(make([A, B]), 11)
        for key, value in expected.items():
            np.testing.assert_array_equal(npz[key], value)
            assert npz[key].dtype == value.dtype
    train = pc.load_point_clouds(out, "train")
    assert train["feats"].shape == (12, 11, 6) and train["eventNumber"].tolist() == [*range(100, 110), 1, 2]
    mapped = pc.open_npz(out / "val" / "part-0000-0000.npz", ["feats", "focus_labels"], mmap=True)
    assert isinstance(mapped["feats"], np.memmap) and set(mapped) == {"feats", "focus_labels"}
    np.testing.assert_array_equal(mapped["feats"], pc.atlas_point_arrays(make([A]), 11)["feats"])
    test = pc.load_point_clouds(out, "test")
    assert test["feats"].shape == (0, 11, 6) and test["trackID"].dtype == np.int32
    with pytest.raises(KeyError, match="nope"):
        pc.open_npz(out / "val" / "part-0000-0000.npz", ["nope"])
    with pytest.raises(ValueError, match="split 'dev'"):
        pc.point_cloud_files(out, "dev")


def test_build_options_and_given_length(samples_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pc"
    summary = pc.build_atlas_point_clouds(
        samples_dir,
        out,
        length=4,
        min_cells=0,
        energy_unit="GeV",
        coordinates="centred",
        one_hot_type=True,
        compress=True,
        workers=2,
        progress=False,
        manifest=False,
    )
    assert summary["length"] == 4 and summary["counts"]["train"]["written"] == 13
    meta = pc.read_point_cloud_meta(out)
    assert meta["n_features"] == 9 and meta["coordinates"] == "centred" and meta["coordinate_scale_mm"] == 1000
    assert meta["length_source"] == "given" and meta["compressed"] is True
    assert not (out / "manifest.json").exists()
    val = pc.load_point_clouds(out, "val", mmap=True)  # compressed: read into memory
    assert val["feats"].shape == (2, 4, 9)
    np.testing.assert_array_equal(
        val["feats"],
        pc.atlas_point_arrays(make([A, C]), 4, energy_unit="GeV", coordinates="centred", one_hot_type=True)["feats"],
    )


def test_rebuild_replaces_old_output_but_never_a_users_files(samples_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pc"
    pc.build_atlas_point_clouds(samples_dir, out, min_cells=0, workers=1, progress=False, manifest=False)
    (out / "train" / "stale.npz").write_text("stale")  # inside a previous output of this stage
    pc.build_atlas_point_clouds(samples_dir, out, min_cells=0, workers=1, progress=False, manifest=False)
    assert not (out / "train" / "stale.npz").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("a user's file")
    with pytest.raises(FileExistsError, match="mine holds files that are not an output"):
        pc.build_atlas_point_clouds(samples_dir, mine, min_cells=0, workers=1, progress=False, manifest=False)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def leftovers(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".pc"))


def test_bad_inputs_named_and_no_output(samples_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pc"
    build = pc.build_atlas_point_clouds
    kw = dict(workers=1, progress=False)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        build(tmp_path / "nowhere", out, **kw)
    partial = write_samples_dir(tmp_path / "partial", {"train": [[A]]})
    (partial / "val").rmdir()
    with pytest.raises(FileNotFoundError, match="no 'val' split"):
        build(partial, out, **kw)
    with pytest.raises(ValueError, match="length must be"):
        build(samples_dir, out, length=0, **kw)
    for q in (0, 1.5):
        with pytest.raises(ValueError, match="length_quantile"):
            build(samples_dir, out, length_quantile=q, **kw)
    with pytest.raises(ValueError, match="energy_unit"):
        build(samples_dir, out, energy_unit="eV", **kw)
    with pytest.raises(ValueError, match="min_cells"):
        build(samples_dir, out, min_cells=-1, **kw)
    with pytest.raises(ValueError, match="none of the samples .* has >= min_cells = 50 cells"):
        build(samples_dir, out, min_cells=50, **kw)
    # wrong schema: the file and the missing fields are named
    wrong = write_samples_dir(tmp_path / "wrong", {"train": [[A]]})
    bad_file = wrong / "val" / "part-0007-0000.parquet"
    ak.to_parquet(ak.Array([{"eventNumber": 1, "cells": [{"E": 1.0}]}]), bad_file)
    with pytest.raises(ValueError, match=r"part-0007-0000\.parquet.*missing fields: trackID.*cells\.X"):
        build(wrong, out, **kw)
    (wrong / "val" / "part-0007-0000.parquet").write_text("not parquet")
    with pytest.raises(ValueError, match="part-0007-0000.parquet: not a readable parquet"):
        build(wrong, out, **kw)
    assert not out.exists() and leftovers(tmp_path) == []


def test_failure_in_a_worker_leaves_previous_output(samples_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pc"
    pc.build_atlas_point_clouds(samples_dir, out, min_cells=0, workers=1, progress=False, manifest=False)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    broken = dict(A, other_track_points=[dict(A["other_track_points"][0], track=5)])  # no such other track
    ak.to_parquet(make([broken]), samples_dir / "val" / "part-0000-0000.parquet")
    with pytest.raises(ValueError, match=r"val/part-0000-0000\.parquet.*other_tracks"):
        pc.build_atlas_point_clouds(samples_dir, out, min_cells=0, workers=1, progress=False)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    with pytest.raises(ValueError, match="other_tracks"):
        pc.build_atlas_point_clouds(samples_dir, tmp_path / "fresh", min_cells=0, workers=2, progress=False)
    assert not (tmp_path / "fresh").exists() and leftovers(tmp_path) == []
    assert not list(tmp_path.glob(".fresh*"))


# --------------------------------------------------------------------------------------------------------------
# end to end on simulated files
# --------------------------------------------------------------------------------------------------------------


def test_simulated_end_to_end(simulated: Path, tmp_path: Path) -> None:
    from jetcloud.atlas.samples import build_samples

    files = sorted((simulated / "events").glob("*.root"))
    build_samples(files, simulated / "geometry.root", tmp_path / "samples", workers=1, progress=False)
    out = tmp_path / "pc"
    summary = pc.build_atlas_point_clouds(
        tmp_path / "samples", out, min_cells=5, length_quantile=0.9, workers=1, progress=False
    )
    length = summary["length"]
    train_lengths = summary["lengths"]["train"]
    assert length == pc.choose_length(train_lengths, 0.9) and 1 <= length <= train_lengths.max()
    assert summary["counts"]["train"]["truncated"] == int(np.sum(train_lengths > length)) > 0
    for split in pc.SPLIT_NAMES:
        parts = sorted((tmp_path / "samples" / split).glob("*.parquet"))
        if not parts:
            continue
        samples = ak.concatenate([ak.from_parquet(p) for p in parts])
        samples = samples[ak.num(samples["cells"]) >= 5]
        arrays = pc.load_point_clouds(out, split)
        assert arrays["feats"].shape == (len(samples), length, 6)
        np.testing.assert_array_equal(arrays["eventNumber"], ak.to_numpy(samples["eventNumber"]))
        np.testing.assert_array_equal(arrays["n_points"], pc.atlas_sample_lengths(samples))
        types = arrays["feats"][..., 5]
        n_focus = np.minimum(ak.to_numpy(ak.num(samples["track_points"])), length)
        np.testing.assert_array_equal((types == 1).sum(1), n_focus)
        np.testing.assert_array_equal((types != -1).sum(1), np.minimum(arrays["n_points"], length))
        np.testing.assert_array_equal(arrays["focus_labels"] == -1, types != 0)
        # untruncated samples: the cell labels are the parquet labels in MeV, energies match
        full = np.flatnonzero(arrays["n_points"] <= length)
        cells = samples["cells"][full]
        focus = arrays["focus_labels"][full]
        np.testing.assert_allclose(focus[focus != -1], 1000 * ak.to_numpy(ak.flatten(cells["focus_energy"])), rtol=1e-6)
        np.testing.assert_allclose(
            arrays["focus_truth_energy"], 1000 * ak.to_numpy(samples["focus_truth_energy"]), rtol=1e-6
        )
        feats = arrays["feats"][full]
        np.testing.assert_allclose(feats[types[full] == 0, 4], 1000 * ak.to_numpy(ak.flatten(cells["E"])), rtol=1e-6)
        assert np.isfinite(arrays["feats"]).all()


def test_point_cloud_figures(samples: ak.Array) -> None:
    import matplotlib.pyplot as plt

    from jetcloud.atlas import plots as atlas_plots

    for one_hot in (False, True):
        out = pc.atlas_point_arrays(samples, 12, one_hot_type=one_hot)
        names = pc.atlas_feature_names(one_hot)
        types = atlas_plots.point_types(out["feats"], names)
        assert types[0].tolist() == [1, 1, 1, 0, 0, 0, 0, 0, 2, 2, -1, -1]
        fig = atlas_plots.point_cloud_display(out["feats"][0], out["focus_labels"][0], names, title="A")
        plt.close(fig)
    plt.close(atlas_plots.point_label_distributions(out))


def test_load_parts_and_read_sample_find_the_same_track(simulated, tmp_path) -> None:
    """load_parts tags samples with their parquet part; read_sample finds the sample again; display_index."""
    from jetcloud.atlas.plots import display_index
    from jetcloud.atlas.pointcloud import ATLAS_FEATURES, build_atlas_point_clouds, load_parts
    from jetcloud.atlas.samples import build_samples, read_sample

    files = sorted((simulated / "events").glob("*.root"))
    build_samples(files, simulated / "geometry.root", tmp_path / "s", workers=1, progress=False)
    out = build_atlas_point_clouds(tmp_path / "s", tmp_path / "p", min_cells=1, workers=1, progress=False)
    arrays = load_parts(tmp_path / "p", "train", max_files=1)
    assert len(arrays["part"]) == len(arrays["n_points"]) > 0
    i = display_index(arrays, ATLAS_FEATURES, out["length"])
    sample = read_sample(
        tmp_path / "s", "train", str(arrays["part"][i]), int(arrays["eventNumber"][i]), int(arrays["trackID"][i])
    )
    assert len(sample["cells"]) == arrays["n_cells"][i]
    with pytest.raises(KeyError, match="no sample"):
        read_sample(tmp_path / "s", "train", str(arrays["part"][i]), -5, 0)
    assert load_parts(tmp_path / "p", "train", max_files=0) == {}


def test_contract_geometry_arrays(samples: ak.Array) -> None:
    """cell_id, sampling, cell_eta / phi on cells (fill elsewhere), point geometry of track points, track p."""
    out = pc.atlas_point_arrays(samples, 12)
    types = pc.point_types(out["feats"], pc.ATLAS_FEATURES)
    cell = types == 0
    assert out["cell_id"].dtype == np.uint64 and out["sampling"].dtype == np.int16
    assert (out["cell_id"][cell] >= 100).all() and (out["cell_id"][~cell] == 0).all()
    assert (out["sampling"][cell] == 2).all() and (out["sampling"][~cell] == -1).all()
    np.testing.assert_allclose(out["cell_eta"][cell], 0.1) and np.testing.assert_allclose(out["cell_phi"][cell], 0.2)
    assert np.isnan(out["cell_eta"][~cell]).all() and np.isnan(out["cell_phi"][~cell]).all()
    track = (types == 1) | (types == 2)
    assert (out["point_sampling"][track] >= 1).all() and np.isfinite(out["point_eta"][track]).all()
    assert (out["point_sampling"][types == -1] == -1).all() and np.isnan(out["point_eta"][types == -1]).all()
    np.testing.assert_array_equal(out["point_sampling"][cell], out["sampling"][cell])
    # track p in GeV whatever the energy unit: pT cosh(eta)
    np.testing.assert_allclose(out["track_p"], out["track_pt"] / 1000.0 * np.cosh(0.5), rtol=1e-6)
    np.testing.assert_allclose(out["track_phi"], 0.2)
    # a track point's direction: eta, phi of its X, Y, Z
    i, j = np.argwhere(types == 1)[0]
    x, y, z = out["feats"][i, j, :3]
    assert out["point_eta"][i, j] == pytest.approx(np.arcsinh(z / np.hypot(x, y)), abs=1e-5)
