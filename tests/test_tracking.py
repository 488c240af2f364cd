"""MLflow tracking, read back through MLflow's own client from real local stores."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lstmcli.config.edit import validate_config
from lstmcli.run.pipeline import train_run
from lstmcli.run.resume import prepare_resume
from tests.conftest import tiny_config
from tests.helpers import run_wide as run
from tests.test_resume import stop_after
from tests.test_tune import SPACE

pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """MLflow's defaults write beside the current folder (mlflow.db, mlruns/): keep them here."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def client_runs(uri: str) -> tuple[MlflowClient, list]:
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("lstmcli")
    return client, client.search_runs([experiment.experiment_id])


def losses(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


@pytest.mark.parametrize("store", ["sqlite", "file"])
@pytest.mark.slow
def test_a_tracked_run_reads_back_params_metrics_artifacts_and_tags(
    in_tmp: Path, csv_path: Path, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tiny_config(csv_path, training={"ensemble": 2})
    if store == "sqlite":  # from the environment, as users set it
        uri = f"sqlite:///{in_tmp / 'mlflow.db'}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    else:  # from the config; MLflow 3 wants file stores allowed explicitly
        uri = (in_tmp / "store").as_uri()
        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        config["output"] = {"tracking_uri": uri}
    (in_tmp / "run.yaml").write_text(yaml.safe_dump(config))
    out = in_tmp / "run"
    result = run("train", "-c", "run.yaml", "-o", str(out), "-q", "--track", "mlflow")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""  # MLflow's own log lines and warnings stay out

    client, (logged,) = client_runs(uri)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["mlflow"]["run_id"] == logged.info.run_id
    assert logged.info.status == "FINISHED" and logged.info.run_name == "run"
    params = logged.data.params
    assert params["model.hidden_size"] == "8" and params["training.ensemble"] == "2"
    assert params["data.lookback"] == "12" and params["output.track"] == "mlflow"
    metrics = json.loads((out / "metrics.json").read_text())
    for key, value in (
        ("model.rmse", metrics["model"]["rmse"]),
        ("baselines.naive.mae", metrics["baselines"]["naive"]["mae"]),
        ("skill.seasonal_naive", metrics["skill"]["seasonal_naive"]),
        ("validation.rmse", metrics["validation"]["rmse"]),
        ("epochs_run", metrics["epochs_run"]),
    ):
        assert logged.data.metrics[key] == pytest.approx(value, rel=1e-12)
    history = pd.read_csv(out / "history.csv")
    for member in (1, 2):
        rows = history[history["member"] == member]
        expected = list(zip(rows["epoch"], rows["train_loss"], strict=True))
        got = losses(client, logged.info.run_id, f"member_{member}/train_loss")
        assert [s for s, _ in got] == [e for e, _ in expected]
        assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-12)
    artifacts = {a.path for a in client.list_artifacts(logged.info.run_id)}
    assert artifacts == {
        "config.yaml", "history.csv", "manifest.json", "metrics.json", "model.pt",
        "test_predictions.csv",
    }  # fmt: skip
    tags = logged.data.tags
    assert tags["lstmcli.data.sha256"] == manifest["data"]["sha256"]
    assert tags["lstmcli.torch"] == manifest["torch"] and tags["lstmcli.seed"] == "7"
    assert float(tags["lstmcli.seconds.fit"]) > 0
    downloaded = client.download_artifacts(logged.info.run_id, "metrics.json", str(in_tmp))
    assert json.loads(Path(downloaded).read_text())["model"] == metrics["model"]


@pytest.mark.slow
def test_a_resumed_run_continues_its_mlflow_run(in_tmp: Path, csv_path: Path) -> None:
    uri = f"sqlite:///{in_tmp / 'mlflow.db'}"
    config = validate_config(
        tiny_config(
            csv_path,
            training={"epochs": 4, "patience": None},
            output={"track": "mlflow", "tracking_uri": uri},
        )
    )
    folder = in_tmp / "run"
    train_run(config, folder, should_stop=stop_after(10))  # stops in epoch 2
    client, (first,) = client_runs(uri)
    assert first.info.status == "KILLED"
    assert [s for s, _ in losses(client, first.info.run_id, "train_loss")] == [1]
    last, resumed = prepare_resume(folder)
    train_run(resumed, folder, resume=last)
    client, (logged,) = client_runs(uri)  # the same run, not a second one
    assert logged.info.run_id == first.info.run_id and logged.info.status == "FINISHED"
    history = pd.read_csv(folder / "history.csv")
    got = losses(client, logged.info.run_id, "train_loss")
    assert [s for s, _ in got] == [1, 2, 3, 4]  # epoch 1 once
    assert [v for _, v in got] == pytest.approx(history["train_loss"].tolist(), rel=1e-12)


@pytest.mark.slow
def test_tune_logs_each_trial_nested_under_the_study(in_tmp: Path, csv_path: Path) -> None:
    pytest.importorskip("optuna")
    uri = f"sqlite:///{in_tmp / 'mlflow.db'}"
    config = tiny_config(csv_path, output={"tracking_uri": uri})
    config["tune"] = {"trials": 2, "space": SPACE, "pruner": "none"}
    (in_tmp / "run.yaml").write_text(yaml.safe_dump(config))
    result = run("tune", "-c", "run.yaml", "-o", "study", "-q", "--track", "mlflow")
    assert result.exit_code == 0, result.stderr
    client, runs = client_runs(uri)
    (study,) = [r for r in runs if r.info.run_name == "tune lstmcli"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == study.info.run_id]
    assert sorted(r.info.run_name for r in children) == ["best", "trial 0", "trial 1"]
    trials = pd.read_csv(in_tmp / "study" / "trials.csv")
    for _, trial in trials.iterrows():
        (logged,) = [r for r in children if r.info.run_name == f"trial {trial['number']}"]
        assert logged.data.tags["lstmcli.state"] == "complete"
        assert logged.data.metrics["val_rmse"] == pytest.approx(trial["val_rmse"], rel=1e-6)
        assert logged.data.params["model.hidden_size"] == str(trial["model.hidden_size"])
        assert losses(client, logged.info.run_id, "val_loss")  # per-epoch losses
    best = json.loads((in_tmp / "study" / "best" / "metrics.json").read_text())
    (best_run,) = [r for r in children if r.info.run_name == "best"]
    assert best_run.data.metrics["model.rmse"] == pytest.approx(best["model"]["rmse"])
    assert study.info.status == "FINISHED"
    assert study.data.metrics["best_val_rmse"] == pytest.approx(trials["val_rmse"].min())
    artifacts = {a.path for a in client.list_artifacts(study.info.run_id)}
    assert {"trials.csv", "best.yaml", "history.png"} <= artifacts
    assert "study.db" not in artifacts

    more = run("tune", "-c", "run.yaml", "-o", "study", "-q", "--track", "mlflow", "-n", "3")
    assert more.exit_code == 0, more.stderr
    client, runs = client_runs(uri)  # the continued study is the same MLflow run
    assert [r.info.run_id for r in runs if r.info.run_name == "tune lstmcli"] == [study.info.run_id]
    names = [r.info.run_name for r in runs if r.info.run_name.startswith("trial")]
    assert sorted(names) == ["trial 0", "trial 1", "trial 2"]


def test_without_the_extra_one_error_names_it_and_nothing_is_written(
    in_tmp: Path, config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    result = run("train", "-c", str(config_path), "-o", "run", "--track", "mlflow")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: output.track: mlflow needs the mlflow package, which is not installed; "
        "install the extra with: pip install 'lstmcli[mlflow]'\n"
    )
    assert not (in_tmp / "run").exists()
    check = run("check", "-c", str(config_path), "--set", "output.track=mlflow")
    assert check.exit_code == 1 and "Error: output.track: mlflow needs the mlflow" in check.stderr


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("store", ["blocked", "unopenable", "not a database", "no server"])
def test_a_store_that_cannot_be_opened_fails_before_training(
    in_tmp: Path, config_path: Path, store: str
) -> None:
    if store == "blocked":  # a file where the database's folder would be
        (in_tmp / "blocker").write_text("")
        uri, why = f"sqlite:///{in_tmp / 'blocker' / 'mlflow.db'}", "File exists"
    elif store == "unopenable":  # a folder nobody can create files in, root included
        uri = "sqlite:////proc/mlflow.db"
        why = "cannot open the SQLite database /proc/mlflow.db (unable to open database file)"
    elif store == "not a database":  # refused at once, not after MLflow's retries
        (in_tmp / "notes.db").write_text("not a database\n" * 100)
        uri = f"sqlite:///{in_tmp / 'notes.db'}"
        why = f"cannot open the SQLite database {in_tmp / 'notes.db'} (file is not a database)"
    else:  # refused at once, not after MLflow's minutes of retries
        port = closed_port()
        uri = f"http://127.0.0.1:{port}"
        why = f"cannot connect to 127.0.0.1:{port} (Connection refused); is the tracking server"
    args = ["-o", "run", "--track", "mlflow", "--set", f"output.tracking_uri={uri}"]
    result = run("train", "-c", str(config_path), *args)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: MLflow tracking at {uri}: ")
    assert why in result.stderr
    assert len(result.stderr.splitlines()) == 1 and "epoch" not in result.stderr
    assert "retried" not in result.stderr and "Warning" not in result.stderr
    assert not (in_tmp / "run").exists()


@pytest.mark.slow
def test_losses_reach_mlflow_while_training_runs(
    in_tmp: Path, csv_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sent at most every LIVE_SECONDS during training (0 here: every epoch), the rest at
    the end, each epoch once."""
    import lstmcli.run.tracking

    monkeypatch.setattr(lstmcli.run.tracking, "LIVE_SECONDS", 0.0)
    uri = f"sqlite:///{in_tmp / 'mlflow.db'}"
    config = validate_config(
        tiny_config(csv_path, training={"epochs": 4, "patience": None},
                    output={"track": "mlflow", "tracking_uri": uri})
    )  # fmt: skip
    seen = []

    def on_epoch(stats) -> None:  # runs before the live listener sends this epoch
        client, (logged,) = client_runs(uri)
        seen.append([s for s, _ in losses(client, logged.info.run_id, "train_loss")])

    train_run(config, in_tmp / "run", on_epoch=on_epoch)
    assert seen == [[], [1], [1, 2], [1, 2, 3]]
    client, (logged,) = client_runs(uri)
    assert [s for s, _ in losses(client, logged.info.run_id, "train_loss")] == [1, 2, 3, 4]
