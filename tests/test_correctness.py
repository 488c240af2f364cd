"""Wrong answers a new user hit on real files (issue #13): each is pinned down here."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lstmcli.config.edit import validate_config
from lstmcli.data.reading import read_csv
from lstmcli.data.table import load_table, prepare_table
from lstmcli.data.training_data import make_windows, prepare_data
from lstmcli.model.checkpoint import load_checkpoint
from lstmcli.run.pipeline import resolved_config, train_run
from tests.conftest import seasonal_frame, tiny_config
from tests.helpers import run


def write(folder: Path, frame: pd.DataFrame, config: dict, name: str = "data.csv") -> Path:
    frame.to_csv(folder / name, index=False)
    config["data"]["path"] = str(folder / name)
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def two_series(ids: tuple[str, str], n: int = 60) -> pd.DataFrame:
    """Two unrelated series, 30 years apart, under ids that read alike as numbers."""
    frames = []
    for k, (name, start) in enumerate(zip(ids, ("1960-01-01", "1990-01-01"), strict=True)):
        frame = seasonal_frame(n, seed=k).assign(y=lambda f, k=k: f["y"] * (1 + 9 * k))
        frame["date"] = pd.date_range(start, periods=n, freq="MS").strftime("%Y-%m-%d")
        frames.append(frame.assign(id=name)[["id", "date", "y"]])
    return pd.concat(frames, ignore_index=True)


def test_ids_are_labels_never_numbers(tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "data.csv", data={"id_column": "id", "lookback": 6})
    path = write(tmp_path, two_series(("7", "07")), config)
    checked = run("check", "-c", str(path))
    assert "series:         2 (rows per series 60..60)" in checked.stdout, checked.stdout
    trained = run("train", "-c", str(path), "-o", str(tmp_path / "run"), "-q")
    assert trained.exit_code == 0, trained.stderr
    assert load_checkpoint(tmp_path / "run").series_ids == ["07", "7"]
    saved = pd.read_csv(tmp_path / "run" / "test_predictions.csv", dtype={"id": str})
    assert sorted(saved["id"].unique()) == ["07", "7"]
    out = run("predict", str(tmp_path / "run"), str(tmp_path / "data.csv"), "--id", "07")
    assert out.exit_code == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "id,date,y" and all(line.startswith("07,") for line in lines[1:])


def test_rows_to_forecast_in_a_training_file_are_neither_filled_nor_scored(
    tmp_path: Path,
) -> None:
    frame = seasonal_frame(100)
    frame.loc[95:, "y"] = np.nan  # the file ends with 5 rows to forecast
    config = tiny_config(tmp_path / "data.csv", data={"missing": "ffill"})
    path = write(tmp_path, frame, config)
    result = run("train", "-c", str(path), "-o", str(tmp_path / "run"))
    assert result.exit_code == 0, result.stderr
    assert "the last 5 row(s) have empty targets: rows to forecast, left out" in result.stderr
    saved = pd.read_csv(tmp_path / "run" / "test_predictions.csv", parse_dates=["date"])
    assert saved["date"].max() == pd.Timestamp(frame["date"].iloc[94])
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["rows"] == {"train": 66, "val": 9, "test": 20}  # 95 rows, not 100


def test_values_made_up_by_data_missing_are_never_actuals(tmp_path: Path) -> None:
    frame = seasonal_frame(100)
    gaps = [80, 81, 90]
    frame.loc[gaps, "y"] = np.nan  # inside the test part: filled, and scored before the fix
    config = tiny_config(tmp_path / "data.csv", data={"missing": "interpolate"})
    write(tmp_path, frame, config)
    result = train_run(validate_config(config), tmp_path / "run")
    saved = pd.read_csv(tmp_path / "run" / "test_predictions.csv")
    made_up = saved["date"].isin(frame["date"].iloc[gaps])
    assert made_up.sum() == 3 and saved.loc[made_up, "y_actual"].isna().all()
    real = saved[~made_up]
    rmse = np.sqrt(np.mean((real["y"] - real["y_actual"]) ** 2))
    assert result.metrics["model"]["rmse"] == pytest.approx(rmse)  # the real cells only
    assert len(real) == result.metrics["test_windows"] - 3


def test_the_run_config_says_where_it_ran(tmp_path: Path, config_path: Path) -> None:
    printed = run("train", "-c", str(config_path), "-o", str(tmp_path / "B"), "--print-config")
    assert yaml.safe_load(printed.stdout)["output"]["dir"] == str(tmp_path / "B")
    trained = run("train", "-c", str(config_path), "-o", str(tmp_path / "B"), "-q")
    assert trained.exit_code == 0, trained.stderr
    saved = yaml.safe_load((tmp_path / "B" / "config.yaml").read_text())
    assert saved["output"]["dir"] == str(tmp_path / "B")
    again = run("train", "-c", str(tmp_path / "B" / "config.yaml"), "--print-config")
    assert yaml.safe_load(again.stdout)["output"]["dir"] == str(tmp_path / "B")


def test_check_and_train_agree_on_a_panel_split_by_dates(tmp_path: Path) -> None:
    frames = [  # two series start after val_start: no training row for their own scalers
        seasonal_frame(60, seed=k).assign(
            id=f"s{k}",
            date=pd.date_range(start, periods=60, freq="MS").strftime("%Y-%m-%d"),
        )
        for k, start in enumerate(["2000-01-01", "2003-06-01", "2003-07-01"])
    ]
    config = tiny_config(
        tmp_path / "data.csv",
        data={
            "id_column": "id",
            "scale_by": "series",
            "lookback": 6,
            "split": {"val_start": "2003-06-01", "test_start": "2004-01-01"},
        },
    )
    path = write(tmp_path, pd.concat(frames, ignore_index=True), config)
    checked = run("check", "-c", str(path), "-o", str(tmp_path / "new"))
    trained = run("train", "-c", str(path), "-o", str(tmp_path / "run"), "-q")
    assert checked.exit_code == trained.exit_code == 0, checked.stderr + trained.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    test = metrics["windows"]["test"]
    assert f"test:           {metrics['rows']['test']} rows in 1 series, {test} windows" in (
        checked.stdout
    )
    assert checked.stderr.startswith(
        "Warning: skipped 2 of 3 series without a training row to fit its scaler on"
    )


def test_evaluate_skips_a_regress_models_rows_without_targets(tmp_path: Path) -> None:
    frame = seasonal_frame(100)
    config = tiny_config(
        tmp_path / "data.csv", data={"task": "regress", "features": ["x"], "lookback": 3}
    )
    path = write(tmp_path, frame, config)
    assert run("train", "-c", str(path), "-o", str(tmp_path / "run"), "-q").exit_code == 0
    tail = frame.iloc[-30:].copy()
    tail.loc[tail.index[-2:], "y"] = np.nan  # the last two rows: targets not known yet
    scored = run("evaluate", str(tmp_path / "run"), "-", "--json", stdin=tail.to_csv(index=False))
    assert scored.exit_code == 0, scored.stderr
    full = run(
        "evaluate", str(tmp_path / "run"), "-", "--json", stdin=tail.iloc[:-2].to_csv(index=False)
    )
    assert json.loads(scored.stdout)["model"] == json.loads(full.stdout)["model"]
    counts = json.loads(scored.stdout)
    assert counts["windows"] + counts["windows_skipped"] == 26  # rows 3..28: the two are out


def test_a_time_column_in_mixed_formats_is_refused(tmp_path: Path) -> None:
    frame = seasonal_frame(40)
    frame.loc[8, "date"] = "01/09/2000"  # 2000-09-01 written day-first in an ISO file
    path = write(tmp_path, frame, tiny_config(tmp_path / "data.csv"))
    for command in ("check", "train"):
        result = run(command, "-c", str(path), "-o", str(tmp_path / "out"))
        assert result.exit_code == 1
        assert (
            f"Error: time column 'date' in {tmp_path / 'data.csv'}: '01/09/2000' at line 10 is "
            "not in the format of the first row ('2000-01-01', ISO 8601); write every time in "
            "one format, or set data.time_format\n"
        ) in result.stderr
    day_first = frame.assign(
        date=pd.to_datetime(seasonal_frame(40)["date"]).dt.strftime("%d/%m/%Y")
    )
    write(tmp_path, day_first, tiny_config(tmp_path / "data.csv"))
    cfg = validate_config(tiny_config(tmp_path / "data.csv", data={"time_format": "%d/%m/%Y"})).data
    table = prepare_table(day_first, cfg, "f")
    assert table.time.iloc[12] == pd.Timestamp("2001-01-01")  # 01/01/2001 read as day first


def test_monthly_dates_written_day_first_are_read_day_first_and_kept(tmp_path: Path) -> None:
    """`01/02/2015` is 2 January to pandas: a monthly file written day-first became the first
    twelve days of each January (no season, no prior, forecasts dated in days), silently."""
    frame = seasonal_frame(60)
    months = pd.to_datetime(frame["date"])
    day_first = frame.assign(date=months.dt.strftime("%d/%m/%Y"))  # 01/02/2000: 1 February
    config = tiny_config(tmp_path / "data.csv", data={"season": "auto"})
    path = write(tmp_path, day_first, config)
    checked = run("check", "-c", str(path))
    assert checked.exit_code == 0, checked.stderr
    assert "data.time_format = %d/%m/%Y (day-first, as the file's times read" in checked.stdout
    assert "data.season = 12 (monthly times (MS)" in checked.stdout
    trained = run("train", "-c", str(path), "-o", str(tmp_path / "run"), "-q")
    assert trained.exit_code == 0, trained.stderr
    kept = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["data"]
    assert (kept["time_format"], kept["season"]) == ("%d/%m/%Y", 12)
    # a later file of two years, every row of which reads both ways, is read as training was
    later = run("predict", str(tmp_path / "run"), "-", stdin=day_first.tail(24).to_csv(index=False))
    assert later.exit_code == 0, later.stderr
    dates = pd.read_csv(io.StringIO(later.stdout))["date"]
    assert dates.iloc[0] == "2005-01-01"  # the month after December 2004


@pytest.mark.parametrize(
    ("dates", "expected"),
    [  # US monthly dates: only month-first gives regular times
        (pd.date_range("2015-01-01", periods=30, freq="MS").strftime("%m/%d/%Y"), "2015-02-01"),
        # a day over 12 settles it: daily dates, day-first
        (pd.date_range("2015-01-01", periods=30, freq="D").strftime("%d.%m.%Y"), "2015-01-02"),
    ],
)
def test_the_rows_settle_a_first_date_that_reads_both_ways(dates: pd.Index, expected: str) -> None:
    frame = pd.DataFrame({"date": dates, "y": np.arange(len(dates), dtype=float)})
    cfg = validate_config(tiny_config(Path("f.csv"))).data
    table = prepare_table(frame, cfg, "f")
    assert table.time.iloc[1] == pd.Timestamp(expected)
    assert table.time_format == ("%m/%d/%Y" if "/" in dates[0] else "%d.%m.%Y")


@pytest.mark.parametrize(
    ("time_format", "said"),
    [
        ("%Q/%m/%Y", "data.time_format '%Q/%m/%Y' is not a strptime format ('Q' is a bad "
                     "directive in format '%Q/%m/%Y'); use codes such as '%d/%m/%Y %H:%M'"),
        ("%d/%m/%Y%", "data.time_format '%d/%m/%Y%' is not a strptime format (stray % in "
                      "format '%d/%m/%Y%'); use codes such as '%d/%m/%Y %H:%M'"),
        ("dd/mm/yyyy", "cannot parse '01/01/2010' as a time (data.time_format 'dd/mm/yyyy') at "
                       "line 2; data.time_format takes strptime codes such as '%d/%m/%Y'"),
    ],
)  # fmt: skip
def test_a_bad_time_format_is_one_line(tmp_path: Path, time_format: str, said: str) -> None:
    dates = pd.date_range("2010-01-01", periods=30, freq="MS").strftime("%d/%m/%Y")
    frame = pd.DataFrame({"date": dates, "y": np.arange(30.0)})
    config = tiny_config(tmp_path / "data.csv", data={"time_format": time_format})
    path = write(tmp_path, frame, config)
    for command in ("check", "train"):
        result = run(command, "-c", str(path), "-o", str(tmp_path / "run"))
        assert result.exit_code == 1 and "Traceback" not in result.stderr
        assert f"Error: time column 'date' in {tmp_path / 'data.csv'}: {said}\n" in result.stderr


def unsettled_dates(tmp_path: Path, dates: list[str], **data: object) -> str:
    """`check`'s stderr for a file of these dates, which must be refused."""
    frame = pd.DataFrame({"date": dates, "y": np.arange(float(len(dates)))})
    path = write(tmp_path, frame, tiny_config(tmp_path / "data.csv", data=data))
    result = run("check", "-c", str(path))
    assert result.exit_code == 1
    return result.stderr


