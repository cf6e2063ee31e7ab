"""The package's floor plan, checked by parsing every module's imports (no module is executed).

lib/jetcloud has a shared floor (core modules, io, sim, models, train) and two workflows on it (atlas, qg).
The rules (issue 11), each a test below:

1. ``qg`` never imports ``atlas``, ``atlas`` never imports ``qg``.
2. Core modules, ``io``, ``sim``, ``models`` and ``train`` never import ``atlas`` or ``qg``.
3. ``io`` imports only core modules; core modules never import ``sim``, ``models`` or ``train``.
4. ATLAS ingestion (samples, chunks, celltable, cones, containment, cellgeo, pointcloud) never imports the
   simulator (atlas.sim).
5. Only plotting modules import plotting modules; no module imports another module's ``_private`` names.

One documented exception: :data:`FRONT_DOOR`, the command line (``jetcloud.cli``, the ``jetcloud`` console
script), is a core module that may import both workflows, but only their command-line entry points
(:data:`FRONT_DOOR_TARGETS`, inside its commands so that ``--help`` stays cheap). Nothing imports it except
``jetcloud.__main__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lib" / "jetcloud"
SUBPACKAGES = ("io", "sim", "models", "train", "atlas", "qg")
#: The command-line front door: the one core module allowed to import the workflows (rule 2), see the docstring.
FRONT_DOOR = "jetcloud.cli"
#: What the front door may import from the workflows: their command-line entry points, nothing else.
FRONT_DOOR_TARGETS = ("jetcloud.atlas.runner", "jetcloud.qg.runner")
INGESTION = ("samples", "chunks", "celltable", "cones", "containment", "cellgeo", "pointcloud")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, tuple[str, ...], int]]:
    """(imported module, names taken from it, line) for every import of a jetcloud module in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, (), node.lineno) for a in node.names if a.name.split(".")[0] == "jetcloud"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] != "jetcloud":
                continue
            names = tuple(a.name for a in node.names)
            found.append((base, names, node.lineno))
            # ``from jetcloud.atlas import samples`` imports the module jetcloud.atlas.samples
            found += [(f"{base}.{n}", (), node.lineno) for n in names if _is_module(f"{base}.{n}")]
    return found


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").is_file() or (PACKAGE / rel / "__init__.py").is_file()


def _area(module: str) -> str:
    """'core', or the top-level subpackage (io, sim, models, train, atlas, qg)."""
    parts = module.split(".")
    return parts[1] if len(parts) >= 2 and parts[1] in SUBPACKAGES else "core"


def _is_plotting(module: str) -> bool:
    return module.split(".")[-1] == "plots"


MODULES = sorted(PACKAGE.rglob("*.py"))
EDGES = [(_module_name(p), target, names, line) for p in MODULES for target, names, line in _imports(p)]


def _violations(rule) -> list[str]:  # noqa: ANN001
    return [f"{src} imports {dst} (line {line})" for src, dst, names, line in EDGES if rule(src, dst, names)]


def test_the_parser_sees_the_package() -> None:
    assert len(MODULES) > 40
    assert ("jetcloud.atlas.celltable", "jetcloud.atlas.cellgeo") in {(s, d) for s, d, _, _ in EDGES}


def test_rule1_workflows_do_not_import_each_other() -> None:
    def rule(src: str, dst: str, _names: tuple[str, ...]) -> bool:
        return {_area(src), _area(dst)} == {"atlas", "qg"}

    assert _violations(rule) == []


def test_rule2_the_floor_does_not_import_the_workflows() -> None:
    def rule(src: str, dst: str, _names: tuple[str, ...]) -> bool:
        if src == FRONT_DOOR and dst in FRONT_DOOR_TARGETS:
            return False
        return _area(src) in ("core", "io", "sim", "models", "train") and _area(dst) in ("atlas", "qg")

    assert _violations(rule) == []


def test_the_front_door_is_used_only_by_main() -> None:
    """``jetcloud.cli`` imports the workflows' runners only; only ``jetcloud.__main__`` imports it."""
    front = {dst for src, dst, _, _ in EDGES if src == FRONT_DOOR and _area(dst) in ("atlas", "qg")}
    assert front <= set(FRONT_DOOR_TARGETS)
    users = {src for src, dst, _, _ in EDGES if dst == FRONT_DOOR and src != FRONT_DOOR}
    assert users <= {"jetcloud.__main__"}, f"{sorted(users)} import the command line; it is the top of the graph"


def test_rule3_io_and_core_stay_low() -> None:
    def rule(src: str, dst: str, _names: tuple[str, ...]) -> bool:
        if _area(src) == "io":
            return _area(dst) not in ("core", "io")
        return _area(src) == "core" and _area(dst) in ("sim", "models", "train")

    assert _violations(rule) == []


def test_rule4_ingestion_reads_files_not_the_simulator() -> None:
    ingestion = {f"jetcloud.atlas.{m}" for m in INGESTION}

    def rule(src: str, dst: str, _names: tuple[str, ...]) -> bool:
        return src in ingestion and (dst.startswith("jetcloud.atlas.sim") or _area(dst) == "sim")

    assert _violations(rule) == []


def test_rule5_plotting_and_private_names() -> None:
    def rule(src: str, dst: str, names: tuple[str, ...]) -> bool:
        if _is_plotting(dst) and not _is_plotting(src):
            return True
        return src != dst and any(n.startswith("_") and n != "__future__" for n in names)

    assert _violations(rule) == []


@pytest.mark.parametrize(
    "old",
    [
        "geometry",
        "samples",
        "pointcloud",
        "sample_plots",
        "energy_eval",
        "baselines",
        "jetpointnet",
        "qg_plots",
        "qg_pointcloud",
        "qg_train",
        "qg_compare",
        "io/mltree",
        "io/e2e",
        "sim/cms",
        "sim/qg",
        "sim/showers",
    ],
)
def test_no_old_flat_module_remains(old: str) -> None:
    assert not (PACKAGE / f"{old}.py").exists(), f"jetcloud/{old}.py was moved (issue 11); nothing re-exports it"


def test_every_package_says_what_lives_there() -> None:
    for sub in ("", *SUBPACKAGES, "atlas/sim"):
        init = PACKAGE / sub / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and "import" in doc.lower(), f"{init}: the docstring says what lives there and what it may import"


def test_no_function_longer_than_80_lines() -> None:
    """Long functions are split into named steps (issue 11): every function in lib/ reads at once."""
    long = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in MODULES
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > 80
    ]
    assert long == []
