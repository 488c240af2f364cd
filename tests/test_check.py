"""`lstmcli check`: the facts, every problem exactly once, and train's own answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tests.conftest import seasonal_frame
from tests.helpers import run
from tests.test_errors import config_for


def test_check_reports_every_problem_once_and_fails(tmp_path: Path) -> None:
    frame = seasonal_frame(60).astype({"y": object})
    frame.loc[[4, 7], "y"] = np.nan
    frame = frame.drop(index=[20, 21])  # a gap in the monthly dates
    config = config_for(tmp_path, frame, data={"lookback": 40, "season": None})
    result = run("check", "-c", str(config), cwd=tmp_path)
    assert result.exit_code == 1
    assert "missing values: y 2 (data.missing: error)" in result.stdout
    assert (
        "frequency:      MS with rows missing: 1 gap(s), the first after 2001-08-01 00:00:00 "
        "(rows are read in order; data.missing fills empty cells, not missing rows)"
    ) in result.stdout
    assert result.stderr.splitlines() == [
        f"Error: column 'y' in {tmp_path / 'data.csv'} has a missing value at line 6; set "
        "data.missing to drop, ffill or interpolate to accept gaps",
        "Error: the train part has 40 of 58 rows, too few for one window: lookback 40 and "
        "horizon 1 need at least 41 rows there; use more data or change data.split, "
        "data.lookback or data.horizon",
    ]
    assert result.stdout.endswith("2 problem(s): training would fail\n")
    fixed = run("check", "-c", str(config), "-s", "data.missing=interpolate",
                "-s", "data.lookback=6", cwd=tmp_path)  # fmt: skip
    assert fixed.exit_code == 0, fixed.stderr
    assert "train:          rows 0..39 (40 rows), 34 windows" in fixed.stdout
    assert fixed.stderr.splitlines() == [
        f"Warning: {tmp_path / 'data.csv'}: filled 2 in 'y' missing value(s) (interpolate)",
        f"Warning: {tmp_path / 'data.csv'}: 1 gap(s) of missing rows in the MS times, the first "
        "after 2001-08-01 00:00:00; the model reads rows, not times, so a window across a gap "
        "spans more time than its rows (data.missing fills empty cells, not missing rows: add "
        "the missing rows with empty values to have them filled)",
    ]
    assert fixed.stdout.endswith("ok: training would start\n")
    assert not (tmp_path / "runs").exists()  # a check writes nothing


def test_problems_in_several_columns_are_each_listed_once(tmp_path: Path) -> None:
    frame = seasonal_frame(60).astype({"y": object, "x": object, "date": object})
    frame.loc[3, "x"] = "oops"
    frame.loc[9, "y"] = np.nan
    frame.loc[12, "date"] = "yesterday"
    config = config_for(tmp_path, frame, data={"features": ["x"]})
    csv = tmp_path / "data.csv"
    result = run("check", "-c", str(config), cwd=tmp_path)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: column 'y' in {csv} has a missing value at line 11; set data.missing to "
        "drop, ffill or interpolate to accept gaps",
        f"Error: column 'x' in {csv} has a non-numeric value 'oops' at line 5",
        f"Error: time column 'date' in {csv}: cannot parse 'yesterday' as a time at line 14",
    ]
    assert result.stdout.endswith("3 problem(s): training would fail\n")


def test_check_and_train_word_a_problem_the_same_way(tmp_path: Path) -> None:
    frame = seasonal_frame(60)
    frame = pd.concat([frame, frame.iloc[[10]]])  # a duplicate time
    config = config_for(tmp_path, frame)
    checked = run("check", "-c", str(config), cwd=tmp_path)
    trained = run("train", "-c", str(config), "-o", "out", cwd=tmp_path)
    assert checked.exit_code == trained.exit_code == 1
    assert (
        checked.stderr
        == trained.stderr
        == (
            f"Error: time column 'date' in {tmp_path / 'data.csv'} has duplicate time "
            "2000-11-01 00:00:00; each row must be one time step of its series (several "
            "series in one file? set data.id_column to the column that names them)\n"
        )
    )


def test_a_missing_column_stops_the_check_with_one_line(tmp_path: Path) -> None:
    config = config_for(tmp_path, seasonal_frame(60).drop(columns=["y"]))
    result = run("check", "-c", str(config), cwd=tmp_path)
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"Error: column(s) ['y'] not found in {tmp_path / 'data.csv'}; available: date, x\n"
    )
    assert result.stdout.splitlines() == [
        f"data:           {tmp_path / 'data.csv'}: 60 rows, 2 columns",
        "1 problem(s): training would fail",
    ]


def test_a_missing_column_does_not_hide_the_other_problems(tmp_path: Path) -> None:
    """A file with a missing column AND an unparseable time and a non-number: all three."""
    frame = seasonal_frame(60).drop(columns=["y"]).astype({"x": object, "date": object})
    frame.loc[12, "date"] = "yesterday"
    frame.loc[3, "x"] = "oops"
    config = config_for(tmp_path, frame, data={"features": ["x"]})
    csv = tmp_path / "data.csv"
    result = run("check", "-c", str(config), cwd=tmp_path)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: column(s) ['y'] not found in {csv}; available: date, x",
        f"Error: column 'x' in {csv} has a non-numeric value 'oops' at line 5",
        f"Error: time column 'date' in {csv}: cannot parse 'yesterday' as a time at line 14",
    ]
    assert result.stdout.endswith("3 problem(s): training would fail\n")


def test_quantile_intervals_get_a_note_on_their_coverage(tmp_path: Path) -> None:
    model = {"levels": [80, 95], "intervals": "quantile"}
    config = config_for(tmp_path, model=model)
    result = run("check", "-c", str(config), cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == [
        "Warning: model.intervals: quantile: the quantile head's bands may undercover on "
        "rolling test rows (in our measurement 80%/95% bands covered 70%/88% on the monthly "
        "El Nino series); model.intervals: conformal (the default) is calibrated on the val "
        "part's origins"
    ]
    assert result.stdout.endswith("ok: training would start\n")
    conformal = run("check", "-c", str(config), "-s", "model.intervals=conformal", cwd=tmp_path)
    assert conformal.exit_code == 0 and conformal.stderr == ""
