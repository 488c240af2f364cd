from __future__ import annotations

import io
import json
import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lstmcli.config.edit import validate_config
from lstmcli.model.checkpoint import load_checkpoint, save_checkpoint
from lstmcli.run.lock import LOCK_FILE, run_folder_lock
from lstmcli.run.pipeline import train_run
from lstmcli.use.predict import default_device
from tests.conftest import seasonal_frame, tiny_config
from tests.helpers import run_wide as run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three small trained runs: forecast (horizon 3), forecast with a feature, regress."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("runs")
    csv = folder / "series.csv"
    frame = seasonal_frame()
    frame.assign(x2=frame["x"] * 2 + 1).to_csv(csv, index=False)
    configs = {
        "forecast": tiny_config(csv, data={"horizon": 3, "window_norm": "standard"}),
        "feature": tiny_config(csv, data={"target": ["y", "x2"], "features": ["x"], "horizon": 2}),
        "regress": tiny_config(csv, data={"task": "regress", "features": ["x"], "lookback": 4}),
        "one_step": tiny_config(csv, data={"time_column": None, "season": None}),
    }
    out = {"csv": csv}
    for name, config in configs.items():
        out[name] = train_run(validate_config(config), folder / name).run_dir
    return out


def test_rolling_on_the_test_part_equals_test_predictions(runs: dict[str, Path]) -> None:
    saved = pd.read_csv(runs["forecast"] / "test_predictions.csv")
    metrics = json.loads((runs["forecast"] / "metrics.json").read_text())
    frame = pd.read_csv(runs["csv"])
    test_start = metrics["rows"]["train"] + metrics["rows"]["val"]
    part = frame.iloc[test_start - 12 :]  # the test rows and the lookback rows before them
    result = run("predict", str(runs["forecast"]), "-", "--rolling", stdin=part.to_csv(index=False))
    assert result.exit_code == 0, result.stderr
    rolled = pd.read_csv(io.StringIO(result.stdout))
    assert list(rolled.columns) == list(saved.columns)
    pd.testing.assert_frame_equal(rolled, saved, check_exact=False, rtol=1e-6)


def test_column_order_extra_columns_stdin_and_file_give_the_same_output(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    frame = pd.read_csv(runs["csv"]).iloc[-40:]
    shuffled = frame[["x2", "x", "y", "date"]].assign(unused="z").iloc[::-1]  # rows reversed too
    path = tmp_path / "in.csv"
    shuffled.to_csv(path, index=False)
    from_stdin = run("predict", str(runs["feature"]), stdin=frame.to_csv(index=False))
    from_file = run("predict", str(runs["feature"]), str(path))
    assert from_stdin.exit_code == from_file.exit_code == 0
    assert from_stdin.stdout == from_file.stdout
    out = pd.read_csv(io.StringIO(from_file.stdout))
    assert list(out.columns) == ["date", "y", "x2"]  # several targets, after their feature
    assert out["date"].tolist() == ["2013-05-01", "2013-06-01"]  # continues the monthly dates


def test_recursive_steps_equal_repeated_one_step_forecasts(runs: dict[str, Path]) -> None:
    frame = pd.read_csv(runs["csv"])[["y"]].iloc[-20:]
    result = run("predict", str(runs["one_step"]), "--steps", "4", stdin=frame.to_csv(index=False))
    assert result.exit_code == 0, result.stderr
    recursive = pd.read_csv(io.StringIO(result.stdout))
    assert recursive["step"].tolist() == [1, 2, 3, 4]
    manual = frame.copy()
    for _ in range(4):
        one = run("predict", str(runs["one_step"]), stdin=manual.to_csv(index=False))
        value = pd.read_csv(io.StringIO(one.stdout))["y"].iloc[0]
        manual = pd.concat([manual, pd.DataFrame({"y": [value]})], ignore_index=True)
    np.testing.assert_allclose(recursive["y"], manual["y"].iloc[-4:], rtol=1e-6)


def test_steps_beyond_the_horizon_need_targets_only(runs: dict[str, Path]) -> None:
    frame = pd.read_csv(runs["csv"]).iloc[-20:]
    result = run("predict", str(runs["feature"]), "--steps", "5", stdin=frame.to_csv(index=False))
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: --steps 5 is more than the model's horizon (2) and would need future values of "
        "the feature column(s) ['x']; recursive forecasts work only when every past input is "
        "a target (known_features and calendar are fine)\n"
    )
    shorter = run("predict", str(runs["forecast"]), "--steps", "2", stdin=frame.to_csv(index=False))
    full = run("predict", str(runs["forecast"]), stdin=frame.to_csv(index=False))
    assert shorter.stdout.splitlines() == full.stdout.splitlines()[:3]


