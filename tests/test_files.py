from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmcli.files import atomic_path, csv_text


def test_csv_text_reads_back_identical() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(0, 1, 1000) * 10.0 ** rng.integers(-8, 12, 1000)
    values[1::7] = np.nan
    frame = pd.DataFrame(
        {
            "origin": pd.date_range("2020-01-01", periods=1000, freq="D"),
            "when": pd.date_range("2020-01-01 00:00:30", periods=1000, freq="37min"),
            "step": np.arange(1000),
            "y": values,
        }
    )
    text = csv_text(frame)
    assert text.splitlines()[:2] == [
        "origin,when,step,y",
        f"2020-01-01,2020-01-01 00:00:30,0,{float(values[0])!r}",
    ]
    # Python's float(): pandas 2's default float parser may miss the last bit (pandas 3's not)
    back = pd.read_csv(
        io.StringIO(text),
        parse_dates=["origin", "when"],
        converters={"y": lambda v: float(v) if v else np.nan},
    )
    pd.testing.assert_frame_equal(back, frame, check_dtype=False, check_exact=True)


def test_csv_text_falls_back_to_pandas_for_text() -> None:
    frame = pd.DataFrame({"id, name": ["a,b", "c"], "y": [1.5, 2.0]})
    assert csv_text(frame) == frame.to_csv(index=False)


def test_atomic_path_leaves_the_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]
