"""Rolling forecasts as a table and scored: the format of test_predictions.csv and
`predict --rolling`, and the scores of metrics.json and `evaluate`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstmcli.config.edit import validate_config
from lstmcli.data.table import Table
from lstmcli.use.backtest import actual_values, backtest_frame, score_backtest
from lstmcli.use.metrics import score


def table(values: np.ndarray, observed: np.ndarray | None = None) -> Table:
    time = pd.Series(pd.date_range("2020-01-01", periods=len(values), freq="D"))
    column = values.reshape(-1, 1).astype(float)
    return Table(column, column.copy(), ["y"], ["y"], time, observed=observed)


def data_config(**data: object) -> object:
    return validate_config({"data": {"target": "y", "lookback": 3, "horizon": 2,
                                     "season": 4, **data}}).data  # fmt: skip


def test_the_table_has_one_row_per_window_and_step() -> None:
    t = table(np.arange(12.0))
    anchors = np.array([5, 6])
    predicted = np.full((2, 2, 1), 7.0)
    bounds = {80.0: (predicted - 1, predicted + 1)}
    cfg = data_config()
    frame = backtest_frame(t, anchors, predicted, actual_values(t, anchors, cfg), cfg, bounds)
    assert list(frame.columns) == ["origin", "date", "step", "y", "y_lo_80", "y_hi_80",
                                   "y_actual"]  # fmt: skip
    assert frame["step"].tolist() == [1, 2, 1, 2]
    assert frame["y_actual"].tolist() == [6.0, 7.0, 7.0, 8.0]
    assert frame["origin"].iloc[2] == pd.Timestamp("2020-01-07")


def test_windows_without_baseline_history_are_skipped_and_made_up_values_not_scored() -> None:
    values = np.arange(20.0) ** 1.5
    observed = np.ones((20, 1), dtype=bool)
    observed[12] = False  # a value data.missing made up: never an actual
    t = table(values, observed)
    cfg = data_config()
    anchors = np.arange(2, 17)  # windows before row 3 have no season of history
    rng = np.random.default_rng(0)
    truth = values[anchors[:, None] + np.array([1, 2])][..., None]
    predicted = truth + rng.normal(0, 1, (15, 2, 1))
    result = score_backtest(t, anchors, predicted, cfg, [1.0], None, "test")
    assert result["windows_skipped"] == 1  # anchor 2: its seasonal naive would need row -1
    kept = anchors >= 3
    actual = t.actual_targets()[anchors[kept][:, None] + np.array([1, 2])]
    assert np.isnan(actual).sum() == 2  # row 12 is a target of two windows
    assert result["model"]["rmse"] == pytest.approx(score(actual, predicted[kept], 1.0)["rmse"])
