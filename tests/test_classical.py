"""The classical forecast a prior's network combines with: statsforecast's AutoETS and
AutoTheta on a series' whole history (model/classical.py)."""

from __future__ import annotations

from pathlib import Path

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

    x = seasonal(63)  # a length its models are fitted on whole (see fit_length)
    expected = (
        AutoETS(season_length=12).forecast(y=x, h=9)["mean"]
        + AutoTheta(season_length=12).forecast(y=x, h=9)["mean"]
    ) / 2
    assert history_forecast("classical", x, 9, 12) == pytest.approx(expected, rel=1e-9)
    # its season and trend are followed: half the last value's error on the noiseless truth
    truth = seasonal(72)[63:] - np.random.default_rng(0).normal(0, 1, 72)[63:]
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


def demand(n: int, season: int, seed: int = 0) -> np.ndarray:
    """Demand-like data: a daily cycle (`season` steps) times a weekly one, on a drifting
    level: what hourly and half-hourly loads look like."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    day = np.sin(2 * np.pi * t / season) + 0.5 * np.sin(4 * np.pi * t / season + 1)
    week = np.sin(2 * np.pi * t / (7 * season))
    drift = np.cumsum(rng.normal(0, 0.005, n)) + rng.normal(0, 0.03, n)
    return 1000 * (1 + 0.3 * day) * (1 + 0.15 * week) * np.exp(drift)


@pytest.mark.parametrize("season", [24, 48, 52])
def test_a_long_season_is_forecast_not_flattened(season: int) -> None:
    """AutoETS fits 24 or more seasonal states poorly, often worse than none, which it then
    picks: the combination's AutoETS half was a flat line on such data. It now forecasts the
    seasonally adjusted series: better than seasonal naive, and far better than the legacy
    kind (checkpoints before format 4), which stays as it was."""
    y = demand(15 * season, season)
    x, truth = y[:-season], y[-season:]
    error = lambda kind: np.abs(history_forecast(kind, x, season, season) - truth).mean()  # noqa: E731
    assert error("classical") < 0.6 * error("classical-1")
    assert error("classical") < 0.8 * np.abs(x[-season:] - truth).mean()  # seasonal naive


def test_an_additive_cycle_on_a_trend_is_adjusted_by_differences() -> None:
    """Ratios fitted at the history's mean level leave part of an additive cycle in a
    trending series, and AutoETS follows it: the decomposition that explains more of the
    season (here differences) is used."""
    rng = np.random.default_rng(1)
    t = np.arange(800)
    y = 200 + 0.1 * t + 30 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 2, len(t))
    x, truth = y[:-24], y[-24:]
    cycle_error = np.abs(x[-24:] - truth).mean()  # seasonal naive's
    ets = classical._adjusted("ets", x, x[: classical.fit_length(len(x))], 24, 24)
    assert np.abs(ets - truth).mean() < 0.7 * cycle_error  # with ratios: 2 times worse
    # AutoTheta, its other half, keeps its own (ratio) decomposition: on synthetic series
    # that did better than adjusting it too (benchmarks/README.md)
    assert np.abs(history_forecast("classical", x, 24, 24) - truth).mean() < 1.25 * cycle_error


@pytest.mark.parametrize(("season", "seed"), [(48, 1), (52, 1), (12, 2)])
def test_a_clean_season_over_few_cycles_is_followed_by_autotheta_too(
    season: int, seed: int
) -> None:
    """AutoTheta decomposes a season only where the autocorrelation at it is significant;
    over three cycles the autocorrelations below the season widen that test's limit, it
    misses a clean cycle and forecasts across it. Where the seasonal strength finds the
    season, AutoTheta now forecasts the seasonally adjusted series: better than seasonal
    naive, and far better than format 5's kind (`classical-3`), which stays as it was."""
    from lstmcli.model.theta import autocorrelated_season

    y = demand(4 * season, season, seed)
    x, truth = y[:-season], y[-season:]
    assert not autocorrelated_season(x, season)  # AutoTheta's own test misses it
    error = lambda kind: np.abs(history_forecast(kind, x, season, season) - truth).mean()  # noqa: E731
    assert error("classical") < 0.7 * error("classical-3")
    assert error("classical") < 0.8 * np.abs(x[-season:] - truth).mean()  # seasonal naive
    # where the test finds the season, AutoTheta decomposes it itself, as before
    y = demand(8 * season, season, seed)
    assert autocorrelated_season(y[:-season], season)
    assert history_forecast("classical", y[:-season], 6, season).tolist() == (
        history_forecast("classical-3", y[:-season], 6, season).tolist()
    )


