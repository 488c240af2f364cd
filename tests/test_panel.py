"""Many series in one file: windows per series, per-series scalers, known-future inputs."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from sklearn.preprocessing import MinMaxScaler

from lstmcli.config.edit import validate_config
from lstmcli.data.table import prepare_table
from lstmcli.data.windows import split_table, target_offsets
from lstmcli.errors import LstmcliError
from lstmcli.model.checkpoint import load_checkpoint
from lstmcli.run.pipeline import train_run
from lstmcli.use.plot import plot_run
from tests.helpers import run_wide as run

LOOKBACK, HORIZON = 8, 2
LENGTHS = [60, 90, 5, 75, 120, 3, 80]  # two series are shorter than one window


def panel_frame(seed: int = 0) -> pd.DataFrame:
    """Series with different levels, seasons and lengths; `price` is known in advance."""
    rng = np.random.default_rng(seed)
    parts = []
    for k, n in enumerate(LENGTHS):
        t = np.arange(n)
        period = (4, 6, 12)[k % 3]
        price = rng.uniform(1, 2, n).round(3)
        level = 10.0 * (k + 1) ** 1.5
        y = level * (1 + 0.1 * np.sin(2 * np.pi * t / period)) - 2 * price + rng.normal(0, 0.2, n)
        dates = pd.date_range(f"2020-0{k % 3 + 1}-01", periods=n, freq="D")
        parts.append(
            pd.DataFrame(
                {
                    "shop": f"s{k}",
                    "day": dates.strftime("%Y-%m-%d"),
                    "y": y.round(3),
                    "price": price,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def panel_config(csv: Path, **data: object) -> dict:
    config = {
        "data": {
            "path": str(csv),
            "id_column": "shop",
            "time_column": "day",
            "target": "y",
            "known_features": ["price"],
            "calendar": ["dayofweek"],
            "lookback": LOOKBACK,
            "horizon": HORIZON,
            "season": 4,
            "scale_by": "series",
            "split": {"train": 0.7, "val": 0.1, "test": 0.2},
            **data,
        },
        "model": {"hidden_size": 8, "num_layers": 1, "head": [8]},
        "training": {"epochs": 2, "batch_size": 32, "device": "cpu", "seed": 3},
    }
    return config


@pytest.fixture(scope="module")
def panel(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("panel")
    csv = folder / "panel.csv"
    panel_frame().to_csv(csv, index=False)
    warnings: list[str] = []
    result = train_run(validate_config(panel_config(csv)), folder / "run", warn=warnings.append)
    return {"csv": csv, "run": result.run_dir, "warnings": warnings, "folder": folder}


def test_no_window_crosses_from_one_series_into_another(tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    panel_frame().to_csv(csv, index=False)
    cfg = validate_config(panel_config(csv)).data
    table = prepare_table(pd.read_csv(csv), cfg, "p.csv")
    split = split_table(table, cfg)
    offsets = target_offsets(HORIZON, "forecast")
    for name, (starts, stops) in split.bounds.items():
        anchors = split.anchors[name]
        assert len(anchors)
        series = table.series_of(anchors)
        first_input = anchors - LOOKBACK + 1
        last_target = anchors + offsets[-1]
        assert (table.series_of(first_input) == series).all()
        assert (table.series_of(last_target) == series).all()
        # targets inside the part of their own series
        assert (anchors + 1 >= starts[series]).all() and (last_target < stops[series]).all()
    # each series was split by the fractions on its own
    lengths = table.lengths
    assert (split.bounds["train"][1] - split.bounds["train"][0] == np.floor(lengths * 0.7)).all()


def test_short_series_are_skipped_with_a_count(panel: dict) -> None:
    assert any(
        "skipped 2 of 7 series shorter than one window" in w and "s2, s5" in w
        for w in panel["warnings"]
    )
    checkpoint = load_checkpoint(panel["run"])
    assert checkpoint.series_ids == ["s0", "s1", "s3", "s4", "s6"]


def test_no_series_long_enough_is_an_error(tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    panel_frame().to_csv(csv, index=False)
    with pytest.raises(
        LstmcliError,
        match=r"every series in .*p.csv \(7\) is shorter than one window \(lookback 200 ",
    ):
        train_run(validate_config(panel_config(csv, lookback=200)), tmp_path / "run")


def test_per_series_scalers_are_fitted_on_each_series_training_rows(panel: dict) -> None:
    checkpoint = load_checkpoint(panel["run"])
    frame = panel_frame()
    for k, shop in enumerate(checkpoint.series_ids):
        rows = frame[frame["shop"] == shop]
        train = rows.iloc[: int(len(rows) * 0.7)]
        target = MinMaxScaler().fit(train[["y"]])
        np.testing.assert_allclose(checkpoint.target_scaler.center[k], target.data_min_)
        np.testing.assert_allclose(checkpoint.target_scaler.scale[k], target.data_range_)
        inputs = MinMaxScaler().fit(train[["y", "price"]].astype(np.float32))
        np.testing.assert_allclose(checkpoint.input_scaler.center[k, :2], inputs.data_min_, 1e-6)
        np.testing.assert_allclose(checkpoint.input_scaler.scale[k, :2], inputs.data_range_, 1e-6)
        # calendar inputs are left as they are (sin and cos are in [-1, 1] already)
        assert checkpoint.input_scaler.center[k, 2:].tolist() == [0.0, 0.0]
        assert checkpoint.input_scaler.scale[k, 2:].tolist() == [1.0, 1.0]


def test_shuffled_row_order_gives_the_same_model(panel: dict, tmp_path: Path) -> None:
    shuffled = tmp_path / "shuffled.csv"
    panel_frame().sample(frac=1, random_state=5).to_csv(shuffled, index=False)
    again = train_run(validate_config(panel_config(shuffled)), tmp_path / "run").run_dir
    first, second = load_checkpoint(panel["run"]), load_checkpoint(again)
    for name, tensor in first.state_dict.items():
        assert torch.equal(tensor, second.state_dict[name]), name
    pd.testing.assert_frame_equal(
        pd.read_csv(panel["run"] / "test_predictions.csv"),
        pd.read_csv(again / "test_predictions.csv"),
    )


def noise_frame(n: int = 500) -> pd.DataFrame:
    """y is a copy of k, which is pure noise: only k's value at the target row predicts it."""
    rng = np.random.default_rng(4)
    k = rng.normal(0, 1, n).round(4)
    dates = pd.date_range("2020-01-01", periods=n, freq="D").strftime("%Y-%m-%d")
    return pd.DataFrame({"day": dates, "y": k, "k": k})


