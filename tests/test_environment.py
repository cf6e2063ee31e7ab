"""environment.yml (conda-forge) mirrors pyproject.toml: same packages, same version bounds."""

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
NOT_MIRRORED = {"python", "pip"}  # conda-only entries with no pip counterpart
_CONDA_SPEC = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*$")


def _pyproject() -> dict[str, str]:
    """pip name -> specifier for [project] dependencies + the test extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]
    return {canonicalize_name(r.name): str(r.specifier) for r in reqs}


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
    assert any(re.fullmatch(r"""-e\s+["']?\.\[test[^\]]*\]["']?""", e) for e in editable), (
        f'environment.yml: the pip section must install the package itself with -e ".[test]", found {editable}'
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
    assert not extra, f"in environment.yml but not in pyproject.toml (dependencies or the test extra): {extra}"


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
