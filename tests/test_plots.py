"""Figure conventions: every public figure function of atlas/plots.py and qg/plots.py, called on small synthetic
inputs, returns a figure labelled "jetcloud Simulation" (never ATLAS or CMS); histograms carry error bars; the
shared ROC AUC agrees with scikit-learn's."""

from __future__ import annotations

import inspect
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import awkward as ak  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from jetcloud import metrics, plots  # noqa: E402
from jetcloud.atlas import plots as atlas_plots  # noqa: E402
from jetcloud.qg import energyflow  # noqa: E402
from jetcloud.qg import plots as qg_plots  # noqa: E402


def _figure_functions(module) -> list[str]:
    """Public functions of ``module`` defined there whose return annotation names a Figure."""
    names = []
    for name, fn in inspect.getmembers(module, inspect.isfunction):
        if name.startswith("_") or inspect.unwrap(fn).__module__ != module.__name__:
            continue
        if "Figure" in str(inspect.signature(fn).return_annotation):
            names.append(name)
    return sorted(names)


#: Figure functions that draw through another labelled one (not decorated themselves).
DELEGATING = {"particle_level"}


@pytest.mark.parametrize("module", [atlas_plots, qg_plots], ids=["atlas", "qg"])
def test_every_figure_function_is_a_labelled_simulation_figure(module):
    """New figure functions must use ``@plots.simulation_figure(...)`` (style + "jetcloud Simulation" label)."""
    missing = [
        n for n in _figure_functions(module) if n not in DELEGATING and not hasattr(getattr(module, n), "__wrapped__")
    ]
    assert not missing, f"figure functions without @plots.simulation_figure: {missing}"


# ---- synthetic inputs ------------------------------------------------------------------------------------------
def _rng():
    return np.random.default_rng(7)


def _geometry():
    from jetcloud.atlas.cellgeo import load_geometry

    return load_geometry("builtin")


def _sample_record():
    rng = _rng()
    n = 30
    cells = [
        {"eta": float(e), "phi": float(p), "E": float(x), "frac_label": float(f), "truth_energy": float(t)}
        for e, p, x, f, t in zip(
            rng.normal(0.3, 0.1, n),
            rng.normal(1.0, 0.1, n),
            rng.exponential(0.5, n),
            rng.uniform(0, 1, n),
            rng.exponential(0.3, n),
            strict=True,
        )
    ]
    point = {"X": 1500.0, "Y": 1500.0, "Z": 400.0}
    return {
        "cells": cells,
        "trackPhi": 1.0,
        "trackEta": 0.3,
        "trackPt": 5.0,
        "trackID": 1,
        "eventNumber": 3,
        "track_points": [point],
        "other_track_points": [{"X": 1400.0, "Y": 1600.0, "Z": 380.0}],
        "focus_truth_energy": 4.0,
        "total_associated_cell_energy": 6.0,
    }


FEATURES = ("x", "y", "z", "energy", "type")


def _point_arrays(n: int = 4, length: int = 40):
    rng = _rng()
    feats = np.zeros((n, length, len(FEATURES)), np.float32)
    feats[..., 4] = -1  # padding
    n_points = np.full(n, 25)
    n_points[0] = 45  # truncated
    for i in range(n):
        k = min(n_points[i], length)
        phi, eta = rng.normal(0.5, 0.1, k), rng.normal(0.2, 0.1, k)
        r = 1600.0
        feats[i, :k, 0], feats[i, :k, 1], feats[i, :k, 2] = r * np.cos(phi), r * np.sin(phi), r * np.sinh(eta)
        feats[i, :k, 3] = rng.exponential(500.0, k)
        feats[i, :k, 4] = 0
        feats[i, 0, 4], feats[i, k - 2 : k, 4] = 1, 2
    cells = feats[..., 4] == 0
    frac = np.where(cells, rng.uniform(0, 1, feats.shape[:2]), -1.0)
    focus = np.where(cells, frac * feats[..., 3], -1.0)
    total = np.where(cells, np.where(frac > 0, feats[..., 3], 0.0), -1.0)
    return {
        "feats": feats,
        "frac_labels": frac,
        "focus_labels": focus,
        "tot_labels": total,
        "tot_truth_e": np.where(cells, feats[..., 3], -1.0),
        "focus_truth_energy": np.where(cells, focus, 0).sum(axis=1) * 1.1,
        "n_points": n_points,
        "eventNumber": np.arange(n),
        "trackID": np.zeros(n, int),
        "track_pt": np.full(n, 5000.0),
    }


