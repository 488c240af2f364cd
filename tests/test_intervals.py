"""Prediction intervals: calibrated coverage, honest scores, and bounds that travel with the
model into predict, evaluate and plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from lstmcli.config.edit import validate_config
from lstmcli.errors import ConfigError
from lstmcli.model.conformal import Calibration, adaptive_bounds, calibrate
from lstmcli.run.pipeline import train_run
from lstmcli.use.interval_metrics import interval_score
from lstmcli.use.plot import plot_run
from tests.helpers import run


def noisy_series(path: Path, noise: str, n: int = 1500) -> Path:
    """A daily sine with noise of a known distribution, centred on zero."""
    rng = np.random.default_rng(3)
    t = np.arange(n)
    if noise == "gaussian":
        e = rng.normal(0, 0.5, n)
    else:  # skewed: exponential, mean removed
        e = rng.exponential(0.5, n) - 0.5
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2000-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
            "y": 10 + np.sin(2 * np.pi * t / 7) + e,
        }
    )
    frame.to_csv(path, index=False)
    return path


def interval_config(csv: Path, **model: object) -> dict:
    return {
        "data": {
            "path": str(csv),
            "target": "y",
            "season": 7,
            "lookback": 14,
            "split": {"train": 0.4, "val": 0.2, "test": 0.4},
        },
        "model": {"hidden_size": 8, "head": [8], "levels": [80, 95], **model},
        "training": {"epochs": 4, "ensemble": 1, "device": "cpu", "seed": 1},
    }


@pytest.mark.parametrize("noise", ["gaussian", "skewed"])
def test_conformal_intervals_cover_their_level(tmp_path: Path, noise: str) -> None:
    """Stationary noise, one-step forecasts, 600 test windows: split conformal intervals
    cover at least their level in expectation; with 300 calibration windows and 600 test
    windows the binomial standard error of a coverage is about 0.016, so 0.05 is three of
    them. The calibration's own bounds (adaptive off) are tested here, as the theory states."""
    csv = noisy_series(tmp_path / "noise.csv", noise)
    cfg = validate_config(interval_config(csv, adaptive=False))
    metrics = train_run(cfg, tmp_path / "run").metrics
    for level in ("80", "95"):
        coverage = metrics["intervals"]["model"][level]["coverage"]
        assert abs(coverage - int(level) / 100) <= 0.05, (level, coverage)
    # The bounds are the forecast plus and minus one size (absolute residuals are the
    # conformity score), also for skewed noise: the forecast is always inside its band.
    saved = pd.read_csv(tmp_path / "run" / "test_predictions.csv")
    below, above = saved["y"] - saved["y_lo_95"], saved["y_hi_95"] - saved["y"]
    np.testing.assert_allclose(below, above, rtol=1e-6)
    assert (below > 0).all() and (saved["y_hi_95"] > saved["y_hi_80"]).all()


def bounds(predicted: np.ndarray, spread: np.ndarray, calibration: Calibration) -> dict:
    """The calibration's own (not adapted) bounds, as the forecaster computes them."""
    tensors = {name: torch.from_numpy(v) for name, v in calibration.tensors().items()}
    pairs = calibration.scaled_bounds(
        torch.from_numpy(predicted), torch.from_numpy(spread), None, tensors
    )
    levels = calibration.levels
    return {level: (lo.numpy(), hi.numpy()) for level, (lo, hi) in zip(levels, pairs, strict=True)}


def test_a_drifting_validation_part_keeps_the_band_around_the_forecast() -> None:
    """Residuals that were all negative on the validation part (the series fell there) must
    not put the whole band below the forecast: the signed quantiles of such a part once
    gave bounds that excluded the forecast and covered nothing when the series turned."""
    residuals = -np.abs(np.random.default_rng(0).normal(1.0, 0.2, (12, 4, 1)))
    calibration = calibrate(residuals, [80])
    predicted = np.full((3, 4, 1), 5.0)
    lower, upper = bounds(predicted, np.ones((3, 1, 1)), calibration)[80]
    assert (lower < predicted).all() and (upper > predicted).all()
    np.testing.assert_allclose(predicted - lower, upper - predicted)


