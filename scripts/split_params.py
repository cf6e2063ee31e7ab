"""Split a profile's parameter file into one papermill parameter file per run (used by run_all.sh).

    python scripts/split_params.py notebooks/params/demo/08_train_qg_model.yaml build/demo/params

A parameter file holds one YAML document (one run of the notebook) or several documents separated by
``---`` (one run each, e.g. one per model). Each document is written to ``OUTDIR/<stem>@<label>.yaml``, label
= the document's ``model`` value or its position, and the lines ``<label>|<path>`` are printed in order. A
single document is printed as it is, with an empty label. Keys common to all runs can sit in the first
document only when every later document repeats them: the documents are independent parameter sets.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml


def split(path: Path, out_dir: Path) -> list[tuple[str, Path]]:
    """``[(label, parameter file)]`` for the runs of ``path``."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
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
    for label, target in split(Path(argv[0]), Path(argv[1])):
        print(f"{label}|{target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
