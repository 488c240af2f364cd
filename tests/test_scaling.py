"""Scalers: scikit-learn's statistics, fitted on training rows only, per series when asked."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

from lstmcli.data.scaling import Scaler, fit_scaler, warn_constant_columns

REFERENCE = {
    "minmax": (MinMaxScaler, "data_min_", "data_range_"),
    "standard": (StandardScaler, "mean_", "scale_"),
    "robust": (RobustScaler, "center_", "scale_"),
}


@pytest.mark.parametrize("kind", ["minmax", "standard", "robust"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_statistics_equal_scikit_learns(kind: str, dtype: type) -> None:
    rows = np.random.default_rng(1).normal(5, 2, size=(81, 3)).astype(dtype)
    reference, center, scale = REFERENCE[kind]
    fitted = reference().fit(rows.astype(np.float64))
    scaler = fit_scaler(kind, rows)
    np.testing.assert_allclose(scaler.center, getattr(fitted, center), rtol=1e-12)
    np.testing.assert_allclose(scaler.scale, getattr(fitted, scale), rtol=1e-12)
    np.testing.assert_allclose(scaler.inverse(scaler.transform(rows)), rows, rtol=1e-5)


@pytest.mark.parametrize("kind", ["minmax", "standard", "robust"])
def test_per_series_statistics_equal_scikit_learn_on_each_series(kind: str) -> None:
    rng = np.random.default_rng(2)
    series = rng.integers(0, 4, size=200)
    series[series == 2] = 1  # series 2 has no rows
    rows = rng.normal(0, 1, size=(200, 2)) * (1 + series[:, None] * 100)
    reference, center, scale = REFERENCE[kind]
    scaler = fit_scaler(kind, rows, series, n_series=4)
    assert scaler.per_series and scaler.center.shape == (4, 2)
    for k in (0, 1, 3):
        fitted = reference().fit(rows[series == k])
        np.testing.assert_allclose(scaler.center[k], getattr(fitted, center), rtol=1e-12)
        np.testing.assert_allclose(scaler.scale[k], getattr(fitted, scale), rtol=1e-12)
    assert np.isnan(scaler.center[2]).all() and scaler.scale[2].tolist() == [1.0, 1.0]
    scaled = scaler.transform(rows, series)
    for k in (0, 1, 3):  # each series scaled by its own statistics
        expected = (rows[series == k] - scaler.center[k]) / scaler.scale[k]
        np.testing.assert_allclose(scaled[series == k], expected, rtol=1e-5, atol=1e-6)


def test_none_is_the_identity() -> None:
    scaler = fit_scaler("none", np.arange(6.0).reshape(3, 2))
    assert scaler.center.tolist() == [0, 0] and scaler.scale.tolist() == [1, 1]


def test_a_constant_column_gets_scale_one_and_a_warning() -> None:
    rows = np.array([[3.0, 1.0], [3.0, 2.0], [3.0, 5.0]])
    scaler = fit_scaler("minmax", rows)
    assert scaler.scale.tolist() == [1.0, 4.0]
    assert np.isfinite(scaler.transform(np.array([[3.0, 1.0], [4.0, 1.0]]))).all()
    warnings: list[str] = []
    warn_constant_columns(rows.astype(np.float32), ["a", "b"], warnings.append)
    assert warnings == ["column(s) ['a'] are constant in the training rows; they carry no signal"]


def test_calendar_columns_can_be_left_unscaled_and_the_map_round_trips() -> None:
    scaler = fit_scaler("standard", np.random.default_rng(0).normal(10, 3, size=(50, 3)))
    kept = scaler.without_scaling(slice(1, 3))
    assert kept.center[1:].tolist() == [0, 0] and kept.scale[1:].tolist() == [1, 1]
    assert kept.center[0] == scaler.center[0]
    restored = Scaler.from_dict(kept.to_dict())
    np.testing.assert_array_equal(restored.center, kept.center)
    np.testing.assert_array_equal(restored.scale, kept.scale)


@pytest.mark.slow
def test_a_run_does_not_import_scikit_learn() -> None:
    """Its import costs more than half a second of every run; the statistics need numpy."""
    code = (
        "import sys, lstmcli.run.pipeline, lstmcli.use.predict, lstmcli.run.check\n"
        "print('sklearn' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