def test_the_interval_score_is_the_winkler_score() -> None:
    rng = np.random.default_rng(0)
    actual = rng.normal(0, 1, 500)
    lower, upper = actual - rng.uniform(-0.5, 1, 500), actual + rng.uniform(-0.5, 1, 500)
    alpha = 0.2
    expected = np.mean(
        (upper - lower)
        + 2 / alpha * (lower - actual) * (actual < lower)
        + 2 / alpha * (actual - upper) * (actual > upper)
    )
    got = interval_score(actual, lower, upper, 80, 2.0)
    assert got["interval_score"] == pytest.approx(expected)
    assert got["msis"] == pytest.approx(expected / 2.0)
    assert got["coverage"] == pytest.approx(np.mean((actual >= lower) & (actual <= upper)))
    assert got["width"] == pytest.approx(np.mean(upper - lower))


def test_calibration_quantiles_and_misses_widen_adaptive_bounds() -> None:
    rng = np.random.default_rng(1)
    residuals = rng.normal(0, 1, (400, 3, 1)) * np.array([1.0, 2.0, 3.0])[None, :, None]
    calibration = Calibration.from_dict(calibrate(residuals, [90]).to_dict())
    # each step's size: its mean absolute residual (a normal's is 0.80 sigma)
    assert calibration.size[:, 0] == pytest.approx(0.798 * np.array([1.0, 2.0, 3.0]), rel=0.1)
    low, high = bounds(np.zeros((1, 3, 1)), np.ones((1, 1, 1)), calibration)[90]
    assert high[0, :, 0] == pytest.approx(1.645 * np.array([1, 2, 3]), rel=0.15)
    assert low[0, :, 0] == pytest.approx(-1.645 * np.array([1, 2, 3]), rel=0.15)
    # every actual far outside: each step's bounds widen once its misses are known
    predicted, spread = np.zeros((30, 3, 1)), np.ones((30, 1, 1))
    actual = np.full((30, 3, 1), 50.0)
    lower, upper = adaptive_bounds(predicted, spread, actual, np.zeros(30, int), calibration)[90]
    assert upper[0, 0, 0] == pytest.approx(high[0, 0, 0])  # nothing known yet
    assert upper[10, 0, 0] > upper[1, 0, 0] > upper[0, 0, 0]
    assert upper[2, 2, 0] == pytest.approx(high[0, 2, 0])  # step 3 is known from window 3 on


def test_bounds_travel_with_the_model(tmp_path: Path) -> None:
    csv = noisy_series(tmp_path / "noise.csv", "gaussian", 400)
    # the network alone: a combination's classical forecast reads the series' whole history,
    # which the rolling input below lacks (combined models: tests/test_classical.py)
    config = interval_config(csv, blend="none")
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    trained = run("train", "-c", str(tmp_path / "run.yaml"), "-o", str(tmp_path / "run"))
    assert trained.exit_code == 0, trained.stderr
    assert "prediction intervals" in trained.stderr
    saved = pd.read_csv(tmp_path / "run" / "test_predictions.csv")
    assert list(saved.columns) == [
        "origin", "date", "step", "y", "y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95", "y_actual",
    ]  # fmt: skip
    assert (saved["y_lo_95"] <= saved["y_lo_80"]).all() and (saved["y_lo_80"] <= saved["y"]).all()
    assert (saved["y"] <= saved["y_hi_80"]).all() and (saved["y_hi_80"] <= saved["y_hi_95"]).all()
    # the rolling backtest of the same windows gives the same bounds (adapted the same way:
    # the input starts where the test part's first window does)
    frame = pd.read_csv(csv)
    first = frame.index[frame["date"] == saved["origin"].iloc[0]][0] - 14 + 1
    tail = frame.iloc[first:].to_csv(index=False)
    rolled = run("predict", str(tmp_path / "run"), "-", "--rolling", "-q", stdin=tail)
    again = pd.read_csv(pd.io.common.StringIO(rolled.stdout))
    again = again[again["origin"].isin(saved["origin"])].reset_index(drop=True)
    assert len(again) == len(saved)
    np.testing.assert_allclose(again["y_lo_80"], saved["y_lo_80"], rtol=1e-6)
    np.testing.assert_allclose(again["y_hi_95"], saved["y_hi_95"], rtol=1e-6)
    # a next forecast has bounds; evaluate scores them against the baseline's
    nxt = run("predict", str(tmp_path / "run"), str(csv), "--format", "json")
    row = json.loads(nxt.stdout.splitlines()[0])
    assert row["y_lo_95"] < row["y_lo_80"] < row["y"] < row["y_hi_80"] < row["y_hi_95"]
    scored = run("evaluate", str(tmp_path / "run"), "-", "--json", stdin=frame.to_csv(index=False))
    result = json.loads(scored.stdout)
    assert set(result["intervals"]["model"]) == {"80", "95"}
    assert "seasonal_naive" in result["intervals"]["baselines"]
    figures = dict(plot_run(tmp_path / "run", tmp_path / "figures", "png", 1, False))
    forecast = figures[tmp_path / "figures" / "forecast_y.png"]
    assert len(forecast.axes[0].collections) == 2  # the 95% and the 80% band