@pytest.mark.parametrize("as_known", [True, False])
@pytest.mark.slow
def test_known_future_values_are_used_and_past_features_cannot_leak(
    tmp_path: Path, as_known: bool
) -> None:
    csv = tmp_path / "noise.csv"
    noise_frame().to_csv(csv, index=False)
    config = {
        "data": {
            "path": str(csv),
            "time_column": "day",
            "target": "y",
            ("known_features" if as_known else "features"): ["k"],
            "lookback": 4,
            "split": {"train": 0.7, "val": 0.1, "test": 0.2},
            "scaler": "standard",
            "window_norm": "none",
            "season": None,
        },
        "model": {"hidden_size": 8, "num_layers": 1, "head": [16]},
        "training": {
            "epochs": 40,
            "batch_size": 32,
            "learning_rate": 0.01,
            "device": "cpu",
            "ensemble": 1,
        },
    }
    metrics = train_run(validate_config(config), tmp_path / "run").metrics
    rmse, spread = metrics["model"]["rmse"], noise_frame()["y"].std()
    if as_known:
        assert rmse < 0.2 * spread  # y[t+1] = k[t+1], which the model is given
    else:
        assert rmse > 0.85 * spread  # k up to t says nothing about y[t+1]: no leak


def test_rolling_predictions_and_evaluate_with_ids_round_trip(panel: dict) -> None:
    saved = pd.read_csv(panel["run"] / "test_predictions.csv")
    assert list(saved.columns[:4]) == ["shop", "origin", "day", "step"]
    result = run("predict", str(panel["run"]), str(panel["csv"]), "--rolling")
    assert result.exit_code == 0, result.stderr
    assert (
        "Warning: skipped 2 of 7 series shorter than one window (lookback 8 and horizon 2 need "
        "10 rows): s2, s5" in result.stderr
    )
    rolled = pd.read_csv(io.StringIO(result.stdout))
    merged = saved.merge(rolled, on=["shop", "origin", "step"], suffixes=("", "_rolled"))
    assert len(merged) == len(saved)
    np.testing.assert_allclose(merged["y"], merged["y_rolled"], rtol=1e-6)

    evaluated = run("evaluate", str(panel["run"]), str(panel["csv"]), "--json")
    assert evaluated.exit_code == 0, evaluated.stderr
    report = json.loads(evaluated.stdout[evaluated.stdout.index("{") :])
    series = report["series"]
    assert series["count"] == 5 and sorted(series["per_series"]) == ["s0", "s1", "s3", "s4", "s6"]
    # one series' rmse, recomputed from the rolling output
    s3 = rolled[rolled["shop"] == "s3"]
    s3 = s3[s3["origin"] >= s3["origin"].min()]  # every window of s3
    windows = series["per_series"]["s3"]["windows"]
    kept = s3.iloc[-windows * HORIZON :]
    expected = np.sqrt(np.mean((kept["y"] - kept["y_actual"]) ** 2))
    assert series["per_series"]["s3"]["model"]["rmse"] == pytest.approx(expected, rel=1e-6)
    rmses = [s["model"]["rmse"] for s in series["per_series"].values()]
    assert series["aggregate"]["model"]["median"]["rmse"] == pytest.approx(np.median(rmses))
    beats = np.mean(
        [
            s["model"]["rmse"] < s["baselines"]["seasonal_naive"]["rmse"]
            for s in series["per_series"].values()
        ]
    )
    assert series["aggregate"]["beats"]["seasonal_naive"] == pytest.approx(beats)
    metrics = json.loads((panel["run"] / "metrics.json").read_text())
    assert metrics["series"]["count"] == 5