def _tables():
    rng = _rng()
    n = 400
    e_true = rng.exponential(5.0, n) + 0.5
    out = {}
    for name, scale in (("pointnet", 0.1), ("baseline", 0.3)):
        e_pred = e_true * rng.normal(1.0, scale, n)
        out[name] = {
            "response": e_pred / e_true,
            "e_pred": e_pred,
            "e_true": e_true,
            "pt": rng.uniform(1, 100, n),
            "eta": rng.uniform(-2.5, 2.5, n),
        }
    return out


def _resolution_scan():
    e = np.array([2.0, 5.0, 10.0, 50.0])
    res = {"energy": e, "response": 0.9 + 0 * e, "response_err": 0.01 + 0 * e}
    res |= {"resolution": 0.1 / np.sqrt(e), "resolution_err": 0.005 + 0 * e}
    return {"electron": res}, {"electron": {"a": 0.1, "b": 0.01}}


def _qg_points(n: int = 6, length: int = 50):
    rng = _rng()
    points = np.zeros((n, length, 5), np.float32)
    points[..., :3] = rng.exponential(1.0, (n, length, 3)) * (rng.uniform(size=(n, length, 3)) > 0.5)
    points[..., 3:] = rng.integers(0, 125, (n, length, 2))
    return points, np.arange(n) % 2


def _qg_images(n: int = 2):
    rng = _rng()
    images = np.zeros((n, 125, 125, 3), np.float32)
    mask = rng.uniform(size=images.shape) > 0.995
    images[mask] = rng.exponential(1.0, mask.sum())
    return images


def _qg_columns():
    rng = _rng()
    n = 200
    return {
        "label": np.arange(n) % 2,
        "pt": rng.uniform(70, 120, n),
        "m0": rng.uniform(5, 30, n),
        "n_constituents": rng.integers(5, 60, n),
    }


def _atlas_cases(simulated_events):
    rng = _rng()
    arrays = _point_arrays()
    geometry = _geometry()
    sample = _sample_record()
    samples = ak.Array([sample, sample])
    cases = {
        "length_distributions": lambda: atlas_plots.length_distributions(
            {"train": rng.integers(10, 900, 50), "val": rng.integers(10, 900, 20)}, chosen=300
        ),
        "sample_display": lambda: atlas_plots.sample_display(ak.Array([sample])[0]),
        "label_distributions": lambda: atlas_plots.label_distributions(samples),
        "point_cloud_display": lambda: atlas_plots.point_cloud_display(
            arrays["feats"][1], arrays["focus_labels"][1], FEATURES
        ),
        "point_label_distributions": lambda: atlas_plots.point_label_distributions(arrays),
        "detector_layout": lambda: atlas_plots.detector_layout(geometry, max_cells=2000),
        "sampling_fractions": lambda: atlas_plots.sampling_fractions(
            {"electron": rng.uniform(0, 0.1, len(atlas_plots.SAMPLING_NAMES))}
        ),
        "response_resolution": lambda: atlas_plots.response_resolution(*_resolution_scan()),
        "noise_by_sampling": lambda: atlas_plots.noise_by_sampling(geometry),
        "response_distributions": lambda: atlas_plots.response_distributions(_tables()),
        "binned_response_figure": lambda: atlas_plots.binned_response_figure(_tables(), min_entries=2),
        "percentage_error_figure": lambda: atlas_plots.percentage_error_figure(_tables()),
        "prediction_display": lambda: atlas_plots.prediction_display(
            arrays, 1, {"pointnet": arrays["focus_labels"] * 0.9}, FEATURES
        ),
    }
    if simulated_events is not None:
        cases["event_display"] = lambda: atlas_plots.event_display(simulated_events, geometry)
        cases["cluster_and_noise"] = lambda: atlas_plots.cluster_and_noise(simulated_events, geometry)
    return cases