def test_a_model_without_levels_writes_no_bounds(tmp_path: Path) -> None:
    csv = noisy_series(tmp_path / "noise.csv", "gaussian", 200)
    config = interval_config(csv)
    config["model"]["levels"] = []
    train_run(validate_config(config), tmp_path / "run")
    saved = pd.read_csv(tmp_path / "run" / "test_predictions.csv")
    assert not any("_lo_" in c or "_hi_" in c for c in saved.columns)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "intervals" not in metrics


def test_levels_need_a_validation_part_and_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="conformal intervals are calibrated on a val part"):
        validate_config(
            {"data": {"validation": "none", "split": 0.8},
             "model": {"levels": [90], "init": "none"}}
        )  # fmt: skip
    with pytest.raises(ConfigError, match="interval levels are percents between 0 and 100"):
        validate_config({"model": {"levels": [0.9, 100]}})
    csv = noisy_series(tmp_path / "noise.csv", "gaussian", 200)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(interval_config(csv)))
    checked = run("check", "-c", str(tmp_path / "run.yaml"))
    line = "intervals:      80%, 95% (conformal, calibrated on the val part's origins;"
    assert line in checked.stdout


def test_quantile_outputs_never_cross() -> None:
    import torch

    from lstmcli.model.network import LSTMForecaster
    from lstmcli.model.spec import ModelSpec

    spec = ModelSpec(
        2, 1, 4, 8, 1, 0.0, (8,), "standard", (0,), linear_skip=6, quantile_levels=(50, 80, 95)
    )
    model = LSTMForecaster(spec)
    torch.nn.init.normal_(model.offsets.weight, std=5.0)  # whatever the weights
    with torch.no_grad():
        windows = torch.randn(64, 6, 2) * 10
        quantiles = model.quantile_forward(windows)
        assert quantiles.shape == (64, 4, 1, 7)
        assert (quantiles.diff(dim=-1) >= 0).all()  # ordered by construction
        torch.testing.assert_close(model(windows), quantiles[..., 3])  # the median


def test_the_pinball_loss_by_hand() -> None:
    import torch

    from lstmcli.run.loop import PinballLoss, quantile_probabilities

    assert quantile_probabilities((80, 95)) == pytest.approx([0.025, 0.1, 0.5, 0.9, 0.975])
    loss = PinballLoss([0.1, 0.5, 0.9])
    predicted = torch.tensor([[0.0, 1.0, 2.0]])
    target = torch.tensor([1.5])
    # errors y - q: 1.5, 0.5, -0.5 -> 0.1*1.5, 0.5*0.5, 0.1*0.5
    expected = (0.15 + 0.25 + 0.05) / 3
    assert loss(predicted, target).item() == pytest.approx(expected)


