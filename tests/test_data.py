from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmcli.config.edit import validate_config
from lstmcli.data.reading import read_csv
from lstmcli.data.table import prepare_table
from lstmcli.data.windows import Split, split_table
from lstmcli.errors import LstmcliError


def data_cfg(**data: object):
    return validate_config({"data": {"time_column": None, "target": "y", **data}}).data


def test_scalers_are_fitted_on_train_rows_in_a_run(tmp_path: Path) -> None:
    """Changing the test rows must not change the fitted statistics (the tutorial's leak)."""
    from lstmcli.run.pipeline import train_run
    from tests.conftest import seasonal_frame, tiny_config

    frame = seasonal_frame(100)
    stats = []
    for test_scale in (1.0, 1000.0):
        changed = frame.copy()
        changed.loc[80:, "y"] *= test_scale
        csv = tmp_path / f"s{test_scale}.csv"
        changed.to_csv(csv, index=False)
        cfg = validate_config(tiny_config(csv, training={"epochs": 1}))
        result = train_run(cfg, tmp_path / f"run{test_scale}")
        from lstmcli.model.checkpoint import load_checkpoint

        checkpoint = load_checkpoint(result.run_dir)
        stats.append((checkpoint.target_scaler.center, checkpoint.target_scaler.scale))
        train_y = frame["y"].to_numpy()[:70]
        np.testing.assert_allclose(checkpoint.target_scaler.center, [train_y.mean()], rtol=1e-6)
        np.testing.assert_allclose(checkpoint.target_scaler.scale, [train_y.std()], rtol=1e-5)
    np.testing.assert_array_equal(stats[0][0], stats[1][0])