def test_dates_the_rows_cannot_settle_are_refused(tmp_path: Path) -> None:
    """01/01/2015 .. 12/01/2015 read both ways regularly (twelve days of January, or the
    first days of twelve months). One `01/13/2012` in a monthly dd/mm/yyyy file leaves
    month-first the only reading of every row, which made the months the first days of each
    January, silently."""
    days = pd.date_range("2015-01-01", periods=12, freq="D").strftime("%d/%m/%Y").tolist()
    assert (
        f"Error: time column 'date' in {tmp_path / 'data.csv'}: '01/01/2015' could be day-first "
        "('%d/%m/%Y') or month-first ('%m/%d/%Y'), and every row reads both ways; set "
        "data.time_format to the one the file uses\n"
    ) in unsettled_dates(tmp_path, days)
    day_first = tiny_config(tmp_path / "data.csv", data={"time_format": "%d/%m/%Y"})
    fixed = write(tmp_path, pd.DataFrame({"date": days, "y": np.arange(12.0)}), day_first)
    assert "frequency:      D (regular)" in run("check", "-c", str(fixed)).stdout
    months = pd.date_range("2010-01-01", periods=60, freq="MS").strftime("%d/%m/%Y").tolist()
    months[30] = "01/13/2012"  # July 2012 mistyped month-first
    assert (
        f"Error: time column 'date' in {tmp_path / 'data.csv'}: '01/13/2012' at line 32 is not "
        "day-first ('%d/%m/%Y') as the other rows are (read so, their times are regular; every "
        "row reads the other way only as irregular times); correct it, or set data.time_format\n"
    ) in unsettled_dates(tmp_path, months)