def test_quantile_intervals_train_score_and_predict(tmp_path: Path) -> None:
    csv = noisy_series(tmp_path / "noise.csv", "gaussian", 600)
    config = interval_config(csv, intervals="quantile")
    config["training"]["epochs"] = 15
    metrics = train_run(validate_config(config), tmp_path / "run").metrics
    assert metrics["intervals"]["pinball"] > 0 and metrics["intervals"]["scaled_pinball"] > 0
    for level in ("80", "95"):  # conformalized on the val part: near the level
        assert abs(metrics["intervals"]["model"][level]["coverage"] - int(level) / 100) <= 0.1
    saved = pd.read_csv(tmp_path / "run" / "test_predictions.csv")
    assert (saved["y_lo_95"] <= saved["y_lo_80"]).all() and (
        saved["y_hi_80"] <= saved["y_hi_95"]
    ).all()
    nxt = run("predict", str(tmp_path / "run"), str(csv))
    assert nxt.exit_code == 0 and "y_lo_80" in nxt.stdout.splitlines()[0]
    with pytest.raises(ConfigError, match=r"\(or model.conformalize: false\)"):
        validate_config(
            {
                "data": {"validation": "none", "split": 0.8},
                "model": {"levels": [90], "intervals": "quantile"},
            }
        )
    plain = validate_config(
        {
            "data": {"validation": "none", "split": 0.8},
            "model": {"levels": [90], "intervals": "quantile", "conformalize": False},
        }
    )
    assert plain.model.conformalize is False


def test_adaptive_bands_stay_nested_on_every_row() -> None:
    """Actuals just outside the 80% band but inside the 95% one widen the 80% level and
    narrow the 95% one until, adapting on their own, they would cross; they never do."""
    rng = np.random.default_rng(3)
    calibration = calibrate(rng.normal(0, 1, (300, 2, 1)), [80, 95])
    n = 400
    predicted, spread = np.zeros((n, 2, 1)), np.ones((n, 1, 1))
    half80 = calibration.quantile(calibration.share(80))[0] * calibration.size[:, 0]
    actual = np.broadcast_to((half80 * 1.05)[None, :, None], (n, 2, 1)).copy()
    bands = adaptive_bounds(predicted, spread, actual, np.zeros(n, int), calibration)
    (lo80, hi80), (lo95, hi95) = bands[80], bands[95]
    assert (lo95 <= lo80).all() and (hi80 <= hi95).all()
    # without the nesting the levels would have crossed here: 80% kept widening
    assert (hi80[-1] > half80[None, :, None]).all()
    assert np.isclose(hi80[-50:], hi95[-50:]).any()  # held at the narrower level's width


def test_corrected_quantile_bands_stay_nested() -> None:
    from lstmcli.model.bands import nested
    from lstmcli.model.quantile_intervals import QuantileCorrection

    correction = QuantileCorrection([80, 95], np.array([[0.6], [-0.6]]), 10)
    quantiles = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0]).reshape(1, 1, 1, 5)
    tensors = {"correction": torch.from_numpy(correction.correction)}
    scale = torch.ones(1, 1, 1)  # each window's naive error: the correction's unit
    raw = correction.scaled_bounds(quantiles[..., 2], scale, quantiles, tensors)
    assert raw[0][1].item() > raw[1][1].item()  # 80%: 1 + 0.6 above 95%: 2 - 0.6
    (lo80, hi80), (lo95, hi95) = nested(raw)
    assert lo95.item() <= lo80.item() and hi80.item() <= hi95.item()


def test_the_scaled_pinball_puts_series_of_any_size_on_one_footing() -> None:
    """A series in the thousands and one near one, with errors in proportion: scaled by each
    series' naive error their pinball losses are equal, so the pool is not the large one's."""
    from lstmcli.use.interval_metrics import pinball

    rng = np.random.default_rng(0)
    actual = rng.normal(0, 1, (50, 2, 1))
    points = actual + rng.normal(0, 0.5, (50, 2, 1))
    bounds = {80.0: (points - 0.6, points + 0.6)}
    small = pinball(actual, points, bounds, np.full((50, 1, 1), 0.8))
    scale = np.array([0.8, 800.0])[:, None, None, None]
    pooled = pinball(
        np.concatenate([actual, actual * 1000]),
        np.concatenate([points, points * 1000]),
        {80.0: tuple(np.concatenate([b, b * 1000]) for b in bounds[80.0])},
        np.repeat(scale, 50, axis=0)[:, 0],
    )
    assert pooled == pytest.approx(small)
    unscaled = pinball(
        np.concatenate([actual, actual * 1000]),
        np.concatenate([points, points * 1000]),
        {80.0: tuple(np.concatenate([b, b * 1000]) for b in bounds[80.0])},
    )
    assert unscaled > 400 * small  # in the data's units the large series is all there is


