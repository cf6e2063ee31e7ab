"""A static, offline HTML "book" of the executed notebooks: ``build/<profile>/book/``.

``./run_all.sh`` ends with ``python -m jetcloud.book --profile <profile>``, which writes

- one page per executed notebook (``build/<profile>/executed/*.ipynb`` -> ``<stem>.html``), exported with
  nbconvert's ``lab`` template with everything that needs the network removed: no require.js, MathJax, Mermaid
  or widget-manager scripts from CDNs. Figures are embedded PNG outputs (``data:`` URIs). LaTeX in markdown
  cells becomes MathML when the optional ``latex2mathml`` package is installed, else it stays as ``$...$`` text;
- ``index.html``: the two workflows (ATLAS particle flow 00-05, quark/gluon 06-09) with one line per notebook
  taken from its first markdown heading and paragraph, the headline tables of the metrics JSON files (ATLAS
  evaluation summary, quark/gluon comparison; missing files or keys are skipped) and a link to every page.

The book is built in a temporary directory beside the target and renamed over the old book, so a reader never
sees half a book. A book directory carries the output marker of :func:`jetcloud.io.atomic.atomic_dir` (stage
``"book"``); a directory without it is never replaced or deleted.

:func:`check_book` opens every page in headless Chromium over the DevTools protocol (``websocket-client``) with
all host names unresolvable, and reports console errors, failed requests and images that did not decode; it
can also save a screenshot of the index (``--screenshot docs/figures/book_index.png``).
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jetcloud import paths
from jetcloud.io.atomic import atomic_dir, atomic_path

#: (title, first notebook number, last notebook number) of each workflow on the index.
WORKFLOWS: tuple[tuple[str, int, int], ...] = (
    ("ATLAS particle flow (JetPointNet)", 0, 5),
    ("Quark/gluon jet tagging", 6, 9),
)

#: Headline tables: (caption, metrics file stem ending, key path inside the JSON).
HEADLINES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "ATLAS: per-track response, truth scale (test)",
        "evaluate_jetpointnet",
        ("metrics", "headline", "truth"),
    ),
    ("ATLAS: per-track response, EM scale (test)", "evaluate_jetpointnet", ("metrics", "headline", "em")),
    ("ATLAS: evaluation goals", "evaluate_jetpointnet", ("metrics", "goals")),
    ("ATLAS: particle-flow jets", "atlas_jets", ("metrics", "summary")),
    ("ATLAS: jet goals", "atlas_jets", ("metrics", "goals")),
    ("Quark/gluon: classifiers compared on the test jets", "compare_qg_models", ("metrics", "runs")),
    ("Quark/gluon: goals", "compare_qg_models", ("metrics", "goals")),
)

_NB_NAME = re.compile(r"^(?P<num>\d{2})_(?P<name>[^@]+?)(?:@(?P<run>.+))?$")


# ---- notebooks ---------------------------------------------------------------------------------------------


@dataclass
class NotebookEntry:
    """One executed notebook (or one not executed, when ``page`` is None) as shown on the index."""

    stem: str
    number: int
    title: str
    summary: str
    page: str | None = None
    run: str | None = None
    errors: int = 0
    images: int = 0


def describe(nb: Mapping[str, Any], fallback: str) -> tuple[str, str]:
    """(title, one-line summary) from a notebook's first markdown heading and first paragraph.

    The leading ``NN —`` of a heading is dropped; markdown emphasis, code marks and links are stripped and the
    summary is cut after its first sentence (at most 180 characters). Missing parts give ``fallback`` and "".
    """
    title, summary = "", ""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        for block in re.split(r"\n\s*\n", source):
            block = block.strip()
            if not block:
                continue
            if block.startswith("#"):
                line = block.splitlines()[0]
                if not title:
                    title = _plain(re.sub(r"^#+\s*", "", line))
                    title = re.sub(r"^\d{2}\s*[—–:-]+\s*", "", title)
                rest = "\n".join(block.splitlines()[1:]).strip()
                if not rest:
                    continue
                block = rest
            if not summary and not re.match(r"([-*+]\s|\d+\.\s|```|\||<|>|\$\$|\\begin)", block):
                summary = _first_sentence(_plain(" ".join(block.split())))
            if title and summary:
                return title, summary
    return title or fallback, summary


def _plain(text: str) -> str:
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links and images: keep the text
    text = re.sub(r"(\*\*|__|\*|`)", "", text)
    return text.strip()


def _first_sentence(text: str, limit: int = 180) -> str:
    match = re.search(r"(?<=[a-z0-9)\]*])[.!?](\s|$)", text)
    if match and match.end() <= limit + 1:
        return text[: match.end()].strip()
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + " …"


def _read_notebook(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def collect_notebooks(executed: Path, sources: Path | None = None) -> list[NotebookEntry]:
    """Entries for ``executed/NN_*.ipynb`` (one per run), plus source notebooks in ``sources`` not yet executed."""
    entries = []
    seen = set()
    for path in sorted(executed.glob("[0-9][0-9]_*.ipynb")) if executed.is_dir() else []:
        match = _NB_NAME.match(path.stem)
        nb = _read_notebook(path)
        if match is None or nb is None:
            continue
        title, summary = describe(nb, match["name"].replace("_", " "))
        errors = sum(o.get("output_type") == "error" for c in nb.get("cells", []) for o in c.get("outputs", []))
        images = sum("image/png" in o.get("data", {}) for c in nb.get("cells", []) for o in c.get("outputs", []))
        entries.append(
            NotebookEntry(
                path.stem, int(match["num"]), title, summary, f"{path.stem}.html", match["run"], errors, images
            )
        )
        seen.add(f"{match['num']}_{match['name']}")
    for path in sorted(sources.glob("[0-9][0-9]_*.ipynb")) if sources and sources.is_dir() else []:
        nb = _read_notebook(path)
        if path.stem in seen or nb is None:
            continue
        title, summary = describe(nb, path.stem[3:].replace("_", " "))
        entries.append(NotebookEntry(path.stem, int(path.stem[:2]), title, summary))
    return sorted(entries, key=lambda e: (e.number, e.stem))


# ---- notebook pages ----------------------------------------------------------------------------------------

_PAGE_TEMPLATE = r"""{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{% block extra_css %}
<link rel="icon" href="data:,">
<style type="text/css">
nav.jc-book { font: 14px/1.4 system-ui, sans-serif; padding: 8px 16px; border-bottom: 1px solid #ddd;
  background: #f7f7f9; position: sticky; top: 0; z-index: 10; }
nav.jc-book a { margin-right: 1.5em; }
math[display="block"] { margin: 0.6em 0; }
</style>
{% endblock extra_css %}
{%- block body_header -%}
{{ super() }}
<nav class="jc-book">{{ resources.book_nav }}</nav>
{%- endblock body_header -%}
"""


def _math_to_mathml(tex: str, display: bool) -> str | None:
    try:
        from latex2mathml.converter import convert
    except ImportError:
        return None
    try:
        return convert(tex, display="block" if display else "inline")
    except Exception:  # noqa: BLE001 - any TeX latex2mathml cannot parse stays as text
        return None


def _exporter():  # noqa: ANN202 - nbconvert types are imported lazily
    """An nbconvert ``HTMLExporter`` on the lab template with no network resources and MathML math."""
    from jinja2 import DictLoader, pass_context
    from nbconvert.exporters import HTMLExporter
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    class _Renderer(IPythonRenderer):
        def inline_math(self, body: str) -> str:
            return _math_to_mathml(body, False) or super().inline_math(body)

        def block_math(self, body: str) -> str:
            return _math_to_mathml(body, True) or super().block_math(body)

        def latex_environment(self, name: str, body: str) -> str:
            tex = f"\\begin{{{name}}}{body}\\end{{{name}}}"
            return _math_to_mathml(tex, True) or super().latex_environment(name, body)

    class _BookExporter(HTMLExporter):
        @pass_context
        def markdown2html(self, context, source):  # noqa: ANN001, ANN202 - same signature as the parent
            cell = context.get("cell", {})
            path = context.get("resources", {}).get("metadata", {}).get("path", "")
            renderer = _Renderer(
                escape=False,
                attachments=cell.get("attachments", {}),
                embed_images=True,
                path=path,
                anchor_link_text=self.anchor_link_text,
                exclude_anchor_links=self.exclude_anchor_links,
                **self.lexer_options,
            )
            return MarkdownWithMath(renderer=renderer).render(source)

    exporter = _BookExporter(template_name="lab", extra_loaders=[DictLoader({"book.html.j2": _PAGE_TEMPLATE})])
    exporter.template_file = "book.html.j2"
    exporter.embed_images = True
    return exporter


_WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def _strip_widgets(nb: Any) -> None:
    """Drop widget views (they need a widget manager from a CDN); their text/plain fallback stays."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data and _WIDGET_MIME in data:
                del data[_WIDGET_MIME]
                data.setdefault("text/plain", "")


def export_notebook(path: Path, target: Path, nav: str, exporter: Any = None) -> None:
    """Write the HTML page of the executed notebook ``path`` to ``target`` (``nav``: the top bar's HTML)."""
    import nbformat

    exporter = exporter or _exporter()
    nb = nbformat.read(path, as_version=4)
    _strip_widgets(nb)
    resources = {"metadata": {"name": path.stem, "path": str(path.parent)}, "book_nav": nav}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    target.write_text(body, encoding="utf-8")


# ---- metrics tables ----------------------------------------------------------------------------------------


def _dig(obj: Any, keys: Sequence[str]) -> Any:
    for key in keys:
        if not isinstance(obj, Mapping) or key not in obj:
            return None
        obj = obj[key]
    return obj


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    if isinstance(value, (list, tuple)) and len(value) <= 6 and all(not isinstance(v, (list, dict)) for v in value):
        return ", ".join(_fmt(v) for v in value)
    if isinstance(value, (list, tuple, dict)):
        return f"({len(value)} entries)"
    return str(value)


def metrics_table(obj: Any) -> str | None:
    """An HTML table of a mapping: rows x columns for a mapping of mappings, else key / value. None if empty."""
    if not isinstance(obj, Mapping) or not obj:
        return None
    esc = html.escape
    if all(isinstance(v, Mapping) for v in obj.values()):
        columns: list[str] = []
        for row in obj.values():
            columns += [k for k, v in row.items() if k not in columns and not isinstance(v, Mapping)]
        head = "".join(f"<th>{esc(c)}</th>" for c in columns)
        rows = "".join(
            f"<tr><th>{esc(str(name))}</th>" + "".join(f"<td>{esc(_fmt(row.get(c)))}</td>" for c in columns) + "</tr>"
            for name, row in obj.items()
        )
        return f"<table><thead><tr><th></th>{head}</tr></thead><tbody>{rows}</tbody></table>"
    rows = "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(_fmt(v))}</td></tr>" for k, v in obj.items())
    return f"<table><tbody>{rows}</tbody></table>"


def _load_metrics(metrics: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(metrics.glob("*.json")) if metrics.is_dir() else []:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            found[path.stem] = data
    return found


# ---- index -------------------------------------------------------------------------------------------------

_INDEX_CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f; margin: 0; background: #fff; }
header { background: #1f3a5f; color: #fff; padding: 18px 32px; }
header h1 { margin: 0; font-size: 24px; } header p { margin: 4px 0 0; opacity: 0.85; }
main { max-width: 1180px; margin: 0 auto; padding: 8px 32px 40px; }
h2 { border-bottom: 2px solid #1f3a5f; padding-bottom: 4px; margin-top: 28px; }
.flow { display: flex; flex-wrap: wrap; gap: 10px; align-items: stretch; margin: 12px 0; }
.card { flex: 1 1 200px; max-width: 260px; border: 1px solid #c9d3e0; border-radius: 8px; padding: 10px 12px;
  background: #f6f8fb; position: relative; }
.card.missing { background: #fafafa; border-style: dashed; color: #777; }
.card.failed { border-color: #c0392b; background: #fdf0ee; }
.card .num { font-weight: 700; color: #1f3a5f; } .card .title { font-weight: 600; }
.card p { margin: 6px 0 0; font-size: 13px; color: #444; }
.card .meta { font-size: 12px; color: #666; margin-top: 6px; }
.arrow { align-self: center; color: #1f3a5f; font-size: 20px; }
table { border-collapse: collapse; margin: 8px 0 18px; font-size: 13px; }
th, td { border: 1px solid #d5dbe3; padding: 4px 9px; text-align: right; }
thead th { background: #eef2f7; } tbody th { text-align: left; background: #f8f9fb; font-weight: 600; }
.caption { font-weight: 600; margin-top: 16px; } .source { font-size: 12px; color: #666; font-weight: 400; }
footer { color: #777; font-size: 12px; margin-top: 30px; }
"""


def _workflow_of(entry: NotebookEntry) -> int:
    """Index in :data:`WORKFLOWS`: ``qg`` in the name means quark/gluon, else by number; unknown: len(WORKFLOWS)."""
    if "qg" in entry.stem.split("@")[0].split("_"):
        return next(i for i, w in enumerate(WORKFLOWS) if w[0].startswith("Quark"))
    for index, (_, lo, hi) in enumerate(WORKFLOWS):
        if lo <= entry.number <= hi:
            return index
    return len(WORKFLOWS)


def render_index(profile: str, entries: Sequence[NotebookEntry], metrics: Mapping[str, Mapping[str, Any]]) -> str:
    """The HTML of ``index.html``: workflow maps, headline metrics tables, links to every page."""
    esc = html.escape
    parts = []
    groups: list[list[NotebookEntry]] = [[] for _ in range(len(WORKFLOWS) + 1)]
    for entry in entries:
        groups[_workflow_of(entry)].append(entry)
    titles = [w[0] for w in WORKFLOWS] + ["Other notebooks"]
    for title, group in zip(titles, groups, strict=True):
        if not group and title == titles[-1]:
            continue
        cards = []
        for entry in group:
            if entry.page:
                cls = "card failed" if entry.errors else "card"
                name = f'<a class="title" href="{esc(entry.page)}">{esc(entry.title)}</a>'
                meta = [f"run {esc(entry.run)}"] if entry.run else []
                meta.append(f"{entry.images} figure{'s' * (entry.images != 1)}")
                seconds = _dig(metrics.get(entry.stem, {}), ("metrics", "wall_seconds"))
                if isinstance(seconds, (int, float)):
                    meta.append(f"{seconds:.0f} s")
                if entry.errors:
                    meta.append(f"<b>{entry.errors} error output(s)</b>")
            else:
                cls, name, meta = "card missing", f'<span class="title">{esc(entry.title)}</span>', ["not executed"]
            cards.append(
                f'<div class="{cls}"><span class="num">{entry.number:02d}</span> {name}'
                f'<p>{esc(entry.summary)}</p><div class="meta">{" · ".join(meta)}</div></div>'
            )
        body = '<span class="arrow">→</span>'.join(cards) if cards else "<p>No notebooks of this workflow.</p>"
        parts.append(f'<h2>{esc(title)}</h2><div class="flow">{body}</div>')

    tables = []
    for caption, suffix, keys in HEADLINES:
        stem = next((s for s in sorted(metrics) if s.split("@")[0].endswith(suffix)), None)
        table = metrics_table(_dig(metrics.get(stem), keys)) if stem else None
        if table:
            tables.append(
                f'<div class="caption">{esc(caption)} <span class="source">(metrics/{esc(stem)}.json)</span></div>'
                + table
            )
    parts.append("<h2>Headline metrics</h2>" + ("".join(tables) or "<p>No metrics files with headline tables.</p>"))

    pages = [e for e in entries if e.page]
    links = "".join(f'<li><a href="{esc(e.page)}">{esc(e.stem)}</a> — {esc(e.title)}</li>' for e in pages)
    parts.append(f"<h2>All pages</h2><ul>{links or '<li>No executed notebooks.</li>'}</ul>")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="data:,"><title>jetcloud book — {esc(profile)}</title>'
        f"<style>{_INDEX_CSS}</style></head><body>"
        f"<header><h1>jetcloud — executed notebooks ({esc(profile)} profile)</h1>"
        f"<p>{len(pages)} page(s) · built {stamp} · works offline</p></header><main>"
        + "".join(parts)
        + f"<footer>Built by <code>python -m jetcloud.book --profile {esc(profile)}</code> "
        "from build/&lt;profile&gt;/executed and build/&lt;profile&gt;/metrics.</footer></main></body></html>\n"
    )


# ---- build -------------------------------------------------------------------------------------------------


def build_book(
    executed: Path,
    metrics: Path,
    out: Path,
    *,
    profile: str = "",
    sources: Path | None = None,
) -> list[NotebookEntry]:
    """Build the book from ``executed/*.ipynb`` and ``metrics/*.json`` into ``out``, atomically.

    ``out`` is replaced only when it is absent, empty or an earlier book (:func:`jetcloud.io.atomic.atomic_dir`,
    stage ``"book"``); otherwise a ``FileExistsError`` is raised and nothing is touched. ``sources`` (e.g.
    ``notebooks/``) adds notebooks not yet executed to the workflow map. Returns the index entries.
    """
    executed, metrics, out = Path(executed), Path(metrics), Path(out)
    entries = collect_notebooks(executed, sources)
    metrics_data = _load_metrics(metrics)
    exporter = _exporter() if any(e.page for e in entries) else None
    with atomic_dir(out, stage="book") as tmp:
        pages = [e for e in entries if e.page]
        for i, entry in enumerate(pages):
            nav = ['<a href="index.html">← book index</a>']
            if i:
                nav.append(f'<a href="{html.escape(pages[i - 1].page)}">‹ {html.escape(pages[i - 1].stem)}</a>')
            if i + 1 < len(pages):
                nav.append(f'<a href="{html.escape(pages[i + 1].page)}">{html.escape(pages[i + 1].stem)} ›</a>')
            export_notebook(executed / f"{entry.stem}.ipynb", tmp / entry.page, " ".join(nav), exporter)
        (tmp / "index.html").write_text(render_index(profile or "?", entries, metrics_data), encoding="utf-8")
    return entries


# ---- headless Chromium check -------------------------------------------------------------------------------

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable (``$JETCLOUD_CHROMIUM`` first), or None."""
    explicit = os.environ.get("JETCLOUD_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else shutil.which(explicit)
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


@dataclass
class PageReport:
    """What headless Chromium saw on one page."""

    name: str
    title: str = ""
    errors: list[str] = field(default_factory=list)
    images: int = 0
    broken_images: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No console errors, no failed loads, every image decoded."""
        return not self.errors and not self.broken_images


class _DevTools:
    """A minimal Chrome DevTools protocol client on one browser websocket, with flattened page sessions."""

    def __init__(self, url: str, timeout: float) -> None:
        import websocket  # websocket-client, a dependency of jupyter_server

        self.ws = websocket.create_connection(url, timeout=timeout, suppress_origin=True)
        self.timeout = timeout
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)
        raise TimeoutError(f"no reply to {method} within {self.timeout} s")

    def wait_for(self, method: str, session: str, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if any(e["method"] == method and e.get("sessionId") == session for e in self.events):
                return True
            self.ws.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                self.events.append(json.loads(self.ws.recv()))
            except Exception:  # noqa: BLE001 - websocket timeout: loop checks the deadline
                pass
            finally:
                self.ws.settimeout(self.timeout)
        return False

    def close(self) -> None:
        self.ws.close()


def _console_errors(events: Iterable[dict[str, Any]], session: str) -> list[str]:
    errors = []
    for event in events:
        if event.get("sessionId") != session:
            continue
        params = event.get("params", {})
        if event["method"] == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            errors.append(f"exception: {details.get('exception', {}).get('description') or details.get('text')}")
        elif event["method"] == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(
                "console." + params["type"] + ": " + " ".join(str(a.get("value", "")) for a in params.get("args", []))
            )
        elif event["method"] == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip())
        elif event["method"] == "Network.loadingFailed" and not params.get("canceled"):
            errors.append(f"request failed: {params.get('errorText')} ({params.get('type')})")
    return errors


_IMAGES_JS = """JSON.stringify([document.title, Array.from(document.images).map(
    i => [i.naturalWidth, i.complete, (i.getAttribute('src') || '').slice(0, 80)])])"""


def check_book(
    book: Path,
    *,
    screenshot: Path | None = None,
    chromium: str | None = None,
    width: int = 1280,
    height: int = 1000,
    max_height: int = 2400,
    timeout: float = 60.0,
) -> list[PageReport]:
    """Open ``index.html`` and every other page of ``book`` in headless Chromium, offline; one report per page.

    Host names all resolve to nothing (``--host-resolver-rules``), so a page that needs a CDN reports the failed
    request. ``screenshot``: a PNG of the whole index (``width`` wide, at most ``max_height`` tall) written
    atomically there.
    Raises ``FileNotFoundError`` when no Chromium is installed (see scripts/install_chromium.sh).
    """
    book = Path(book).resolve()
    chromium = chromium or find_chromium()
    if not chromium:
        raise FileNotFoundError("no Chromium found; run scripts/install_chromium.sh or set JETCLOUD_CHROMIUM")
    pages = ["index.html"] + sorted(p.name for p in book.glob("*.html") if p.name != "index.html")
    profile_dir = Path(tempfile.mkdtemp(prefix="jetcloud-chromium-"))
    args = _chromium_args(chromium, profile_dir)
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    client = None
    try:
        client = _DevTools(_devtools_url(proc, timeout), timeout)
        view = {"width": width, "height": height, "max_height": max_height, "timeout": timeout}
        return [_check_page(client, book / name, view, screenshot if name == "index.html" else None) for name in pages]
    finally:
        _close_browser(client, proc)
        shutil.rmtree(profile_dir, ignore_errors=True)


def _chromium_args(chromium: str, profile_dir: Path) -> list[str]:
    """Command line of a headless, offline Chromium with a DevTools port (``--no-sandbox`` as root)."""
    args = [
        chromium,
        "--headless=new",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-dev-shm-usage",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--hide-scrollbars",
        f"--user-data-dir={profile_dir}",
        "--remote-debugging-port=0",
        "about:blank",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.insert(1, "--no-sandbox")
    return args


def _check_page(client: _DevTools, page: Path, view: dict, screenshot: Path | None) -> PageReport:
    """Load one page in a new tab; report its title, images, broken images and console errors."""
    target = client.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = client.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        client.call(f"{domain}.enable", session=session)
    metrics = {"width": view["width"], "height": view["height"], "deviceScaleFactor": 1, "mobile": False}
    client.call("Emulation.setDeviceMetricsOverride", metrics, session=session)
    client.events.clear()
    client.call("Page.navigate", {"url": page.as_uri()}, session=session)
    report = PageReport(page.name)
    if not client.wait_for("Page.loadEventFired", session, view["timeout"]):
        report.errors.append(f"no load event within {view['timeout']} s")
    client.wait_for("never", session, 0.3)  # late console messages
    value = _evaluate(client, session, _IMAGES_JS, '["", []]')
    report.title, images = json.loads(value)
    report.images = len(images)
    report.broken_images = [src for w, complete, src in images if not complete or w <= 0]
    report.errors += _console_errors(client.events, session)
    if screenshot is not None:
        _screenshot(client, session, view, screenshot)
    client.call("Target.closeTarget", {"targetId": target})
    return report


def _evaluate(client: _DevTools, session: str, expression: str, default: Any) -> Any:
    """The value of a JavaScript expression in the page (``default`` when it has none)."""
    result = client.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
    return result["result"].get("value", default)


def _screenshot(client: _DevTools, session: str, view: dict, path: Path) -> None:
    """A PNG of the whole page, at most ``max_height`` tall, written atomically to ``path``."""
    tall = _evaluate(client, session, "document.documentElement.scrollHeight", view["height"])
    clip = {"x": 0, "y": 0, "width": view["width"], "scale": 1}
    clip["height"] = max(view["height"], min(int(tall), view["max_height"]))
    params = {"format": "png", "clip": clip, "captureBeyondViewport": True}
    shot = client.call("Page.captureScreenshot", params, session=session)["data"]
    with atomic_path(path) as tmp:
        tmp.write_bytes(base64.b64decode(shot))


def _close_browser(client: _DevTools | None, proc: subprocess.Popen) -> None:
    """Close the DevTools connection and the browser, killing it if it does not exit."""
    if client is not None:
        try:
            client.call("Browser.close")
        except Exception:  # noqa: BLE001 - the browser may already be gone
            pass
        client.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _devtools_url(proc: subprocess.Popen, timeout: float) -> str:
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        lines.append(line.rstrip())
        match = re.search(r"DevTools listening on (ws://\S+)", line)
        if match:
            return match.group(1)
    proc.kill()
    raise RuntimeError("Chromium did not start its DevTools endpoint:\n" + "\n".join(lines[-20:]))


# ---- command line ------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m jetcloud.book --profile smoke [--check] [--screenshot PNG]``; see ``--help``."""
    parser = argparse.ArgumentParser(prog="python -m jetcloud.book", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="demo", choices=paths.PROFILES)
    parser.add_argument("--executed", type=Path, help="executed notebooks (default build/<profile>/executed)")
    parser.add_argument("--metrics", type=Path, help="metrics JSON files (default build/<profile>/metrics)")
    parser.add_argument("--out", type=Path, help="book directory (default build/<profile>/book)")
    parser.add_argument("--sources", type=Path, default=paths.ROOT / "notebooks", help="source notebooks")
    parser.add_argument("--no-sources", action="store_true", help="list executed notebooks only")
    parser.add_argument("--check", action="store_true", help="open every page in headless Chromium, offline")
    parser.add_argument("--screenshot", type=Path, help="with --check: write a PNG of the index here")
    args = parser.parse_args(argv)
    out = args.out or paths.build_dir(args.profile, "book")
    entries = build_book(
        args.executed or paths.build_dir(args.profile, "executed"),
        args.metrics or paths.metrics_dir(args.profile),
        out,
        profile=args.profile,
        sources=None if args.no_sources else args.sources,
    )
    print(f"book: {out / 'index.html'} ({sum(e.page is not None for e in entries)} notebook page(s))")
    if args.check or args.screenshot:
        reports = check_book(out, screenshot=args.screenshot)
        for report in reports:
            status = "ok" if report.ok else "FAILED"
            print(f"  {status:6} {report.name} ({report.images} images)")
            for problem in report.errors + [f"image did not load: {s}" for s in report.broken_images]:
                print(f"         {problem}")
        if args.screenshot:
            print(f"screenshot: {args.screenshot}")
        return 0 if all(r.ok for r in reports) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
