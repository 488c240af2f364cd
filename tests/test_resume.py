from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from lstmcli.config.edit import validate_config
from lstmcli.errors import ConfigError, LstmcliError, TrainingInterrupted
from lstmcli.model.checkpoint import load_checkpoint
from lstmcli.run.pipeline import resolved_config, train_run
from lstmcli.run.resume import prepare_resume
from tests.conftest import seasonal_frame, tiny_config


def stop_after(batches: int) -> Callable[[], bool]:
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] >= batches

    return should_stop


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).state_dict


@pytest.mark.parametrize("stops", [[17], [7, 10], [3, 30, 2]])
def test_interrupted_and_resumed_equals_uninterrupted(
    tmp_path: Path, csv_path: Path, stops: list[int]
) -> None:
    # 112 training windows in batches of 16: 7 batches an epoch; stop 7 is an epoch's end.
    config = validate_config(
        tiny_config(
            csv_path,
            model={"num_layers": 2, "dropout": 0.3},  # dropout draws random numbers
            training={"epochs": 8, "patience": None, "checkpoint_every": 3},
        )
    )
    straight = train_run(config, tmp_path / "straight")
    try:
        first = train_run(config, tmp_path / "resumed", should_stop=stop_after(stops[0]))
        assert first.training.interrupted
    except TrainingInterrupted:  # stopped inside the first epoch: only last.pt was saved
        assert stops[0] <= 7 and (tmp_path / "resumed" / "last.pt").is_file()
    for stop in [*stops[1:], None]:
        last, resumed_config = prepare_resume(tmp_path / "resumed")
        ran = resolved_config(config).config  # what ran: no `auto` left
        assert resumed_config.model_dump() == ran.model_dump()
        kwargs = {"should_stop": stop_after(stop)} if stop else {}
        result = train_run(config, tmp_path / "resumed", resume=last, **kwargs)
        assert result.training.interrupted == (stop is not None)
    for name in ("model.pt", "last.pt"):
        a, b = weights(tmp_path / "straight" / name), weights(tmp_path / "resumed" / name)
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-6, atol=1e-7)
    assert result.metrics["model"] == pytest.approx(straight.metrics["model"], rel=1e-6)
    columns = ["epoch", "train_loss", "val_loss"]
    history = [pd.read_csv(tmp_path / n / "history.csv")[columns] for n in ("straight", "resumed")]
    pd.testing.assert_frame_equal(history[0], history[1], rtol=1e-6)


@pytest.mark.parametrize("stops", [[32], [34, 20]])
def test_a_run_stopped_between_cosine_cycles_resumes_into_the_next(
    tmp_path: Path, csv_path: Path, stops: list[int]
) -> None:
    """Whether a cycle follows is decided from the history alone: a run stopped after a first
    cycle still learning (the 32nd stop check: 8 an epoch, so after epoch 4) or inside the
    second goes on as an uninterrupted run (every cycle here is still learning: 12 epochs)."""
    training = {"scheduler": "cosine", "epochs": 4, "cycles": 3, "patience": None}
    config = validate_config(tiny_config(csv_path, training=training))
    straight = train_run(config, tmp_path / "straight")
    assert straight.training.epochs_run == 12
    result = resumed_until_done(config, tmp_path / "resumed", stops)
    assert result.training.epochs_run == 12
    assert result.metrics["model"] == pytest.approx(straight.metrics["model"], rel=1e-6)


def resumed_until_done(config: object, folder: Path, stops: list[int]) -> object:
    """Train with Ctrl-C after `stops[0]` batches, then resume (stopping again after each
    further count) until training ends; the last run's result."""
    try:
        first = train_run(config, folder, should_stop=stop_after(stops[0]))
        assert first.training.interrupted
    except TrainingInterrupted:  # stopped inside the first epoch: only last.pt was saved
        assert (folder / "last.pt").is_file()
    for stop in [*stops[1:], None]:
        last, resumed_config = prepare_resume(folder)
        kwargs = {"should_stop": stop_after(stop)} if stop else {}
        result = train_run(resumed_config, folder, resume=last, **kwargs)
        assert result.training.interrupted == (stop is not None)
    return result


# How an ensemble's members train: one at a time (dropout between layers draws from the one
# global generator, so training.workers resolves to 1), or two at once in threads.
ENSEMBLES = {
    "one at a time": ({"dropout": 0.3, "num_layers": 2}, {}),
    "two at once": ({}, {"workers": 2, "threads": 1}),
}


