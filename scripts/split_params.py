"""Split a profile's parameter file into one papermill parameter file per run (used by run_all.sh).

    python scripts/split_params.py notebooks/params/demo/08_train_qg_model.yaml build/demo/params

A parameter file holds one YAML document (one run of the notebook) or several documents separated by
``---`` (one run each, e.g. one per model). Each document is written to ``OUTDIR/<stem>@<label>.yaml``, label
= the document's ``model`` value or its position, and the lines ``<label>|<path>`` are printed in order. A
single document is printed as it is, with an empty label. Keys common to all runs can sit in the first
document only when every later document repeats them: the documents are independent parameter sets.

Every key must be a parameter of the notebook (an assignment in its cell tagged ``parameters``; the notebook is
``notebooks/<stem>.ipynb`` two directories above the params file): an unknown key, malformed YAML or a YAML tag
(only ``yaml.safe_load`` is used) is an error naming the file, and nothing is written.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import yaml


def notebook_parameters(notebook: Path) -> set[str]:
    """The names assigned in the cell tagged ``parameters`` of ``notebook``."""
    cells = json.loads(notebook.read_text())["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise ValueError(f"{notebook}: expected one cell tagged 'parameters', found {len(tagged)}")
    source = tagged[0]["source"]
    tree = ast.parse("".join(source) if isinstance(source, list) else source, filename=str(notebook))
    names = set()
    for node in tree.body:
        targets = [node.target] if isinstance(node, ast.AnnAssign) else getattr(node, "targets", [])
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def check_keys(path: Path, docs: list, notebook: Path | None = None) -> None:
    """Raise ``ValueError`` naming ``path`` when a document is not a mapping or has a key that is not a parameter."""
    notebook = notebook or path.resolve().parents[2] / f"{path.stem}.ipynb"
    if not notebook.is_file():
        return  # a params file outside notebooks/params/<profile>/: nothing to check against
    names = notebook_parameters(notebook)
    for index, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: document {index} is not a mapping of parameters")
        unknown = sorted(str(k) for k in doc if k not in names)
        if unknown:
            raise ValueError(
                f"{path}: document {index}: {unknown} is not a parameter of {notebook.name} "
                f"(its parameters: {sorted(names)})"
            )


def load_docs(path: Path) -> list:
    """The non-empty YAML documents of ``path`` (``yaml.safe_load_all``); a YAML error names the file."""
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML (only plain YAML, no tags, is accepted): {err}") from err


def split(path: Path, out_dir: Path) -> list[tuple[str, Path]]:
    """``[(label, parameter file)]`` for the runs of ``path`` (after checking every key, see the module doc)."""
    docs = load_docs(path)
    check_keys(path, docs)
    if len(docs) <= 1:
        return [("", path)]
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = []
    seen: set[str] = set()
    for index, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: document {index} is not a mapping of parameters")
        label = re.sub(r"[^A-Za-z0-9_.-]", "_", str(doc.get("model", index)))
        if label in seen:
            label = f"{label}_{index}"
        seen.add(label)
        target = out_dir / f"{path.stem}@{label}.yaml"
        target.write_text(yaml.safe_dump(doc, sort_keys=False))
        runs.append((label, target))
    return runs


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        runs = split(Path(argv[0]), Path(argv[1]))
    except (OSError, ValueError) as err:
        print(f"split_params.py: {err}", file=sys.stderr)
        return 1
    for label, target in runs:
        print(f"{label}|{target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
