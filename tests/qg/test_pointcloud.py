"""Image -> point cloud -> top-K conversion of the quark/gluon images (hand-built images with known answers)."""

from __future__ import annotations

import numpy as np
import pytest

from jetcloud.qg import pointcloud as qp


def _images() -> np.ndarray:
    img = np.zeros((2, 125, 125, 3), np.float32)
    img[0, 3, 7] = [1.0, 0.0, 0.0]  # row 3, col 7: track only
    img[0, 3, 2] = [0.0, 2.0, 0.0]  # same row, smaller column: comes first (row-major)
    img[0, 0, 124] = [0.0, 0.0, 0.5]
    img[0, 10, 10] = [0.0, 0.0, 1e-4]  # tiny positive values are hits (no threshold, as in e2e_sparse)
    img[1, 62, 60:65] = [0.0, 0.0, 0.2]  # one HCAL tower row: five tied pixels
    img[1, 62, 62, 1] = 3.0
    return img


def test_points_in_row_major_order_with_padding() -> None:
    img = _images()
    assert qp.hit_counts(img).tolist() == [4, 5]
    points, n = qp.images_to_points(img, max_hit=6)
    assert points.shape == (2, 6, 5) and points.dtype == np.float32 and n.tolist() == [4, 5]
    expected = np.array([[0, 0, 0.5, 124, 0], [0, 2, 0, 2, 3], [1, 0, 0, 7, 3], [0, 0, 1e-4, 10, 10]], np.float32)
    np.testing.assert_array_equal(points[0, :4], expected)
    assert np.all(points[0, 4:] == 0) and np.all(points[1, 5:] == 0)
    assert qp.channel_hit_counts(img).tolist() == [[1, 1, 2], [0, 1, 5]]
    with pytest.raises(ValueError, match=r"test_jet: image 1 has 5 hits, more than max_hit = 4"):
        qp.images_to_points(img, max_hit=4, where="test_jet")
    with pytest.raises(ValueError, match="shape"):
        qp.images_to_points(img[:, :124], max_hit=6)
    with pytest.raises(ValueError, match="floating"):
        qp.check_images(img.astype(np.int32))


def test_trim_ascending_padding_first_and_stable_ties() -> None:
    points, _ = qp.images_to_points(_images(), max_hit=6)
    top = qp.trim_top_k(points, 3)
    # jet 0: costs 0.25 (col 124), 4 (col 2), 1 (col 7), 1e-8 -> keep 0.25, 1, 4 in ascending order
    np.testing.assert_array_equal(top[0, :, 3], [124, 7, 2])
    # jet 1: tower pixels cost 0.04 except col 62 (9.04); stable sort keeps the largest row-major indices
    np.testing.assert_array_equal(top[1, :, 3], [63, 64, 62])
    # fewer hits than K: the zero padding rows come first
    six = qp.trim_top_k(points, 6)
    assert np.all(six[0, :2] == 0) and six[0, -1, 3] == 2
    desc = qp.trim_top_k(points, 6, descending=True)
    assert desc[0, 0, 3] == 2 and np.all(desc[0, -2:] == 0)
    with pytest.raises(ValueError, match="K = 7"):
        qp.trim_top_k(points, 7)
    with pytest.raises(ValueError, match=r"K = \[800\] larger than max_hit = 6"):
        qp.check_ks([3, 800], 6)


def test_trim_top_ks_equals_trim_top_k_for_every_k() -> None:
    rng = np.random.default_rng(3)
    img = np.zeros((40, 125, 125, 3), np.float32)
    hit = rng.random(img.shape) < 0.01
    img[hit] = rng.choice([0.5, 1.0, 2.0], hit.sum())  # few distinct values: many tied costs
    points, _ = qp.images_to_points(img, None, min_width=300)
    for descending in (False, True):
        many = qp.trim_top_ks(points, [7, 150, 300, 150], descending=descending)
        assert sorted(many) == [7, 150, 300]
        for k, top in many.items():
            np.testing.assert_array_equal(top, qp.trim_top_k(points, k, descending=descending))
    assert qp.trim_top_ks(points, []) == {}
    too_many = points.shape[1] + 1
    with pytest.raises(ValueError, match=f"K = {too_many} must be between 1 and the padded length"):
        qp.trim_top_ks(points, [3, too_many])


def test_check_finite_images_names_the_first_bad_jet() -> None:
    img = np.zeros((5, 125, 125, 3), np.float32)
    img[:, 1, 1, 1] = 3e38  # finite, but the sum of a jet overflows float32: must not be reported
    img[:, 2, 2, 2] = 3e38
    qp.check_finite_images(img, "f.h5: key train_jet")
    img[3, 5, 5, 0] = np.nan
    img[4, 6, 6, 2] = -np.inf
    with pytest.raises(ValueError, match=r"f\.h5: key train_jet: jet 13 has NaN or infinite .*2 such jet"):
        qp.check_finite_images(img, "f.h5: key train_jet", first_entry=10)


def test_reconstruction_round_trip() -> None:
    img = _images()
    points, _ = qp.images_to_points(img, max_hit=8)
    np.testing.assert_array_equal(qp.points_to_images(points), img)
    trimmed = qp.points_to_images(qp.trim_top_k(points, 2))
    assert np.count_nonzero(trimmed[0].any(axis=-1)) == 2 and trimmed[0, 3, 2, 1] == 2.0


# --------------------------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------------------------