def test_a_level_the_val_part_cannot_support_is_named(tmp_path: Path) -> None:
    """99.9% from a few dozen scores would silently be the largest error seen: a warning
    says how many scores (and windows) the level needs and how many there are."""
    from lstmcli.model.bands import scores_needed

    assert [scores_needed(level) for level in (80, 95, 99, 99.9)] == [4, 19, 99, 999]
    csv = noisy_series(tmp_path / "noise.csv", "gaussian", 300)
    config = interval_config(csv, levels=[80, 99.9])
    config["training"]["epochs"] = 2
    warnings: list[str] = []
    train_run(validate_config(config), tmp_path / "run", warn=warnings.append)
    (message,) = [w for w in warnings if w.startswith("model.levels")]
    assert message.startswith("model.levels: 99.9% needs at least 999 calibration scores")
    assert "coverage may fall short" in message


# --- many origins, scale-free units, a prior's errors (short series) ----------------------


def _half_width(calibration: Calibration, level: float) -> np.ndarray:
    return calibration.tensors()["half"][calibration.levels.index(level)][:, 0]  # per step


def test_a_prior_alone_calibrates_and_own_origins_outweigh_it_as_they_grow() -> None:
    rng = np.random.default_rng(0)
    prior = calibrate(rng.normal(0, 3.0, (4000, 3, 1)), [80, 95])  # wide errors
    alone = calibrate(np.empty((0, 3, 1)), [80, 95], prior)
    # no val origin: the prior's own bounds (its finite-sample share aside)
    assert _half_width(alone, 80) == pytest.approx(_half_width(prior, 80), rel=0.03)
    assert alone.windows == 0 and alone.prior_windows > 0 and alone.samples > 0
    few = calibrate(rng.normal(0, 1.0, (5, 3, 1)), [80, 95], prior)
    draws = rng.normal(0, 1.0, (5000, 3, 1))
    many, own = calibrate(draws, [80, 95], prior), calibrate(draws, [80, 95])
    # a few calm origins narrow the prior's band a little; thousands make it their own
    assert (_half_width(few, 80) < _half_width(alone, 80)).all()
    assert (_half_width(few, 80) > 1.5 * _half_width(own, 80)).all()
    assert _half_width(many, 80) == pytest.approx(_half_width(own, 80), rel=0.05)
    # at a level: a normal's 80% half width is 1.28 sigma
    assert _half_width(own, 80) == pytest.approx(np.full(3, 1.2816), rel=0.05)


def test_weighted_quantiles_of_equal_weights_are_numpys() -> None:
    from lstmcli.model.conformal import weighted_quantiles

    values = np.random.default_rng(1).normal(size=37)
    shares = np.linspace(0, 1, 11)
    np.testing.assert_allclose(
        weighted_quantiles(values, np.ones(37), shares), np.quantile(values, shares)
    )


def test_a_windows_scale_is_its_naive_error_in_its_own_units() -> None:
    from lstmcli.model.bands import window_scale

    line = torch.arange(10, dtype=torch.float32)[None, :, None] * 2.0  # a steady trend
    assert window_scale(line, [0], "naive").item() == pytest.approx(2.0)  # steps, not spread
    assert window_scale(line, [0], "spread").item() == pytest.approx(
        float(line.std(unbiased=False))
    )
    assert window_scale(line * 1000 + 7, [0], "naive").item() == pytest.approx(2000.0)
    assert window_scale(line, [0], "none").item() == 1.0
    # a season's swing is no error: a season repeated with a trend of 1 a season has a
    # seasonal change of 1, far below its row-to-row swings
    season = torch.tensor([0.0, 10.0, -10.0, 5.0] * 3) + torch.arange(12) // 4
    assert window_scale(season[None, :, None], [0], "naive", 4).item() == pytest.approx(1.0)
    assert window_scale(season[None, :, None], [0], "naive").item() > 10
    # a window of one season or less: from row to row
    assert window_scale(line[:, :4], [0], "naive", 4).item() == pytest.approx(2.0)