def test_rows_are_ordered_by_time_and_values_kept() -> None:
    frame = pd.DataFrame(
        {"date": ["2020-03-01", "2020-01-01", "2020-02-01"], "y": [3.5, 1.25, 2.0]}
    )
    table = prepare_table(frame, data_cfg(time_column="date"), "t.csv")
    assert table.targets[:, 0].tolist() == [1.25, 2.0, 3.5]
    assert table.time.dt.month.tolist() == [1, 2, 3]
    numeric_time = pd.DataFrame({"year": [1702, 1700, 1701], "y": [3.0, 1.0, 2.0]})
    table = prepare_table(numeric_time, data_cfg(time_column="year"), "t.csv")
    assert table.time.tolist() == [1700, 1701, 1702]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (
            pd.DataFrame({"date": ["2020-01-01"], "z": [1.0]}),
            "column(s) ['y'] not found in t.csv; available: date, z",
        ),
        (
            pd.DataFrame({"date": ["2020-01-01", "2020-01-02"], "y": ["1.5", "oops"]}),
            "column 'y' in t.csv has a non-numeric value 'oops' at line 3",
        ),
        (
            pd.DataFrame(
                {"date": ["2020-01-01", "2020-01-02", "2020-01-03"], "y": [1.0, None, 2.0]}
            ),
            "column 'y' in t.csv has a missing value at line 3; set data.missing to drop, ffill "
            "or interpolate to accept gaps",
        ),
        (
            pd.DataFrame({"date": ["2020-01-01", "2020-01-02"], "y": [1.0, float("inf")]}),
            "column 'y' in t.csv has the value inf at line 3",
        ),
        (
            pd.DataFrame({"date": ["2020-01-01", "soon"], "y": [1.0, 2.0]}),
            "time column 'date' in t.csv: cannot parse 'soon' as a time at line 3",
        ),
        (
            pd.DataFrame(
                {"date": ["2020-01-02", "2020-01-01", "2020-01-02"], "y": [1.0, 2.0, 3.0]}
            ),
            "time column 'date' in t.csv has duplicate time 2020-01-02 00:00:00; each row must be "
            "one time step of its series (several series in one file? set data.id_column to "
            "the column that names them)",
        ),
    ],
)
def test_bad_data_is_named_precisely(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(LstmcliError) as info:
        prepare_table(frame, data_cfg(time_column="date"), "t.csv")
    assert str(info.value) == message


def test_read_csv_errors(tmp_path: Path) -> None:
    with pytest.raises(LstmcliError, match="data file not found: .*nope.csv"):
        read_csv(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(LstmcliError, match="data file is empty"):
        read_csv(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("date,y\n")
    with pytest.raises(LstmcliError, match="has a header but no rows"):
        read_csv(tmp_path / "header.csv")
    with pytest.raises(LstmcliError, match="unknown built-in dataset 'nope'; available: "):
        read_csv("builtin:nope")
    assert len(read_csv("builtin:co2_weekly")) == 2284


def gappy() -> pd.DataFrame:
    # rows out of time order on purpose: line numbers must still point into the file
    return pd.DataFrame(
        {
            "date": ["2020-01-04", "2020-01-01", "2020-01-02", "2020-01-03"],
            "y": [4.0, 1.0, None, 3.0],
            "x": [40.0, 10.0, 20.0, None],
        }
    )


@pytest.mark.parametrize(
    ("policy", "y", "x"),
    [
        ("drop", [1.0, 4.0], [10.0, 40.0]),  # 01-02 and 01-03 each miss a value
        ("ffill", [1.0, 1.0, 3.0, 4.0], [10.0, 20.0, 20.0, 40.0]),
        ("interpolate", [1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0]),
    ],
)
def test_missing_value_policies(policy: str, y: list[float], x: list[float]) -> None:
    warnings: list[str] = []
    cfg = data_cfg(time_column="date", features=["x"], missing=policy)
    table = prepare_table(gappy(), cfg, "t", warn=warnings.append)
    if policy == "drop":
        assert warnings == ["t: dropped 2 row(s) with missing values"]
        assert table.time.dt.day.tolist() == [1, 4]
    else:
        assert warnings == [f"t: filled 1 in 'y', 1 in 'x' missing value(s) ({policy})"]
    assert table.targets[:, 0].tolist() == y
    assert table.inputs[:, 1].tolist() == x


def test_missing_value_errors_name_the_file_line() -> None:
    with pytest.raises(LstmcliError, match=r"^column 'y' in t has a missing value at line 4; set"):
        prepare_table(gappy(), data_cfg(time_column="date", features=["x"]), "t")
    leading = gappy().assign(y=[4.0, None, 2.0, 3.0])
    with pytest.raises(LstmcliError) as info:
        prepare_table(leading, data_cfg(time_column="date", missing="ffill"), "t")
    assert str(info.value) == (
        "column 'y' in t has a missing value at line 3 with no earlier value to fill it from "
        "(data.missing: ffill)"
    )


def test_split_by_dates() -> None:
    frame = pd.DataFrame({"date": pd.date_range("2000-01-01", periods=40, freq="MS"), "y": 1.0})
    cfg = data_cfg(
        time_column="date", lookback=3, split={"val_start": "2002-01-01", "test_start": "2002-07"}
    )
    table = prepare_table(frame.astype({"y": float}), cfg, "t")
    split = split_table(40, cfg, table.time)
    assert bounds(split) == {"train": (0, 24), "val": (24, 30), "test": (30, 40)}
    only_test = data_cfg(time_column="date", lookback=3, split={"test_start": "2003-01-01"})
    assert bounds(split_table(40, only_test, table.time)) == {"train": (0, 36), "test": (36, 40)}
    with pytest.raises(LstmcliError, match="data.split.test_start: 'soon' is not a time like"):
        split_table(40, data_cfg(time_column="date", split={"test_start": "soon"}), table.time)
    years = prepare_table(
        pd.DataFrame({"year": range(1900, 1940), "y": 1.0}),
        data_cfg(time_column="year", lookback=3, split={"test_start": 1930}),
        "t",
    )
    assert bounds(
        split_table(
            40, data_cfg(time_column="year", lookback=3, split={"test_start": 1930}), years.time
        )
    )["test"] == (30, 40)


def test_times_across_a_daylight_saving_change_are_read_in_utc() -> None:
    stamps = ["2024-03-31T01:00:00+0100", "2024-03-31T03:00:00+0200", "2024-03-31T04:00:00+0200"]
    frame = pd.DataFrame({"ts": stamps, "y": [1.0, 2.0, 3.0]})
    table = prepare_table(frame, data_cfg(time_column="ts"), "t")
    assert [t.hour for t in table.time] == [0, 1, 2] and str(table.time.dt.tz) == "UTC"


def bounds(split: Split) -> dict[str, tuple[int, int]]:
    """A one-series split's (start, stop) per part."""
    return {name: (int(a[0]), int(b[0])) for name, (a, b) in split.bounds.items()}