def forecast_input(frame: pd.DataFrame, future_rows: int = HORIZON) -> pd.DataFrame:
    """The last rows of each long series, then rows to forecast: empty y, known price."""
    history = frame[frame["shop"].isin(["s0", "s3"])].groupby("shop").tail(12)
    future = []
    for shop, rows in history.groupby("shop"):
        last = pd.Timestamp(rows["day"].iloc[-1])
        for step in range(1, future_rows + 1):
            day = (last + pd.Timedelta(days=step)).strftime("%Y-%m-%d")
            future.append({"shop": shop, "day": day, "y": np.nan, "price": 1.0 + step / 10})
    return pd.concat([history, pd.DataFrame(future)], ignore_index=True)


def test_forecast_uses_the_rows_to_forecast_and_their_known_values(panel: dict) -> None:
    frame = forecast_input(panel_frame())
    result = run("predict", str(panel["run"]), "-", stdin=frame.to_csv(index=False))
    assert result.exit_code == 0, result.stderr
    out = pd.read_csv(io.StringIO(result.stdout))
    assert list(out.columns) == ["shop", "day", "y"]
    assert out["shop"].tolist() == ["s0", "s0", "s3", "s3"]
    assert out["day"].tolist() == frame[frame["y"].isna()]["day"].tolist()
    # a different known future changes the forecast
    other = frame.assign(price=frame["price"].where(frame["y"].notna(), 2.0))
    changed = run("predict", str(panel["run"]), "-", stdin=other.to_csv(index=False))
    assert not np.allclose(pd.read_csv(io.StringIO(changed.stdout))["y"], out["y"])
    # --id keeps the named series only, with the same forecast
    one = run("predict", str(panel["run"]), "-", "--id", "s3", stdin=frame.to_csv(index=False))
    assert one.exit_code == 0, one.stderr
    only = pd.read_csv(io.StringIO(one.stdout))
    assert only["shop"].tolist() == ["s3", "s3"]
    np.testing.assert_allclose(only["y"], out["y"].iloc[2:], rtol=1e-5)
    # longer forecasts feed predictions back, with known values for every step
    longer = forecast_input(panel_frame(), future_rows=4)
    steps = run("predict", str(panel["run"]), "-", "--steps", "4", stdin=longer.to_csv(index=False))
    assert steps.exit_code == 0, steps.stderr
    stepped = pd.read_csv(io.StringIO(steps.stdout))
    assert len(stepped) == 8
    np.testing.assert_allclose(stepped["y"].iloc[[0, 1, 4, 5]], out["y"], rtol=1e-5)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda f: f.assign(price=f["price"].where(~(f["y"].isna() & (f["shop"] == "s3")))),
            "Error: column 'price' in <stdin> has a missing value at lines 28, 29 in a row to "
            "forecast (empty targets); known features are needed there",
        ),
        (
            lambda f: f[f["y"].notna() | (f["shop"] == "s3")],
            "Error: <stdin>: the model uses known_features ['price'], so the input must end with "
            "2 row(s) to forecast (empty targets, known values); the last 0 row(s) of series "
            "'s0' have empty targets",
        ),
        (
            lambda f: f.assign(shop="new-" + f["shop"]),
            "Error: every series in <stdin> (2) is without scaler statistics in the model "
            "(data.scale_by: series fits each series on its own training rows; training "
            "skipped these or never saw them)",
        ),
    ],
)
def test_bad_forecast_input_is_named(
    panel: dict, change: Callable[[pd.DataFrame], pd.DataFrame], message: str
) -> None:
    frame = change(forecast_input(panel_frame()))
    result = run("predict", str(panel["run"]), "-", stdin=frame.to_csv(index=False))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [message]