@pytest.mark.parametrize(
    ("time", "expected"),
    [
        (np.arange(1900, 1960), "every 1 (regular)"),
        (np.arange(60), "every 1 (regular)"),
        (np.arange(60) * 0.5, "every 0.5 (regular)"),
    ],
)
def test_a_regular_numeric_time_column_is_regular(
    tmp_path: Path, time: np.ndarray, expected: str
) -> None:
    frame = seasonal_frame(60).assign(date=time)
    path = write(tmp_path, frame, tiny_config(tmp_path / "data.csv"))
    result = run("check", "-c", str(path))
    assert f"frequency:      {expected}\n" in result.stdout, result.stdout


def test_a_change_of_units_or_a_constant_shift_changes_nothing(tmp_path: Path) -> None:
    """Min-max and standard scaling make units irrelevant: the same series times 1e-9 or
    1e9, or plus 1e9, reaches the model as the same numbers."""
    frame = seasonal_frame(120)
    scaled = {}
    for name, change in {
        "plain": lambda y: y,
        "tiny": lambda y: y * 1e-9,
        "huge": lambda y: y * 1e9,
        "shifted": lambda y: y + 1e9,
    }.items():
        csv = tmp_path / f"{name}.csv"
        frame.assign(y=change(frame["y"]), x=change(frame["x"])).to_csv(csv, index=False)
        cfg = validate_config(tiny_config(csv, data={"features": ["x"], "scaler": "minmax"}))
        cfg = resolved_config(cfg).config
        data = prepare_data(load_table(cfg.data), cfg.data, lambda message: None)
        windows = make_windows(data, cfg.data, __import__("torch").device("cpu"))
        scaled[name] = windows["train"].inputs.numpy()
    for name in ("tiny", "huge", "shifted"):
        np.testing.assert_allclose(scaled[name], scaled["plain"], atol=2e-6)


