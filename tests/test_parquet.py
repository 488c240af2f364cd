"""Parquet in and out: the same run as from the CSV, ids as text, clean errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from .conftest import seasonal_frame, tiny_config
from .helpers import run as cli


def test_a_parquet_file_trains_predicts_and_writes_like_its_csv(tmp_path: Path) -> None:
    frame = seasonal_frame(120)
    frame.to_csv(tmp_path / "s.csv", index=False)
    typed = frame.assign(date=pd.to_datetime(frame["date"]), extra=1.0)  # native times, a column
    typed.to_parquet(tmp_path / "s.parquet", index=False)  # the run does not read
    runs = {}
    for name in ("s.csv", "s.parquet"):
        config = tiny_config(tmp_path / name)
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(config))
        out = tmp_path / f"run_{name}"
        result = cli("train", "-c", str(tmp_path / f"{name}.yaml"), "-o", str(out))
        assert result.exit_code == 0, result.output
        runs[name] = json.loads((out / "metrics.json").read_text())["model"]["rmse"]
    assert runs["s.csv"] == runs["s.parquet"]
    # predict reads Parquet and writes it when the output file says so.
    run = str(tmp_path / "run_s.parquet")
    as_csv = cli("predict", run, str(tmp_path / "s.csv"), "-q")
    written = tmp_path / "out" / "forecast.parquet"
    as_parquet = cli("predict", run, str(tmp_path / "s.parquet"), "-o", str(written), "-q")
    assert as_csv.exit_code == 0 and as_parquet.exit_code == 0, as_parquet.output
    expected = pd.read_csv(pd.io.common.StringIO(as_csv.stdout))
    got = pd.read_parquet(written)
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_series_equal(got["y"], expected["y"], rtol=1e-6)


def test_parquet_ids_are_labels_and_a_bad_file_is_one_error(tmp_path: Path) -> None:
    from lstmcli.data.reading import read_csv

    pd.DataFrame({"id": [7, 7], "v": [1.0, 2.0]}).to_parquet(tmp_path / "p.parquet")
    frame = read_csv(tmp_path / "p.parquet", "p.parquet", text=["id"])
    assert frame["id"].tolist() == ["7", "7"]
    (tmp_path / "bad.parquet").write_text("not parquet")
    config = tiny_config(tmp_path / "bad.parquet")
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    result = cli("train", "-c", str(tmp_path / "run.yaml"))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot read Parquet {tmp_path / 'bad.parquet'}: ")
    assert len(result.stderr.strip().splitlines()) == 1