def test_regress_predicts_every_row_with_a_full_window(runs: dict[str, Path]) -> None:
    frame = pd.read_csv(runs["csv"]).iloc[-10:]
    with_target = run("predict", str(runs["regress"]), stdin=frame.to_csv(index=False))
    without = run(
        "predict", str(runs["regress"]), stdin=frame.drop(columns="y").to_csv(index=False)
    )
    a = pd.read_csv(io.StringIO(with_target.stdout))
    b = pd.read_csv(io.StringIO(without.stdout))
    assert list(a.columns) == ["date", "y", "y_actual"] and list(b.columns) == ["date", "y"]
    assert len(a) == 10 - 4 + 1
    np.testing.assert_array_equal(a["y_actual"], frame["y"].iloc[3:])
    pd.testing.assert_series_equal(a["y"], b["y"])
    unknown = frame.assign(y=[*frame["y"].iloc[:-1], None])  # future target not known yet
    last = pd.read_csv(
        io.StringIO(run("predict", str(runs["regress"]), stdin=unknown.to_csv(index=False)).stdout)
    )
    assert np.isnan(last["y_actual"].iloc[-1]) and last["y"].iloc[-1] == pytest.approx(
        a["y"].iloc[-1]
    )


def test_steps_are_refused_for_a_regress_model(runs: dict[str, Path]) -> None:
    frame = pd.read_csv(runs["csv"]).iloc[-10:]
    result = run("predict", str(runs["regress"]), "--steps", "3", stdin=frame.to_csv(index=False))
    assert result.exit_code == 1
    assert (
        result.stderr
        == "Error: --steps is for forecast models; a regress model predicts each row\n"
    )


def test_json_lines_output(runs: dict[str, Path]) -> None:
    frame = pd.read_csv(runs["csv"]).iloc[-20:]
    result = run(
        "predict", str(runs["forecast"]), "--format", "json", stdin=frame.to_csv(index=False)
    )
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["date"][:10] for r in rows] == ["2013-05-01", "2013-06-01", "2013-07-01"]
    assert all(isinstance(r["y"], float) for r in rows)


@pytest.mark.parametrize(
    ("transform", "message"),
    [
        (
            lambda f: f.drop(columns="x"),
            "Error: column(s) ['x'] not found in <stdin>; available: date, y, x2",
        ),
        (
            lambda f: f.iloc[:5],
            "Error: <stdin> is shorter than the lookback (12 rows): it has 5 row(s)",
        ),
        (
            lambda f: f.assign(x=f["x"].astype(str).where(f.index != f.index[3], "oops")),
            "Error: column 'x' in <stdin> has a non-numeric value 'oops' at line 5",
        ),
        (
            lambda f: f.assign(y=f["y"].where(f.index != f.index[15])),
            "Error: column 'y' in <stdin> has a missing value at line 17; the model was trained "
            "with data.missing: error, so fill the gap in the input (or train a model with "
            "data.missing set to drop, ffill or interpolate)",
        ),
    ],
)
def test_bad_predict_input(
    runs: dict[str, Path],
    tmp_path: Path,
    transform: Callable[[pd.DataFrame], pd.DataFrame],
    message: str,
) -> None:
    frame = transform(pd.read_csv(runs["csv"]).iloc[-20:].reset_index(drop=True))
    out = tmp_path / "out.csv"
    result = run("predict", str(runs["feature"]), "-o", str(out), stdin=frame.to_csv(index=False))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [message]
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_rolling_needs_lookback_plus_horizon_rows(runs: dict[str, Path]) -> None:
    frame = pd.read_csv(runs["csv"]).iloc[-13:]
    result = run("predict", str(runs["forecast"]), "--rolling", stdin=frame.to_csv(index=False))
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: <stdin> is shorter than one window (lookback 12 and horizon 3 need 15 rows): "
        "it has 13 row(s)\n"
    )