def test_json_output_keeps_every_digit(tmp_path: Path, config_path: Path) -> None:
    assert run("train", "-c", str(config_path), "-o", str(tmp_path / "run"), "-q").exit_code == 0
    data = yaml.safe_load(config_path.read_text())["data"]["path"]
    csv = run("predict", str(tmp_path / "run"), data).stdout
    lines = run("predict", str(tmp_path / "run"), data, "--format", "json").stdout.splitlines()
    from_csv = pd.read_csv(pd.io.common.StringIO(csv))["y"].tolist()
    assert [json.loads(line)["y"] for line in lines] == from_csv  # identical floats
    from lstmcli.files import json_lines_text

    tiny = pd.DataFrame({"y": [1.7e-12, 981.2818198219541, np.nan]})
    assert [json.loads(line)["y"] for line in json_lines_text(tiny).splitlines()] == [
        1.7e-12,
        981.2818198219541,
        None,
    ]


def test_values_beyond_float32_are_read_exactly_and_scaled(tmp_path: Path) -> None:
    frame = seasonal_frame(80).assign(y=lambda f: f["y"] * 3.77e38)  # up to about 4e39
    path = write(tmp_path, frame, tiny_config(tmp_path / "data.csv"))
    checked = run("check", "-c", str(path))
    assert checked.exit_code == 0 and "inf" not in checked.stdout + checked.stderr
    trained = run("train", "-c", str(path), "-o", str(tmp_path / "run"), "-q")
    assert trained.exit_code == 0, trained.stderr
    unscaled = run("train", "-c", str(path), "-o", str(tmp_path / "raw"), "-s", "data.scaler=none")
    assert unscaled.exit_code == 1
    largest = frame["y"].abs().max()
    assert unscaled.stderr.count("Error:") == 1
    assert unscaled.stderr.endswith(
        f"Error: column 'y' holds values beyond float32's range after scaling (up to "
        f"{largest:g}); use data.scaler minmax, standard or robust\n"
    )


