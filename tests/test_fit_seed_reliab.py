"""``train.fit(seed=...)`` seeds everything that makes a run, the model's initial weights included (issue 15, point 8).

Given a model factory, :func:`jetcloud.train.fit` seeds ``random``, numpy and torch with ``config.seed`` and then
builds the model, so two fits with the same seed give identical weights whatever the caller drew from the global
generators before, and the initial weights are those of ``nbtools.seed_everything(seed)`` followed by the build
(what notebooks 03 and 08 do: their runs keep their results).
"""

from __future__ import annotations

import copy
import functools
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from jetcloud import models, nbtools, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")

build = functools.partial(models.get_model, "pointnet", size_factor=0.125, tnet_size_factor=0.0625, dropout=0.5)


def _data() -> Any:
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(12, 10, 6)).astype(np.float32)
    feats[..., 5] = 0
    return train.ArrayDataset([{"feats": feats, "focus_labels": rng.uniform(size=(12, 10)).astype(np.float32)}])


def _fit(model: Any, out: Path, seed: int = 1, epochs: int = 2, **kw: Any) -> train.FitResult:
    config = train.TrainConfig(epochs=epochs, batch_size=4, progress=False, seed=seed)
    return train.fit(model, _data(), None, train.MaskedLoss(), config, out, **kw)


def _disturb(n: int) -> None:
    """Draw ``n`` numbers from every global generator: a caller that did other things before training."""
    torch.rand(n)
    np.random.rand(n)  # noqa: NPY002
    [random.random() for _ in range(n)]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return train.load_checkpoint(path)["model_state"]


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_weights_from_factories_built_without_seeding(tmp_path: Path) -> None:
    _disturb(7)
    first = _fit(build, tmp_path / "a")
    _disturb(1001)
    second = _fit(build, tmp_path / "b")
    assert isinstance(first.model, torch.nn.Module) and first.model is not second.model
    assert _same(first.model.state_dict(), second.model.state_dict())
    for name in ("best.pt", "last.pt"):
        assert _same(_weights(tmp_path / "a" / name), _weights(tmp_path / "b" / name))
    assert first.history[-1]["train_loss"] == second.history[-1]["train_loss"]
    other = _fit(build, tmp_path / "c", seed=2)
    assert not _same(first.model.state_dict(), other.model.state_dict())


def test_modules_built_without_seeding_differ_which_the_factory_fixes(tmp_path: Path) -> None:
    """The failure of the issue: a module built by an unseeded caller makes another run for the same seed."""
    _disturb(3)
    first = _fit(build(), tmp_path / "a")
    second = _fit(build(), tmp_path / "b")
    assert not _same(first.model.state_dict(), second.model.state_dict())


def test_factory_weights_equal_those_of_seed_everything_then_build(tmp_path: Path) -> None:
    """fit's seeding before the factory is that of ``nbtools.seed_everything``: notebook runs keep their weights."""
    built: list[torch.nn.Module] = []

    def recording() -> torch.nn.Module:
        built.append(build())
        return built[-1]

    captured: dict[str, torch.Tensor] = {}
    original = train.loop._build_engine

    def capture(model: torch.nn.Module, *args: Any) -> Any:
        captured.update(copy.deepcopy(model.state_dict()))
        return original(model, *args)

    _disturb(5)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train.loop, "_build_engine", capture)
        result = _fit(recording, tmp_path / "a", seed=4, epochs=1)
    nbtools.seed_everything(4)
    assert _same(captured, build().state_dict())
    assert result.model is built[0]


def test_factory_run_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path: Path) -> None:
    whole = _fit(build, tmp_path / "whole", epochs=3)
    _fit(build, tmp_path / "parts", epochs=1)
    _disturb(11)
    resumed = _fit(build, tmp_path / "parts", epochs=3)
    assert resumed.start_epoch == 1
    assert _same(whole.model.state_dict(), resumed.model.state_dict())


@pytest.mark.parametrize(
    ("model", "needle"),
    [("pointnet", "nn.Module or a factory"), (lambda: "not a module", "returned str")],
)
def test_a_model_that_is_neither_module_nor_factory_is_refused(tmp_path: Path, model: Any, needle: str) -> None:
    with pytest.raises(TypeError, match=needle):
        _fit(model, tmp_path / "run")
    assert not (tmp_path / "run").exists()
