"""Shared fixtures for the unit tests.

Every test runs with ``JETCLOUD_DATA``, ``JETCLOUD_BUILD`` and ``JETCLOUD_FIGURES`` pointing into its own
temporary directory (autouse fixture ``isolated_outputs``), so unit tests never write into the repository's
``data/``, ``build/`` or ``figures/``. Matplotlib is forced onto the Agg backend.

This file is not loaded by the nbval step (``pytest ... notebooks/NN_*.ipynb``): notebooks run with the real
locations on their smoke defaults.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

REPO_ROOT = Path(__file__).resolve().parents[1]
# This checkout's package first, also in the subprocesses tests start: a venv shared with another checkout
# (a git worktree) has its editable install pointing there.
if str(REPO_ROOT / "lib") not in sys.path[:1]:
    sys.path.insert(0, str(REPO_ROOT / "lib"))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO_ROOT / "lib"), os.environ.get("PYTHONPATH"))))
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"


def numbered_notebooks() -> list[Path]:
    """``notebooks/NN_*.ipynb`` in file order (the order run_all.sh and nbval use)."""
    return sorted(p for p in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb") if p.is_file())


@pytest.fixture
def repo_root() -> Path:
    """The repository root (where pyproject.toml lives)."""
    return REPO_ROOT


@pytest.fixture(autouse=True)
def isolated_outputs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Point data / build / figures at a fresh temporary tree; returns ``{"data", "build", "figures"}``."""
    base = tmp_path_factory.mktemp("jetcloud-outputs")
    dirs = {name: base / name for name in ("data", "build", "figures")}
    for name, path in dirs.items():
        monkeypatch.setenv(f"JETCLOUD_{name.upper()}", str(path))
    return dirs


@pytest.fixture
def rng():
    """A seeded numpy Generator (seed 12345) for tests that need random inputs."""
    import numpy as np

    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 simulated JZ1 events in two MLTree files: ``<dir>/geometry.root`` and ``<dir>/events/*.root``.

    Built once per test session and shared by the sample and point-cloud tests (read it, never modify it).
    """
    from jetcloud.atlas.sim.pipeline import SimConfig, simulate

    out = tmp_path_factory.mktemp("sim")
    simulate(SimConfig(n_events=12, chunk_size=6, seed=5), out, workers=1, progress=False)
    return out


@pytest.fixture
def one_torch_thread():
    """Tiny torch models: one thread is as fast and does not stall when the shared cores are busy."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def write_toy_qg():
    """``write(path, n_train=120, n_test=20, k=8)``: a QG{k}.h5 of learnable toy jets (quark jets, label 1, carry
    more energy in channel 0), for training tests that need no simulation."""

    def write(path: Path, n_train: int = 120, n_test: int = 20, k: int = 8) -> None:
        import h5py
        import numpy as np

        rng = np.random.default_rng(0)
        with h5py.File(path, "w") as f:
            for group, n in (("train_dataset", n_train), ("test_dataset", n_test)):
                y = (np.arange(n) % 2).astype(np.float32)
                x = rng.random((n, k, 5)).astype(np.float32) + 0.1
                x[:, :, 0] += 0.3 * y[:, None]
                f[f"{group}/X"], f[f"{group}/Y"] = x, y

    return write
