"""Starting from another model (`model.init`), the builtin priors, short series and Theta."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from lstmcli.config.edit import validate_config
from lstmcli.errors import LstmcliError
from lstmcli.model.checkpoint import load_checkpoint
from lstmcli.model.prior import adapted_weights, load_prior
from lstmcli.model.theta import theta_forecast
from lstmcli.run.pipeline import train_run
from tests.conftest import tiny_config
from tests.helpers import run


def yearly(n: int, seed: int = 0, start: str = "1990-01-01") -> pd.DataFrame:
    """A short yearly series: a level, a trend and noise, as business totals are."""
    rng = np.random.default_rng(seed)
    y = 500 + 12 * np.arange(n) + rng.normal(0, 15, n)
    dates = pd.date_range(start, periods=n, freq="YS").strftime("%Y-%m-%d")
    return pd.DataFrame({"year": dates, "sales": y.round(2)})


def short_config(csv: Path, **data: object) -> dict:
    """What a new user writes for a short yearly series: the data keys only."""
    keys = {"path": str(csv), "time_column": "year", "target": "sales", "horizon": 4}
    return {"data": keys | {"split": {"test_start": "2010-01-01"}} | data,
            "training": {"device": "cpu"}}  # fmt: skip


# --- Theta -------------------------------------------------------------------------------


def test_theta_on_a_straight_line_continues_it_at_half_the_slope() -> None:
    """Theta is simple exponential smoothing with a drift of half the trend's slope
    (Hyndman & Billah 2003): on a line, the smoothing weight is 1 and the forecast rises by
    half a step per step from the last value plus half a step."""
    line = np.arange(1.0, 31.0)
    assert theta_forecast(line, 4, None) == pytest.approx([30.5, 31.0, 31.5, 32.0])


def test_theta_keeps_a_significant_multiplicative_season() -> None:
    t = np.arange(60)
    pattern = 1 + 0.2 * np.sin(2 * np.pi * t / 12)
    series = 100 * pattern
    forecast = theta_forecast(series[:48], 12, 12)
    assert forecast == pytest.approx(series[48:], rel=0.02)
    plain = theta_forecast(series[:48], 12, None)  # no season asked: a straight line
    assert np.diff(plain, 2) == pytest.approx(np.zeros(10), abs=1e-9)


def test_theta_of_very_short_histories_is_the_last_value() -> None:
    assert theta_forecast(np.array([3.0, np.nan, 5.0]), 2, None).tolist() == [5.0, 5.0]


# --- model.init ---------------------------------------------------------------------------


def test_a_run_starts_from_another_runs_network_as_is_or_fine_tuned(
    tmp_path: Path, csv_path: Path
) -> None:
    first = train_run(validate_config(tiny_config(csv_path)), tmp_path / "a")
    as_is = validate_config(
        tiny_config(csv_path, model={"init": str(tmp_path / "a")}, training={"epochs": 0})
    )
    second = train_run(as_is, tmp_path / "b")
    weights_a = load_checkpoint(tmp_path / "a").state_dict
    weights_b = load_checkpoint(tmp_path / "b").state_dict
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert second.metrics["init"]["kept"] == "as is" and second.metrics["epochs_run"] == 0
    assert second.metrics["model"]["rmse"] == pytest.approx(first.metrics["model"]["rmse"])

    tuned = tiny_config(csv_path, model={"init": str(tmp_path / "a" / "model.pt")})
    third = train_run(validate_config(tuned), tmp_path / "c")
    report = third.metrics["init"]
    assert report["val_loss_as_is"] == pytest.approx(second.metrics["init"]["val_loss_as_is"])
    assert report["val_loss_kept"] <= report["val_loss_as_is"]  # epoch 0 is a candidate
    assert report["val_origins"] == third.metrics["windows"]["val"]


def test_a_prior_serves_a_shorter_horizon_and_any_lookback() -> None:
    prior = load_prior("builtin:m3-yearly")  # horizon 6, lookback 10
    assert prior.spec.steps == 6 and prior.spec.linear_skip == 10
    spec = replace(prior.spec, steps=4, linear_skip=12)
    (weights,) = adapted_weights(prior, spec)
    head = f"head.{2 * len(prior.spec.head)}"
    assert torch.equal(weights[f"{head}.weight"], prior.state_dict[f"{head}.weight"][:4])
    skip = weights["skip.weight"]
    assert skip.shape == (4, 12) and not skip[:, :2].any()  # rows older than the prior's: 0
    assert torch.equal(skip[:, 2:], prior.state_dict["skip.weight"][:4])
    shorter = adapted_weights(prior, replace(prior.spec, steps=6, linear_skip=5))[0]
    assert torch.equal(shorter["skip.weight"], prior.state_dict["skip.weight"][:, 5:])


def test_a_prior_that_cannot_fit_is_one_error_line_naming_what_differs(
    tmp_path: Path, csv_path: Path
) -> None:
    train_run(validate_config(tiny_config(csv_path)), tmp_path / "a")
    config = tiny_config(csv_path, model={"init": str(tmp_path / "a"), "hidden_size": 16})
    config["data"]["horizon"] = 3
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(config))
    result = run("train", "-c", str(tmp_path / "b.yaml"), "-o", str(tmp_path / "b"))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: model.init: {tmp_path / 'a'} needs a horizon of ")
    assert "model.hidden_size 8 (this config sets 16; leave it auto)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "b").exists()
    unknown = tiny_config(csv_path, model={"init": "builtin:m9"})
    with pytest.raises(LstmcliError, match="unknown builtin prior 'm9'; available: builtin:m3"):
        train_run(validate_config(unknown), tmp_path / "c")
    with pytest.raises(Exception, match="training.epochs: 0 uses model.init's network as is"):
        validate_config(tiny_config(csv_path, model={"init": "none"}, training={"epochs": 0}))


# --- short series -------------------------------------------------------------------------


def test_a_short_series_starts_from_the_builtin_prior_and_forecasts(tmp_path: Path) -> None:
    csv = tmp_path / "sales.csv"
    yearly(24).to_csv(csv, index=False)  # 20 training rows, a horizon of 4
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(short_config(csv)))
    trained = run("train", "-c", str(tmp_path / "run.yaml"), "-o", str(tmp_path / "run"), "-q")
    assert trained.exit_code == 0, trained.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["auto"]["model.init"]["value"] == "builtin:m3-yearly"
    assert metrics["auto"]["data.min_history"]["value"] == 3
    assert metrics["init"]["val_origins"] >= 2  # several forecast origins choose
    assert metrics["blend"]["val_rmse_scaled"].keys() >= {"classical x 0.667", "naive x 0.5"}
    assert metrics["model"]["mase"] < 2 * min(metrics["baselines"]["naive"]["mase"], 5)
    forecast = pd.read_csv(tmp_path / "run" / "test_predictions.csv")
    assert len(forecast) == 4 and forecast["sales"].notna().all()

    # predict from the training rows forecasts what the run scored (AutoETS and AutoTheta
    # read them all)
    (tmp_path / "train.csv").write_text(yearly(24).head(20).to_csv(index=False))
    again = run("predict", str(tmp_path / "run"), str(tmp_path / "train.csv"))
    assert again.exit_code == 0, again.stderr
    rows = pd.read_csv(__import__("io").StringIO(again.stdout))
    assert rows["sales"].to_numpy() == pytest.approx(forecast["sales"].to_numpy(), rel=1e-9)

    # Five rows of history are fewer than the lookback of 10: padded, still a forecast
    (tmp_path / "new.csv").write_text(yearly(5).to_csv(index=False))
    predicted = run("predict", str(tmp_path / "run"), str(tmp_path / "new.csv"))
    assert predicted.exit_code == 0, predicted.stderr
    rows = pd.read_csv(__import__("io").StringIO(predicted.stdout))
    assert len(rows) == 4 and rows["sales"].between(400, 800).all()
    (tmp_path / "two.csv").write_text(yearly(2).to_csv(index=False))
    refused = run("predict", str(tmp_path / "run"), str(tmp_path / "two.csv"))
    assert refused.exit_code == 1 and refused.stderr.startswith("Error:")
    assert "shorter than the data.min_history (3 rows): it has 2" in refused.stderr


@pytest.mark.parametrize(
    ("freq", "horizon", "prior"),
    [
        ("YS", 6, "builtin:m3-yearly"),
        ("YS", 8, "builtin:m3-yearly-8"),  # beyond M3's yearly horizon: its own prior
        ("YS", 9, "none"),  # no prior goes that far: from scratch, and it says why
        ("D", 8, "builtin:m3-other"),  # not yearly, no season (data.season null)
        ("years", 8, "builtin:m3-yearly-8"),  # whole numbers counting years: 1990, 1991, ...
        ("years with a gap", 8, "builtin:m3-yearly-8"),  # a missing year is a gap
        ("index", 8, "builtin:m3-other"),  # 0, 1, 2, ...: not years
        ("MS", 18, "builtin:m3-monthly"),
        ("MS", 24, "builtin:m3-monthly-24"),  # Tourism's monthly horizon, past M3's 18
        ("MS", 25, "none"),
    ],
)
def test_the_builtin_prior_follows_the_horizon_and_yearly_times(
    freq: str, horizon: int, prior: str
) -> None:
    from lstmcli.config.resolve import resolve
    from lstmcli.data.table import prepare_table

    frame = yearly(80 if freq == "MS" else 30)
    if freq == "years":
        frame["year"] = np.arange(1990, 2020)
    elif freq == "years with a gap":
        frame["year"] = np.r_[1990:2005, 2006:2021]
    elif freq == "index":
        frame["year"] = np.arange(30)
    else:
        frame["year"] = pd.date_range("1990-01-01", periods=len(frame), freq=freq)
        frame["year"] = frame["year"].dt.strftime("%Y-%m-%d")
    season = 12 if freq == "MS" else None
    config = validate_config(
        short_config(Path("sales.csv"), horizon=horizon, season=season, split=0.75)
    )
    plan = resolve(config, prepare_table(frame, config.data, "sales.csv"))
    chosen = {c.key: c for c in plan.choices}["model.init"]
    assert chosen.value == prior
    if prior == "none":
        assert chosen.why.endswith(f"(data.horizon is {horizon}): train from scratch")
    else:
        assert plan.init.model.spec.steps >= horizon


def test_a_series_too_short_for_a_val_part_gets_the_prior_as_is(tmp_path: Path) -> None:
    csv = tmp_path / "sales.csv"
    yearly(24).to_csv(csv, index=False)
    config = short_config(csv, split={"test_start": "1997-01-01"})  # 7 training rows
    result = train_run(validate_config(config), tmp_path / "run")
    assert result.metrics["epochs_run"] == 0 and result.metrics["init"]["kept"] == "as is"
    assert result.metrics["auto"]["training.epochs"]["value"] == 0
    assert result.metrics["test_windows"] >= 1


def short_panel(lengths: list[int], levels: list[float], end: str = "2013-01-01") -> pd.DataFrame:
    """Yearly series of different lengths and units that end on the same date, long format."""
    parts = []
    for k, (n, level) in enumerate(zip(lengths, levels, strict=True)):
        frame = yearly(n, seed=k, start="1700-01-01")  # dates replaced below
        frame["year"] = pd.date_range(end=end, periods=n, freq="YS").strftime("%Y-%m-%d")
        frame["sales"] = (frame["sales"] * level / 500).round(4)
        parts.append(frame.assign(id=f"s{k}"))
    return pd.concat(parts, ignore_index=True)


def test_a_panel_of_short_series_starts_from_the_prior_and_keeps_every_series(
    tmp_path: Path,
) -> None:
    """Many short series are short data: the median series' windows decide, not their sum,
    and the val part shrinks (down to one horizon) rather than leave a short series without
    training rows (it would be skipped, unforecast)."""
    levels = [0.05, 3.0, 40.0, 500.0, 8e3, 1e5]
    csv = tmp_path / "panel.csv"
    short_panel([14, 20, 24, 26, 28, 30], levels).to_csv(csv, index=False)
    config = short_config(csv, id_column="id")  # test part: 2010-2013, 4 rows of each series
    result = train_run(validate_config(config), tmp_path / "run")
    chosen = result.metrics["auto"]
    assert chosen["model.init"]["value"] == "builtin:m3-yearly"
    assert "in the median series' training part" in chosen["model.init"]["why"]
    # the shortest series has 10 training rows: 2 horizons (8) would leave it 2, fewer than
    # the 3 a padded window needs; 7 leave it 3
    assert chosen["data.split"]["value"]["val_start"].startswith("2003-01-01")
    assert "the last 7 training rows" in chosen["data.split"]["why"]
    forecast = pd.read_csv(tmp_path / "run" / "test_predictions.csv")
    assert sorted(forecast["id"].unique()) == [f"s{k}" for k in range(6)]
    for k, level in enumerate(levels):  # each series in its own units: 500 + 12 t in scale
        values = forecast.loc[forecast["id"] == f"s{k}", "sales"]
        assert values.between(0.5 * level, 3 * level).all(), (k, values.tolist())

    # a series with 2 training rows cannot keep 3 whatever the val part: it is skipped (with a
    # warning) and does not shorten the others' val part
    from lstmcli.config.resolve import resolve
    from lstmcli.data.table import prepare_table

    frame = short_panel([6, 20, 24, 26, 28, 30], levels)
    checked = validate_config(config)
    plan = resolve(checked, prepare_table(frame, checked.data, "p.csv"))
    carved = {c.key: c for c in plan.choices}["data.split"]
    assert "the last 8 training rows" in carved.why


def test_a_panel_fine_tunes_with_the_batches_its_windows_call_for() -> None:
    from lstmcli.config.resolve import resolve
    from lstmcli.data.table import prepare_table

    frame = short_panel([30] * 200, [500.0] * 200)  # 200 short series: 4,000 windows or so
    config = validate_config(short_config(Path("panel.csv"), id_column="id"))
    plan = resolve(config, prepare_table(frame, config.data, "panel.csv"))
    chosen = {c.key: c for c in plan.choices}
    assert chosen["model.init"].value == "builtin:m3-yearly"
    assert chosen["training.batch_size"].value == 64  # 32 for one short series
    assert "fine-tuning batches for" in chosen["training.batch_size"].why

    long = short_panel([300] * 3, [500.0] * 3, end="2100-01-01")  # long series: from scratch
    config = validate_config(short_config(Path("panel.csv"), id_column="id",
                                          split={"test_start": "2097-01-01"}))  # fmt: skip
    plan = resolve(config, prepare_table(long, config.data, "panel.csv"))
    why = {c.key: c.why for c in plan.choices}["model.init"]
    assert why.endswith(
        "rows in the median series' training part, at least 150: train from scratch"
    )
    assert plan.config.model.init == "none"


@pytest.mark.parametrize(
    ("horizon", "named"),
    [(12, "builtin:m3-monthly needs 1 input"),  # the prior the horizon calls for, not -24
     (25, "builtin:m3-monthly-24 needs 1 input")],  # nearest below: at most 24
)  # fmt: skip
def test_the_reason_for_no_prior_names_the_nearest(horizon: int, named: str) -> None:
    from lstmcli.config.resolve import resolve
    from lstmcli.data.table import prepare_table

    from .conftest import seasonal_frame

    config = validate_config({"data": {"time_column": "date", "target": "y", "features": ["x"],
                                       "horizon": horizon, "split": 0.75}})  # fmt: skip
    plan = resolve(config, prepare_table(seasonal_frame(60), config.data, "f"))
    why = {c.key: c.why for c in plan.choices}["model.init"]
    assert why.startswith(named) and why.endswith(": train from scratch")


def test_long_data_is_trained_from_scratch(tmp_path: Path) -> None:
    csv = tmp_path / "sales.csv"
    yearly(400, start="1700-01-01").to_csv(csv, index=False)  # pandas 2 stops at 2262
    config = short_config(csv, split=0.75)
    config["training"] |= {"epochs": 1, "ensemble": 1}
    result = train_run(validate_config(config), tmp_path / "run")
    chosen = result.metrics["auto"]["model.init"]
    assert chosen["value"] == "none" and "init" not in result.metrics
    assert chosen["why"].endswith("rows in the training part, at least 150: train from scratch")
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["model"]["init"] == "none" and saved["data"]["min_history"] is None


def test_classical_forecasts_combine_only_with_a_single_target(
    tmp_path: Path, csv_path: Path
) -> None:
    """The classical forecast reads one target's history: a prior of two targets keeps the
    naive blend; one target's network takes a third of the forecast, as each classical
    member does."""
    two = tiny_config(csv_path, data={"target": ["y", "x"]})
    train_run(validate_config(two), tmp_path / "a")
    tuned = tiny_config(csv_path, data={"target": ["y", "x"]},
                        model={"init": str(tmp_path / "a"), "blend": "auto"})  # fmt: skip
    blend = train_run(validate_config(tuned), tmp_path / "b").metrics["blend"]
    assert not any(key.startswith("classical") for key in blend["val_rmse_scaled"])
    one = tiny_config(csv_path, model={"init": str(tmp_path / "c0"), "blend": "auto"})
    train_run(validate_config(tiny_config(csv_path)), tmp_path / "c0")
    blend = train_run(validate_config(one), tmp_path / "c").metrics["blend"]
    scores = blend["val_rmse_scaled"]  # thirds, unless a naive forecast is 2x better
    naive = min(v for k, v in scores.items() if k.endswith(" x 1") and "classical" not in k)
    if naive * 2 < scores["classical x 0.667"]:
        assert blend["model_weight"] == 0 and blend["baseline"] != "classical"
    else:
        assert blend["baseline"] == "classical"
        assert blend["model_weight"] == pytest.approx(1 / 3)


def test_the_combination_gives_way_only_to_a_far_better_candidate() -> None:
    """The runaway guard weighs every candidate alone: naive, the classical forecast, the
    network; otherwise the network and the classical forecast's two members in thirds."""
    from lstmcli.model.blend import choose_blend

    truth = torch.ones(4, 3, 1)

    def chosen(network_value: float, last_value: float, other: float, kind: str = "classical"):
        windows = torch.full((4, 5, 1), last_value)
        network = lambda *_: torch.full((4, 3, 1), network_value)  # noqa: E731
        history = torch.full((4, 3, 1), other)
        blend, _ = choose_blend(
            network, lambda: iter([(windows, None, truth)]), None, [0], {kind: history}, kind
        )
        return blend.kind, round(blend.weight, 6)

    third = round(1 / 3, 6)
    assert chosen(3.0, 1.0, 1.3) == ("naive", 0.0)  # a runaway network; the last value is exact
    assert chosen(1.3, 1.1, 0.85) == ("classical", third)  # the combination exact: combined
    assert chosen(1.0, 1.0, 1.0) == ("classical", third)  # no better than thirds by the margin
    assert chosen(3.0, 2.0, 1.05) == ("classical", 0.0)  # classical alone, far better than both
    assert chosen(1.05, 2.0, 4.0) == ("classical", 1.0)  # a runaway classical: the network alone
    assert chosen(1.2, 1.1, 0.8, "theta") == ("theta", 0.5)  # runs before: Theta in halves