def test_a_calibration_written_before_scale_free_units_keeps_its_own() -> None:
    old = calibrate(np.random.default_rng(2).normal(size=(50, 2, 1)), [80]).to_dict()
    del old["scale"], old["prior_windows"]
    assert Calibration.from_dict(old).scale == "spread"
    from lstmcli.model.quantile_intervals import QuantileCorrection

    corrected = {"method": "quantile", "levels": [80], "correction": [[0.1]], "windows": 5}
    assert QuantileCorrection.from_dict(corrected).scale == "none"


def test_quantile_conformity_scores_are_in_each_windows_units() -> None:
    from lstmcli.model.quantile_intervals import conformalize

    rng = np.random.default_rng(3)
    actual = rng.normal(0, 1, (40, 2, 1))
    quantiles = np.zeros((40, 2, 1, 3)) + np.array([-0.5, 0.0, 0.5])  # 80% level: +-0.5
    scale = np.ones((40, 1, 1))
    base = conformalize(quantiles, actual, [80], scale).correction
    # the same series 1000 times larger: the same correction in its windows' units
    larger = conformalize(quantiles * 1000, actual * 1000, [80], scale * 1000).correction
    np.testing.assert_allclose(base, larger)
    assert base[0, 0] > 0  # +-0.5 covers a standard normal too rarely: widened