def test_last_season_is_seasonal_naive_of_the_history() -> None:
    x = np.arange(30.0)
    assert history_forecast("last_season", x, 5, 12).tolist() == [18, 19, 20, 21, 22]
    assert history_forecast("last_season", x, 14, 12).tolist()[12:] == [18, 19]  # repeated
    assert history_forecast("last_season", x[:8], 3, 12).tolist() == [7, 7, 7]  # < 1 season
    assert history_forecast("last_season", x, 2, None).tolist() == [29, 29]
    assert classical.seasonal_history("last_season", 12) == 12


def test_a_short_season_is_left_to_autoets() -> None:
    x = seasonal(63)
    assert (
        history_forecast("classical", x, 9, 12).tolist()
        == history_forecast("classical-1", x, 9, 12).tolist()
    )


@pytest.mark.parametrize("night", [0.0, 1e-3])
def test_a_long_season_with_zero_nights_stays_on_the_cycle(night: float) -> None:
    """Zero nights make ratios meaningless (the adjustment subtracts the season instead);
    near-zero ones give tiny ratios. Either way the forecast stays finite and on the
    cycle."""
    y = np.maximum(demand(10 * 24, 24) - 900, night)
    x, truth = y[:-24], y[-24:]
    forecast = history_forecast("classical", x, 24, 24)
    assert np.isfinite(forecast).all()
    assert np.abs(forecast - truth).mean() < 0.5 * np.abs(x.mean() - truth).mean()


def test_theta_kind_is_the_numpy_theta_of_runs_before_it() -> None:
    x = seasonal(48)
    assert history_forecast("theta", x, 6, 12).tolist() == theta_forecast(x, 6, 12).tolist()
    assert combined_share("theta") == 0.5 and combined_share("classical") == pytest.approx(1 / 3)