def test_a_series_without_statistics_is_skipped_like_training_skips_it(panel: dict) -> None:
    frame = forecast_input(panel_frame()).replace({"shop": {"s3": "new"}})
    result = run("predict", str(panel["run"]), "-", stdin=frame.to_csv(index=False))
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        "Warning: skipped 1 of 2 series without scaler statistics in the model "
        "(data.scale_by: series fits each series on its own training rows; training skipped "
        "these or never saw them): new"
    )
    forecast = pd.read_csv(io.StringIO(result.stdout))
    known = set(forecast_input(panel_frame())["shop"]) - {"s3"}
    assert set(forecast["shop"]) == known and len(forecast) == 2


def test_unknown_id_option_is_an_error(panel: dict) -> None:
    result = run("predict", str(panel["run"]), str(panel["csv"]), "--id", "s9")
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"Error: --id: series ['s9'] not found in column 'shop' of {panel['csv']}\n"
    )


def test_calendar_of_made_up_rows_equals_given_rows(tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    panel_frame().to_csv(csv, index=False)
    config = panel_config(csv, known_features=[], scale_by="global", calendar=["dayofweek"])
    run_dir = train_run(validate_config(config), tmp_path / "run").run_dir
    frame = forecast_input(panel_frame()).drop(columns="price")
    with_rows = run("predict", str(run_dir), "-", stdin=frame.to_csv(index=False))
    without = run("predict", str(run_dir), "-", stdin=frame.dropna().to_csv(index=False))
    assert with_rows.exit_code == 0 and without.exit_code == 0, without.stderr
    assert with_rows.stdout == without.stdout


def test_filling_gaps_never_crosses_series(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "shop": ["a", "a", "b", "b"],
            "day": ["2020-01-01", "2020-01-02"] * 2,
            "y": [1.0, 2.0, np.nan, 4.0],
        }
    )
    cfg = validate_config(
        {"data": {"id_column": "shop", "time_column": "day", "target": "y", "missing": "ffill"}}
    ).data
    with pytest.raises(LstmcliError, match="line 4 with no earlier value to fill it from"):
        prepare_table(frame, cfg, "t")
    frame.loc[3, "y"], frame.loc[2, "y"] = np.nan, 3.0
    table = prepare_table(frame, cfg, "t")
    # b's last row has no target: a row to forecast, never filled (no made-up actual)
    np.testing.assert_array_equal(table.targets[:, 0], [1.0, 2.0, 3.0, np.nan])
    assert table.offsets.tolist() == [0, 2, 4] and table.future.tolist() == [0, 1]
    frame = pd.concat([frame, frame.iloc[[3]].assign(day="2020-01-03", y=5.0)])
    table = prepare_table(frame, cfg, "t")  # now the gap is inside b: carried forward
    assert table.targets[:, 0].tolist() == [1.0, 2.0, 3.0, 3.0, 5.0]
    assert np.isnan(table.actual_targets()[3, 0])  # the carried value is not an actual


