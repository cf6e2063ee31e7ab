"""One figure style for every notebook, and one way to save figures.

::

    plots.use_style()                          # ATLAS-like style (notebooks 00-05); "cms" for 06-09
    fig, ax = plt.subplots()
    ...
    plots.atlas_label(ax)                      # "jetcloud Simulation Internal": never claims ATLAS data
    plots.save(fig, "atlas_response_vs_e", profile)   # figures/<profile>/atlas_response_vs_e.{png,pdf}

The styles are mplhep's ATLAS and CMS styles; their fonts ship with the ``mplhep_data`` package, so nothing is
downloaded. The figure functions of :mod:`jetcloud.atlas.plots` and :mod:`jetcloud.qg.plots` apply their style
themselves (:func:`styled`) and mark their figures with :func:`atlas_label` or :func:`cms_label`: every figure
says "jetcloud Simulation", never "ATLAS" or "CMS", because it shows Pythia events in a parametric ATLAS-like or
CMS-like detector. Distributions are :mod:`hist` histograms drawn with ``mplhep.histplot`` (:func:`histogram`),
with Poisson error bars.

Figures are written atomically and closed, so long loops do not accumulate open figures. Inside a Jupyter kernel
(JupyterLab, or papermill's executed copies) :func:`save` also shows the saved PNG as the cell's
output, whatever the matplotlib backend: what a reader sees is exactly the file under ``figures/<profile>/``.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Mapping, Sequence
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

LABEL_GID = "jetcloud-label"
"""``gid`` of the label artist of :func:`atlas_label` and :func:`cms_label` (tests find labels by it)."""
EXPERIMENTS = ("atlas", "cms")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def style_rc(experiment: str = "atlas", font_size: float = FONT_SIZE) -> dict:
    """The rcParams of mplhep's ATLAS (``"atlas"``) or CMS (``"cms"``) style with jetcloud's font sizes."""
    import mplhep

    if experiment not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {EXPERIMENTS}, got {experiment!r}")
    rc = dict(mplhep.style.ATLAS if experiment == "atlas" else mplhep.style.CMS)
    rc.update(
        {
            "font.size": font_size,
            "axes.labelsize": 1.1 * font_size,
            "axes.titlesize": font_size,
            "xtick.labelsize": font_size,
            "ytick.labelsize": font_size,
            "legend.fontsize": 0.9 * font_size,
            "savefig.dpi": DPI,
            "figure.dpi": 100,
        }
    )
    return rc


def use_style(font_size: float = FONT_SIZE, experiment: str = "atlas") -> None:
    """Apply mplhep's ATLAS (default) or CMS style (fonts from ``mplhep_data``, no download) globally."""
    matplotlib.rcParams.update(style_rc(experiment, font_size))


def styled(experiment: str) -> Callable:
    """Decorator: run a figure function under :func:`style_rc` (``experiment``), whatever the global style.

    The notebooks' :func:`use_style` sets the style of their own figures; a figure function wrapped here looks
    the same in any notebook or script (the quark/gluon figures keep the CMS style next to ATLAS ones).
    """
    style_rc(experiment)  # validates the name

    def decorate(function: Callable) -> Callable:
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with matplotlib.rc_context(style_rc(experiment)):
                return function(*args, **kwargs)

        return wrapper

    return decorate