def counting_fits(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Each statsforecast fit from now on, as (model, values fitted on)."""
    fits: list[tuple[str, int]] = []
    real = classical._functions

    def counting(name: str) -> tuple:
        fit, forward, forecast = real(name)
        return (lambda x, m: fits.append((name, len(x))) or fit(x, m)), forward, forecast

    monkeypatch.setattr(classical, "_functions", counting)
    classical._fits.clear()
    return fits


def test_a_short_history_is_fitted_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Up to WHOLE_ROWS values, each history's models are fitted on all of it: fitted
    without the last values and run forward over them, AutoETS and AutoTheta forecast M3's
    short series 1 to 3% worse (benchmarks/README.md)."""
    fits = counting_fits(monkeypatch)
    x = seasonal(110, seed=3)
    classical.history_forecasts("classical", [x[:100], x[:101], x], 6, 12)
    assert sorted(fits) == sorted((name, n) for name in ("ets", "theta") for n in (100, 101, 110))
    # a checkpoint of format 4 names `classical-2`: fitted on the grid from 3 values, as then
    fits.clear()
    classical.history_forecasts("classical-2", [x[:100], x[:101]], 6, 12)
    assert sorted(fits) == [("ets", 92), ("theta", 92)]


def test_a_forecast_depends_on_its_history_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run's test part, predict, predict --rolling and evaluate ask for different sets of
    origins: each history's forecast is the same whatever else is asked, and a long
    backtest's origins of one series share a few fits, each on a start of the history no
    later than the origin (200 x 1.1^k values beyond 200)."""
    fits = counting_fits(monkeypatch)
    x = seasonal(310, seed=3)
    histories = [x[:n] for n in range(300, 311)]
    together = classical.history_forecasts("classical", histories, 6, 12)
    assert sorted(fits) == [("ets", 292), ("theta", 292)]
    classical._fits.clear()
    for k in (10, 0, 5):  # alone, in another order, after a cold start
        alone = history_forecast("classical", histories[k], 6, 12)
        assert alone == pytest.approx(together[k], rel=1e-12)
    # the fit of a 300-value history reads its first 292 values; the forecast reads them all
    changed = x[:300].copy()
    changed[295:] += 50
    fits.clear()
    moved = history_forecast("classical", changed, 6, 12)
    assert fits == []  # the same start: the same fitted models
    assert np.abs(moved - together[0]).max() > 1


def test_the_fit_lengths_grow_by_a_tenth() -> None:
    lengths = [classical.fit_length(n) for n in range(1, 5000)]
    assert lengths[:200] == list(range(1, 201))  # whole up to WHOLE_ROWS
    assert all(0.9 * n <= f <= n for n, f in zip(range(1, 5000), lengths, strict=True))
    assert len(set(lengths[200:])) < 40  # a few dozen fits cover a series of 5,000 rows
    legacy = [classical.fit_length(n, "classical-2") for n in range(1, 2000)]
    assert legacy[:5] == [1, 2, 3, 4, 5] and len(set(legacy)) < 80


def test_a_scratch_network_without_a_val_part_is_combined_with_the_classical_forecast(
    tmp_path: Path, csv_path: Path
) -> None:
    """Without a val part a network trained from scratch forecasts in thirds with AutoETS and
    AutoTheta (a runaway network is held to a third); the training part's last origins judge
    the combination against the history forecasts alone (the network, trained on them, is
    never chosen alone there), and on this clean series it stays. The test predictions are
    that combination; `blend: none` keeps the network alone."""
    import pandas as pd

    from lstmcli.config.edit import validate_config
    from lstmcli.run.check import check
    from lstmcli.run.pipeline import train_run

    from .conftest import tiny_config

    split = {"split": {"train": 0.8, "test": 0.2}, "validation": "none"}
    trained = {"epochs": 40}  # a network 3 epochs in is a runaway against AutoETS here
    combined = tiny_config(csv_path, data=split, model={"init": "none", "blend": "auto"},
                           training=trained)  # fmt: skip
    blend = train_run(validate_config(combined), tmp_path / "a").metrics["blend"]
    assert blend["baseline"] == "classical" and blend["chosen_on"] == "train"
    assert blend["model_weight"] == pytest.approx(1 / 3)
    assert "network" not in str(blend)  # never judged alone on the windows it trained on
    alone = tiny_config(csv_path, data=split, model={"init": "none", "blend": "none"},
                        training=trained)  # fmt: skip
    assert train_run(validate_config(alone), tmp_path / "b").metrics.get("blend") is None
    said = dict(check(validate_config(alone), None).facts)["blend"]
    assert said == "none: the network alone (model.blend: none)"
    a, b = (pd.read_csv(tmp_path / r / "test_predictions.csv") for r in ("a", "b"))
    origin = a["origin"].iloc[0]  # the first test window's: its history ends there
    steps = a[a["origin"] == origin]
    frame = pd.read_csv(csv_path)
    history = frame["y"].to_numpy()[: frame.index[frame["date"] == origin][0] + 1]
    classical = history_forecast("classical", history, len(steps), 12)
    network = b[b["origin"] == origin]["y"].to_numpy()
    assert steps["y"].to_numpy() == pytest.approx((network + 2 * classical) / 3, rel=1e-4)


def test_predict_warns_when_a_history_is_too_short_for_the_season(
    tmp_path: Path, csv_path: Path
) -> None:
    """The classical forecast reads the history predict is given: fewer rows than two
    seasons drop the season, and predict and evaluate say so."""
    import pandas as pd

    from lstmcli.config.edit import validate_config
    from lstmcli.run.pipeline import train_run

    from .conftest import tiny_config
    from .helpers import run

    split = {"split": {"train": 0.8, "test": 0.2}, "validation": "none"}
    config = tiny_config(csv_path, data=split, model={"init": "none", "blend": "auto"})
    train_run(validate_config(config), tmp_path / "run")
    need = classical.seasonal_history("classical", 12)
    assert need == 28  # two seasons of 12 and 4 rows (the seasonal strength's), fitted whole
    frame = pd.read_csv(csv_path)
    for rows, warned in ((need - 1, True), (need, False), (len(frame), False)):
        frame.tail(rows).to_csv(tmp_path / "recent.csv", index=False)
        result = run("predict", str(tmp_path / "run"), str(tmp_path / "recent.csv"))
        assert result.exit_code == 0
        expected = f"recent.csv: the series has fewer than {need} rows of history"
        assert (expected in result.stderr) == warned
    frame.tail(40).to_csv(tmp_path / "recent.csv", index=False)  # the first origins: short
    result = run("evaluate", str(tmp_path / "run"), str(tmp_path / "recent.csv"))
    assert (
        result.exit_code == 0 and f"forecast origins have fewer than {need} rows" in result.stderr
    )
    assert "needs two seasons and 4 rows to follow the season (12 rows) at all" in result.stderr


@pytest.mark.parametrize(
    ("horizon", "features", "expected"),
    [
        (12, [], "thirds"),  # 5 val origins, under two horizons' worth: thirds
        (1, [], "chosen"),  # 16 val origins: the val part chooses, classical a candidate
        (1, ["x"], "naive"),  # a feature the classical models cannot see: naive candidates only
    ],
)
def test_a_scratch_network_with_a_val_part_is_combined_by_how_much_the_val_part_holds(
    tmp_path: Path, csv_path: Path, horizon: int, features: list[str], expected: str
) -> None:
    """A val part holding two horizons of origins or fewer per series picks a blend weight by
    chance: the combination in thirds stays unless a runaway. A longer one chooses the weight
    and the forecast mixed in (naive, seasonal naive or classical) by its RMSE. `check` says
    beforehand which of the three the run gets."""
    from lstmcli.config.edit import validate_config
    from lstmcli.run.check import check
    from lstmcli.run.pipeline import train_run

    from .conftest import tiny_config

    data = {"horizon": horizon, "features": features}
    config = tiny_config(csv_path, data=data, model={"init": "none", "blend": "auto"},
                         training={"epochs": 40})  # fmt: skip
    said = dict(check(validate_config(config), None).facts)["blend"]
    assert {"thirds": "in thirds with the network (its third first blended with naive",
            "chosen": "chosen on the val part (16 origins)",
            "naive": "no classical forecast: features"}[expected] in said  # fmt: skip
    blend = train_run(validate_config(config), tmp_path / "run").metrics["blend"]
    scores = blend["val_rmse_scaled"]
    assert blend["chosen_on"] == "val"
    if expected == "thirds":
        assert (blend["baseline"], blend["model_weight"]) == ("classical", pytest.approx(1 / 3))
        alone = [scores[f"{kind} x 1"] for kind in ("naive", "seasonal", "classical")]
        assert scores["classical x 0.667"] <= 2 * min(*alone, scores["naive x 0"])  # no runaway
        return
    assert ("classical x 0.5" in scores) == (expected == "chosen")
    assert "classical x 0.667" not in scores  # no thirds candidate
    baseline = {"seasonal_naive": "seasonal"}.get(blend["baseline"], blend["baseline"])
    best = scores[f"{baseline} x {1 - blend['model_weight']:g}"]
    assert best == min(scores.values())


def repeating_weekly(csv: Path, noise: float = 0.0) -> tuple:
    """Three years of a weekly series repeating a random 26-week season (exactly, without
    `noise`), written to `csv`: (the frame, the season's values)."""
    import pandas as pd

    rng = np.random.default_rng(5)
    season = rng.uniform(0, 10, 26).round(3)
    dates = pd.date_range("2015-01-04", periods=3 * 26, freq="W")
    values = (np.tile(season, 3) + rng.normal(0, noise, 3 * 26)).round(3)
    frame = pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "y": values})
    frame.to_csv(csv, index=False)
    return frame, season