def test_several_targets_get_a_table_each(tmp_path: Path) -> None:
    frame = seasonal_frame(100).assign(x=lambda f: f["x"] * 1000 + 5000)
    config = tiny_config(tmp_path / "data.csv", data={"target": ["y", "x"]})
    path = write(tmp_path, frame, config)
    result = run("train", "-c", str(path), "-o", str(tmp_path / "run"))
    assert result.exit_code == 0, result.stderr
    assert "test metrics: y" in result.stderr and "test metrics: x" in result.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "rmse" not in metrics["model"] and set(metrics["skill_per_target"]) == {"y", "x"}


def test_duplicate_and_spaced_headers(tmp_path: Path) -> None:
    csv = tmp_path / "dup.csv"
    csv.write_text("date,y,y\n2020-01-01,1,2\n")
    cfg = tiny_config(csv)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = run("train", "-c", str(path))
    assert result.stderr == f"Error: {csv} has duplicate column names ['y']; rename them\n"
    spaced = tmp_path / "spaced.csv"
    frame = seasonal_frame(60)
    spaced.write_text(frame.to_csv(index=False).replace(",", ", "))
    path.write_text(yaml.safe_dump(tiny_config(spaced)))
    assert run("check", "-c", str(path)).exit_code == 0  # `date, y`: names without the space
    semicolons = tmp_path / "semi.csv"
    semicolons.write_text(frame.to_csv(index=False, sep=";"))
    path.write_text(yaml.safe_dump(tiny_config(semicolons)))
    result = run("train", "-c", str(path))
    assert result.stderr.endswith(
        "(the header looks separated by ';'; lstmcli reads comma-separated files, so convert "
        "the file first)\n"
    )
    # with decimal commas too, each row has two fields under a one-field header: pandas made
    # the first its index, and `init` took `date;y` for a numeric column of the digits after it
    european = tmp_path / "european.csv"
    european.write_text(frame.to_csv(index=False, sep=";", decimal=","))
    said = (
        f"Error: cannot read CSV {european}: its rows have more fields than its header's 1 "
        "(date;y;x); decimal commas, or a separator other than ','? lstmcli reads "
        "comma-separated files with decimal points\n"
    )
    result = run("init", "--data", str(european), str(tmp_path / "new.yaml"))
    assert (result.exit_code, result.stderr) == (1, said)
    assert not (tmp_path / "new.yaml").exists()
    path.write_text(yaml.safe_dump(tiny_config(european)))
    assert run("train", "-c", str(path)).stderr == said
    trailing = tmp_path / "trailing.csv"  # a comma at the end of every row: read as it means
    trailing.write_text("date,y\n2020-01-01,1,\n2020-02-01,2,\n")
    assert read_csv(trailing)["y"].tolist() == [1, 2]