def histogram(
    ax: matplotlib.axes.Axes,
    values: np.ndarray,
    bins: np.ndarray,
    *,
    density: bool = False,
    errors: bool = True,
    clip: bool = False,
    **kwargs,
):
    """Fill a :class:`hist.Hist` with ``values`` on variable ``bins`` and draw it with ``mplhep.histplot``.

    Step histogram with Poisson (sqrt N) error bars, scaled like the contents when ``density`` (counts /
    (total x bin width)). ``clip`` moves values outside the range into the first / last bin (overflow shown).
    Keyword arguments (``label``, ``color``, ``lw``, ``ls``...) go to ``histplot``. Returns the histogram.
    """
    import hist
    import mplhep

    bins = np.asarray(bins, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if clip:
        values = np.clip(values, bins[0], np.nextafter(bins[-1], bins[0]))
    h = hist.Hist(hist.axis.Variable(bins, underflow=False, overflow=False), storage=hist.storage.Weight())
    h.fill(values)
    counts = h.values()
    err = np.sqrt(h.variances())
    if density:
        norm = counts.sum() * np.diff(bins)
        scale = np.divide(1.0, norm, out=np.zeros_like(norm), where=norm > 0) if counts.sum() else np.zeros_like(norm)
        counts, err = counts * scale, err * scale
    kwargs.setdefault("histtype", "step")
    mplhep.histplot(counts, bins, yerr=err if errors else None, ax=ax, flow="none", **kwargs)
    return h


def atlas_label(
    ax: matplotlib.axes.Axes,
    text: str = "Simulation Internal",
    *,
    rlabel: str | None = None,
    loc: str = "upper left",
    fontsize: float | None = None,
    above: bool = False,
) -> AnchoredOffsetbox:
    """Mark ``ax`` as jetcloud simulation: bold italic "jetcloud" followed by ``text``, inside the axes.

    The ATLAS-style layout is deliberate, the word is not: these plots come from Pythia and a parametric
    ATLAS-like detector and must never read as ATLAS results. ``rlabel`` (e.g. ``"√s = 13 TeV"``: plain
    Unicode, as mathtext ``\\sqrt`` warns when embedded in PDFs with this font) is written above the
    top-right corner of the axes. ``above=True`` puts the label above the top-left corner instead (crowded
    panels; above the title if the axes has one). Returns the label artist.
    """
    word = {"fontweight": "bold", "fontstyle": "italic"}
    return _label(ax, word, text, {}, rlabel=rlabel, loc=loc, fontsize=fontsize, above=above)


def cms_label(
    ax: matplotlib.axes.Axes,
    text: str = "Simulation",
    *,
    rlabel: str | None = None,
    loc: str = "upper left",
    fontsize: float | None = None,
    above: bool = True,
) -> AnchoredOffsetbox:
    """The CMS-style counterpart of :func:`atlas_label`: bold "jetcloud" and italic ``text``, above the axes.

    The layout follows CMS (label above the top-left corner of the frame, ``above=False`` puts it inside at
    ``loc``); the word is jetcloud's, since these figures show Pythia jets in a parametric CMS-like detector.
    """
    return _label(
        ax,
        {"fontweight": "bold"},
        text,
        {"fontstyle": "italic"},
        rlabel=rlabel,
        loc=loc,
        fontsize=fontsize,
        above=above,
    )


def _label(
    ax: matplotlib.axes.Axes,
    word_props: dict,
    text: str,
    text_props: dict,
    *,
    rlabel: str | None,
    loc: str,
    fontsize: float | None,
    above: bool,
) -> AnchoredOffsetbox:
    size = fontsize if fontsize is not None else matplotlib.rcParams["font.size"]
    children = [TextArea(LABEL, textprops={**word_props, "fontsize": size})]
    if text:
        children.append(TextArea(text, textprops={**text_props, "fontsize": size}))
    packed = HPacker(children=children, align="baseline", pad=0, sep=0.3 * size)
    if above:
        titled = any(ax.get_title(where) for where in ("center", "left")) and ax.name != "3d"
        box = AnchoredOffsetbox(
            loc="lower left",
            child=packed,
            frameon=False,
            pad=0.0,
            borderpad=2.4 if titled else 0.3,  # in font sizes: above the (centred) title if there is one
            bbox_to_anchor=(0.0, 1.0),
            bbox_transform=ax.transAxes,
        )
    else:
        box = AnchoredOffsetbox(loc=loc, child=packed, frameon=False, pad=0.3, borderpad=0.5)
    box.set_zorder(10)
    box.set_gid(LABEL_GID)
    ax.add_artist(box)
    if rlabel:
        ax.text(1.0, 1.01, rlabel, transform=ax.transAxes, ha="right", va="bottom", fontsize=0.85 * size)
    return box


def label_figure(
    fig: matplotlib.figure.Figure, experiment: str = "atlas", text: str = "Simulation"
) -> AnchoredOffsetbox:
    """Put the experiment-style label above the top-left corner of the whole figure, clear of every panel.

    The label sits above all axes, their titles and the figure's suptitle (after a layout pass), left-aligned
    with the first axes, so it never hides data, legends or titles; :func:`save` (``bbox_inches="tight"``) makes
    room for it. Returns the label artist (a figure artist with ``gid`` :data:`LABEL_GID`).
    """
    style_rc(experiment)
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    boxes = [ax.get_tightbbox(renderer) for ax in fig.axes if ax.get_visible()]
    suptitle = getattr(fig, "_suptitle", None)
    if suptitle is not None and suptitle.get_text():
        boxes.append(suptitle.get_window_extent(renderer))
    boxes = [b for b in boxes if b is not None]
    top = max((b.y1 for b in boxes), default=fig.bbox.y1)
    x0 = fig.axes[0].get_position().x0 if fig.axes else 0.0
    y0 = fig.transFigure.inverted().transform((0.0, top))[1]
    size = matplotlib.rcParams["font.size"]
    if experiment == "atlas":
        word, props = {"fontweight": "bold", "fontstyle": "italic"}, {}
    else:
        word, props = {"fontweight": "bold"}, {"fontstyle": "italic"}
    children = [
        TextArea(LABEL, textprops={**word, "fontsize": size}),
        TextArea(text, textprops={**props, "fontsize": size}),
    ]
    box = AnchoredOffsetbox(
        loc="lower left",
        child=HPacker(children=children, align="baseline", pad=0, sep=0.3 * size),
        frameon=False,
        pad=0.0,
        borderpad=0.3,
        bbox_to_anchor=(x0, y0),
        bbox_transform=fig.transFigure,
    )
    box.set_gid(LABEL_GID)
    fig.add_artist(box)
    return box


def simulation_figure(experiment: str) -> Callable:
    """Decorator of figure functions: :func:`styled` (``experiment``) plus :func:`label_figure` on the result.

    The wrapped function returns a figure, or a tuple whose first item is the figure.
    """
    style_rc(experiment)

    def decorate(function: Callable) -> Callable:
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with matplotlib.rc_context(style_rc(experiment)):
                out = function(*args, **kwargs)
                label_figure(out[0] if isinstance(out, tuple) else out, experiment)
            return out

        return wrapper

    return decorate


def find_labels(fig: matplotlib.figure.Figure) -> list[str]:
    """The texts of the jetcloud labels on ``fig`` (e.g. ``["jetcloud Simulation"]``), for tests and checks."""
    found = []
    for ax in [fig, *fig.axes]:
        for artist in ax.artists:
            if artist.get_gid() == LABEL_GID:
                areas = artist.get_child().get_children()
                found.append(" ".join(area.get_text() for area in areas))
    return found


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
