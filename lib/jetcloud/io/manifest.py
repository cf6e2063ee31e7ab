"""Run manifests: what produced an output, written beside it.

``write_manifest(data_dir / "events.root", inputs=[...], parameters={...}, seed=seed, wall_time_s=dt)``
writes ``events.root.manifest.json``; for a directory output it writes ``<dir>/manifest.json``. A manifest
records the inputs (path, size, sha256), the output itself (same, for a file; per file for a directory), the
parameters, package versions (read from installed metadata: nothing is imported), the git commit of the
repository with a dirty flag, Python version, host, seed, wall time and a UTC timestamp.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import json
import os
import platform
import socket
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from jetcloud import paths
from jetcloud.io.atomic import write_json

MANIFEST_VERSION = 1
MANIFEST_NAME = "manifest.json"
SUFFIX = ".manifest.json"
BLOCK = 1 << 20  # 1 MiB

PACKAGES = (
    "jetcloud",
    "numpy",
    "scipy",
    "awkward",
    "uproot",
    "pyarrow",
    "h5py",
    "torch",
    "scikit-learn",
    "matplotlib",
    "mplhep",
    "pythia8mc",
    "fastjet",
    "particle",
    "vector",
    "papermill",
    "dask",
    "root",
)
"""Distributions whose versions are recorded when installed."""


def manifest_path(output: str | os.PathLike) -> Path:
    """``<output>.manifest.json`` for a file, ``<output>/manifest.json`` for an existing directory."""
    output = Path(output)
    return output / MANIFEST_NAME if output.is_dir() else output.with_name(output.name + SUFFIX)


def sha256_file(path: str | os.PathLike, block_size: int = BLOCK) -> str:
    """Hex sha256 of a file, read in ``block_size`` blocks (constant memory for any file size)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(block_size):
            digest.update(block)
    return digest.hexdigest()


def describe_path(path: str | os.PathLike, *, skip: Iterable[Path] = ()) -> list[dict[str, Any]]:
    """``[{"path", "size", "sha256"}]`` for a file, or for every non-hidden file under a directory (sorted).

    Raises ``FileNotFoundError`` naming the path when it does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"manifest input {path} does not exist")
    skip = {Path(p).resolve() for p in skip}
    if path.is_file():
        files = [path]
    else:  # temporaries of atomic writes and other hidden files are not content
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    return [
        {"path": _display(f), "size": f.stat().st_size, "sha256": sha256_file(f)}
        for f in files
        if f.resolve() not in skip
    ]


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (via ``importlib.metadata``; missing packages are left out)."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def git_state(root: str | os.PathLike = paths.ROOT) -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` of the checkout at ``root``, or None outside git / without git."""
    try:
        commit = _git(root, "rev-parse", "HEAD")
        dirty = bool(_git(root, "status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def _git(root: str | os.PathLike, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", os.fspath(root), *args], capture_output=True, text=True, timeout=30, check=True
    )
    return result.stdout.strip()


def write_manifest(
    output: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike],
    parameters: Mapping[str, Any],
    seed: int | None,
    wall_time_s: float,
    extra: Mapping[str, Any] | None = None,
    hash_output: bool = True,
) -> Path:
    """Write the manifest of ``output`` beside it (atomically) and return the manifest's path.

    ``inputs`` are files or directories (every file inside is listed); each must exist. The output itself is
    described too when it exists and ``hash_output`` is true. ``parameters`` and ``extra`` must be
    JSON-serialisable (paths and numpy scalars are converted).
    """
    output = Path(output)
    target = manifest_path(output)
    input_list = [Path(p) for p in inputs]
    described_inputs = [entry for p in input_list for entry in describe_path(p)]
    described_output: list[dict[str, Any]] | None = None
    if hash_output and output.exists():
        described_output = describe_path(output, skip=[target])
    record: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "output": _display(output),
        "output_files": described_output,
        "inputs": described_inputs,
        "parameters": dict(parameters),
        "seed": seed,
        "wall_time_s": round(float(wall_time_s), 3),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "packages": package_versions(),
        "git": git_state(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "extra": dict(extra) if extra else {},
    }
    return write_json(target, record)


def read_manifest(output: str | os.PathLike) -> dict[str, Any]:
    """The manifest written for ``output`` (``FileNotFoundError`` names the missing manifest)."""
    target = manifest_path(output)
    try:
        return json.loads(target.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no manifest for {output}: expected {target}") from None


def _display(path: Path) -> str:
    """Path relative to the repository root when inside it, else absolute."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(paths.ROOT).as_posix()
    except ValueError:
        return resolved.as_posix()