def _qg_cases():
    points, labels = _qg_points()
    images = _qg_images()
    rng = _rng()
    e = np.array([5.0, 20.0, 100.0])
    scan = {"electron": {"energy": e, "ecal": e[:, None] * rng.normal(1, 0.02, (3, 50)), "hcal": np.zeros((3, 50))}}
    return {
        "channel_energy_histograms": lambda: qg_plots.channel_energy_histograms(points, labels),
        "hit_multiplicities": lambda: qg_plots.hit_multiplicities(
            rng.integers(1, 600, (40, 3)), np.arange(40) % 2, rng.integers(1, 900, 40)
        ),
        "point_cloud_3d": lambda: qg_plots.point_cloud_3d(points[0], title="one jet"),
        "reconstruction": lambda: qg_plots.reconstruction([images[0], images[1]], ["original", "top-K"]),
        "kept_fraction": lambda: qg_plots.kept_fraction(points, [5, 20]),
        "mean_images": lambda: qg_plots.mean_images({1: images[0], 0: images[1]}, {1: 10, 0: 12}),
        "example_images": lambda: qg_plots.example_images(images, np.array([1, 0]), np.array([[100.0, 10.0]] * 2)),
        "jet_kinematics": lambda: qg_plots.jet_kinematics(_qg_columns(), title="test"),
        "image_hit_counts": lambda: qg_plots.image_hit_counts(rng.integers(1, 700, (40, 3)), np.arange(40) % 2),
        "particle_level": lambda: qg_plots.particle_level(_qg_columns()),
        "detector_response": lambda: qg_plots.detector_response(scan),
        "pt_hat_window": lambda: qg_plots.pt_hat_window(_window_study(rng)),
        "pid_composition": lambda: qg_plots.pid_composition(energyflow.pid_composition(_particles(rng), labels[:4])),
        "physics_points": lambda: qg_plots.physics_points(
            rng.integers(1, 300, (40, 3)), np.arange(40) % 2, _physics_jet(rng), title="one jet"
        ),
    }


def _window_study(rng: np.random.Generator) -> dict:
    """The layout of :func:`jetcloud.qg.particle_level.pt_hat_window_study`, with Poisson counts."""
    ref = {c: rng.poisson(80, 10).astype(float) for c in (0, 1)}
    chosen = {"lost": 0.01, "lost_err": 0.005, "events_per_jet": 20.0}
    return {
        "edges": np.linspace(500, 550, 11),
        "windows": {"reference": (300.0, 7000.0), "chosen": (325.0, 850.0)},
        **{
            c: {"reference": ref[c], "window": ref[c] - 1, "chosen": chosen, "reference_events_per_jet": 28.0}
            for c in (0, 1)
        },
    }


def _particles(rng: np.random.Generator) -> np.ndarray:
    """Four padded particle-level jets (pT, y, phi, pid) of EnergyFlow's species."""
    x = np.zeros((4, 6, 4), np.float32)
    x[:, :5, 0] = rng.uniform(1, 50, (4, 5))
    x[:, :5, 3] = rng.choice([22, 211, -211, 130, 2112], (4, 5))
    return x


def _physics_jet(rng: np.random.Generator) -> np.ndarray:
    """One jet's physics points (log E, E/sum E, deta, dphi, dR, type one-hot)."""
    n = 30
    e = rng.exponential(2.0, n)
    deta, dphi = rng.normal(0, 0.2, (2, n))
    kind = np.eye(3)[rng.integers(0, 3, n)]
    return np.column_stack([np.log(e), e / e.sum(), deta, dphi, np.hypot(deta, dphi), kind]).astype(np.float32)


@pytest.fixture(scope="module")
def simulated_events(simulated: Path):
    from jetcloud.atlas import mltree

    files = sorted((simulated / "events").glob("*.root"))
    return mltree.open_event_tree(files[0]).arrays()


def _check_labelled(fig, experiment_word: str = "jetcloud") -> None:
    assert isinstance(fig, plt.Figure)
    labels = plots.find_labels(fig)
    plt.close(fig)
    assert labels == [f"{experiment_word} Simulation"], labels
    assert not any("ATLAS" in t or "CMS" in t for t in labels)


