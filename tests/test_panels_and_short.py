"""Right on every panel and every short series (issue #34): each wrong result or misleading
message a new user hit with the defaults (data keys only) is pinned down here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lstmcli.model.theta import theta_forecast
from tests.helpers import run


def write(folder: Path, frame: pd.DataFrame, data: dict, name: str = "data.csv") -> Path:
    """A CSV and a config of data keys only (what a new user writes)."""
    frame.to_csv(folder / name, index=False)
    config = {"data": {"path": str(folder / name), "time_column": "date", "target": ["y"], **data}}
    path = folder / f"{Path(name).stem}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def scaled_panel() -> pd.DataFrame:
    """Four quarterly series at levels about 3, 5e3, 8e6 and 0.05, 32 to 40 rows each."""
    rng = np.random.default_rng(0)
    season = np.array([0.1, -0.05, 0.08, -0.13])
    frames = []
    for name, level, n in (("a", 3, 32), ("b", 5e3, 36), ("c", 8e6, 40), ("d", 0.05, 34)):
        t = np.arange(n)
        y = level * (1 + 0.01 * t + season[t % 4] + 0.03 * rng.standard_normal(n))
        dates = pd.date_range("2010-01-01", periods=n, freq="QS").strftime("%Y-%m-%d")
        frames.append(pd.DataFrame({"date": dates, "id": name, "y": y}))
    return pd.concat(frames, ignore_index=True)


def seasonal_with_zeros(n: int = 42) -> pd.DataFrame:
    """A short monthly series with a clear season, a zero every December and negatives."""
    rng = np.random.default_rng(0)
    month = np.arange(n) % 12
    y = 5 + 6 * np.sin(2 * np.pi * month / 12) + 0.5 * rng.standard_normal(n)
    y[month == 11] = 0.0
    dates = pd.date_range("2020-01-01", periods=n, freq="MS").strftime("%Y-%m-%d")
    return pd.DataFrame({"date": dates, "y": y})


def metrics_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


# 1. A panel whose series differ in scale


def test_a_panel_of_different_scales_is_forecast_in_each_series_units(tmp_path: Path) -> None:
    path = write(tmp_path, scaled_panel(), {"id_column": "id", "horizon": 4})
    out = run("train", "-c", str(path), "-o", str(tmp_path / "run"), "-q")
    assert out.exit_code == 0, out.stderr
    metrics = metrics_of(tmp_path / "run")
    assert metrics["auto"]["data.scale_by"]["value"] == "series"
    for name, series in metrics["series"]["per_series"].items():
        naive = series["baselines"]["naive"]["mae"]
        assert series["model"]["mae"] <= 3 * naive, (name, series["model"]["mae"], naive)
    worst = metrics["series"]["aggregate"]["worst"]
    per_series = {k: v["model"]["mase"] for k, v in metrics["series"]["per_series"].items()}
    assert worst["id"] == max(per_series, key=per_series.get)
    assert worst["mase"] == pytest.approx(max(per_series.values()))
    listed = run("runs", str(tmp_path / "run"), "--json")
    assert json.loads(listed.stdout)[0]["worst"] == worst["id"]


def test_one_scaler_for_series_far_apart_in_scale_is_warned_about(tmp_path: Path) -> None:
    path = write(tmp_path, scaled_panel(), {"id_column": "id", "horizon": 4})
    out = run("check", "-c", str(path), "--set", "data.scale_by=global")
    assert "data.scale_by: global fits one scaler to series whose 'y' spreads differ" in out.stderr
    out = run("train", "-c", str(path), "-o", str(tmp_path / "run"), "--set",
              "data.scale_by=global", "--set", "training.epochs=1")  # fmt: skip
    assert out.exit_code == 0, out.stderr
    assert "data.scale_by: global fits one scaler to series whose 'y' spreads differ" in out.stderr
    assert "use data.scale_by: series" in out.stderr


# 2. Short seasonal series with zeros or negatives


def test_theta_deseasonalizes_a_series_with_zeros_and_negatives() -> None:
    frame = seasonal_with_zeros()
    history, future = frame["y"].to_numpy()[:30], frame["y"].to_numpy()[30:]
    forecast = theta_forecast(history, 12, 12)
    seasonal_naive = history[-12:]
    rmse = np.sqrt(np.mean((forecast - future) ** 2))
    assert rmse <= np.sqrt(np.mean((seasonal_naive - future) ** 2))
    assert forecast[future == 0].max() < 1.5  # December stays near its zero


def test_theta_sees_a_clean_season_of_two_and_a_half_years() -> None:
    t = np.arange(30)
    history = 100 + 20 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(1).normal(0, 1, 30)
    forecast = theta_forecast(history, 12, 12)
    assert np.ptp(forecast) > 20  # seasonal, not a flat line
    noise = 100 + np.random.default_rng(2).normal(0, 5, 30)
    straight = np.diff(theta_forecast(noise, 12, 12), n=2)
    assert np.abs(straight).max() < 1e-9  # noise alone is no season: a straight line


def test_a_short_seasonal_series_with_zeros_does_not_run_away(tmp_path: Path) -> None:
    path = write(tmp_path, seasonal_with_zeros(), {"horizon": 12})
    out = run("train", "-c", str(path), "-o", str(tmp_path / "run"), "-q")
    assert out.exit_code == 0, out.stderr
    metrics = metrics_of(tmp_path / "run")
    assert "val" not in metrics["windows"]  # too short for a val part
    assert metrics["blend"]["chosen_on"] == "train"  # the guard judged on training origins
    assert metrics["model"]["rmse"] <= 1.3 * metrics["baselines"]["seasonal_naive"]["rmse"]


# 3. MASE as the competitions define it


def test_mase_is_scaled_by_every_row_before_the_test_part(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    y = 100 + np.cumsum(rng.normal(2, 5, 40))
    dates = pd.date_range("1980-01-01", periods=40, freq="YS").strftime("%Y-%m-%d")
    split = {"train": 0.6, "val": 0.2, "test": 0.2}
    path = write(tmp_path, pd.DataFrame({"date": dates, "y": y}), {"horizon": 2, "split": split})
    out = run("train", "-c", str(path), "-o", str(tmp_path / "run"), "-q",
              "--set", "model.init=none", "--set", "training.epochs=2")  # fmt: skip
    assert out.exit_code == 0, out.stderr
    metrics = metrics_of(tmp_path / "run")
    before_test = y[: 24 + 8]  # the train and val rows
    scale = np.mean(np.abs(np.diff(before_test)))
    assert metrics["model"]["mase"] == pytest.approx(metrics["model"]["mae"] / scale, rel=1e-9)


def test_one_training_row_is_not_called_constant(tmp_path: Path) -> None:
    from lstmcli.data.scaling import warn_constant_columns

    heard: list[str] = []
    warn_constant_columns(np.array([[3.0, 4.0]]), ["y", "x"], heard.append)
    assert heard == []
    warn_constant_columns(np.array([[3.0, 4.0], [3.0, 5.0]]), ["y", "x"], heard.append)
    assert heard == ["column(s) ['y'] are constant in the training rows; they carry no signal"]


# 4. Series of three or four rows


def test_a_three_row_series_says_what_is_missing(tmp_path: Path) -> None:
    dates = pd.date_range("2000-01-01", periods=3, freq="YS").strftime("%Y-%m-%d")
    path = write(tmp_path, pd.DataFrame({"date": dates, "y": [10.0, 12.0, 11.0]}), {"horizon": 1})
    out = run("train", "-c", str(path), "-o", str(tmp_path / "run"))
    assert out.exit_code == 1
    assert out.stderr.splitlines() == [
        "Error: the test part ends at row 3, too early for one window: data.min_history 3 and "
        "horizon 1 need at least 4 rows up to its end; use more data or change data.split, "
        "data.lookback or data.horizon"
    ]


def test_a_four_row_series_trains_from_the_prior_as_is(tmp_path: Path) -> None:
    dates = pd.date_range("2000-01-01", periods=4, freq="YS").strftime("%Y-%m-%d")
    frame = pd.DataFrame({"date": dates, "y": [10.0, 12.0, 11.0, 14.0]})
    path = write(tmp_path, frame, {"horizon": 1})
    out = run("train", "-c", str(path), "-o", str(tmp_path / "run"))
    assert out.exit_code == 0, out.stderr
    assert ("training.epochs = 0 (the prior as is: no training window to fine-tune with)"
            in out.stderr)  # fmt: skip
    assert "fine-tuning the prior on 0 training windows" not in out.stderr


# 5. "Chosen from the data" says what the values mean


def test_a_prior_without_a_val_part_is_said_to_be_used_as_is(tmp_path: Path) -> None:
    path = write(tmp_path, seasonal_with_zeros(), {"horizon": 12})
    out = run("train", "-c", str(path), "-o", str(tmp_path / "run"))
    assert out.exit_code == 0, out.stderr
    assert ("training.epochs = 0 (the prior as is: no val part to choose an epoch to fine-tune "
            "with)") in out.stderr  # fmt: skip
    checked = run("check", "-c", str(path), "--set", "model.levels=[80]")
    assert "calibrated on builtin:m3-monthly's own errors (no val part)" in checked.stdout
    assert "the val part's origins" not in checked.stdout
    # judged on the training part, which the prior never saw: the network alone a candidate
    assert (
        "better on the training part (no val part; the network alone only for a prior "
        "used as is)" in checked.stdout
    )
    blend = json.loads((tmp_path / "run" / "metrics.json").read_text())["blend"]
    assert blend["chosen_on"] == "train"


# 6. --resume and --again keep what the first run chose and why


def test_resume_and_again_keep_the_runs_choices(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    t = np.arange(120)
    y = 10 + np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.1, 120)
    dates = pd.date_range("2000-01-01", periods=120, freq="MS").strftime("%Y-%m-%d")
    path = write(tmp_path, pd.DataFrame({"date": dates, "y": y}), {"horizon": 3})
    first = tmp_path / "run"
    sizes = ["--set", "training.ensemble=1", "--set", "model.hidden_size=4",
             "--set", "model.init=none"]  # fmt: skip
    out = run("train", "-c", str(path), "-o", str(first), "-q", "--set", "training.epochs=1",
              *sizes)  # fmt: skip
    assert out.exit_code == 0, out.stderr
    chosen = metrics_of(first)["auto"]
    assert "data.split" in chosen  # a val part was carved
    assert yaml.safe_load((first / "config.yaml").read_text())["data"]["validation"] == "auto"
    out = run("train", "--resume", str(first), "-q", "--set", "training.epochs=2")
    assert out.exit_code == 0, out.stderr
    assert yaml.safe_load((first / "config.yaml").read_text())["data"]["validation"] == "auto"
    assert metrics_of(first)["auto"] == chosen
    out = run("train", "--again", str(first), "-q")
    assert out.exit_code == 0, out.stderr
    again = Path(f"{first}-again")
    assert metrics_of(again)["auto"] == chosen
    listed = json.loads(run("runs", str(first), str(again), "--json").stdout)
    assert set(listed[0]) == set(listed[1])
    assert not any(key.startswith("data.") for key in listed[0])  # no setting differs


# 7. A prior from unrelated data


def test_a_prior_of_another_season_is_refused(tmp_path: Path) -> None:
    from lstmcli.config.edit import validate_config
    from lstmcli.config.resolve import resolve
    from lstmcli.data.table import load_table
    from lstmcli.errors import LstmcliError

    dates = pd.date_range("2000-01-01", periods=14, freq="YS").strftime("%Y-%m-%d")
    frame = pd.DataFrame({"date": dates, "y": np.linspace(10, 20, 14)})
    path = write(tmp_path, frame, {"horizon": 3})
    raw = yaml.safe_load(path.read_text())
    raw["model"] = {"init": "builtin:m3-monthly"}
    config = validate_config(raw)
    with pytest.raises(LstmcliError) as caught:
        resolve(config, load_table(config.data, lambda _: None))
    assert ("model.init: builtin:m3-monthly needs series with a season of 12 rows (MS rows), as "
            "it was trained on (this run has no season)") in str(caught.value)  # fmt: skip


# 9. Short weekly and daily series with intervals: the real cause


@pytest.mark.parametrize(("freq", "season"), [("W", 52), ("D", 7)])
def test_intervals_without_a_prior_or_val_part_name_the_cause(
    tmp_path: Path, freq: str, season: int
) -> None:
    dates = pd.date_range("2020-01-05", periods=50, freq=freq).strftime("%Y-%m-%d")
    frame = pd.DataFrame({"date": dates, "y": np.sin(np.arange(50) / 5) + 10})
    path = write(tmp_path, frame, {"horizon": 7})
    out = run("train", "-c", str(path), "-o", str(tmp_path / "run"), "--set", "model.levels=[80]")
    assert out.exit_code == 1
    (line,) = out.stderr.splitlines()
    assert f"no prior can calibrate them instead: lstmcli has no builtin prior for a season of " \
           f"{season} rows" in line  # fmt: skip
    assert "data.validation: auto" not in line  # already the default
    assert not (tmp_path / "run").exists()


# 38. Same data, same config, same machine: the same forecast


@pytest.mark.slow
def test_an_ensemble_in_threads_does_not_depend_on_timing(tmp_path: Path, monkeypatch) -> None:
    """Three members on two workers, run plainly, with one member slowed and with the other
    slowed under a busy process: every weight and metric equal."""
    import subprocess
    import sys
    import time

    import torch

    from lstmcli.model.checkpoint import load_checkpoint
    from lstmcli.run import fitting

    rng = np.random.default_rng(7)
    t = np.arange(160)
    y = 10 + np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.2, 160)
    dates = pd.date_range("2000-01-01", periods=160, freq="MS").strftime("%Y-%m-%d")
    path = write(tmp_path, pd.DataFrame({"date": dates, "y": y}), {"horizon": 3})
    settings = ["--set", "training.ensemble=3", "--set", "training.workers=2",
                "--set", "training.threads=2", "--set", "training.epochs=4",
                "--set", "model.hidden_size=8", "--set", "model.init=none"]  # fmt: skip
    real_fit = fitting.fit

    def slowed(member_seed: int):
        def fit(*args, **kwargs):
            if args[3].seed == member_seed:
                time.sleep(0.3)
            return real_fit(*args, **kwargs)

        return fit

    results = []
    for k, slow in enumerate((None, 42, 43)):
        busy = None
        if slow is not None:
            monkeypatch.setattr(fitting, "fit", slowed(slow))
        if k == 2:
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            out = run("train", "-c", str(path), "-o", str(tmp_path / f"run{k}"), "-q", *settings)
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
        assert out.exit_code == 0, out.stderr
        results.append(tmp_path / f"run{k}")
    first = load_checkpoint(results[0]).state_dict
    for other in results[1:]:
        weights = load_checkpoint(other).state_dict
        assert all(torch.equal(first[name], weights[name]) for name in first)
        assert metrics_of(other)["model"] == metrics_of(results[0])["model"]
    manifest = json.loads((results[0] / "manifest.json").read_text())
    assert manifest["threads_per_member"] == 1


def test_the_guard_judges_each_series_last_windows() -> None:
    from lstmcli.run.fitting import latest_windows

    series = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2])
    assert latest_windows(series, 2, len(series)).tolist() == [2, 3, 4, 5, 7, 8]
    assert latest_windows(None, 2, 5).tolist() == [3, 4]
    assert latest_windows(None, 9, 5).tolist() == [0, 1, 2, 3, 4]


def test_a_flat_series_in_a_panel_is_named(tmp_path: Path) -> None:
    frame = scaled_panel()
    frame.loc[frame["id"] == "d", "y"] = 0.0
    path = write(tmp_path, frame, {"id_column": "id", "horizon": 4})
    out = run("train", "-c", str(path), "-o", str(tmp_path / "run"), "--set", "training.epochs=1")
    assert out.exit_code == 0, out.stderr
    assert ("Warning: 1 series with constant targets in their training rows: d; they carry no "
            "signal and have no MASE") in out.stderr  # fmt: skip
    checked = run("check", "-c", str(path))
    assert "1 series with constant targets in their training rows: d" in checked.stderr
