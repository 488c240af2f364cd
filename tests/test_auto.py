"""Defaults chosen from the data: the rules, their resolution, and what a run says of them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lstmcli.config.edit import validate_config
from lstmcli.config.resolve import (
    choose_lookback,
    cosine_epochs,
    infer_season,
    model_size,
    resolve,
)
from lstmcli.config.starter import starter_config
from lstmcli.data.table import Table, prepare_table
from tests.conftest import seasonal_frame
from tests.helpers import run


def times_table(time: pd.Series) -> Table:
    n = len(time)
    return Table(np.zeros((n, 1)), np.zeros((n, 1)), ["y"], ["y"], time.reset_index(drop=True))


@pytest.mark.parametrize(
    ("freq", "season"),
    [
        ("30min", 48),
        ("15min", 96),
        ("h", 24),
        ("D", 7),
        ("B", 5),
        ("W-SAT", 52),
        ("MS", 12),
        ("ME", 12),
        ("QS", 4),
        ("YS", None),
        ("min", None),  # 1,440 rows a day: too long a season for a window
    ],
)
def test_the_season_follows_the_frequency(freq: str, season: int | None) -> None:
    time = pd.Series(pd.date_range("2020-01-06", periods=60, freq=freq))
    assert infer_season(times_table(time))[0] == season


def test_no_season_without_regular_dates() -> None:
    assert infer_season(times_table(pd.Series(np.arange(1900, 1960))))[0] is None
    irregular = pd.Series(pd.to_datetime(["2020-01-01", "2020-01-03", "2020-01-10", "2020-02-01"]))
    assert infer_season(times_table(irregular)) == (None, "irregular times")
    trading = pd.Series(pd.bdate_range("2021-01-04", periods=80).delete([10, 30]))
    assert infer_season(times_table(trading))[0] == 5  # business days, holidays missing


def test_lookback_rule() -> None:
    assert choose_lookback(12, 12, 300, True) == (24, "two seasons")
    assert choose_lookback(4, 8, 300, True) == (16, "two horizons")
    assert choose_lookback(None, 1, 300, True) == (8, "the shortest lookback used")
    lookback, why = choose_lookback(52, 52, 200, True)  # two seasons would leave few windows
    assert lookback == (200 - 52) // 3 == 49
    assert why == (
        "two seasons would be 104 rows; at most a third of the training rows less the horizon, "
        "(200 - 52) / 3 = 49"
    )  # what the rule computes, in its own terms


def test_small_data_gets_small_members_and_more_of_them() -> None:
    small, medium, large = model_size(500), model_size(5000), model_size(50000)
    assert small["hidden_size"] <= medium["hidden_size"] <= large["hidden_size"]
    assert small["ensemble"] > medium["ensemble"] > large["ensemble"] == 1
    assert small["epochs"] >= medium["epochs"] >= large["epochs"]


def test_a_small_scratch_run_spans_a_cosine_schedule_of_about_800_steps() -> None:
    assert cosine_epochs(1283, 32, 150)[0] == 20  # the quick start: 41 steps an epoch
    assert cosine_epochs(500, 32, 150)[0] == 50  # 16 steps an epoch: 800 steps
    assert cosine_epochs(40, 32, 150)[0] == 150  # 2 steps an epoch: capped
    assert cosine_epochs(1900, None, 150)[0] == 150  # full batch: one step an epoch
    assert cosine_epochs(1999, 256, 150)[0] == 100
    assert cosine_epochs(40, 32, 150)[1] == (
        "the most for the cosine schedule: 300 steps, 2 steps an epoch of 40 windows"
    )  # not "800 steps or more": the cap is said
    assert cosine_epochs(1283, 32, 150)[1] == (
        "the cosine schedule's span: 800 steps or more, 41 steps an epoch of 1283 windows"
    )
    assert "1 step an epoch" in cosine_epochs(1900, None, 150)[1]

    def plan(frame: pd.DataFrame, **sections: dict) -> dict:
        config = validate_config({"data": {"target": "y", "horizon": 6, "split": 0.75}, **sections})
        resolved = resolve(config, prepare_table(frame, config.data, "f"))
        return resolved.config.training.model_dump() | {"chosen": {c.key for c in resolved.choices}}

    scratch = plan(monthly(400), model={"init": "none"})
    assert scratch["scheduler"] == "cosine" and scratch["epochs"] == 100  # 241 windows: 8 steps
    assert {"training.scheduler", "training.epochs"} <= scratch["chosen"]
    prior = plan(monthly(60))  # fine-tuning a builtin prior: a constant rate, as before
    assert prior["scheduler"] == "none" and "training.scheduler" not in prior["chosen"]
    kept = plan(monthly(400), model={"init": "none"}, training={"scheduler": "none"})
    assert kept["scheduler"] == "none" and kept["epochs"] == 150  # patience ends it
    explicit = plan(monthly(400), model={"init": "none"}, training={"epochs": 7})
    assert (explicit["scheduler"], explicit["epochs"]) == ("cosine", 7)


def monthly(n: int = 200) -> pd.DataFrame:
    return seasonal_frame(n)


def test_resolve_fills_every_auto_and_keeps_explicit_values() -> None:
    frame = monthly()
    config = validate_config(
        {"data": {"target": "y", "horizon": 6, "split": 0.75}, "model": {"init": "none"}}
    )
    table = prepare_table(frame, config.data, "f")
    plan = resolve(config, table)
    resolved, choices = plan.config, list(plan.choices)
    dumped = resolved.model_dump(mode="json")
    autos = [
        f"{section}.{key}"
        for section, values in dumped.items()
        for key, value in values.items()
        if value == "auto"
    ]
    assert autos == ["data.validation", "model.blend", "training.device", "tune.metric"]  # policies
    assert (resolved.data.season, resolved.data.lookback) == (12, 24)
    assert resolved.data.window_norm == "standard"
    split = resolved.data.split  # 10% of the 150 training rows carved off as a val part
    assert split.val == pytest.approx(0.75 * 15 / 150) and split.test == 0.25
    assert split.train + split.val + split.test == pytest.approx(1.0)
    assert {c.key for c in choices} >= {"data.season", "data.lookback", "data.split"}
    explicit = validate_config(
        {"data": {"target": "y", "horizon": 6, "season": 7, "lookback": 9, "validation": "none"}}
    )
    plan = resolve(explicit, table)
    resolved, choices = plan.config, list(plan.choices)
    assert (resolved.data.season, resolved.data.lookback) == (7, 9)
    assert resolved.data.split.val == 0 and "data.season" not in {c.key for c in choices}


def test_no_val_part_is_carved_from_too_little_data() -> None:
    frame = monthly(60)
    data = {"target": "y", "horizon": 12, "split": 0.75}
    config = validate_config({"data": data, "model": {"init": "none"}})
    resolved = resolve(config, prepare_table(frame, config.data, "f")).config
    assert resolved.data.split.val == 0  # 45 training rows: a val part would leave too few
    # From the prior, windows are padded: the last two horizons are 13 forecast origins
    config = validate_config({"data": data})
    plan = resolve(config, prepare_table(frame, config.data, "f"))
    resolved = plan.config
    assert resolved.model.init == "builtin:m3-monthly"
    assert resolved.data.split.val == pytest.approx(0.75 * 24 / 45)
    assert resolved.data.min_history == 3 and resolved.training.epochs == 30


def test_a_date_split_gets_a_val_start_before_its_test_start() -> None:
    frame = monthly()
    config = validate_config(
        {"data": {"target": "y", "horizon": 3, "split": {"test_start": "2012-01-01"}}}
    )
    resolved = resolve(config, prepare_table(frame, config.data, "f")).config
    val_start = pd.Timestamp(resolved.data.split.val_start)
    assert pd.Timestamp("2010-01-01") < val_start < pd.Timestamp("2012-01-01")
    assert resolved.data.split.val_start == val_start.strftime("%Y-%m-%d")  # as users write it

    hourly = frame.assign(date=pd.date_range("2020-01-01 06:00", periods=len(frame), freq="h"))
    config = validate_config(
        {"data": {"target": "y", "horizon": 3, "split": {"test_start": "2020-01-05 13:00"}}}
    )
    resolved = resolve(config, prepare_table(hourly, config.data, "f")).config
    assert resolved.data.split.val_start == "2020-01-05 03:00:00"  # the hour kept, no "T"


def test_print_config_metrics_and_check_show_the_chosen_numbers(tmp_path: Path) -> None:
    csv = tmp_path / "m.csv"
    monthly().to_csv(csv, index=False)
    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data": {"path": str(csv), "target": "y", "horizon": 3, "split": 0.75},
                "model": {"init": "none"},  # from scratch: the rules for a network's size
                "training": {"epochs": 2, "ensemble": 2, "device": "cpu"},
            }
        )
    )
    printed = yaml.safe_load(run("train", "-c", str(config), "--print-config").stdout)
    assert printed["data"]["season"] == 12 and printed["data"]["lookback"] == 24
    assert printed["model"]["hidden_size"] == 32 and printed["training"]["ensemble"] == 2
    trained = run("train", "-c", str(config), "-o", str(tmp_path / "run"))
    assert trained.exit_code == 0, trained.stderr
    assert "Chosen from the data: data.season = 12 (monthly times (MS): one year)" in (
        trained.stderr
    )
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["auto"]["data.lookback"] == {"value": 24, "why": "two seasons"}
    assert "training.ensemble" not in metrics["auto"]  # set in the file: not chosen
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["data"]["lookback"] == 24 and saved["model"]["head"] == [64]
    checked = run("check", "-c", str(config))
    assert "auto:           data.season = 12 (monthly times (MS): one year)" in checked.stdout


def test_init_writes_a_config_for_a_file_that_trains(tmp_path: Path) -> None:
    frame = monthly().rename(columns={"date": "month", "y": "sales"})[["month", "x", "sales"]]
    (tmp_path / "data").mkdir()
    frame.to_csv(tmp_path / "data" / "sales.csv", index=False)
    out = tmp_path / "configs" / "sales.yaml"
    result = run("init", "--data", str(tmp_path / "data" / "sales.csv"), str(out))
    assert result.exit_code == 0, result.stderr
    assert "target: x (the first numeric column)" in result.stderr
    config = yaml.safe_load(out.read_text())
    assert config["data"]["path"] == "../data/sales.csv"  # relative to the config's folder
    assert config["data"]["time_column"] == "month" and config["data"]["season"] == 12
    assert config["data"]["horizon"] == 12
    chosen = run("init", "--data", str(tmp_path / "data" / "sales.csv"), "--target", "sales", "-")
    assert yaml.safe_load(chosen.stdout)["data"]["target"] == ["sales"]
    checked = run("check", "-c", str(out), "-o", str(tmp_path / "new"))
    assert checked.exit_code == 0, checked.stdout + checked.stderr
    bad = run("init", "--data", str(tmp_path / "data" / "sales.csv"), "--target", "units", "-")
    assert bad.exit_code == 1 and bad.stderr.startswith("Error: --target 'units' is not a column")


def test_starter_config_without_a_time_column() -> None:
    config, notes = starter_config("builtin:macrodata_quarterly", "infl")
    assert config.data.time_column == "date" and config.data.season == 4
    assert config.data.horizon == 4 and config.data.target == ["infl"]
    assert notes[0] == "target: infl"


def test_init_finds_the_id_column_of_a_file_of_several_series(tmp_path: Path) -> None:
    """store, date, sales for three stores: the dates repeat once per store, so the text
    column that tells the rows apart is the id; the season comes from one store's dates."""
    parts = []
    for k, store in enumerate(["s07", "s7", "north"]):
        one = seasonal_frame(40, seed=k).rename(columns={"y": "sales"})
        parts.append(one.assign(store=store)[["store", "date", "sales"]])
    pd.concat(parts).sample(frac=1, random_state=0).to_csv(tmp_path / "stores.csv", index=False)
    result = run("init", "--data", str(tmp_path / "stores.csv"), str(tmp_path / "s.yaml"))
    assert result.exit_code == 0, result.stderr
    assert "id column: store (3 series of 40 to 40 rows" in result.stderr
    config = yaml.safe_load((tmp_path / "s.yaml").read_text())["data"]
    assert config["id_column"] == "store" and config["target"] == ["sales"]
    assert config["season"] == 12 and config["horizon"] == 12
    checked = run("check", "-c", str(tmp_path / "s.yaml"), "-o", str(tmp_path / "new"))
    assert checked.exit_code == 0, checked.stderr
    assert "series:         3 (rows per series 40..40)" in checked.stdout


