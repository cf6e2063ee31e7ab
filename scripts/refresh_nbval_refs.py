"""Copy the reference outputs of the ``# NBVAL_CHECK_OUTPUT`` cells from smoke runs into notebooks/.

    ./run_all.sh --profile smoke [--only NN ...]       # executes into build/smoke/executed/
    .venv/bin/python scripts/refresh_nbval_refs.py [notebooks/NN_name.ipynb ...]   # default: all numbered

nbval (``--nbval-lax``) compares a cell's new output with the output stored in the notebook only for cells
marked ``# NBVAL_CHECK_OUTPUT`` that carry an execution count; a stripped cell has neither, and nbval then
checks nothing. This script is the one way reference outputs change: for every check cell it takes the
stdout / result outputs of the executed smoke copy (cells matched by source; stderr is dropped), stores them
with an execution count and tags the cell ``keep_output`` so that ``nbstripout --keep-count`` keeps them.
Every other cell stays stripped. Review the diff before committing: a changed number is a changed result.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
MARK = "# NBVAL_CHECK_OUTPUT"


def refresh(notebook: Path, executed: Path) -> int:
    """Copy check-cell outputs from ``executed`` into ``notebook``; returns the number of cells updated."""
    if not executed.is_file():
        raise FileNotFoundError(f"{executed} not found: run ./run_all.sh --profile smoke --only {notebook.name[:2]}")
    if executed.stat().st_mtime < notebook.stat().st_mtime:
        raise RuntimeError(f"{executed} is older than {notebook}: run the smoke profile again first")
    source_nb = nbformat.read(notebook, as_version=4)
    ran = {cell.source: cell for cell in nbformat.read(executed, as_version=4).cells if cell.cell_type == "code"}
    updated = 0
    for index, cell in enumerate(source_nb.cells):
        if cell.cell_type != "code" or not cell.source.lstrip().startswith(MARK):
            continue
        if cell.source not in ran:
            raise RuntimeError(f"{notebook.name} cell {index}: not found in {executed} (source changed since the run)")
        outputs = [o for o in ran[cell.source].outputs if o.get("name") != "stderr" and o.output_type != "display_data"]
        if any(o.output_type == "error" for o in outputs):
            raise RuntimeError(f"{notebook.name} cell {index} raised in {executed}")
        cell.outputs = outputs
        cell.execution_count = ran[cell.source].execution_count or index
        tags = cell.metadata.setdefault("tags", [])
        if "keep_output" not in tags:
            tags.append("keep_output")
        updated += 1
    nbformat.write(source_nb, notebook)
    return updated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--executed", type=Path, default=ROOT / "build" / "smoke" / "executed")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for nb in notebooks:
        n = refresh(nb, args.executed / nb.name)
        print(f"{nb.name}: {n} check cell(s) refreshed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
