"""manifest.json: what a run folder says made it, and making a run again from it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy
import pandas
import pandas as pd
import pytest
import torch
import yaml

from lstmcli import __version__
from lstmcli.config.edit import validate_config
from lstmcli.errors import TrainingInterrupted
from lstmcli.run.pipeline import train_run
from lstmcli.run.resume import prepare_resume
from tests.conftest import tiny_config
from tests.helpers import run_wide as run
from tests.test_resume import stop_after


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def test_manifest_records_versions_data_command_and_stages(
    tmp_path: Path, config_path: Path, csv_path: Path
) -> None:
    out = tmp_path / "run"
    result = run("train", "-c", str(config_path), "-o", str(out), "-q")
    assert result.exit_code == 0, result.stderr
    m = manifest(out)
    assert m["lstmcli"] == __version__ and m["torch"] == torch.__version__
    assert m["numpy"] == numpy.__version__ and m["pandas"] == pandas.__version__
    assert m["device"] == "cpu" and m["threads"] >= 1 and m["cpus"] >= 1
    assert m["seed"] == 7
    assert m["data"] == {
        "source": str(csv_path),
        "path": str(csv_path),
        "bytes": csv_path.stat().st_size,
        "sha256": hashlib.sha256(csv_path.read_bytes()).hexdigest(),
        "rows": 160,
        "series": 1,
        "first": "2000-01-01T00:00:00",
        "last": "2013-04-01T00:00:00",
    }
    assert m["command"] == ["lstmcli", "train", "--config", str(config_path), "--output",
                            str(out), "--quiet"]  # fmt: skip
    assert m["interrupted"] is False and m["resumed"] == 0
    (session,) = m["sessions"]
    assert session["finished"] is not None and session["processes"] == 1
    stages = session["seconds"]
    assert set(stages) == {"prepare", "fit", "score", "write", "total"}
    assert all(v >= 0 for v in stages.values())
    assert stages["total"] >= stages["fit"] + stages["prepare"]


def test_a_run_being_written_has_an_unfinished_manifest(tmp_path: Path, csv_path: Path) -> None:
    """Written when the folder opens: a run killed mid-training still says what it was."""
    seen = {}

    def starting(config, choices) -> None:
        seen.update(manifest(tmp_path / "run"))

    config = validate_config(tiny_config(csv_path))
    train_run(config, tmp_path / "run", on_start=starting, command=["lstmcli", "train"])
    assert seen["sessions"][0]["finished"] is None and seen["command"] == ["lstmcli", "train"]
    assert manifest(tmp_path / "run")["sessions"][0]["finished"] is not None


def test_interrupted_and_resumed_sessions_are_kept(tmp_path: Path, csv_path: Path) -> None:
    config = validate_config(tiny_config(csv_path, training={"epochs": 4, "patience": None}))
    folder = tmp_path / "run"
    first = train_run(config, folder, should_stop=stop_after(10), command=["first"])
    assert first.training.interrupted and manifest(folder)["interrupted"] is True
    last, resumed = prepare_resume(folder, ["training.epochs=5"])
    train_run(resumed, folder, resume=last, command=["second"])
    m = manifest(folder)
    assert m["resumed"] == 1 and m["interrupted"] is False
    assert [s["command"] for s in m["sessions"]] == [["first"], ["second"]]
    assert [s["interrupted"] for s in m["sessions"]] == [True, False]
    assert m["command"] == ["first"]  # how the run was started


def test_a_session_stopped_early_stays_in_the_manifest(tmp_path: Path, csv_path: Path) -> None:
    """Ctrl-C inside the first epoch: the session ended, interrupted (a kill -9 leaves it
    unfinished: tests/test_reliability.py)."""
    config = validate_config(tiny_config(csv_path, training={"epochs": 4, "patience": None}))
    folder = tmp_path / "run"
    with pytest.raises(TrainingInterrupted):  # inside the first epoch: only last.pt
        train_run(config, folder, should_stop=stop_after(2), command=["first"])
    last, resumed = prepare_resume(folder)
    train_run(resumed, folder, resume=last, command=["second"])
    sessions = manifest(folder)["sessions"]
    assert [s["command"][-1] for s in sessions] == ["first", "second"]
    assert [s["finished"] is None for s in sessions] == [False, False]
    assert [s["interrupted"] for s in sessions] == [True, False]


def test_rerun_from_the_run_folder_gives_the_same_metrics(
    tmp_path: Path, config_path: Path
) -> None:
    """Both ways the README gives: `train --again RUN`, and check + train its config.yaml."""
    first, again, by_hand = tmp_path / "first", tmp_path / "again", tmp_path / "by-hand"
    assert run("train", "-c", str(config_path), "-o", str(first), "-q").exit_code == 0
    result = run("train", "--again", str(first), "-o", str(again))
    assert result.exit_code == 0, result.stderr
    assert "Warning" not in result.stderr  # same machine, versions and threads
    check = run("check", "--against", str(first))
    assert check.exit_code == 0, check.stderr
    assert f"same data as {first} (byte for byte)" in check.stdout
    result = run("train", "-c", str(first / "config.yaml"), "-o", str(by_hand), "-q")
    assert result.exit_code == 0, result.stderr
    a = json.loads((first / "metrics.json").read_text())
    for other in (again, by_hand):
        b = json.loads((other / "metrics.json").read_text())
        assert a["model"] == b["model"] and a["validation"] == b["validation"]
        assert manifest(first)["data"]["sha256"] == manifest(other)["data"]["sha256"]
    assert manifest(again)["command"] == ["lstmcli", "train", "--output", str(again),
                                          "--again", str(first)]  # fmt: skip


def test_again_refuses_changed_data_and_names_what_differs(
    tmp_path: Path, config_path: Path, csv_path: Path
) -> None:
    first = tmp_path / "first"
    assert run("train", "-c", str(config_path), "-o", str(first), "-q").exit_code == 0
    shifted = pd.read_csv(csv_path)
    shifted["y"] += 1.0
    other = tmp_path / "other.csv"
    shifted.to_csv(other, index=False)
    m = manifest(first)
    m["torch"], m["threads"] = "1.0.0", torch.get_num_threads() + 1
    (first / "manifest.json").write_text(json.dumps(m))

    result = run("train", "--again", str(first), "--set", f"data.path={other}")
    assert result.exit_code == 0, result.stderr  # another file, asked for: trained
    assert f"Warning: training.threads {m['threads']}, as {first} ran" in result.stderr
    assert f"Warning: {first} was trained with torch 1.0.0 (now {torch.__version__})" in (
        result.stderr
    )
    ran = yaml.safe_load(Path(f"{first}-again/config.yaml").read_text())
    assert ran["training"]["threads"] == m["threads"] and ran["data"]["path"] == str(other)

    shifted.to_csv(csv_path, index=False)  # the run's own file changed
    result = run("train", "--again", str(first), "-o", str(tmp_path / "refused"))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {csv_path} is not the data {first} was trained on")
    assert "a rerun would not be the same run" in result.stderr
    assert not (tmp_path / "refused").exists()


def test_check_against_a_run_names_a_changed_data_file(
    tmp_path: Path, config_path: Path, csv_path: Path
) -> None:
    out = tmp_path / "run"
    assert run("train", "-c", str(config_path), "-o", str(out), "-q").exit_code == 0
    trained_sha = manifest(out)["data"]["sha256"]
    with open(csv_path, "a") as file:  # one more month
        file.write("2013-05-01,11.5,0.5\n")
    result = run("check", "--against", str(out))
    assert result.exit_code == 1
    assert f"Error: {csv_path} is not the data {out} was trained on: SHA-256 " in result.stderr
    assert trained_sha[:16] in result.stderr
    assert f"not the data {out} was trained on" in result.stdout


def test_check_against_a_folder_without_manifest_is_one_error(
    tmp_path: Path, config_path: Path
) -> None:
    result = run("check", "-c", str(config_path), "--against", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: {tmp_path} has no manifest.json: not a run folder, or written before "
        "lstmcli kept manifests; nothing to compare with"
    )
