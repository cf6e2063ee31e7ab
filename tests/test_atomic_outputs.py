"""Owned output directories (jetcloud.io.atomic.atomic_dir): nothing a user owns is ever deleted, no debris."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jetcloud.io import atomic


def _listing(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _write_stage(target: Path, stage: str, text: str) -> None:
    with atomic.atomic_dir(target, stage=stage) as tmp:
        (tmp / "part.txt").write_text(text)


def test_a_users_directory_is_refused_and_left_untouched(tmp_path: Path) -> None:
    target = tmp_path / "scratch"
    target.mkdir()
    (target / "thesis.tex").write_text("years of work")
    before = _listing(tmp_path)
    with pytest.raises(atomic.NotOwnedError, match=r"scratch holds files that are not an output.*thesis\.tex"):
        _write_stage(target, "atlas.samples", "new")
    assert _listing(tmp_path) == before  # nothing deleted, no temporaries left


def test_another_stages_output_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "out"
    _write_stage(target, "qg.pointcloud", "points")
    before = _listing(tmp_path)
    with pytest.raises(atomic.NotOwnedError, match="the output of stage 'qg.pointcloud'"):
        _write_stage(target, "atlas.samples", "samples")
    assert _listing(tmp_path) == before


def test_a_previous_output_of_the_same_stage_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "out"
    _write_stage(target, "atlas.samples", "first")
    (target / "stale.txt").write_text("from the first run")
    _write_stage(target, "atlas.samples", "second")
    assert (target / "part.txt").read_text() == "second" and not (target / "stale.txt").exists()
    assert json.loads((target / atomic.OUTPUT_MARKER).read_text()) == {"stage": "atlas.samples"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_empty_and_legacy_outputs_are_accepted(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    _write_stage(empty, "s", "x")
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "manifest.json").write_text(json.dumps({"created_utc": "2026-01-01", "git": {}}))
    _write_stage(legacy, "s", "y")
    assert (legacy / "part.txt").read_text() == "y"


def test_a_failure_leaves_the_old_output_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out"
    _write_stage(target, "s", "good")
    with pytest.raises(RuntimeError), atomic.atomic_dir(target, stage="s") as tmp:
        (tmp / "part.txt").write_text("half")
        raise RuntimeError("killed")
    assert (target / "part.txt").read_text() == "good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_debris_of_killed_runs_is_removed_but_not_a_live_runs(tmp_path: Path) -> None:
    target = tmp_path / "out"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # that process has exited
    (tmp_path / f".out.tmp-{dead_pid}-abcd1234").mkdir()
    (tmp_path / f".out.tmp-{dead_pid}-abcd1234" / "half.npz").write_bytes(b"x")
    live = tmp_path / f".out.tmp-{os.getpid()}-live0000"  # a run in progress (this process)
    live.mkdir()
    unrelated = tmp_path / ".other.tmp-1-abcd"  # another target's temporary
    unrelated.mkdir()
    _write_stage(target, "s", "x")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["out", live.name, unrelated.name])


def test_a_file_in_place_of_the_directory_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.write_text("not a directory")
    with pytest.raises(atomic.NotOwnedError, match="is a file"):
        _write_stage(target, "s", "x")
    assert target.read_text() == "not a directory"