def yearly_sales(path: Path, n: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    y = 500 + 12 * np.arange(n) + rng.normal(0, 15, n)
    dates = pd.date_range("1990-01-01", periods=n, freq="YS").strftime("%Y-%m-%d")
    pd.DataFrame({"year": dates, "sales": y.round(2)}).to_csv(path, index=False)
    return path


def short_interval_config(csv: Path, test_start: str, **model: object) -> dict:
    return {
        "data": {"path": str(csv), "time_column": "year", "target": "sales", "horizon": 4,
                 "split": {"test_start": test_start}},
        "model": {"levels": [80, 95], **model},
        "training": {"device": "cpu"},
    }  # fmt: skip


def test_a_short_series_gets_bands_from_its_origins_and_the_priors_errors(tmp_path: Path) -> None:
    csv = yearly_sales(tmp_path / "sales.csv", 24)  # 20 training rows
    metrics = train_run(
        validate_config(short_interval_config(csv, "2010-01-01")), tmp_path / "run"
    ).metrics
    calibration = metrics["calibration"]
    assert calibration["val_origins"] >= 2 and calibration["prior_windows"] > 0
    assert calibration["scale"] == "naive"
    saved = pd.read_csv(tmp_path / "run" / "test_predictions.csv")
    assert (saved["sales_lo_95"] <= saved["sales_lo_80"]).all()
    assert (saved["sales_lo_80"] < saved["sales"]).all() and (
        saved["sales"] < saved["sales_hi_80"]
    ).all()
    assert (saved["sales_hi_80"] <= saved["sales_hi_95"]).all()
    # in the data's units: a trend of 12 a year with noise of 15 gives bands of tens, not 1000s
    width = (saved["sales_hi_80"] - saved["sales_lo_80"]).to_numpy()
    assert (width > 10).all() and (width < 600).all()


def test_a_series_too_short_for_any_val_origin_gets_the_priors_bands(tmp_path: Path) -> None:
    csv = yearly_sales(tmp_path / "sales.csv", 24)
    config = short_interval_config(csv, "1997-01-01")  # 7 training rows: no val part
    metrics = train_run(validate_config(config), tmp_path / "run").metrics
    assert metrics["calibration"]["val_origins"] == 0 and metrics["init"]["kept"] == "as is"
    # a baseline band only where it has residuals (none: no band, never a NaN one at 0%)
    for band in metrics["intervals"]["baselines"].values():
        assert np.isfinite(band["80"]["interval_score"])
    assert 0 <= metrics["intervals"]["model"]["80"]["coverage"] <= 1
    saved = pd.read_csv(tmp_path / "run" / "test_predictions.csv")
    assert saved[["sales_lo_80", "sales_hi_95"]].notna().all().all()
    # from scratch there is nothing to calibrate on: one error line, no run folder
    config["model"]["init"] = "none"
    (tmp_path / "none.yaml").write_text(yaml.safe_dump(config))
    refused = run("train", "-c", str(tmp_path / "none.yaml"), "-o", str(tmp_path / "none"))
    assert refused.exit_code == 1 and refused.stderr.startswith("Error:")
    assert "conformal intervals are calibrated on a val part" in refused.stderr
    assert "too few to spare one" in refused.stderr and "fewer than -" not in refused.stderr
    assert not (tmp_path / "none").exists()


def test_no_val_part_on_long_data_names_the_setting(tmp_path: Path) -> None:
    csv = noisy_series(tmp_path / "noise.csv", "gaussian", 400)
    config = interval_config(csv)
    config["data"] |= {"split": 0.8, "validation": "none"}  # long data: no prior
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    refused = run("train", "-c", str(tmp_path / "run.yaml"), "-o", str(tmp_path / "run"))
    assert refused.exit_code == 1
    assert "calibrated on a val part, and data.validation is none" in refused.stderr


def test_a_panels_series_pool_their_errors_and_get_bands_in_their_own_units(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(4)
    n, parts = 300, []
    for name, size in (("small", 1.0), ("large", 1000.0)):
        t = np.arange(n)
        y = size * (10 + np.sin(2 * np.pi * t / 7) + rng.normal(0, 0.5, n))
        dates = pd.date_range("2000-01-01", periods=n, freq="D").strftime("%Y-%m-%d")
        parts.append(pd.DataFrame({"id": name, "date": dates, "y": y}))
    csv = tmp_path / "panel.csv"
    pd.concat(parts).to_csv(csv, index=False)
    config = interval_config(csv)
    config["data"] |= {"id_column": "id", "time_column": "date", "scale_by": "global"}
    train_run(validate_config(config), tmp_path / "run")
    saved = pd.read_csv(tmp_path / "run" / "test_predictions.csv")
    width = (saved["y_hi_80"] - saved["y_lo_80"]).groupby(saved["id"]).median()
    # one global scaler, one pooled calibration: each band in its series' units
    assert 300 < width["large"] / width["small"] < 3000
    for name, rows in saved.groupby("id"):
        inside = rows["y_actual"].between(rows["y_lo_80"], rows["y_hi_80"]).mean()
        assert 0.6 < inside <= 1.0, name


def test_a_run_without_training_windows_reports_no_baseline_band(tmp_path: Path) -> None:
    csv = yearly_sales(tmp_path / "sales.csv", 20)  # 14 training rows, horizon 4
    config = short_interval_config(csv, "2004-01-01")  # a val part of 8 rows leaves 6
    metrics = train_run(validate_config(config), tmp_path / "run").metrics
    assert metrics["windows"]["train"] == 0 and metrics["calibration"]["val_origins"] > 0
    assert metrics["intervals"]["baselines"] == {}  # was a NaN band covering 0%


@pytest.mark.parametrize(
    ("intervals", "conformalize", "needs"),
    [("conformal", True, True), ("conformal", False, True), ("quantile", True, True),
     ("quantile", False, False)],
)  # fmt: skip
def test_the_interval_method_says_whether_it_needs_a_val_part(
    intervals: str, conformalize: bool, needs: bool
) -> None:
    """The config asks the method that owns model.intervals, not its name."""
    from lstmcli.config.schema import ModelConfig
    from lstmcli.model.intervals import METHODS

    model = ModelConfig(levels=[80], intervals=intervals, conformalize=conformalize)
    assert model.interval_method is METHODS[intervals]
    assert model.needs_val_part is needs
    assert ModelConfig(levels=[], intervals=intervals).needs_val_part is False
