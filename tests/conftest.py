from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from lstmcli.run.device import AUTO_VARIABLE


def pytest_configure(config: pytest.Config) -> None:
    """Tests run on the CPU: `training.device: auto` picks it even where CUDA is, so no test
    (nor a command it starts, which inherits the environment) pays CUDA's start-up."""
    os.environ[AUTO_VARIABLE] = "cpu"


@pytest.fixture(autouse=True)
def _on_the_cpu(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CPU pin for every test but those marked `cuda`: they see the machine's devices,
    and are skipped on one without a CUDA GPU."""
    if request.node.get_closest_marker("cuda") is None:
        monkeypatch.setenv(AUTO_VARIABLE, "cpu")
        return
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    monkeypatch.delenv(AUTO_VARIABLE, raising=False)


@pytest.fixture(autouse=True)
def _seeded() -> None:
    """Every test starts from the same random state."""
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


def seasonal_frame(
    n: int = 160, period: int = 12, noise: float = 0.05, seed: int = 0
) -> pd.DataFrame:
    """A small monthly series with trend, season and noise, plus one extra feature column."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 10 + 0.02 * t + np.sin(2 * np.pi * t / period) + rng.normal(0, noise, n)
    x = np.cos(2 * np.pi * t / period) + rng.normal(0, noise, n)
    dates = pd.date_range("2000-01-01", periods=n, freq="MS")
    return pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "y": y.round(4), "x": x.round(4)})


def tiny_config(csv: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    """A config that trains in about a second on `seasonal_frame` data."""
    config: dict[str, Any] = {
        "data": {
            "path": str(csv),
            "time_column": "date",
            "target": "y",
            "lookback": 12,
            "season": 12,
            "split": {"train": 0.7, "val": 0.1, "test": 0.2},
            "scaler": "standard",
            "window_norm": "none",
        },
        "model": {"hidden_size": 8, "num_layers": 1, "head": [8], "blend": "none"},
        "training": {"epochs": 3, "batch_size": 16, "device": "cpu", "seed": 7, "ensemble": 1},
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    return config


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    path = tmp_path / "series.csv"
    seasonal_frame().to_csv(path, index=False)
    return path


@pytest.fixture
def config_path(tmp_path: Path, csv_path: Path) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(tiny_config(csv_path)))
    return path
