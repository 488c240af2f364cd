"""The classical forecast a prior's network combines with: statsforecast's AutoETS and
AutoTheta on a series' whole history (model/classical.py)."""

from __future__ import annotations

import numpy as np
import pytest

from lstmcli.model import classical
from lstmcli.model.classical import combined_share, history_forecast
from lstmcli.model.theta import theta_forecast


def seasonal(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 100 + 0.5 * t + 10 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, n)


def test_classical_is_the_mean_of_statsforecasts_autoets_and_autotheta() -> None:
    """The modules it reads give what statsforecast's public models give: a change in
    statsforecast's internals fails here, not in a user's forecast."""
    from statsforecast.models import AutoETS, AutoTheta

    x = seasonal(60)
    expected = (
        AutoETS(season_length=12).forecast(y=x, h=9)["mean"]
        + AutoTheta(season_length=12).forecast(y=x, h=9)["mean"]
    ) / 2
    assert history_forecast("classical", x, 9, 12) == pytest.approx(expected, rel=1e-9)
    # its season and trend are followed: half the last value's error on the noiseless truth
    truth = seasonal(69)[60:] - np.random.default_rng(0).normal(0, 1, 69)[60:]
    error = np.abs(history_forecast("classical", x, 9, 12) - truth).mean()
    assert error < 0.5 * np.abs(x[-1] - truth).mean()


def test_a_season_longer_than_half_the_history_is_not_used() -> None:
    from statsforecast.models import AutoETS, AutoTheta

    x = seasonal(20)
    plain = (AutoETS(season_length=1).forecast(y=x, h=3)["mean"]
             + AutoTheta(season_length=1).forecast(y=x, h=3)["mean"]) / 2  # fmt: skip
    assert history_forecast("classical", x, 3, 12) == pytest.approx(plain, rel=1e-9)


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        (np.array([4.0, np.nan, 7.0]), [7.0, 7.0]),  # fewer than three values: the last one
        (np.full(30, 2.5), [2.5, 2.5]),  # constant: flat
    ],
)
def test_short_and_constant_histories_forecast_the_last_value(
    history: np.ndarray, expected: list[float]
) -> None:
    assert history_forecast("classical", history, 2, 12).tolist() == expected


def test_histories_with_zeros_and_negatives_forecast_finite_values() -> None:
    intermittent = np.r_[np.zeros(10), 5.0, 0, 0, 3.0, np.zeros(12)]
    falling = -np.arange(30.0)
    assert np.isfinite(history_forecast("classical", intermittent, 6, 12)).all()
    assert history_forecast("classical", falling, 3, None) == pytest.approx([-30, -31, -32], 0.01)


def test_theta_kind_is_the_numpy_theta_of_runs_before_it() -> None:
    x = seasonal(48)
    assert history_forecast("theta", x, 6, 12).tolist() == theta_forecast(x, 6, 12).tolist()
    assert combined_share("theta") == 0.5 and combined_share("classical") == pytest.approx(1 / 3)


def test_a_history_is_fitted_once_and_its_forecast_cannot_be_changed_by_a_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Calibration, the val scores and the test part read the same histories: one fit each."""
    fits = []
    real = classical._classical
    monkeypatch.setattr(classical, "_classical", lambda *a: fits.append(a) or real(*a))
    x = seasonal(40, seed=7)
    first = history_forecast("classical", x, 4, 12)
    first[:] = 0  # a caller writing into its copy
    second = history_forecast("classical", x.copy(), 4, 12)
    assert len(fits) == 1 and (second != 0).all()
    history_forecast("classical", x[:-1], 4, 12)  # another history: fitted
    assert len(fits) == 2


def test_one_series_origins_share_one_fit_whatever_their_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A backtest's origins of one series: AutoETS and AutoTheta are fitted once, on the
    shortest history, and run forward on the longer ones; the shortest forecasts as alone."""
    fits = []
    real = classical._functions

    def counting(name: str) -> tuple:
        fit, forward, forecast = real(name)
        return (lambda x, m: fits.append((name, len(x))) or fit(x, m)), forward, forecast

    monkeypatch.setattr(classical, "_functions", counting)
    classical._cache.clear()
    x = seasonal(72, seed=3)
    histories = [x[:n] for n in (60, 66, 72, 63, 69)]
    together = classical.history_forecasts("classical", histories, 6, 12, np.zeros(5))
    assert sorted(fits) == [("ets", 60), ("theta", 60)]
    classical._cache.clear()
    order = [4, 2, 0, 3, 1]
    shuffled = classical.history_forecasts("classical", [histories[k] for k in order], 6, 12,
                                           np.zeros(5))  # fmt: skip
    assert shuffled == pytest.approx(together[order], rel=1e-12)
    classical._cache.clear()
    alone = history_forecast("classical", histories[0], 6, 12)
    assert together[0] == pytest.approx(alone, rel=1e-12)
    assert np.isfinite(together).all()
    # two series are fitted apart
    fits.clear()
    classical._cache.clear()
    classical.history_forecasts("classical", [x[:60], x[:66], x[:61]], 6, 12, np.array([0, 0, 1]))
    assert sorted(fits) == [("ets", 60), ("ets", 61), ("theta", 60), ("theta", 61)]