@pytest.mark.parametrize("stops", [[3], [9, 12], [16, 2, 20]])
@pytest.mark.parametrize("kind", list(ENSEMBLES))
@pytest.mark.slow
def test_an_interrupted_and_resumed_ensemble_equals_an_uninterrupted_one(
    tmp_path: Path, csv_path: Path, stops: list[int], kind: str
) -> None:
    """Ctrl-C in the first member, between members, in the middle of an epoch of a later
    member (with two at once, both stop after their batch): finished members are kept, the
    running ones continue where they stopped, and the ensemble, its metrics and history end
    as if never interrupted."""
    model, training = ENSEMBLES[kind]
    config = validate_config(
        tiny_config(
            csv_path,
            model={**model, "levels": [80], "blend": "auto"},
            training={
                "epochs": 3,
                "ensemble": 3,
                "patience": None,
                "checkpoint_every": 1,
                **training,
            },
        )  # fmt: skip
    )
    straight = train_run(config, tmp_path / "straight")
    workers = resolved_config(config).config.training.workers
    assert workers == (2 if kind == "two at once" else 1)
    result = resumed_until_done(config, tmp_path / "resumed", stops)
    for name in ("model.pt", "last.pt"):
        a, b = weights(tmp_path / "straight" / name), weights(tmp_path / "resumed" / name)
        assert a.keys() == b.keys() and any(k.startswith("members.2.") for k in a)
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-6, atol=1e-7)
    assert result.metrics["model"] == pytest.approx(straight.metrics["model"], rel=1e-6)
    assert result.metrics["intervals"]["model"]["80"] == pytest.approx(
        straight.metrics["intervals"]["model"]["80"], rel=1e-6
    )
    columns = ["member", "epoch", "train_loss", "val_loss"]
    history = [pd.read_csv(tmp_path / n / "history.csv")[columns] for n in ("straight", "resumed")]
    pd.testing.assert_frame_equal(history[0], history[1], rtol=1e-6)


def test_a_run_saved_before_lstm_rows_resumes_reading_its_whole_window(tmp_path: Path) -> None:
    """A last.pt whose config has no model.lstm_rows (written before the key existed) holds a
    network trained on whole windows: resumed, it keeps reading them whole instead of taking
    the `auto` cut of a long window."""
    csv_path = tmp_path / "long.csv"
    seasonal_frame(400).to_csv(csv_path, index=False)
    config = validate_config(
        tiny_config(
            csv_path,
            data={"lookback": 120, "split": {"train": 0.8, "val": 0.1, "test": 0.1}},
            model={"lstm_rows": None},
            training={"epochs": 2, "patience": None},
        )
    )
    try:
        train_run(config, tmp_path / "run", should_stop=stop_after(9))
    except TrainingInterrupted:
        pass
    path = tmp_path / "run" / "last.pt"
    payload = torch.load(path, weights_only=True)
    del payload["config"]["model"]["lstm_rows"]
    torch.save(payload, path)
    last, resumed_config = prepare_resume(tmp_path / "run")
    assert resumed_config.model.lstm_rows is None and last.spec.lstm_rows == 0
    assert resolved_config(resumed_config).config.model.lstm_rows is None  # not auto's 104
    fresh = resolved_config(validate_config(tiny_config(csv_path, data={"lookback": 120})))
    assert fresh.config.model.lstm_rows == 104  # what `auto` would have cut it to


def test_a_finished_ensemble_trains_each_member_longer(tmp_path: Path, csv_path: Path) -> None:
    config = validate_config(
        tiny_config(
            csv_path,
            training={"epochs": 2, "ensemble": 2, "patience": None, "scheduler": "none"},
        )
    )
    train_run(config, tmp_path / "run")
    last, longer = prepare_resume(tmp_path / "run", ["training.epochs=3"])
    train_run(longer, tmp_path / "run", resume=last)
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert list(zip(history["member"], history["epoch"], strict=True)) == [
        (1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)
    ]  # fmt: skip
    straight = train_run(longer, tmp_path / "straight")
    for key, value in weights(tmp_path / "straight" / "model.pt").items():
        torch.testing.assert_close(value, weights(tmp_path / "run" / "model.pt")[key])
    assert straight.training.epochs_run == 3


def test_resume_can_train_longer_but_not_change_the_model(tmp_path: Path, csv_path: Path) -> None:
    config = validate_config(tiny_config(csv_path, training={"epochs": 2}))
    train_run(config, tmp_path / "run")
    last, longer = prepare_resume(tmp_path / "run", ["training.epochs=4"])
    result = train_run(longer, tmp_path / "run", resume=last)
    assert result.training.epochs_run == 4
    assert len(pd.read_csv(tmp_path / "run" / "history.csv")) == 4
    with pytest.raises(ConfigError) as info:
        prepare_resume(tmp_path / "run", ["model.hidden_size=4"])
    assert info.value.problems[0].startswith("model.hidden_size cannot change here; only ")


def test_periodic_checkpoints(tmp_path: Path, csv_path: Path) -> None:
    seen = []
    config = validate_config(tiny_config(csv_path, training={"epochs": 5, "checkpoint_every": 2}))

    def stop_when_epoch_4_is_saved() -> bool:
        path = tmp_path / "run" / "last.pt"
        if path.exists():
            seen.append(load_checkpoint(path, "last.pt").train_state["epoch"])
        return False

    train_run(config, tmp_path / "run", should_stop=stop_when_epoch_4_is_saved)
    assert sorted(set(seen)) == [2, 4]  # written after epochs 2 and 4, then at the end


def long_run(tmp_path: Path, csv_path: Path) -> tuple[Path, Path]:
    config = tiny_config(
        csv_path, training={"epochs": 100000, "patience": None, "checkpoint_every": 1}
    )
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, tmp_path / "run"


