"""`lstmcli runs`: run folders side by side, bad folders listed, never a traceback."""

from __future__ import annotations

import io
import json
import os
import socket
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lstmcli.run.runs import differing_keys, flatten, list_runs, sort_runs
from tests.helpers import run_wide as run


def fake_run(
    folder: Path, config: dict, metrics: dict | None, manifest: dict | None = None
) -> Path:
    """A run folder as train leaves it, with made-up contents (listing reads only files)."""
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))
    if manifest is not None:
        (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def metrics(rmse: float, naive: float, seasonal: float, val: float = 1.0) -> dict:
    return {
        "model": {"rmse": rmse, "mase": rmse / 2},
        "skill": {"naive": 1 - rmse / naive, "seasonal_naive": 1 - rmse / seasonal},
        "validation": {"rmse": val, "mase": val / 2},
        "training_seconds": 2.5,
        "interrupted": False,
    }


CONFIG = {
    "data": {"path": "/data/sales.csv", "lookback": 12},
    "model": {"hidden_size": 32, "levels": [80, 95]},
    "training": {"learning_rate": 0.003, "seed": 42},
    "output": {"dir": "runs/a"},
}


def config(**changes: object) -> dict:
    tree = json.loads(json.dumps(CONFIG))
    for key, value in changes.items():
        section, name = key.split("__")
        tree[section][name] = value
    return tree


def test_differing_settings_and_skill_against_the_better_baseline(tmp_path: Path) -> None:
    fake_run(tmp_path / "a", config(output__dir="runs/a"), metrics(2.0, 4.0, 3.0))
    fake_run(tmp_path / "b", config(output__dir="runs/b", model__hidden_size=64,
                                    model__levels=[90]), metrics(1.0, 4.0, 5.0))  # fmt: skip
    summaries, differing, missing = list_runs([tmp_path])
    assert missing == [] and [s.path.name for s in summaries] == ["a", "b"]
    assert differing == ["model.hidden_size", "model.levels"]  # output.dir is never a setting
    a, b = (s.values for s in summaries)
    assert a["skill"] == pytest.approx(1 - 2.0 / 3.0) and a["vs"] == "seasonal_naive"
    assert b["skill"] == pytest.approx(1 - 1.0 / 4.0) and b["vs"] == "naive"
    assert a["test_rmse"] == 2.0 and a["val_rmse"] == 1.0 and a["status"] == "finished"
    assert summaries[1].settings["model.levels"] == "[90]"


def test_statuses_of_bad_half_written_and_busy_folders(tmp_path: Path) -> None:
    fake_run(tmp_path / "good", CONFIG, metrics(1.0, 2.0, 2.0))
    fake_run(tmp_path / "torn", CONFIG, None)
    (tmp_path / "torn" / "metrics.json").write_text('{"model": ')
    fake_run(tmp_path / "killed", CONFIG, None)
    (tmp_path / "killed" / "last.pt").write_bytes(b"")
    fake_run(tmp_path / "early", CONFIG, None)
    fake_run(tmp_path / "busy", CONFIG, None)
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": "now"}
    (tmp_path / "busy" / ".lock").write_text(json.dumps(holder))
    fake_run(tmp_path / "dead", CONFIG, metrics(1.0, 2.0, 2.0) | {"interrupted": True})
    (tmp_path / "dead" / ".lock").write_text(json.dumps(holder | {"pid": 2**22 + 12345}))
    (tmp_path / "notes").mkdir()  # no run file: not a run
    summaries, _, _ = list_runs([tmp_path])
    status = {s.path.name: s.values["status"] for s in summaries}
    assert status == {
        "busy": f"running (pid {os.getpid()})",
        "dead": "interrupted",  # its writer is gone: the lock is stale
        "early": "incomplete",
        "good": "finished",
        "killed": "incomplete (resumable)",
        "torn": "unreadable",
    }
    torn = next(s for s in summaries if s.path.name == "torn")
    assert torn.problem.startswith("metrics.json: Expecting value")


def test_sort_by_column_or_setting_missing_values_last(tmp_path: Path) -> None:
    fake_run(tmp_path / "a", config(training__learning_rate=0.01), metrics(3.0, 4.0, 4.0))
    fake_run(tmp_path / "b", config(training__learning_rate=0.001), metrics(1.0, 4.0, 4.0))
    fake_run(tmp_path / "c", config(training__learning_rate=0.1), None)
    summaries, _, _ = list_runs([tmp_path])
    names = lambda ordered: [s.path.name for s in ordered]  # noqa: E731
    assert names(sort_runs(summaries, "test_rmse")) == ["b", "a", "c"]
    assert names(sort_runs(summaries, "-test_rmse")) == ["a", "b", "c"]
    assert names(sort_runs(summaries, "training.learning_rate")) == ["b", "a", "c"]  # numbers
    assert names(sort_runs(summaries, "-training.learning_rate")) == ["c", "a", "b"]


def test_runs_are_found_below_the_given_folders(tmp_path: Path) -> None:
    fake_run(tmp_path / "runs" / "study-tune" / "best", CONFIG, metrics(1.0, 2.0, 2.0))
    fake_run(tmp_path / "runs" / "plain", CONFIG, metrics(1.0, 2.0, 2.0))
    summaries, _, missing = list_runs([tmp_path / "runs", tmp_path / "nowhere"])
    assert [s.path.relative_to(tmp_path).as_posix() for s in summaries] == [
        "runs/plain", "runs/study-tune/best"
    ]  # fmt: skip
    assert missing == [f"{tmp_path / 'nowhere'}: no such folder"]


def test_flatten_and_differing_keys_treat_missing_keys_as_different() -> None:
    assert flatten({"a": {"b": 1, "c": None, "d": [1, 2]}, "e": "x"}) == {
        "a.b": "1", "a.c": "null", "a.d": "[1, 2]", "e": "x"
    }  # fmt: skip
    from lstmcli.run.runs import RunSummary

    one = RunSummary(Path("1"), {}, {"a": "1", "b": "2"})
    two = RunSummary(Path("2"), {}, {"a": "1"})
    assert differing_keys([one, two]) == ["b"]
    assert differing_keys([one]) == []  # one run: nothing differs


def test_cli_json_csv_table_and_errors(tmp_path: Path) -> None:
    fake_run(tmp_path / "a", config(training__learning_rate=0.01), metrics(3.0, 4.0, 4.0),
             {"data": {"source": "/data/sales.csv", "rows": 500},
              "sessions": [{"started": "2026-12-01T10:00:00+00:00",
                            "seconds": {"total": 12.0}},
                           {"started": "2026-12-01T11:00:00+00:00",
                            "seconds": {"total": 3.5}}]})  # fmt: skip
    fake_run(tmp_path / "[b]", config(training__learning_rate=0.001), metrics(1.0, 4.0, 4.0))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.yaml").write_text("data: [unclosed")

    result = run("runs", str(tmp_path), "--json", "--sort", "test_rmse")
    assert result.exit_code == 0, result.stderr
    records = json.loads(result.stdout)
    assert [r["run"] for r in records] == [str(tmp_path / n) for n in ("[b]", "a", "bad")]
    assert records[1]["training.learning_rate"] == "0.01" and records[1]["rows"] == 500
    assert records[1]["seconds"] == 15.5  # both sessions
    assert records[0]["seconds"] == 2.5  # no manifest: training seconds from metrics.json
    assert records[2]["status"] == "unreadable" and records[2]["problem"].startswith(
        "config.yaml: "
    )
    assert result.stderr.startswith(f"Warning: {tmp_path / 'bad'}: config.yaml: ")

    frame = pd.read_csv(io.StringIO(run("runs", str(tmp_path), "--csv").stdout))
    assert list(frame.columns[-2:]) == ["training.learning_rate", "problem"]
    assert frame["rows"].iloc[0] == 500 and frame["test_rmse"].iloc[1] == 1.0

    table = run("runs", str(tmp_path))
    assert table.exit_code == 0
    assert "training.learning_rate=0.01" in table.stdout and "0.250 vs naive" in table.stdout
    assert "[b]" in table.stdout  # a folder's name is not read as rich markup

    bad_sort = run("runs", str(tmp_path), "--sort", "speed")
    assert bad_sort.exit_code == 2 and "unknown sort key 'speed'" in bad_sort.stderr
    missing = run("runs", str(tmp_path / "nowhere"))
    assert missing.exit_code == 1
    assert missing.stderr == f"Error: {tmp_path / 'nowhere'}: no such folder\n"
    a_file = run("runs", str(tmp_path / "a" / "config.yaml"))
    assert a_file.exit_code == 1
    assert a_file.stderr == f"Error: {tmp_path / 'a' / 'config.yaml'}: not a folder\n"
    empty = run("runs", str(tmp_path / "bad" / ".."), "--json", "--csv")
    assert empty.exit_code == 2


def test_two_trainings_with_different_settings_side_by_side(
    tmp_path: Path, config_path: Path
) -> None:
    """The issue's acceptance: real runs, the keys that differ shown, scores as trained."""
    runs = tmp_path / "runs"
    for name, sets in (
        ("small", ["model.hidden_size=4"]),
        ("large", ["model.hidden_size=16", "data.lookback=24"]),
    ):
        args = ["train", "-c", str(config_path), "-o", str(runs / name), "-q"]
        result = run(*args, *[word for s in sets for word in ("--set", s)])
        assert result.exit_code == 0, result.stderr
    result = run("runs", str(runs), "--json")
    assert result.exit_code == 0, result.stderr
    records = {Path(r["run"]).name: r for r in json.loads(result.stdout)}
    assert records["small"]["model.hidden_size"] == "4"
    assert records["large"]["model.hidden_size"] == "16"
    assert records["large"]["data.lookback"] == "24" and records["small"]["data.lookback"] == "12"
    differing = [k for k in records["small"] if "." in k]
    assert differing == ["data.lookback", "model.hidden_size"]
    for name, record in records.items():
        saved = json.loads((runs / name / "metrics.json").read_text())
        assert record["test_rmse"] == saved["model"]["rmse"]
        assert record["val_rmse"] == saved["validation"]["rmse"]
        assert record["skill"] == min(saved["skill"].values())
        assert record["status"] == "finished" and record["rows"] == 160