def test_output_file_is_written_whole(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "next.csv"
    result = run("predict", str(runs["forecast"]), str(runs["csv"]), "-o", str(out))
    assert result.exit_code == 0 and result.stdout == ""
    assert len(pd.read_csv(out)) == 3 and [p.name for p in tmp_path.iterdir()] == ["next.csv"]
    # a missing folder is created, as train -o, plot -o and init do
    nested = tmp_path / "no" / "such" / "x.csv"
    created = run("predict", str(runs["forecast"]), str(runs["csv"]), "-o", str(nested))
    assert created.exit_code == 0 and pd.read_csv(nested).equals(pd.read_csv(out))


def test_bad_command_lines_exit_2(runs: dict[str, Path]) -> None:
    assert run("predict", str(runs["forecast"]), "--format", "xml").exit_code == 2
    assert run("predict", str(runs["forecast"]), "--steps", "0").exit_code == 2
    assert run("predict", str(runs["forecast"]), "--rolling", "--steps", "2").exit_code == 2
    not_a_run = run("predict", str(runs["csv"]), str(runs["csv"]))
    assert not_a_run.exit_code == 1 and not_a_run.stderr.startswith("Error: ")


def test_a_run_folder_being_trained_is_refused_and_a_stale_lock_is_not(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "run"
    shutil.copytree(runs["forecast"], folder)
    before = sorted(p.name for p in folder.iterdir())
    frame = pd.read_csv(runs["csv"]).iloc[-20:].to_csv(index=False)
    model = str(folder / "model.pt")
    with run_folder_lock(folder):  # held by this process, as a training run holds it
        for args in (
            ["predict", str(folder)],
            ["predict", model, "--rolling"],  # a model.pt inside the folder counts too
            ["evaluate", str(folder), "-"],
            ["plot", str(folder)],
            ["export", model],
        ):
            result = run(*args, stdin=frame)
            assert result.exit_code == 1, (args, result.stdout, result.stderr)
            assert result.stdout == ""
            lines = result.stderr.splitlines()
            assert len(lines) == 1, (args, result.stderr)
            assert lines[0].startswith(
                f"Error: run folder {folder} is being written by pid {os.getpid()} on "
                f"{socket.gethostname()} (started 20"
            ), args
            assert lines[0].endswith("); wait for the run to finish, then use it"), args
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written meanwhile
    # A writer killed mid-run leaves its details but no lock: the folder reads as it is.
    dead = {"pid": 2**22 + 12345, "host": socket.gethostname(), "started": "2024-01-01"}
    (folder / LOCK_FILE).write_text(json.dumps(dead))
    expected = run("predict", str(runs["forecast"]), stdin=frame)
    stale = run("predict", str(folder), stdin=frame)
    assert stale.exit_code == 0, stale.stderr
    assert stale.stdout == expected.stdout and len(stale.stdout.splitlines()) == 4


def test_a_gpu_trained_checkpoint_runs_on_the_cpu(
    runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint = load_checkpoint(runs["forecast"])
    checkpoint.trained_on = "cuda:1"
    save_checkpoint(checkpoint, tmp_path / "model.pt")
    frame = pd.read_csv(runs["csv"]).iloc[-20:].to_csv(index=False)
    expected = run("predict", str(runs["forecast"]), stdin=frame)
    assert expected.exit_code == 0 and len(expected.stdout.splitlines()) == 4  # header + 3 steps
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a machine without a GPU
    assert default_device(checkpoint) == torch.device("cpu")
    moved = run("predict", str(tmp_path / "model.pt"), stdin=frame)
    assert moved.exit_code == 0 and moved.stdout == expected.stdout
    asked = run("predict", str(tmp_path), "--device", "cuda", stdin=frame)
    assert asked.exit_code == 1
    assert asked.stderr == (
        "Error: device 'cuda' is not available: torch sees no CUDA GPU; use cpu or auto\n"
    )
    # on a machine with GPUs it goes back to the one it trained on, or the first
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert default_device(checkpoint) == torch.device("cuda", 1)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert default_device(checkpoint) == torch.device("cuda", 0)


def test_evaluate_matches_an_independent_computation(runs: dict[str, Path]) -> None:
    frame = pd.read_csv(runs["csv"]).iloc[-40:].reset_index(drop=True)
    result = run("evaluate", str(runs["forecast"]), "-", "--json", stdin=frame.to_csv(index=False))
    assert result.exit_code == 0, result.stderr
    got = json.loads(result.stdout)
    rolled = pd.read_csv(
        io.StringIO(
            run(
                "predict", str(runs["forecast"]), "--rolling", stdin=frame.to_csv(index=False)
            ).stdout
        )
    )
    y = frame["y"].to_numpy()
    # Windows whose seasonal-naive rows (12 back) exist: origins from row 11 on.
    rolled["origin_row"] = rolled["origin"].map({d: i for i, d in enumerate(frame["date"])})
    kept = rolled[rolled["origin_row"] >= 11]
    assert got["windows"] == kept["origin"].nunique() and got["windows_skipped"] == 0
    error = kept["y"] - kept["y_actual"]
    target_rows = kept["origin_row"] + kept["step"]
    naive = y[kept["origin_row"]]
    seasonal = y[target_rows - 12]
    assert got["model"]["mae"] == pytest.approx(np.mean(np.abs(error)))
    assert got["model"]["rmse"] == pytest.approx(np.sqrt(np.mean(error**2)))
    naive_rmse = np.sqrt(np.mean((naive - kept["y_actual"]) ** 2))
    seasonal_rmse = np.sqrt(np.mean((seasonal - kept["y_actual"]) ** 2))
    assert got["baselines"]["naive"]["rmse"] == pytest.approx(naive_rmse)
    assert got["baselines"]["seasonal_naive"]["rmse"] == pytest.approx(seasonal_rmse)
    assert got["skill"]["naive"] == pytest.approx(1 - got["model"]["rmse"] / naive_rmse)
    scale = load_checkpoint(runs["forecast"]).mase_scales[0]
    assert got["model"]["mase"] == pytest.approx(np.mean(np.abs(error)) / scale)
    assert set(got["model"]["per_step"]) == {"1", "2", "3"}
    step2 = kept[kept["step"] == 2]
    assert got["model"]["per_step"]["2"]["mae"] == pytest.approx(
        np.mean(np.abs(step2["y"] - step2["y_actual"]))
    )
    assert result.stderr == ""  # --json: the result on stdout, no table beside it
    table = run("evaluate", str(runs["forecast"]), "-", stdin=frame.to_csv(index=False))
    assert table.stdout == "" and "<stdin>, " in table.stderr and " windows" in table.stderr


def test_a_numeric_time_column_is_continued_as_numbers(tmp_path: Path) -> None:
    frame = seasonal_frame(60).drop(columns="date").assign(year=np.arange(1900, 1960))
    csv = tmp_path / "years.csv"
    frame.to_csv(csv, index=False)
    config = tiny_config(csv, data={"time_column": "year", "lookback": 6, "horizon": 2})
    run_dir = train_run(validate_config(config), tmp_path / "run").run_dir
    result = run("predict", str(run_dir), str(csv))
    assert result.stdout.splitlines()[1].startswith("1960,")
    assert pd.read_csv(io.StringIO(result.stdout))["year"].tolist() == [1960, 1961]
