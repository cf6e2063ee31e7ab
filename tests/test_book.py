"""The offline HTML book of executed notebooks (jetcloud.book, issue 14): built from two crafted notebooks and
two metrics files, then opened in headless Chromium (skipped when no Chromium is installed)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import matplotlib
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from jetcloud import book
from jetcloud.io.atomic import OUTPUT_MARKER

matplotlib.use("Agg")


def _png() -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2), dpi=50)
    ax.plot([0, 1, 2], [0, 1, 4])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """build/<profile>/executed with an ATLAS and a quark/gluon notebook, build/<profile>/metrics with two files."""
    root = tmp_path_factory.mktemp("build")
    executed, metrics = root / "executed", root / "metrics"
    executed.mkdir()
    metrics.mkdir()
    plot = new_code_cell("plt.plot([0, 1, 2], [0, 1, 4])", execution_count=1)
    plot.outputs = [
        new_output("display_data", data={"image/png": _png(), "text/plain": "<Figure size 150x100 with 1 Axes>"}),
        new_output("stream", name="stdout", text="done\n"),
    ]
    atlas = new_notebook(
        cells=[
            new_markdown_cell(
                "# 04 — Evaluate the toy model\n\n**Particle flow** subtracts the energy $E = \\sum_i e_i$ of each "
                "track. Second sentence.\n\n$$\\sigma_{68} = \\frac{q_{84} - q_{16}}{2}$$"
            ),
            plot,
        ]
    )
    bar = new_code_cell("for _ in tqdm(range(3)): pass", execution_count=1)
    bar.outputs = [
        new_output(
            "display_data",
            data={
                "application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2, "version_minor": 0},
                "text/plain": "100%|##########| 3/3",
            },
        )
    ]
    qg = new_notebook(cells=[new_markdown_cell("Compare the classifiers.\n\nMore text."), bar])
    qg.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2}}
    nbformat.write(atlas, executed / "04_evaluate_toy.ipynb")
    nbformat.write(qg, executed / "09_compare_qg_models.ipynb")
    truth = {"track_conditioned": {"median": 0.97, "sigma68": 0.21}, "classical subtraction": {"median": 0.98}}
    (metrics / "04_evaluate_jetpointnet.json").write_text(json.dumps({"metrics": {"headline": {"truth": truth}}}))
    runs = {"mlp": {"auc": 0.71, "params": 86370, "level": "detector"}}
    (metrics / "09_compare_qg_models.json").write_text(
        json.dumps({"metrics": {"runs": runs, "goals": {"margin": None}}})
    )
    (metrics / "broken.json").write_text("{not json")
    return executed, metrics


@pytest.fixture(scope="module")
def built(inputs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    sources = tmp_path_factory.mktemp("notebooks")
    nbformat.write(
        new_notebook(cells=[new_markdown_cell("# 06 — Simulate jets\n\nJets.")]), sources / "06_sim_qg.ipynb"
    )
    out = tmp_path_factory.mktemp("book-parent") / "book"
    book.build_book(*inputs, out, profile="smoke", sources=sources)
    return out


def test_describe_takes_the_first_heading_and_sentence() -> None:
    nb = new_notebook(
        cells=[
            new_code_cell("x = 1"),
            new_markdown_cell("# 03 — Train it\n\n- a list\n\nThe `model` is *small*. More."),
        ]
    )
    assert book.describe(nb, "fallback") == ("Train it", "The model is small.")
    assert book.describe(new_notebook(), "fallback") == ("fallback", "")


def test_book_pages_index_and_no_network_resources(built: Path) -> None:
    assert json.loads((built / OUTPUT_MARKER).read_text()) == {"stage": "book"}
    assert sorted(p.name for p in built.iterdir() if not p.name.startswith(".")) == [
        "04_evaluate_toy.html",
        "09_compare_qg_models.html",
        "index.html",
    ]
    index = (built / "index.html").read_text()
    assert 'href="04_evaluate_toy.html"' in index and 'href="09_compare_qg_models.html"' in index
    assert "Evaluate the toy model" in index and "subtracts the energy" in index  # heading and first sentence
    assert "not executed" in index and "Simulate jets" in index  # a source notebook without an executed copy
    assert index.index("ATLAS particle flow") < index.index("04_evaluate_toy.html") < index.index("Quark/gluon")
    assert "ATLAS: per-track response, truth scale" in index and "0.97" in index and "86,370" in index
    assert "Quark/gluon: goals" in index
    page = (built / "04_evaluate_toy.html").read_text()
    assert "data:image/png;base64," in page and 'href="index.html"' in page
    for text in (page, (built / "09_compare_qg_models.html").read_text(), index):
        assert "cdnjs" not in text and "<script src=" not in text and "https://unpkg" not in text
    assert "widget-view+json" not in (built / "09_compare_qg_models.html").read_text()
    assert not [p for p in built.parent.iterdir() if p.name != "book"]  # no temporary left behind


def test_rebuild_replaces_only_a_book(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "book"
    book.build_book(*inputs, out, profile="smoke")
    (out / "stale.html").write_text("old")
    book.build_book(*inputs, out, profile="smoke")
    assert not (out / "stale.html").exists() and (out / "index.html").is_file()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not an output of .book."):
        book.build_book(*inputs, foreign)
    assert (foreign / "keep.txt").read_text() == "x"
    empty = tmp_path / "empty"
    empty.mkdir()
    book.build_book(*inputs, empty)
    assert (empty / "index.html").is_file()


def test_empty_inputs_still_give_an_index(tmp_path: Path) -> None:
    entries = book.build_book(tmp_path / "none", tmp_path / "none", tmp_path / "book", profile="demo")
    assert entries == []
    assert "No executed notebooks" in (tmp_path / "book" / "index.html").read_text()


def test_metrics_table_shapes() -> None:
    assert book.metrics_table(None) is None and book.metrics_table({}) is None
    table = book.metrics_table({"a": {"x": 1.23456, "nested": {"y": 1}}, "b": {"z": None}})
    assert "<th>x</th>" in table and "<th>z</th>" in table and "1.235" in table and "—" in table
    assert "nested" not in table
    assert "<th>k</th><td>yes</td>" in book.metrics_table({"k": True})


def test_book_loads_offline_in_headless_chromium(built: Path, tmp_path: Path) -> None:
    if book.find_chromium() is None:
        pytest.skip("Chromium is not installed (scripts/install_chromium.sh installs it)")
    shot = tmp_path / "book_index.png"
    reports = {r.name: r for r in book.check_book(built, screenshot=shot)}
    assert sorted(reports) == ["04_evaluate_toy.html", "09_compare_qg_models.html", "index.html"]
    for report in reports.values():
        assert report.ok, f"{report.name}: {report.errors} broken images {report.broken_images}"
    assert reports["04_evaluate_toy.html"].images == 1
    assert reports["index.html"].title == "jetcloud book — smoke"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