def wait_for_progress(process: subprocess.Popen) -> None:
    """Until the first progress line (epoch 1 is done)."""
    for line in process.stderr:
        if line.startswith("epoch 1/"):
            return


def wait_for_epoch(run_dir: Path, epoch: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if load_checkpoint(run_dir, "last.pt").train_state["epoch"] >= epoch:
                return
        except LstmcliError:
            pass  # not written yet
        time.sleep(0.02)
    raise AssertionError(f"no last.pt for epoch {epoch} within {timeout}s")


@pytest.mark.slow
def test_sigterm_saves_last_pt_and_exits_143(tmp_path: Path, csv_path: Path) -> None:
    config, out = long_run(tmp_path, csv_path)
    process = subprocess.Popen(
        ["lstmcli", "train", "-c", str(config), "-o", str(out)],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    wait_for_progress(process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "continue with `lstmcli train --resume" in stderr and "Traceback" not in stderr
    state = load_checkpoint(out, "last.pt").train_state
    assert state["epoch"] >= 1
    assert json.loads((out / "metrics.json").read_text())["interrupted"] is True


@pytest.mark.slow
def test_sigkill_at_any_moment_leaves_loadable_files(tmp_path: Path, csv_path: Path) -> None:
    """Kill training repeatedly; every time model.pt and last.pt load, and --resume goes on."""
    config, out = long_run(tmp_path, csv_path)
    command = ["lstmcli", "train", "-c", str(config), "-o", str(out)]
    epochs = [0]
    for attempt in range(4):
        process = subprocess.Popen(
            command, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL, text=True
        )
        wait_for_epoch(out, epochs[-1] + 2)
        time.sleep(0.03 * attempt)  # land the kill at different moments of saving
        process.kill()
        process.wait(timeout=30)
        assert load_checkpoint(out).config.training.epochs == 100000
        epochs.append(load_checkpoint(out, "last.pt").train_state["epoch"])
        command = ["lstmcli", "train", "--resume", str(out)]
    assert epochs == sorted(epochs) and len(set(epochs)) == 5  # each resume went further
    # a kill mid-save may leave temporary files (never a torn model.pt); the next run of the
    # folder removes them
    finish = f"training.epochs={epochs[-1] + 1}"
    done = subprocess.run([*command, "--set", finish, "-q"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == epochs[-1] + 1
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []


@pytest.mark.slow
def test_a_killed_ensemble_resumes_to_the_uninterrupted_result(
    tmp_path: Path, csv_path: Path
) -> None:
    """kill -9 while the second member trains: last.pt holds the first member and the second
    one's last saved epoch, and --resume ends where an uninterrupted run ends."""
    raw = tiny_config(
        csv_path,
        training={"epochs": 40, "ensemble": 2, "patience": None, "checkpoint_every": 1},
    )
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "run"
    process = subprocess.Popen(
        ["lstmcli", "train", "-c", str(path), "-o", str(out), "-q"],
        stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            members = load_checkpoint(out, "last.pt").train_state.get("members", [])
        except LstmcliError:
            members = []  # not written yet
        if len(members) == 2 and members[1]["epoch"] >= 2:
            break
        time.sleep(0.02)
    process.kill()
    process.wait(timeout=30)
    assert not (out / "metrics.json").exists()  # killed mid-training, not at the end
    resumed = subprocess.run(["lstmcli", "train", "--resume", str(out), "-q"],
                             capture_output=True, text=True)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    straight = train_run(validate_config(raw), tmp_path / "straight")
    for key, value in weights(tmp_path / "straight" / "model.pt").items():
        torch.testing.assert_close(weights(out / "model.pt")[key], value, rtol=1e-6, atol=1e-7)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"]["rmse"] == pytest.approx(straight.metrics["model"]["rmse"], rel=1e-6)


@pytest.mark.parametrize("stops", [[3], [9, 12]])
def test_a_run_from_a_prior_resumes_like_an_uninterrupted_one(
    tmp_path: Path, csv_path: Path, stops: list[int]
) -> None:
    """Every member of a run started from another run's network starts from it, also a
    member that had not started when the run was stopped."""
    train_run(validate_config(tiny_config(csv_path)), tmp_path / "prior")
    config = validate_config(
        tiny_config(
            csv_path,
            model={"init": str(tmp_path / "prior"), "blend": "auto"},
            training={"epochs": 2, "ensemble": 2, "patience": None, "checkpoint_every": 1},
        )
    )
    straight = train_run(config, tmp_path / "straight")
    resumed = resumed_until_done(config, tmp_path / "resumed", stops)
    a, b = weights(tmp_path / "straight" / "model.pt"), weights(tmp_path / "resumed" / "model.pt")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-6, atol=1e-7)
    assert resumed.metrics["model"] == pytest.approx(straight.metrics["model"], rel=1e-6)
    kept, uninterrupted = resumed.metrics["init"], straight.metrics["init"]
    assert kept["kept"] == uninterrupted["kept"]
    assert kept["val_loss_kept"] == pytest.approx(uninterrupted["val_loss_kept"], rel=1e-6)
