"""jetcloud.qg.runner: the training-set limit of the learning curve (max_train_jets), its run tag, one tiny run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from jetcloud.qg import runner
from jetcloud.qg import train as qg_train


def test_limit_training_set_keeps_the_first_jets(tmp_path, write_toy_qg):
    write_toy_qg(tmp_path / "QG8.h5")
    data = qg_train.load_data("smoke", "mlp", k=8, source=tmp_path)
    assert runner.limit_training_set(data, 0) is data and runner.limit_training_set(data, len(data.train)) is data
    small = runner.limit_training_set(data, 30)
    assert small.sizes == {"train": 30, "val": data.sizes["val"], "test": data.sizes["test"]}
    assert small.val is data.val and small.test is data.test
    for i in (0, 17, 29):  # the first N jets of the training split, unchanged
        assert torch.equal(small.train[i]["inputs"], data.train[i]["inputs"])
    loader = torch.utils.data.DataLoader(small.train, batch_size=8, collate_fn=small.train.collate_fn)
    batch = next(iter(loader))
    assert batch["inputs"].shape == (8, 8, 5) and torch.equal(batch["inputs"][3], data.train[3]["inputs"])
    for bad in (-1, len(data.train) + 1):
        with pytest.raises(ValueError, match=rf"max_train_jets must be in \[0, {len(data.train)}\].*QG8.h5"):
            runner.limit_training_set(data, bad)


def test_train_tag_tells_the_sizes_apart():
    settings = qg_train.preset("pfn", seed=1, epochs=4)
    full = runner.train_tag("pfn", settings)
    assert full == qg_train.run_tag("pfn", settings)
    assert runner.train_tag("pfn", settings, max_train_jets=2000) == f"{full}-train2000"
    assert runner.train_tag("pfn", settings, max_train_jets=5000) != runner.train_tag("pfn", settings)


def test_train_run_records_the_training_jets(tmp_path, one_torch_thread, write_toy_qg):
    write_toy_qg(tmp_path / "QG8.h5")
    run = runner.train_run(
        "smoke",
        "mlp",
        data=tmp_path,
        k=8,
        max_train_jets=40,
        out=tmp_path / "run",
        epochs=1,
        batch_size=16,
        device="cpu",
        seed=2,
    )
    assert run.summary["n_train"] == 40
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert record["parameters"]["max_train_jets"] == 40 and record["metrics"]["n_train"] == 40
    with np.load(tmp_path / "run" / "scores_test.npz") as f:
        assert len(f["labels"]) == 20 and np.isfinite(f["scores"]).all()
