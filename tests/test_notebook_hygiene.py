"""Notebook hygiene (fast, no kernel): HOUSE_STYLE section 4 rules for notebooks/NN_*.ipynb and the template.

- outputs stripped exactly as the pre-commit hook strips them (``nbstripout --verify`` with the same flags);
  only cells tagged ``keep_output`` keep outputs, and those have an execution count (else nbval errors);
- exactly one ``parameters`` cell, no papermill ``injected-parameters`` cell, kernelspec ``python3``;
- parameters typed, commented and literal (``name: type = value  # comment``), with ``profile`` and ``seed``;
- at least one ``# NBVAL_CHECK_OUTPUT`` cell, each with a stored reference output (else nbval checks nothing);
- an H1 title with Inputs and Outputs; the notebook records its metrics (``record_metrics(``) under its stem;
- numbering 00, 01, ... contiguous; ``notebooks/params/<profile>/<stem>.yaml`` only for existing notebooks,
  only demo / full, and only keys that ``papermill.inspect_notebook`` finds.
"""

from __future__ import annotations

import ast
import io
import re
import shlex
import subprocess
import sys
import tokenize
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
TEMPLATE = NOTEBOOKS / "_template.ipynb"
PARAMS = NOTEBOOKS / "params"
CHECK = "# NBVAL_CHECK_OUTPUT"
PARAM_PROFILES = ("demo", "full")  # smoke = the notebooks' own defaults, so no params file
REQUIRED_PARAMETERS = ("profile", "seed")

# Identical to the nbstripout hook in .pre-commit-config.yaml.
NBSTRIPOUT_ARGS = [
    "--keep-count",
    "--extra-keys",
    "metadata.papermill cell.metadata.papermill",
    "--drop-tagged-cells",
    "injected-parameters",
]

NUMBERED = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
ALL = NUMBERED + ([TEMPLATE] if TEMPLATE.exists() else [])
PARAM_FILES = sorted(p for p in PARAMS.glob("*/*.yaml")) if PARAMS.is_dir() else []


def _ids(paths: list[Path]) -> list[str]:
    return [p.name if p.parent == NOTEBOOKS else str(p.relative_to(NOTEBOOKS)) for p in paths]


def _params(paths: list[Path], reason: str = "no numbered notebooks in notebooks/ yet"):
    """pytest params; a single skipped param when there is nothing to check yet."""
    if not paths:
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason))]
    return [pytest.param(p, id=i) for p, i in zip(paths, _ids(paths), strict=True)]


notebooks_and_template = pytest.mark.parametrize("path", _params(ALL))
numbered_only = pytest.mark.parametrize("path", _params(NUMBERED))


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=nbformat.NO_CONVERT)


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _parameter_cells(nb) -> list:
    return [c for c in nb.cells if "parameters" in _tags(c)]