def test_init_refuses_repeated_times_no_column_explains(tmp_path: Path) -> None:
    frame = seasonal_frame(30)
    pd.concat([frame, frame]).to_csv(tmp_path / "twice.csv", index=False)
    result = run("init", "--data", str(tmp_path / "twice.csv"), "-")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: {tmp_path / 'twice.csv'}: the time column 'date' repeats 30 time(s) and no "
        "text column tells the series apart; if the file holds several series, set "
        "data.id_column"
    )


def test_a_few_missing_days_keep_the_weekly_season(tmp_path: Path) -> None:
    """400 days with 5 missing: the step is the dominant one (a day), the season a week;
    check and train say where rows are missing and what data.missing does (nothing)."""
    days = pd.date_range("2021-01-01", periods=400, freq="D")
    values = 10 + np.sin(np.arange(400) * 2 * np.pi / 7)
    frame = pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "y": values.round(4)})
    frame.drop(index=[30, 31, 150, 220, 300]).to_csv(tmp_path / "daily.csv", index=False)
    init = run("init", "--data", str(tmp_path / "daily.csv"), str(tmp_path / "d.yaml"))
    assert "season: 7 (daily times (D): one week)" in init.stderr
    assert yaml.safe_load((tmp_path / "d.yaml").read_text())["data"]["horizon"] == 7
    checked = run("check", "-c", str(tmp_path / "d.yaml"), "-o", str(tmp_path / "new"))
    assert (
        "frequency:      D with rows missing: 4 gap(s), the first after 2021-01-30 00:00:00"
        in checked.stdout
    )
    assert "Warning: " in checked.stderr and "4 gap(s) of missing rows in the D times" in (
        checked.stderr
    )