def test_predict_warns_about_gaps_and_ignores_those_before_its_window(
    tmp_path: Path, config_path: Path
) -> None:
    assert run("train", "-c", str(config_path), "-o", str(tmp_path / "run"), "-q").exit_code == 0
    frame = seasonal_frame()
    gappy = frame.drop(index=frame.index[-30::3])  # every third row of the last 30 missing
    result = run("predict", str(tmp_path / "run"), "-", stdin=gappy.to_csv(index=False))
    assert result.exit_code == 0
    assert "step(s) between rows are not one step of the training data (MS)" in result.stderr
    early_gap = frame.astype({"y": object})
    early_gap.loc[5, "y"] = None  # long before the last 12 rows the forecast reads
    result = run("predict", str(tmp_path / "run"), "-", stdin=early_gap.to_csv(index=False))
    assert result.exit_code == 0, result.stderr


def test_rows_to_forecast_must_be_one_step_apart(tmp_path: Path, config_path: Path) -> None:
    assert run("train", "-c", str(config_path), "-o", str(tmp_path / "run"), "-q").exit_code == 0
    frame = seasonal_frame(40)
    future = pd.DataFrame({"date": ["2003-05-01", "2003-07-01"], "y": [np.nan, np.nan]})
    result = run(
        "predict",
        str(tmp_path / "run"),
        "-",
        "--steps",
        "2",
        stdin=pd.concat([frame, future]).to_csv(index=False),
    )
    assert result.exit_code == 1
    assert "rows to forecast must follow one another one step (MS) apart" in result.stderr


def test_business_days_continue_on_monday(tmp_path: Path) -> None:
    days = pd.bdate_range("2021-01-04", periods=200)
    days = days.delete([20, 55, 90])  # holidays: pandas then infers no frequency
    frame = seasonal_frame(len(days)).assign(date=days.strftime("%Y-%m-%d"))
    path = write(tmp_path, frame, tiny_config(tmp_path / "data.csv"))
    assert run("train", "-c", str(path), "-o", str(tmp_path / "run"), "-q").exit_code == 0
    assert load_checkpoint(tmp_path / "run").time_freq == "B"
    friday = frame[pd.to_datetime(frame["date"]).dt.day_of_week == 4].index[-1]
    out = run("predict", str(tmp_path / "run"), "-", stdin=frame.loc[:friday].to_csv(index=False))
    assert out.exit_code == 0, out.stderr
    next_day = pd.Timestamp(out.stdout.splitlines()[1].split(",")[0])
    assert next_day.day_name() == "Monday"


