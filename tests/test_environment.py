"""environment.yml (conda-forge) mirrors pyproject.toml: same packages, same version bounds; the library installs
without Jupyter (the ``notebooks`` extra has it) and bootstrap installs what run_all.sh and run_tests.sh need."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]

# conda-forge name -> pip name, where they differ (canonical names on both sides).
CONDA_TO_PIP = {
    "pytorch-cpu": "torch",
    "pytorch": "torch",
    "matplotlib-base": "matplotlib",
    "pythia8": "pythia8mc",
}
#: The extras environment.yml mirrors (and bootstrap installs); the others (dist, root) are opt-in.
MIRRORED_EXTRAS = ("test", "notebooks")
JUPYTER = ("jupyterlab", "papermill", "ipykernel", "ipywidgets")
NOT_MIRRORED = {"python", "pip"}  # conda-only entries with no pip counterpart
_CONDA_SPEC = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*$")


def _pyproject() -> dict[str, str]:
    """pip name -> specifier for [project] dependencies + the mirrored extras (test, notebooks)."""
    project = _project()
    lines = project["dependencies"] + [r for extra in MIRRORED_EXTRAS for r in project["optional-dependencies"][extra]]
    reqs = [Requirement(r) for r in lines]
    specs: dict[str, str] = {}
    for r in reqs:
        name = canonicalize_name(r.name)
        assert specs.get(name, str(r.specifier)) == str(r.specifier), f"pyproject.toml: {name} has two bounds"
        specs[name] = str(r.specifier)
    return specs


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def _conda_spec(entry: str) -> tuple[str, str]:
    match = _CONDA_SPEC.match(entry)
    assert match, f"environment.yml: cannot parse conda entry {entry!r}"
    name, spec = match.groups()
    if re.fullmatch(r"=[^=].*", spec):  # conda's `name=1.2` (fuzzy) has no pip equivalent: keep as written
        return canonicalize_name(name), spec
    return canonicalize_name(name), spec.replace(" ", "")


def _environment_packages() -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(conda pip-name -> spec, pip-section name -> spec, editable entries)."""
    conda: dict[str, str] = {}
    pip: dict[str, str] = {}
    editable: list[str] = []
    for entry in _environment()["dependencies"]:
        if isinstance(entry, dict):
            for line in entry.get("pip", []):
                if line.startswith("-e"):
                    editable.append(line)
                    continue
                req = Requirement(line)
                pip[canonicalize_name(req.name)] = str(req.specifier)
            continue
        name, spec = _conda_spec(entry)
        if name in NOT_MIRRORED:
            continue
        conda[CONDA_TO_PIP.get(name, name)] = spec
    return conda, pip, editable


def _normalise(spec: str) -> str:
    return ",".join(sorted(s.strip() for s in spec.split(",") if s.strip()))


def test_environment_yml_header():
    env = _environment()
    assert env["channels"] == ["conda-forge"]
    assert "python=3.11" in env["dependencies"]
    _, _, editable = _environment_packages()
    assert any(re.fullmatch(r"""-e\s+["']?\.\[test,notebooks[^\]]*\]["']?""", e) for e in editable), (
        f'environment.yml: the pip section must install the package with -e ".[test,notebooks]", found {editable}'
    )


def test_same_packages_in_pyproject_and_environment():
    wanted = _pyproject()
    conda, pip, _ = _environment_packages()
    both = set(conda) & set(pip)
    assert not both, f"environment.yml lists {sorted(both)} both as conda and as pip packages"
    have = set(conda) | set(pip)
    missing = sorted(set(wanted) - have)
    extra = sorted(have - set(wanted))
    assert not missing, f"in pyproject.toml but not in environment.yml (map conda names in CONDA_TO_PIP): {missing}"
    assert not extra, f"in environment.yml but not in pyproject.toml (dependencies, test or notebooks): {extra}"


def test_same_version_bounds():
    wanted = _pyproject()
    conda, pip, _ = _environment_packages()
    listed = {**conda, **pip}
    mismatched = {
        name: (wanted[name], listed[name])
        for name in wanted
        if name in listed and _normalise(wanted[name]) != _normalise(listed[name])
    }
    assert not mismatched, f"version bounds differ, {{name: (pyproject, environment.yml)}}: {mismatched}"


def test_conda_name_mapping_is_used_for_torch():
    conda, _, _ = _environment_packages()
    assert "torch" in conda, "torch should come from conda-forge's pytorch-cpu (pip: torch)"


def test_library_installs_without_jupyter() -> None:
    """Jupyter, papermill and ipywidgets live in the notebooks extra; the test extra has what the tests use."""
    project = _project()
    base = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    assert not base & set(JUPYTER), f"pyproject.toml dependencies pull Jupyter: {sorted(base & set(JUPYTER))}"
    extras = {
        name: {canonicalize_name(Requirement(r).name) for r in reqs}
        for name, reqs in project["optional-dependencies"].items()
    }
    assert set(JUPYTER) <= extras["notebooks"], extras["notebooks"]
    assert {"pytest", "nbval", "papermill", "ipykernel"} <= extras["test"], extras["test"]


def test_console_script_and_bootstrap_extras() -> None:
    assert _project()["scripts"] == {"jetcloud": "jetcloud.cli:main"}
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    assert re.search(r'^JC_EXTRAS="test,notebooks"', bootstrap, re.M), "bootstrap installs .[test,notebooks]"
    assert 'pip install --quiet -e ".[$JC_EXTRAS]"' in bootstrap