def _code(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


# ---- per notebook -------------------------------------------------------------------------------------
@notebooks_and_template
def test_outputs_stripped_like_the_pre_commit_hook(path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "nbstripout", "--verify", *NBSTRIPOUT_ARGS, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, (
        f"{path.name} is not stripped; run: nbstripout {shlex.join(NBSTRIPOUT_ARGS)} "
        f"notebooks/{path.name}\n{result.stdout}{result.stderr}"
    )


@notebooks_and_template
def test_outputs_only_on_keep_output_cells(path: Path):
    nb = _read(path)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not cell.get("outputs"):
            continue
        assert "keep_output" in _tags(cell) or cell.metadata.get("keep_output"), (
            f"{path.name} cell {index} has outputs but is not tagged keep_output"
        )
        assert cell.get("execution_count") is not None, (
            f"{path.name} cell {index} keeps outputs without an execution count: nbval fails with "
            f"'Unrun reference cell has outputs' (strip with --keep-count)"
        )


@numbered_only
def test_check_cells_carry_reference_outputs(path: Path):
    """A ``# NBVAL_CHECK_OUTPUT`` cell without stored output and count is skipped by nbval: it checks nothing."""
    nb = _read(path)
    checks = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.lstrip().startswith(CHECK)]
    assert checks, f"{path.name} has no '{CHECK}' cell for nbval"
    for index in checks:
        cell = nb.cells[index]
        assert cell.get("outputs") and cell.get("execution_count") is not None, (
            f"{path.name} cell {index}: '{CHECK}' without a stored reference output; run the smoke profile and "
            f"scripts/refresh_nbval_refs.py notebooks/{path.name}"
        )


@notebooks_and_template
def test_one_parameters_cell_and_no_injected_parameters(path: Path):
    nb = _read(path)
    params = _parameter_cells(nb)
    assert len(params) == 1, f"{path.name}: expected exactly one cell tagged 'parameters', found {len(params)}"
    assert params[0].cell_type == "code", f"{path.name}: the 'parameters' cell must be a code cell"
    injected = [i for i, c in enumerate(nb.cells) if "injected-parameters" in _tags(c)]
    assert not injected, f"{path.name}: papermill 'injected-parameters' cells {injected} (an executed copy?)"


@notebooks_and_template
def test_kernelspec_is_python3(path: Path):
    kernelspec = _read(path).metadata.get("kernelspec", {})
    assert kernelspec.get("name") == "python3", (
        f"{path.name}: kernelspec name is {kernelspec.get('name')!r}, expected 'python3' "
        f"(run_all.sh picks the 'jetcloud' kernel with papermill -k)"
    )


@notebooks_and_template
def test_parameters_are_typed_commented_literals(path: Path):
    source = _parameter_cells(_read(path))[0].source
    tree = ast.parse(source)
    comment_lines = {
        tok.start[0] for tok in tokenize.generate_tokens(io.StringIO(source).readline) if tok.type == tokenize.COMMENT
    }
    names = []
    for node in tree.body:
        where = f"{path.name} parameters line {node.lineno}"
        assert isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None, (
            f"{where}: only typed assignments are allowed, `name: type = value  # comment`"
        )
        try:
            ast.literal_eval(node.value)
        except ValueError:
            pytest.fail(f"{where}: {node.target.id} must be a literal (derive values in the next cell)")
        assert comment_lines & set(range(node.lineno, node.end_lineno + 1)), (
            f"{where}: {node.target.id} needs a trailing comment (shown by papermill --help-notebook)"
        )
        names.append(node.target.id)
    missing = [n for n in REQUIRED_PARAMETERS if n not in names]
    assert not missing, f"{path.name}: parameters cell lacks {missing}"
    assert re.search(r'^profile: str = "smoke"', source, re.M), (
        f'{path.name}: the default profile must be "smoke" (smoke = the notebook\'s own defaults)'
    )


@notebooks_and_template
def test_title_inputs_outputs(path: Path):
    first = _read(path).cells[0]
    assert first.cell_type == "markdown" and first.source.lstrip().startswith("# "), (
        f"{path.name}: the first cell must be a markdown H1 title with the notebook's purpose"
    )
    for word in ("Inputs", "Outputs"):
        assert word in first.source, f"{path.name}: the title cell must list the notebook's {word}"


@notebooks_and_template
def test_records_metrics(path: Path):
    code = _code(_read(path))
    assert "record_metrics(" in code, f"{path.name}: must write its metrics JSON with nbtools.record_metrics("


@numbered_only
def test_metrics_named_after_the_notebook(path: Path):
    assert f'"{path.stem}"' in _code(_read(path)), (
        f'{path.name}: record_metrics must be given the notebook stem "{path.stem}" '
        f'(e.g. NOTEBOOK = "{path.stem}"), so metrics land in build/<profile>/metrics/{path.stem}.json'
    )


# ---- across notebooks -----------------------------------------------------------------------------------
def test_numbering_is_contiguous():
    if not NUMBERED:
        pytest.skip("no numbered notebooks in notebooks/ yet")
    numbers = [int(p.name[:2]) for p in NUMBERED]
    assert numbers == list(range(len(NUMBERED))), (
        f"notebook numbers must be 00, 01, ... without gaps or duplicates, found {[p.name for p in NUMBERED]}"
    )
    bad = [p.name for p in NUMBERED if not re.fullmatch(r"\d\d_[a-z0-9]+(_[a-z0-9]+)*\.ipynb", p.name)]
    assert not bad, f"notebook names must be NN_verb_object.ipynb (lower case, underscores): {bad}"


def test_template_is_not_numbered():
    assert TEMPLATE.exists(), "notebooks/_template.ipynb is the starting point for new notebooks"
    assert not re.match(r"\d\d_", TEMPLATE.name)


@pytest.mark.parametrize("params_file", _params(PARAM_FILES, reason="no notebooks/params/*/*.yaml yet"))
def test_params_file_matches_notebook(params_file: Path):
    import papermill

    profile = params_file.parent.name
    assert profile in PARAM_PROFILES, (
        f"notebooks/params/{profile}/: params files exist for {PARAM_PROFILES} only (smoke = notebook defaults)"
    )
    notebook = NOTEBOOKS / f"{params_file.stem}.ipynb"
    assert notebook.exists(), f"{params_file.relative_to(ROOT)} has no notebook notebooks/{notebook.name}"
    known = set(papermill.inspect_notebook(str(notebook)))
    documents = [d for d in yaml.safe_load_all(params_file.read_text()) if d is not None] or [{}]
    for index, values in enumerate(documents):  # several documents: one run each (scripts/split_params.py)
        where = f"{params_file.relative_to(ROOT)} (document {index})"
        assert isinstance(values, dict), f"{where} must be a mapping of parameter: value"
        assert "profile" not in values, f"{where}: run_all.sh sets profile itself (-p)"
        unknown = sorted(set(values) - known)
        assert not unknown, (
            f"{where}: {unknown} are not parameters of {notebook.name} (papermill would only warn); "
            f"known: {sorted(known)}"
        )


@notebooks_and_template
def test_papermill_sees_every_parameter(path: Path):
    """papermill's parser silently drops a parameter whose trailing comment contains ``=`` or quotes."""
    import papermill

    source = _parameter_cells(_read(path))[0].source
    declared = [node.target.id for node in ast.parse(source).body if isinstance(node, ast.AnnAssign)]
    seen = set(papermill.inspect_notebook(str(path)))
    lost = [name for name in declared if name not in seen]
    assert not lost, f"{path.name}: papermill cannot parse {lost}; avoid '=' and quotes in their comments"


#: Documents and folders that exist only beside this repository (the maintainers' sources), never for its users.
_OUTSIDE = re.compile(r"mltree-schema\.md|qg-reference\.md|jetpointnet-reference\.md|\.\./shared|/work/|seeds/0")
#: Links out of the notebooks into the repository: ../docs/<page>.md (optionally #anchor).
_DOC_LINK = re.compile(r"\]\((\.\./docs/[A-Za-z0-9_.-]+\.md)(#[^)]*)?\)")


@notebooks_and_template
def test_notebooks_reference_only_files_inside_the_repository(path: Path):
    """Users have the repository only: no links to ../shared, the maintainers' reference documents or seeds."""
    nb = _read(path)
    offending = [line.strip()[:120] for cell in nb.cells for line in cell.source.splitlines() if _OUTSIDE.search(line)]
    assert not offending, f"{path.name} points outside the repository: {offending}"
    for cell in nb.cells:
        for target, _anchor in _DOC_LINK.findall(cell.source):
            assert (path.parent / target).is_file(), f"{path.name} links to a missing page {target}"
