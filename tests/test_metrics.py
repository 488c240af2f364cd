from __future__ import annotations

import math

import numpy as np
import pytest

from lstmcli.metrics import baseline_predictions, mase_scales, report, score, skill


def test_score_by_hand() -> None:
    actual = np.array([1.0, 2.0, 4.0])
    predicted = np.array([2.0, 2.0, 2.0])
    m = score(actual, predicted, mase_scale=2.0)
    assert m["mae"] == pytest.approx(1.0)
    assert m["rmse"] == pytest.approx(math.sqrt(5 / 3))
    assert m["mase"] == pytest.approx(0.5)
    assert m["mape"] == pytest.approx(100 * (1 + 0 + 0.5) / 3)
    assert m["smape"] == pytest.approx(100 * (2 / 3 + 0 + 4 / 6) / 3)
    assert m["r2"] == pytest.approx(1 - 5 / (14 / 3))


def test_mape_is_left_out_when_an_actual_is_zero() -> None:
    m = score(np.array([0.0, 1.0]), np.array([0.5, 1.0]), None)
    assert "mape" not in m and m["mase"] is None


def test_baselines_use_the_same_target_rows() -> None:
    y = np.arange(20, dtype=float)[:, None] * 10  # row r holds 10r
    anchors = np.array([9, 12])
    offsets = np.arange(1, 4)  # forecast 3 steps
    b = baseline_predictions(y, anchors, offsets, "forecast", season=2)
    assert b["naive"][:, :, 0].tolist() == [[90, 90, 90], [120, 120, 120]]
    # target rows 10, 11, 12 from origin 9 with season 2: rows 8, 9, 10 - 2 = 8
    assert b["seasonal_naive"][:, :, 0].tolist() == [[80, 90, 80], [110, 120, 110]]
    regress = baseline_predictions(y, anchors, np.zeros(1, dtype=int), "regress", season=4)
    assert regress["naive"][:, 0, 0].tolist() == [80, 110]  # the row before
    assert regress["seasonal_naive"][:, 0, 0].tolist() == [50, 80]  # four rows before


def test_mase_scale_is_the_in_sample_seasonal_naive_error() -> None:
    y = np.array([[1.0], [3.0], [2.0], [6.0]])
    assert mase_scales(y, None) == [pytest.approx((2 + 1 + 4) / 3)]
    assert mase_scales(y, 2) == [pytest.approx((1 + 3) / 2)]


def test_report_per_target_and_per_step() -> None:
    actual = np.zeros((4, 2, 2))
    predicted = np.ones((4, 2, 2))
    predicted[:, :, 1] = 3.0
    out = report(actual, predicted, ["a", "b"], [1.0, 1.0])
    assert out["per_target"]["a"]["mae"] == 1.0 and out["per_target"]["b"]["mae"] == 3.0
    assert out["mae"] == 2.0  # mean over targets
    assert set(out["per_step"]) == {"1", "2"}
    assert skill(1.0, 2.0) == 0.5 and skill(1.0, 0.0) is None