def test_calendar_hours_follow_the_local_clock_across_daylight_saving() -> None:
    times = pd.date_range("2021-03-27 06:00", periods=48, freq="h", tz="Europe/Berlin")
    frame = pd.DataFrame({"date": [t.isoformat() for t in times], "y": np.arange(48.0)})
    cfg = validate_config({"data": {"target": "y", "calendar": ["hour"]}}).data
    table = prepare_table(frame, cfg, "f")
    hour = np.round(np.arctan2(table.inputs[:, 1], table.inputs[:, 2]) / (2 * np.pi) * 24) % 24
    assert hour.tolist() == [t.hour for t in times]  # 06:00 stays 6 after the clocks change
    assert str(table.time.dt.tz) == "UTC"  # ordered in UTC, where the offsets agree


def test_small_rough_edges(tmp_path: Path, config_path: Path) -> None:
    out = run("init", "-")
    assert out.exit_code == 0 and out.stdout.startswith("data:") and not (tmp_path / "-").exists()
    nested = tmp_path / "a" / "b" / "run.yaml"
    assert run("init", str(nested)).exit_code == 0 and nested.is_file()
    assert run("train", "-c", str(config_path), "-o", str(tmp_path / "run"), "-q").exit_code == 0
    device = run("predict", str(tmp_path / "run"), "--device", "gpu")
    assert device.exit_code == 1
    assert (
        device.stderr == "Error: 'gpu' is not a device name; use auto, cpu, cuda, cuda:N or mps\n"
    )
    bad_set = run("train", "-c", str(config_path), "-s", "training.epochs=-1")
    assert bad_set.stderr.startswith("Error: --set: training.epochs: ")
    assert run("plot", "--predictions", str(config_path), "--baseline").exit_code == 2


def test_a_finished_run_is_not_resumed(tmp_path: Path, config_path: Path) -> None:
    assert run("train", "-c", str(config_path), "-o", str(tmp_path / "run"), "-q").exit_code == 0
    result = run("train", "--resume", str(tmp_path / "run"))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {tmp_path / 'run'} already ran 3 epoch(s) (training.epochs 3); to train "
        "longer, resume with --set training.epochs=N for some N above 3\n"
    )
    longer = run("train", "--resume", str(tmp_path / "run"), "-s", "training.epochs=4", "-q")
    assert longer.exit_code == 0, longer.stderr
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs_run"] == 4


def test_tables_and_quiet_flags_on_a_pipe(tmp_path: Path) -> None:
    frames = [
        seasonal_frame(60, seed=k).assign(id=f"store_{k}") for k in range(3)
    ]  # same dates: a panel
    config = tiny_config(tmp_path / "data.csv", data={"id_column": "id", "lookback": 6})
    path = write(tmp_path, pd.concat(frames, ignore_index=True), config)
    trained = run("train", "-c", str(path), "-o", str(tmp_path / "run"))
    assert trained.exit_code == 0, trained.stderr
    assert "seasonal_naive" in trained.stderr  # names are not cut short on a pipe
    quiet = run("check", "-c", str(path), "-q", "-o", str(tmp_path / "new"))
    assert quiet.exit_code == 0 and quiet.stdout == "" and quiet.stderr == ""
    evaluated = run("evaluate", str(tmp_path / "run"), str(tmp_path / "data.csv"), "-q")
    assert evaluated.exit_code == 0 and evaluated.stderr == "" and evaluated.stdout == ""


def test_check_words_empty_parts_plainly(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        seasonal_frame(30),
        tiny_config(tmp_path / "data.csv", data={"split": {"train": 0.95, "test": 0.05}}),
    )
    result = run("check", "-c", str(path))
    assert "test:           rows 28..29 (2 rows), 2 windows" in result.stdout
    path = write(
        tmp_path,
        seasonal_frame(30),
        tiny_config(
            tmp_path / "data.csv",
            data={"split": {"val_start": "2002-06-01", "test_start": "2002-06-01"}},
        ),
    )
    result = run("check", "-c", str(path))
    assert "val:            no rows, 0 windows" in result.stdout
    assert (
        "Error: the val part has 0 of 30 rows, too few for one window: lookback 12 and horizon 1 "
        "need at least 1 row there"
    ) in result.stderr


