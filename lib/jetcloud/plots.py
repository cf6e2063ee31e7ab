"""One figure style for every notebook, and one way to save figures.

::

    plots.use_style()
    fig, ax = plt.subplots()
    ...
    plots.atlas_label(ax)                      # "jetcloud Simulation Internal": never claims ATLAS data
    plots.save(fig, "atlas_response_vs_e", profile)   # figures/<profile>/atlas_response_vs_e.{png,pdf}

The style is mplhep's ATLAS style; its fonts ship with the ``mplhep_data`` package, so nothing is
downloaded. Figures are written atomically and closed, so long loops do not accumulate open figures. Inside a
Jupyter kernel (JupyterLab, or papermill's executed copies) :func:`save` also shows the saved PNG as the cell's
output, whatever the matplotlib backend: what a reader sees is exactly the file under ``figures/<profile>/``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.offsetbox import AnchoredOffsetbox, HPacker, TextArea

from jetcloud import paths
from jetcloud.io.atomic import atomic_path

log = logging.getLogger(__name__)

DPI = 140
FONT_SIZE = 14
FORMATS = ("png", "pdf")
LABEL = "jetcloud"
"""Experiment word of :func:`atlas_label`: plots show simulation with an ATLAS-like detector, not ATLAS."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def use_style(font_size: float = FONT_SIZE) -> None:
    """Apply mplhep's ATLAS style (fonts from ``mplhep_data``, no download) with a readable font size."""
    import mplhep

    mplhep.style.use(mplhep.style.ATLAS)
    matplotlib.rcParams.update(
        {
            "font.size": font_size,
            "axes.labelsize": 1.1 * font_size,
            "xtick.labelsize": font_size,
            "ytick.labelsize": font_size,
            "legend.fontsize": 0.9 * font_size,
            "savefig.dpi": DPI,
            "figure.dpi": 100,
        }
    )


def atlas_label(
    ax: matplotlib.axes.Axes,
    text: str = "Simulation Internal",
    *,
    rlabel: str | None = None,
    loc: str = "upper left",
    fontsize: float | None = None,
) -> AnchoredOffsetbox:
    """Mark ``ax`` as jetcloud simulation: bold italic "jetcloud" followed by ``text``, inside the axes.

    The ATLAS-style layout is deliberate, the word is not: these plots come from Pythia and a parametric
    ATLAS-like detector and must never read as ATLAS results. ``rlabel`` (e.g. ``"√s = 13 TeV"``: plain
    Unicode, as mathtext ``\\sqrt`` warns when embedded in PDFs with this font) is written above the
    top-right corner of the axes. Returns the label artist.
    """
    size = fontsize if fontsize is not None else matplotlib.rcParams["font.size"]
    children = [TextArea(LABEL, textprops={"fontweight": "bold", "fontstyle": "italic", "fontsize": size})]
    if text:
        children.append(TextArea(text, textprops={"fontsize": size}))
    box = AnchoredOffsetbox(
        loc=loc,
        child=HPacker(children=children, align="baseline", pad=0, sep=0.3 * size),
        frameon=False,
        pad=0.3,
        borderpad=0.5,
    )
    box.set_zorder(10)
    ax.add_artist(box)
    if rlabel:
        ax.text(1.0, 1.01, rlabel, transform=ax.transAxes, ha="right", va="bottom", fontsize=0.85 * size)
    return box


def figure_paths(name: str, profile: str, formats: Sequence[str] = FORMATS) -> list[Path]:
    """``figures/<profile>/<name>.<format>`` for each format."""
    if not isinstance(name, str) or not _NAME.match(name) or Path(name).suffix.lower() in {".png", ".pdf"}:
        raise ValueError(f"figure name must be a plain file stem such as 'atlas_response_vs_e', got {name!r}")
    directory = paths.figures_dir(profile)
    return [directory / f"{name}.{fmt}" for fmt in formats]


def save(
    fig: matplotlib.figure.Figure,
    name: str,
    profile: str,
    *,
    formats: Sequence[str] = FORMATS,
    dpi: int = DPI,
    close: bool = True,
    show: bool | None = None,
) -> list[Path]:
    """Write ``fig`` to ``figures/<profile>/<name>.png`` and ``.pdf`` atomically, show it, close it, return paths.

    ``show=None`` shows the saved PNG as a cell output when running inside a Jupyter kernel (:func:`in_notebook`)
    and does nothing elsewhere (scripts, tests). The PDF carries no creation date, so rerunning a notebook with
    the same seed gives the same file.
    """
    targets = figure_paths(name, profile, formats)
    try:
        for target in targets:
            fmt = target.suffix[1:]
            metadata = {"CreationDate": None} if fmt == "pdf" else None
            with atomic_path(target) as tmp:
                fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight", metadata=metadata)
    finally:
        if close:
            plt.close(fig)
    log.info("saved figure %s (%s)", targets[0].with_suffix(""), ", ".join(formats))
    if show if show is not None else in_notebook():
        display_png(next((t for t in targets if t.suffix == ".png"), None) or _render_png(fig, dpi))
    return targets


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, VS Code, papermill), False in scripts and plain IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None


def display_png(png: Path | bytes) -> None:
    """Show a PNG (a file or its bytes) as the output of the running notebook cell."""
    from IPython.display import Image, display

    display(Image(data=png.read_bytes() if isinstance(png, Path) else png, format="png"))


def _render_png(fig: matplotlib.figure.Figure, dpi: int) -> bytes:
    """The figure as PNG bytes (for :func:`save` with formats that include no PNG)."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def learning_curves(histories: Mapping[str, Sequence[Mapping[str, float]]]) -> matplotlib.figure.Figure:
    """Training and validation loss (left, log) and learning rate (right) per epoch, one colour per run.

    ``histories`` maps a run name to the rows of its ``history.csv`` (:attr:`jetcloud.train.FitResult.history`).
    """
    fig, (ax_loss, ax_lr) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, (name, rows) in enumerate(histories.items()):
        colour = f"C{i}"
        epoch = [r["epoch"] for r in rows]
        ax_loss.plot(epoch, [r["train_loss"] for r in rows], "o-", color=colour, label=f"{name} train")
        if any(np.isfinite(r.get("val_loss", np.nan)) for r in rows):
            ax_loss.plot(epoch, [r.get("val_loss", np.nan) for r in rows], "s--", color=colour, label=f"{name} val")
        ax_lr.plot(epoch, [r["lr"] for r in rows], "o-", color=colour, label=name)
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.legend(fontsize="x-small")
    ax_lr.set_xlabel("epoch")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_yscale("log")
    fig.tight_layout()
    return fig