def test_atlas_figures_carry_the_simulation_label(simulated_events, isolated_outputs):
    # functions appended later without a case here are still checked to be decorated (first test)
    for name, make in _atlas_cases(simulated_events).items():
        out = make()
        fig = out[0] if isinstance(out, tuple) else out
        assert plots.find_labels(fig) == ["jetcloud Simulation"], name
        _check_labelled(fig)


def test_qg_figures_carry_the_simulation_label():
    cases = _qg_cases()
    assert set(_figure_functions(qg_plots)) <= set(cases), set(_figure_functions(qg_plots)) - set(cases)
    for make in cases.values():
        _check_labelled(make())


def test_figures_use_their_experiment_style_whatever_the_global_style():
    plots.use_style(experiment="atlas")
    qg_fig = qg_plots.kept_fraction(_qg_points()[0], [5])
    atlas_fig = atlas_plots.response_distributions(_tables())
    plots.use_style(experiment="cms")
    atlas_fig_2 = atlas_plots.response_distributions(_tables())
    plots.use_style()
    width = {name: plots.style_rc(name)["axes.linewidth"] for name in ("atlas", "cms")}
    assert width["atlas"] != width["cms"]
    assert qg_fig.axes[0].spines["left"].get_linewidth() == width["cms"]
    assert atlas_fig.axes[0].spines["left"].get_linewidth() == width["atlas"]
    assert atlas_fig_2.axes[0].spines["left"].get_linewidth() == width["atlas"]
    for fig in (qg_fig, atlas_fig, atlas_fig_2):
        plt.close(fig)


def test_save_keeps_the_label_in_the_png(isolated_outputs):
    fig = atlas_plots.response_distributions(_tables())
    png, _ = plots.save(fig, "test_labelled", "smoke")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_histogram_draws_poisson_error_bars():
    fig, ax = plt.subplots()
    h = plots.histogram(ax, np.array([0.5, 1.5, 1.6, 2.5, 2.6, 2.7]), np.array([0.0, 1.0, 2.0, 3.0]), label="x")
    np.testing.assert_array_equal(h.values(), [1, 2, 3])
    segments = [c for c in ax.collections if isinstance(c, matplotlib.collections.LineCollection)]
    assert segments, "no error bars drawn"
    lengths = sorted(float(np.ptp(seg[:, 1])) for seg in segments[0].get_segments())
    np.testing.assert_allclose(lengths, 2 * np.sqrt([1, 2, 3]), rtol=1e-6)
    plt.close(fig)


def test_histogram_density_integrates_to_one():
    fig, ax = plt.subplots()
    bins = np.array([0.0, 0.5, 2.0, 3.0])
    plots.histogram(ax, np.array([0.1, 0.2, 1.0, 2.5, 9.0]), bins, density=True, clip=True)
    heights = [line.get_ydata() for line in ax.lines if len(line.get_ydata()) > 2]
    assert heights
    plt.close(fig)


def test_resolution_legend_uses_a_glyph_the_font_has(recwarn):
    plots.use_style()
    fig = atlas_plots.response_resolution(*_resolution_scan())
    fig.canvas.draw()
    texts = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    plt.close(fig)
    assert any(r"\oplus" in t for t in texts)
    assert not any("⊕" in t or "(+)" in t for t in texts)
    assert not [w for w in recwarn if "missing from font" in str(w.message)]


def test_roc_auc_matches_sklearn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    for n, shift in ((50, 0.0), (500, 0.7), (2000, 2.0)):
        labels = rng.integers(0, 2, n)
        scores = rng.normal(size=n) + shift * labels
        assert metrics.roc_auc(labels, scores) == pytest.approx(sklearn_metrics.roc_auc_score(labels, scores), abs=1e-9)
    ties = np.round(rng.normal(size=300), 1)  # tied scores: both count ties as one half
    labels = rng.integers(0, 2, 300)
    assert metrics.roc_auc(labels, ties) == pytest.approx(sklearn_metrics.roc_auc_score(labels, ties), abs=1e-9)
