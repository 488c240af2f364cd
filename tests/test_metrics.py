from __future__ import annotations

import math

import numpy as np
import pytest

from lstmcli.use.metrics import (
    baseline_predictions,
    compare,
    grouped_scores,
    mase_scales,
    report,
    score,
    skill,
)


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
    assert "mae" not in out and out["mase"] == 2.0  # unit-free means over targets only
    assert set(out["per_step"]) == {"1", "2"} and "mae" not in out["per_step"]["1"]
    single = report(actual[..., :1], predicted[..., :1], ["a"], [1.0])
    assert single["mae"] == 1.0 and "per_target" not in single
    assert skill(1.0, 2.0) == 0.5 and skill(1.0, 0.0) is None


def test_grouped_scores_equal_score_of_each_group() -> None:
    rng = np.random.default_rng(3)
    actual = rng.normal(5, 2, (60, 3, 2))
    actual[:10, :, 0] = 0.0  # group 0 has zeros in target 0: no mape
    actual[50:, :, :] = 7.0  # group 5 is constant: no r2
    predicted = actual + rng.normal(0, 1, actual.shape)
    groups = np.repeat(np.arange(6), 10)
    scales = rng.uniform(0.5, 2, (6, 2))
    scales[2, 1] = np.nan  # unknown scale: no mase
    actual[20:25, 1, 1] = np.nan  # made-up actuals (data.missing) in group 2: not scored
    grouped = grouped_scores(actual, predicted, groups, scales)
    assert len(grouped) == 2  # one per target
    for g in range(6):
        rows = groups == g
        for j, s in enumerate(scales[g]):
            expected = score(
                actual[rows][..., j], predicted[rows][..., j], None if np.isnan(s) else s
            )
            for key in ("mae", "rmse", "smape", "mase", "r2", "mape"):
                value = expected.get(key)
                if value is None:
                    assert np.isnan(grouped[j][key][g]), (key, g, j)
                else:
                    assert grouped[j][key][g] == pytest.approx(value, rel=1e-9), (key, g, j)


def test_made_up_actuals_are_not_scored() -> None:
    actual = np.array([1.0, np.nan, 3.0, 4.0])
    predicted = np.array([1.5, 100.0, 2.0, 4.0])
    assert score(actual, predicted, 1.0) == score(actual[[0, 2, 3]], predicted[[0, 2, 3]], 1.0)
    assert score(np.array([np.nan]), np.array([2.0]), 1.0)["rmse"] is None


def test_several_targets_in_other_units_do_not_mix() -> None:
    rng = np.random.default_rng(0)
    actual = np.stack([rng.normal(1e4, 100, (50, 1)), rng.normal(5, 1, (50, 1))], axis=2)
    predicted = actual + np.stack([rng.normal(0, 50, (50, 1)), rng.normal(0, 2, (50, 1))], axis=2)
    naive = actual + np.stack([rng.normal(0, 100, (50, 1)), rng.normal(0, 1, (50, 1))], axis=2)
    result = compare(actual, predicted, {"naive": naive}, ["gdp", "unemp"], [100.0, 1.0])
    # no mean of dollars and percent at the top: only unit-free metrics
    assert "rmse" not in result["model"] and "mae" not in result["model"]
    per_target = result["skill_per_target"]
    assert per_target["gdp"]["naive"] > 0 > per_target["unemp"]["naive"]
    assert result["skill"]["naive"] == pytest.approx(
        (per_target["gdp"]["naive"] + per_target["unemp"]["naive"]) / 2
    )
    gdp = result["model"]["per_target"]["gdp"]
    assert gdp["rmse"] == pytest.approx(np.sqrt(np.mean((predicted - actual)[..., 0] ** 2)))