def test_train_warns_when_test_histories_are_too_short_for_the_classical_season(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A combination kept with the classical forecast (here: the guard switched off) whose
    test origins hold under two seasons and four rows: that forecast ignores the season
    there, and the guard could not tell; train says so, with the rows it needs."""
    from lstmcli.config.edit import validate_config
    from lstmcli.model import blend
    from lstmcli.run.pipeline import train_run

    from .conftest import tiny_config

    monkeypatch.setattr(blend, "RUNAWAY_MARGIN", 1e9)
    repeating_weekly(csv := tmp_path / "weekly.csv", noise=0.5)
    data = {"lookback": 8, "season": 26, "horizon": 4,
            "split": {"train": 0.6, "val": 0.1, "test": 0.3}}  # fmt: skip
    config = validate_config(tiny_config(csv, data=data, model={"init": "none", "blend": "auto"}))
    warnings: list[str] = []
    chosen = train_run(config, tmp_path / "run", warn=warnings.append).metrics["blend"]
    assert chosen["baseline"] == "classical"
    said = [w for w in warnings if "test origins have fewer than 56 rows of history" in w]
    assert len(said) == 1 and "needs two seasons and 4 rows to follow the season" in said[0]


@pytest.mark.parametrize(("lookback", "val"), [(8, True), (26, True), (8, False)])
def test_a_window_shorter_than_the_season_leaves_seasonal_naive_to_the_guard(
    tmp_path: Path, lookback: int, val: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A window shorter than the season (a short series' lookback is capped at a third of
    its training rows: 150 weekly rows get 30 of 52) cannot hold seasonal naive; the runaway
    guard reads it off each val origin's history instead (`last_season`). On a series that
    repeats its season exactly, the combination is a runaway against it: the run, predict
    and `check` all say seasonal naive. A window holding the season reads it as before.
    Without a val part the training part's last origins judge (the history forecasts are
    honest there)."""
    import pandas as pd

    from lstmcli.config.edit import validate_config
    from lstmcli.run.check import check
    from lstmcli.run.pipeline import train_run

    from .conftest import tiny_config
    from .helpers import run

    frame, season = repeating_weekly(csv := tmp_path / "weekly.csv")
    split = {"train": 0.6, "val": 0.1, "test": 0.3}  # under two seasons before the val part
    data = {"lookback": lookback, "season": 26, "horizon": 4, "split": split}
    if not val:
        data |= {"split": {"train": 0.7, "test": 0.3}, "validation": "none"}
    config = validate_config(tiny_config(csv, data=data, model={"init": "none", "blend": "auto"}))
    said = dict(check(config, None).facts)["blend"]
    assert ("seasonal naive read off the history" in said) == (lookback < 26)
    warnings: list[str] = []
    blend = train_run(config, tmp_path / "run", warn=warnings.append).metrics["blend"]
    assert blend["chosen_on"] == ("val" if val else "train")
    # the forecast is seasonal naive: no word about the classical forecast's short histories
    assert not any("test origins have fewer than" in w for w in warnings)
    assert ("last_season x 1" in blend["val_rmse_scaled"]) == (lookback < 26)
    expected = ("last_season", 0.0) if lookback < 26 else ("seasonal_naive", 0.0)
    assert (blend["baseline"], blend["model_weight"]) == expected
    tested = pd.read_csv(tmp_path / "run" / "test_predictions.csv")
    actual = frame.set_index("date")["y"]
    assert tested["y"].to_numpy() == pytest.approx(actual[tested["date"]].to_numpy(), abs=1e-3)
    result = run("predict", str(tmp_path / "run"), str(csv), "-q")
    ahead = pd.read_csv(__import__("io").StringIO(result.stdout))["y"].to_numpy()
    assert result.exit_code == 0 and ahead == pytest.approx(season[:4], abs=1e-3)
    if lookback < 26:  # a backtest hands seasonal naive one season of each origin's history
        from lstmcli.model import fitted

        read: list[int] = []
        real = fitted.history_forecasts
        monkeypatch.setattr(fitted, "history_forecasts",
                            lambda kind, histories, *rest: read.extend(map(len, histories))
                            or real(kind, histories, *rest))  # fmt: skip
        rolled = run("predict", str(tmp_path / "run"), str(csv), "--rolling", "-q")
        assert rolled.exit_code == 0 and read and max(read) == 26


def test_long_series_are_not_combined(
    tmp_path: Path, csv_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Series longer than CLASSICAL_ROWS (fits of seconds each) keep the naive candidates."""
    from lstmcli.config.edit import validate_config
    from lstmcli.run import fitting
    from lstmcli.run.check import check
    from lstmcli.run.pipeline import train_run

    from .conftest import tiny_config

    monkeypatch.setattr(fitting, "CLASSICAL_ROWS", 159)
    config = tiny_config(csv_path, data={"horizon": 12}, model={"init": "none", "blend": "auto"})
    said = dict(check(validate_config(config), None).facts)["blend"]
    assert said.startswith("naive or seasonal naive") and "series over 159 rows" in said
    blend = train_run(validate_config(config), tmp_path / "run").metrics["blend"]
    assert blend["baseline"] in ("naive", "seasonal_naive")
    assert not any(key.startswith("classical") for key in blend["val_rmse_scaled"])


def test_every_command_forecasts_an_origin_as_the_run_scored_it(tmp_path: Path) -> None:
    """The run's test part, `predict --rolling` over the whole file and `predict` on the
    history up to an origin give the same forecasts at every test origin (each command in
    its own process, as a user runs them: nothing carried over in memory)."""
    import io
    import json
    import subprocess
    import sys

    import pandas as pd

    from .helpers import run

    def apart(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "lstmcli", *args], capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done

    t = np.arange(48)
    sales = (
        100 + 2 * t + 15 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(2).normal(0, 4, 48)
    )
    frame = pd.DataFrame({"month": pd.date_range("2015-01-01", periods=48, freq="MS"),
                          "sales": sales})  # fmt: skip
    frame["month"] = frame["month"].dt.strftime("%Y-%m-%d")
    csv = tmp_path / "sales.csv"
    frame.to_csv(csv, index=False)
    keys = {"path": csv, "time_column": "month", "target": "sales", "horizon": 6}
    sets = [arg for key, value in keys.items() for arg in ("--set", f"data.{key}={value}")]
    trained = run("train", *sets, "-o", str(tmp_path / "run"), "-q")
    assert trained.exit_code == 0, trained.stderr
    blend = json.loads((tmp_path / "run" / "metrics.json").read_text())["blend"]
    assert (blend["baseline"], blend["model_weight"]) == ("classical", pytest.approx(1 / 3))
    scored = pd.read_csv(tmp_path / "run" / "test_predictions.csv")
    assert scored["origin"].nunique() >= 5
    rolled = apart("predict", str(tmp_path / "run"), str(csv), "--rolling", "-q")
    rolling = pd.read_csv(io.StringIO(rolled.stdout)).merge(scored, on=["origin", "month"])
    assert len(rolling) == len(scored)
    assert rolling["sales_x"].to_numpy() == pytest.approx(rolling["sales_y"].to_numpy(), rel=1e-6)
    last = scored["origin"].iloc[-1]
    (tmp_path / "history.csv").write_text(frame[frame["month"] <= last].to_csv(index=False))
    nxt = apart("predict", str(tmp_path / "run"), str(tmp_path / "history.csv"), "-q")
    expected = scored[scored["origin"] == last]["sales"].to_numpy()
    assert pd.read_csv(io.StringIO(nxt.stdout))["sales"].to_numpy()[: len(expected)] == (
        pytest.approx(expected, rel=1e-6)
    )