def test_a_zoned_model_warns_about_naive_input(tmp_path: Path) -> None:
    frame = seasonal_frame(80)
    zoned = frame.assign(date=pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%dT00:00:00+01:00"))
    path = write(tmp_path, zoned, tiny_config(tmp_path / "data.csv"))
    assert run("train", "-c", str(path), "-o", str(tmp_path / "run"), "-q").exit_code == 0
    result = run("predict", str(tmp_path / "run"), "-", stdin=frame.to_csv(index=False))
    assert result.exit_code == 0
    assert (
        "Warning: <stdin>: the model was trained on times with a UTC offset (UTC+01:00), the "
        "input's are without one"
    ) in result.stderr


@pytest.mark.parametrize("test_start", ["2003-01-01", "2003-01-01 00:00+01:00"])
def test_a_zoned_time_column_splits_by_date(tmp_path: Path, test_start: str) -> None:
    """A date split on times with a UTC offset: a plain date is read in the column's zone."""
    from lstmcli.config.edit import validate_config
    from lstmcli.data.table import prepare_table
    from lstmcli.data.windows import split_rows

    frame = seasonal_frame(80)
    zoned = frame.assign(date=pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%dT00:00:00+01:00"))
    split = {"val_start": "2002-06-01", "test_start": test_start}
    cfg = validate_config(tiny_config(tmp_path / "data.csv", data={"split": split})).data
    bounds = split_rows(prepare_table(zoned, cfg, "data.csv"), cfg).bounds
    first = int(np.flatnonzero(frame["date"] == "2003-01-01")[0])
    assert int(bounds["test"][0][0]) == first and int(bounds["val"][0][0]) == first - 7


def test_checkpoint_errors_say_what_the_file_is_not(tmp_path: Path, config_path: Path) -> None:
    result = run("predict", str(config_path), str(config_path))
    assert result.stderr == (
        f"Error: {config_path} is not a loadable lstmcli checkpoint: not a file that `lstmcli "
        "train` writes (give a run folder or its model.pt)\n"
    )


def test_a_series_too_short_to_score_is_named(tmp_path: Path) -> None:
    """A panel's series whose test windows all lack the history seasonal naive needs was left
    out of every score, and the per-series table counted one series fewer, without a word."""
    frame = two_series(("long", "short"), 60)
    frame = frame[(frame["id"] == "long") | (frame.groupby("id").cumcount() < 13)]
    data = {"id_column": "id", "lookback": 3, "horizon": 2}
    config = validate_config(tiny_config(tmp_path / "data.csv", data=data))
    write(tmp_path, frame, tiny_config(tmp_path / "data.csv", data=data))
    warnings: list[str] = []
    metrics = train_run(config, tmp_path / "run", warn=warnings.append).metrics
    assert metrics["series_unscored"] == ["short"] and metrics["series"]["count"] == 1
    skipped = metrics["windows_skipped"]
    assert (
        skipped > 0
        and (
            f"{skipped} test window(s) are not scored: the baselines need history before a "
            "window's first target in its series (one row, one season for seasonal naive); series "
            "short has no score (too short to score; forecasts are written all the same)"
        )
        in warnings
    )
    tested = pd.read_csv(tmp_path / "run" / "test_predictions.csv")
    assert "short" in set(tested["id"].astype(str))  # forecast all the same
    # a series with no test window at all (its test rows fewer than the horizon): named too
    frame = two_series(("long", "tiny"), 60)
    frame = frame[(frame["id"] == "long") | (frame.groupby("id").cumcount() < 12)]
    six = data | {"horizon": 6}  # the tiny series' test part: 2 rows
    write(tmp_path, frame, tiny_config(tmp_path / "data.csv", data=six))
    config = validate_config(tiny_config(tmp_path / "data.csv", data=six))
    warnings.clear()
    metrics = train_run(config, tmp_path / "run2", warn=warnings.append).metrics
    assert metrics["series_untested"] == ["tiny"] and metrics["series"]["count"] == 1
    assert (
        "series tiny has no test window (too few rows in the test part for a horizon of 6): no "
        "score, and no row in test_predictions.csv; predict forecasts it"
    ) in warnings