def _e2e_file(path, n_train: int = 20, n_test: int = 7, seed: int = 3):
    from jetcloud.qg.e2e import E2EWriter

    rng = np.random.default_rng(seed)

    def block(n: int) -> tuple[np.ndarray, np.ndarray]:
        img = np.zeros((n, 125, 125, 3), np.float32)
        hits = rng.random((n, 125, 125, 3)) < np.array([0.004, 0.01, 0.02])
        img[hits] = rng.exponential(1.0, hits.sum()).astype(np.float32)
        meta = np.stack([rng.uniform(70, 200, n), rng.uniform(5, 40, n), rng.integers(0, 2, n)], 1)
        return img, meta.astype(np.float32)

    with E2EWriter(path, n_train=n_train, n_test=n_test) as w:
        for split, n in (("train", n_train), ("test", n_test)):
            img, meta = block(n)
            w.append(split, img, meta)
    return path


def test_convert_e2e_layout_and_worker_independence(tmp_path) -> None:
    import h5py

    src = _e2e_file(tmp_path / "qg.h5")
    out = qp.convert_e2e(src, tmp_path / "one", ks=(50, 100), chunk_size=6, workers=1, progress=False)
    from jetcloud.qg.e2e import read_e2e

    train_img, train_meta = read_e2e(src, "train")
    assert out["max_hit"] == qp.hit_counts(train_img).max() and out["jets"] == {"train": 20, "test": 7}
    x, y = qp.read_qg(tmp_path / "one" / "QG100.h5", "train")
    assert x.shape == (20, 100, 5) and x.dtype == np.float32
    np.testing.assert_array_equal(y, train_meta[:, 2])  # labels of the training jets from train_meta
    points, _ = qp.images_to_points(train_img, out["max_hit"])
    np.testing.assert_array_equal(x, qp.trim_top_k(points, 100))
    with h5py.File(tmp_path / "one" / qp.POINTS_NAME) as f:
        assert set(f["test_dataset"]) == {"X", "Y", "n_hits", "pt", "m0"}
        assert f["train_dataset/X"].shape == (20, out["max_hit"], 5)
        assert f["train_dataset/X"].chunks == (20, 128, 5)  # fixed point blocks, whatever the first chunk's width
        np.testing.assert_array_equal(f["train_dataset/X"][()], points)  # blocks beyond the hits read as zeros
    with h5py.File(tmp_path / "one" / "QG50.h5") as f:
        assert set(f) == {"train_dataset", "test_dataset"} and set(f["test_dataset"]) == {"X", "Y"}
    qp.convert_e2e(src, tmp_path / "two", ks=(50, 100), chunk_size=6, workers=2, progress=False, manifest=False)
    for name in ("QG50.h5", "QG100.h5"):
        for split in ("train", "test"):
            a, b = qp.read_qg(tmp_path / "one" / name, split), qp.read_qg(tmp_path / "two" / name, split)
            np.testing.assert_array_equal(a[0], b[0])
            np.testing.assert_array_equal(a[1], b[1])


def test_convert_e2e_test_jet_wider_than_training(tmp_path) -> None:
    """A test jet with more hits than every training jet widens the test clouds only (pile-up tails)."""
    import h5py

    from jetcloud.qg.e2e import E2EWriter

    img = np.zeros((3, 125, 125, 3), np.float32)
    img[0, 0, :4, 1] = img[1, 0, :3, 1] = 1.0  # training jets: 4 and 3 hits
    img[2, 1, :9, 0] = 2.0  # test jet: 9 hits
    meta = np.array([[100, 10, 1], [100, 10, 0], [100, 10, 1]], np.float32)
    path = tmp_path / "qg.h5"
    with E2EWriter(path, n_train=2, n_test=1) as w:
        w.append("train", img[:2], meta[:2])
        w.append("test", img[2:], meta[2:])
    out = qp.convert_e2e(path, tmp_path / "out", ks=(2,), chunk_size=2, workers=1, progress=False)
    assert out["max_hit"] == 4
    with h5py.File(tmp_path / "out" / qp.POINTS_NAME) as f:
        assert f["train_dataset/X"].shape == (2, 4, 5) and f["test_dataset/X"].shape == (1, 9, 5)
        assert f["test_dataset/n_hits"][0] == 9
    x, _ = qp.read_qg(tmp_path / "out" / "QG2.h5", "test")
    np.testing.assert_array_equal(x[0, :, 0], [2.0, 2.0])


def test_convert_e2e_bad_input_leaves_nothing(tmp_path) -> None:
    import h5py

    src = _e2e_file(tmp_path / "qg.h5", n_train=4, n_test=2)
    with pytest.raises(ValueError, match="K = \\[100000\\]"):
        qp.convert_e2e(src, tmp_path / "out", ks=(100000,), workers=1, progress=False)
    assert not (tmp_path / "out").exists()
    broken = tmp_path / "broken.h5"
    with h5py.File(broken, "w") as f:
        f["train_jet"] = np.zeros((2, 125, 125, 3), np.float32)
    with pytest.raises(ValueError, match=r"broken\.h5: missing keys"):
        qp.convert_e2e(broken, tmp_path / "out", workers=1, progress=False)
    with pytest.raises(ValueError, match="unknown compression"):
        qp.convert_e2e(src, tmp_path / "out", workers=1, progress=False, compression="zstd")
    with pytest.raises(FileNotFoundError, match="QG7.h5"):
        qp.read_qg(tmp_path / "QG7.h5")
    with h5py.File(src, "r+") as f:
        f["test_meta"][1, 2] = 2.0  # a label that is neither gluon (0) nor quark (1)
    with pytest.raises(ValueError, match=r"qg\.h5:test_meta\[0:\] column 2: labels must be 0 .* found \[2\.\]"):
        qp.convert_e2e(src, tmp_path / "out", ks=(50,), workers=1, progress=False)
    assert not (tmp_path / "out").exists()
