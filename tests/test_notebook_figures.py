"""Figures are shown where people look: every figure a notebook saves is also an image in the notebook.

Runs the smoke notebook 00 with papermill (the way run_all.sh does, into a temporary data/build/figures tree)
and compares the images in the executed copy with the PNG files the run saved under figures/<profile>/.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from jetcloud import plots

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "00_simulate_atlas_events.ipynb"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _kernel() -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    names = KernelSpecManager().find_kernel_specs()
    return "jetcloud" if "jetcloud" in names else "python3"


def _images(executed: Path) -> list[bytes]:
    cells = json.loads(executed.read_text())["cells"]
    outputs = [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])]
    return [base64.b64decode(o["data"]["image/png"]) for o in outputs if "image/png" in o.get("data", {})]


def test_save_outside_a_notebook_shows_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.pyplot as plt

    monkeypatch.setenv("JETCLOUD_FIGURES", str(tmp_path))
    shown: list[object] = []
    monkeypatch.setattr(plots, "display_png", shown.append)
    fig, _ = plt.subplots()
    plots.save(fig, "quiet", "smoke")
    assert not plots.in_notebook() and shown == []
    fig, _ = plt.subplots()
    plots.save(fig, "forced", "smoke", formats=("pdf",), show=True)  # no PNG file: rendered in memory
    assert len(shown) == 1 and shown[0].startswith(PNG_MAGIC)


@pytest.mark.slow
def test_executed_notebook_holds_every_saved_figure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    papermill = pytest.importorskip("papermill")
    for var, sub in (("JETCLOUD_DATA", "data"), ("JETCLOUD_BUILD", "build"), ("JETCLOUD_FIGURES", "figures")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("MPLBACKEND", "Agg")  # as run_all.sh: figures must appear without an inline backend
    executed = tmp_path / "executed.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(executed),
        parameters={"profile": "smoke"},
        kernel_name=_kernel(),
        cwd=str(NOTEBOOK.parent),
        progress_bar=False,
    )
    saved = sorted((tmp_path / "figures" / "smoke").glob("*.png"))
    images = _images(executed)
    assert len(saved) >= 5, "notebook 00 saves its detector, event and validation figures"
    assert len(images) == len(saved), f"{len(saved)} figures saved but {len(images)} shown in the notebook"
    assert sorted(images) == sorted(p.read_bytes() for p in saved), "each image is the saved PNG"