def test_a_date_split_cuts_every_series_at_the_same_time(tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    panel_frame().to_csv(csv, index=False)
    split = {"val_start": "2020-03-01", "test_start": "2020-03-20"}
    cfg = validate_config(panel_config(csv, split=split)).data
    table = prepare_table(pd.read_csv(csv), cfg, "p.csv")
    parts = split_table(table, cfg)
    times = table.time.to_numpy()
    (train_start, train_stop), (_, val_stop) = parts.bounds["train"], parts.bounds["val"]
    for k in range(table.n_series):
        series_times = times[table.offsets[k] : table.offsets[k + 1]]
        assert (series_times[: train_stop[k] - train_start[k]] < np.datetime64("2020-03-01")).all()
        assert (times[val_stop[k] : table.offsets[k + 1]] >= np.datetime64("2020-03-20")).all()


@pytest.mark.slow
def test_plot_draws_each_series_once_and_pooled_residuals(panel: dict, tmp_path: Path) -> None:
    written = dict(plot_run(panel["run"], tmp_path, "png", 1, False))
    grid = written[tmp_path / "series_y.png"]
    titles = [ax.get_title() for ax in grid.axes if ax.get_title()]
    assert titles == ["s0", "s1", "s3", "s4", "s6"]  # five series: each once, none repeated
    saved = pd.read_csv(panel["run"] / "test_predictions.csv")
    saved = saved[saved["step"] == 1]
    # pooled residuals: every series' step-1 residual, as points, and the file is that figure
    residuals = written[tmp_path / "residuals_y.png"].axes[0].lines[0].get_ydata()
    np.testing.assert_allclose(np.sort(residuals), np.sort(saved["y_actual"] - saved["y"]))
    assert (tmp_path / "residuals_y.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_grid_of_many_series_shows_the_first_worst_and_best() -> None:
    from lstmcli.use.figures import series_grid_figure
    from lstmcli.use.plot import Predictions

    actual = np.sin(np.arange(20))  # the same spread in every series
    rows = [  # series k is off by 0.1 (k + 1): s11 is the worst, s00 the best
        pd.DataFrame({"id": f"s{k:02d}", "t": np.arange(20), "y": actual + 0.1 * (k + 1)}).assign(
            y_actual=actual
        )
        for k in range(12)
    ]
    predictions = Predictions(pd.concat(rows, ignore_index=True), "t", ["y"], "id")
    grid = series_grid_figure(predictions, "y")
    titles = [ax.get_title() for ax in grid.axes if ax.get_title()]
    assert titles == [
        "first: s00", "first: s01", "first: s02",
        "worst: s11", "worst: s10", "worst: s09",
        "best: s00", "best: s01", "best: s02",
    ]  # fmt: skip


def test_check_describes_the_series(panel: dict, tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(panel_config(panel["csv"])))
    result = run("check", "-c", str(config), "-o", str(tmp_path / "new"))
    assert result.exit_code == 0, result.stderr
    assert "series:         7 (rows per series 3..120)" in result.stdout
    days = pd.to_datetime(panel_frame()["day"])
    assert f"time:           {days.min()} .. {days.max()}" in result.stdout
    # the parts of the series train uses, with the windows train scores (the same selection)
    metrics = json.loads((panel["run"] / "metrics.json").read_text())
    for part in ("train", "val", "test"):
        rows, windows = metrics["rows"][part], metrics["windows"][part]
        assert f"{part + ':':<16}{rows} rows in 5 series, {windows} windows" in result.stdout
    assert result.stderr == (
        "Warning: skipped 2 of 7 series shorter than one window (lookback 8 and horizon 2 need "
        "10 rows): s2, s5\n"
    )


def test_plot_of_predictions_with_ids_draws_the_grid(panel: dict, tmp_path: Path) -> None:
    rolled = run("predict", str(panel["run"]), str(panel["csv"]), "--rolling", "-q")
    (tmp_path / "rolled.csv").write_text(rolled.stdout)
    result = run("plot", "--predictions", str(tmp_path / "rolled.csv"), "-o", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split() == [
        str(tmp_path / "rolled_y.png"),
        str(tmp_path / "rolled_residuals_y.png"),
    ]


def test_a_global_model_forecasts_series_it_never_saw(tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    panel_frame().to_csv(csv, index=False)
    config = panel_config(csv, scale_by="global")
    run_dir = train_run(validate_config(config), tmp_path / "run").run_dir
    frame = forecast_input(panel_frame()).replace({"shop": {"s3": "new"}})
    result = run("predict", str(run_dir), "-", stdin=frame.to_csv(index=False))
    assert result.exit_code == 0, result.stderr
    assert pd.read_csv(io.StringIO(result.stdout))["shop"].tolist() == ["new", "new", "s0", "s0"]


def test_regression_over_many_series(tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    panel_frame().to_csv(csv, index=False)
    config = panel_config(
        csv, task="regress", features=["price"], known_features=[], horizon=1, lookback=3
    )
    result = train_run(validate_config(config), tmp_path / "run")
    # s5 (3 rows) fits one window, in its training part: no test window to score
    assert result.metrics["series"]["count"] == 6
    saved = pd.read_csv(tmp_path / "run" / "test_predictions.csv")
    assert list(saved.columns) == ["shop", "day", "y", "y_actual"]
    rolled = run("predict", str(tmp_path / "run"), str(csv), "-q")
    assert rolled.exit_code == 0, rolled.stderr
    out = pd.read_csv(io.StringIO(rolled.stdout))
    assert set(out["shop"]) == {f"s{k}" for k in range(7)}  # every series with a window


def test_interpolation_stays_inside_each_series() -> None:
    frame = pd.DataFrame(
        {
            "shop": ["a"] * 4 + ["b"] * 4,
            "day": ["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04"] * 2,
            "y": [1.0, np.nan, 3.0, 3.5, 10.0, np.nan, np.nan, 40.0],
        }
    )
    cfg = validate_config(
        {
            "data": {
                "id_column": "shop",
                "time_column": "day",
                "target": "y",
                "missing": "interpolate",
            }
        }
    ).data
    table = prepare_table(frame.sample(frac=1, random_state=1), cfg, "t")
    # a: a gap inside (2); b: linear between its own values (never towards a's)
    assert table.targets[:, 0].tolist() == [1.0, 2.0, 3.0, 3.5, 10.0, 20.0, 30.0, 40.0]
    made_up = ~table.observed[:, 0]
    assert made_up.tolist() == [False, True, False, False, False, True, True, False]
    frame.loc[4, "y"] = np.nan  # b now starts with a gap: nothing of its own to fill from
    with pytest.raises(LstmcliError, match="with no earlier value to fill it from"):
        prepare_table(frame, cfg, "t")


def test_each_series_continues_at_its_own_frequency(tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    panel_frame().to_csv(csv, index=False)
    config = panel_config(csv, known_features=[], scale_by="global")
    run_dir = train_run(validate_config(config), tmp_path / "run").run_dir
    days = pd.date_range("2021-01-01", periods=12, freq="D")
    weeks = pd.date_range("2021-01-03", periods=12, freq="W-SUN")
    months = pd.date_range("2021-01-01", periods=12, freq="MS")
    frame = pd.concat(
        [
            pd.DataFrame({"shop": name, "day": when.strftime("%Y-%m-%d"), "y": 1.0, "price": 1.0})
            for name, when in (("d", days), ("w", weeks), ("m", months), ("d2", days))
        ]
    )
    result = run("predict", str(run_dir), "-", stdin=frame.to_csv(index=False))
    assert result.exit_code == 0, result.stderr
    out = pd.read_csv(io.StringIO(result.stdout)).set_index("shop")["day"]
    assert out["d"].tolist() == out["d2"].tolist() == ["2021-01-13", "2021-01-14"]
    assert out["w"].tolist() == ["2021-03-28", "2021-04-04"]
    assert out["m"].tolist() == ["2022-01-01", "2022-02-01"]


def test_one_usable_series_with_per_series_scaling_trains(tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    frame = panel_frame()
    frame[frame["shop"].isin(["s1", "s5"])].to_csv(csv, index=False)  # s5 is too short
    warnings: list[str] = []
    result = train_run(validate_config(panel_config(csv)), tmp_path / "run", warn=warnings.append)
    assert load_checkpoint(result.run_dir).series_ids == ["s1"]
    assert result.metrics["series"]["count"] == 1
    assert any("skipped 1 of 2 series" in w for w in warnings)


def test_dropping_gaps_keeps_the_rows_to_forecast(tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    panel_frame().to_csv(csv, index=False)
    run_dir = train_run(
        validate_config(panel_config(csv, missing="drop")), tmp_path / "run"
    ).run_dir
    frame = forecast_input(panel_frame())
    gappy = frame.copy()
    gappy.loc[gappy.index[3], "y"] = np.nan  # a gap in s0's history: that row is dropped
    result = run("predict", str(run_dir), "-", stdin=gappy.to_csv(index=False))
    assert result.exit_code == 0, result.stderr
    out = pd.read_csv(io.StringIO(result.stdout))
    assert out["day"].tolist() == frame[frame["y"].isna()]["day"].tolist()
