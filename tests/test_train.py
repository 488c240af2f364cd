from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lstmcli.config.edit import validate_config
from lstmcli.data.table import prepare_table
from lstmcli.errors import LstmcliError
from lstmcli.run.pipeline import train_run
from tests.conftest import seasonal_frame as monthly_frame
from tests.conftest import tiny_config


@pytest.mark.slow
def test_noise_floor_on_a_noisy_sine(tmp_path: Path) -> None:
    """One-step forecasts of sine + N(0, sigma) cannot beat sigma; a good model gets close."""
    sigma = 0.2
    rng = np.random.default_rng(0)
    t = np.arange(1200)
    y = np.sin(2 * np.pi * t / 16) + rng.normal(0, sigma, len(t))
    csv = tmp_path / "sine.csv"
    pd.DataFrame({"y": y}).to_csv(csv, index=False)
    cfg = validate_config(
        {
            "data": {
                "path": str(csv),
                "time_column": None,
                "target": "y",
                "lookback": 32,
                "split": {"train": 0.7, "val": 0.1, "test": 0.2},
                "scaler": "standard",
            },
            "model": {"hidden_size": 16, "num_layers": 1, "head": []},
            "training": {"epochs": 20, "learning_rate": 0.01, "batch_size": 32, "device": "cpu"},
        }
    )
    rmse = train_run(cfg, tmp_path / "run").metrics["model"]["rmse"]
    assert rmse == pytest.approx(sigma, rel=0.15)


def test_same_seed_same_metrics(tmp_path: Path, csv_path: Path) -> None:
    cfg = validate_config(tiny_config(csv_path))
    first = train_run(cfg, tmp_path / "a").metrics
    second = train_run(cfg, tmp_path / "b").metrics
    assert first["model"] == second["model"]
    history = [pd.read_csv(tmp_path / name / "history.csv")["train_loss"] for name in "ab"]
    assert history[0].tolist() == history[1].tolist()
    other = train_run(validate_config(tiny_config(csv_path, training={"seed": 8})), tmp_path / "c")
    assert other.metrics["model"] != first["model"]


def test_early_stopping_keeps_the_best_epoch(tmp_path: Path, csv_path: Path) -> None:
    cfg = validate_config(
        tiny_config(csv_path, training={"epochs": 200, "patience": 2, "learning_rate": 0.05})
    )
    result = train_run(cfg, tmp_path / "run")
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert result.training.stopped_early
    assert len(history) == result.training.best_epoch + 2 < 200
    assert history["val_loss"].idxmin() + 1 == result.training.best_epoch


def test_stop_request_keeps_the_best_model_so_far(tmp_path: Path, csv_path: Path) -> None:
    calls = {"n": 0}

    def stop_after_two_epochs() -> bool:
        calls["n"] += 1
        return calls["n"] > 12  # 112 training windows in batches of 16: 7 batches per epoch

    cfg = validate_config(tiny_config(csv_path, training={"epochs": 50}))
    result = train_run(cfg, tmp_path / "run", should_stop=stop_after_two_epochs)
    assert result.training.interrupted and result.training.epochs_run == 1
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["interrupted"] is True and metrics["epochs_run"] == 1
    assert (tmp_path / "run" / "model.pt").is_file()


def test_a_diverging_loss_is_a_clear_error(tmp_path: Path) -> None:
    csv = tmp_path / "huge.csv"
    pd.DataFrame({"y": np.linspace(1e20, 3e20, 80)}).to_csv(csv, index=False)
    cfg = validate_config(
        tiny_config(csv, data={"time_column": None, "scaler": "none", "season": None})
    )
    with pytest.raises(LstmcliError, match=r"the loss became (inf|nan) at epoch 1; try a lower"):
        train_run(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "model.pt").exists()


def test_run_folder_contents(tmp_path: Path, csv_path: Path) -> None:
    cfg = validate_config(tiny_config(csv_path, data={"horizon": 3}))
    result = train_run(cfg, tmp_path / "run")
    metrics = result.metrics
    assert set(metrics["baselines"]) == {"naive", "seasonal_naive"}
    assert set(metrics["model"]) >= {"mae", "rmse", "smape", "mase", "r2", "mape", "per_step"}
    assert set(metrics["model"]["per_step"]) == {"1", "2", "3"}
    frame = pd.read_csv(tmp_path / "run" / "test_predictions.csv")
    assert list(frame.columns) == ["origin", "date", "step", "y", "y_actual"]
    assert len(frame) == metrics["test_windows"] * 3
    # the actuals are the CSV's own values at the predicted dates
    source = pd.read_csv(csv_path).set_index("date")["y"]
    np.testing.assert_array_equal(frame["y_actual"], source.loc[frame["date"]].to_numpy())
    rmse = np.sqrt(np.mean((frame["y"] - frame["y_actual"]) ** 2))
    assert rmse == pytest.approx(metrics["model"]["rmse"])
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert list(history.columns) == ["epoch", "train_loss", "val_loss", "learning_rate", "seconds"]
    assert len(history) == metrics["epochs_run"] == 3


def test_run_files_have_ordinary_permissions(tmp_path: Path, csv_path: Path) -> None:
    import os

    umask = os.umask(0o022)
    try:
        train_run(validate_config(tiny_config(csv_path)), tmp_path / "run")
    finally:
        os.umask(umask)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "run").iterdir()}
    assert set(modes.values()) == {0o644}, modes  # and no temporary file left behind
    assert len(modes) == 7


def test_max_steps_caps_optimizer_steps(tmp_path: Path, csv_path: Path) -> None:
    # 112 training windows in batches of 16: 7 steps an epoch; 10 steps end inside epoch 2.
    cfg = validate_config(tiny_config(csv_path, training={"epochs": 50, "max_steps": 10}))
    result = train_run(cfg, tmp_path / "run")
    assert result.training.reached_max_steps and result.training.state.steps == 10
    assert result.training.epochs_run == 2
    assert result.metrics["steps"] == 10 and result.metrics["reached_max_steps"] is True


def test_bf16_autocast_matches_float32_closely(tmp_path: Path, csv_path: Path) -> None:
    """bfloat16 keeps 8 significant bits (about 0.4% per rounding) in the autocast ops and
    float32 weights: after a few epochs the test RMSE stays within 5% of float32's, which a
    broken cast (wrong dtype into the loss, lost gradients) would not."""
    from lstmcli.run.loop import bf16_supported

    if not bf16_supported(torch.device("cpu")):  # then a clear error, not a kernel's traceback
        cfg = validate_config(tiny_config(csv_path, training={"precision": "bf16"}))
        with pytest.raises(LstmcliError, match="training.precision: bf16 is not supported"):
            train_run(cfg, tmp_path / "bf16")
        pytest.skip("this CPU has no bfloat16 LSTM")
    rmse = {}
    for precision in ("32", "bf16"):
        cfg = validate_config(tiny_config(csv_path, training={"precision": precision, "epochs": 5}))
        rmse[precision] = train_run(cfg, tmp_path / precision).metrics["model"]["rmse"]
    assert rmse["bf16"] != rmse["32"]  # autocast really ran in bfloat16
    assert rmse["bf16"] == pytest.approx(rmse["32"], rel=0.05)
    assert validate_config({"training": {"precision": 32}}).training.precision == "32"


@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
def test_the_configured_loss_is_the_one_minimized_and_reported(
    tmp_path: Path, csv_path: Path, loss: str
) -> None:
    """With a learning rate too small to move the weights, epoch 1's validation loss is the
    configured loss of the initial model, computed here independently."""
    from lstmcli.data.table import load_table
    from lstmcli.data.training_data import make_windows, prepare_data
    from lstmcli.errors import ignore_warning
    from lstmcli.model.network import LSTMForecaster
    from lstmcli.model.spec import ModelSpec
    from lstmcli.run.pipeline import resolved_config

    cfg = validate_config(
        tiny_config(csv_path, training={"loss": loss, "epochs": 1, "learning_rate": 1e-9})
    )
    reported = train_run(cfg, tmp_path / "run").training.history[0].val_loss
    cfg = resolved_config(cfg).config
    data = prepare_data(load_table(cfg.data), cfg.data, ignore_warning)
    val = make_windows(data, cfg.data, torch.device("cpu"))["val"]
    torch.manual_seed(cfg.training.seed)  # the initial weights of the run
    model = LSTMForecaster(ModelSpec.for_config(cfg.data, cfg.model)).eval()
    inputs, future, targets = val.batch(torch.arange(len(val)))
    with torch.no_grad():
        error = model(inputs, future) - targets
    losses = {
        "mse": error.pow(2).mean().item(),
        "mae": error.abs().mean().item(),
        "huber": torch.where(error.abs() < 1, 0.5 * error**2, error.abs() - 0.5).mean().item(),
    }
    assert len({round(v, 4) for v in losses.values()}) == 3  # the three differ on this data
    assert reported == pytest.approx(losses[loss], rel=1e-4)


def test_plateau_halves_the_rate_when_the_val_loss_stalls(tmp_path: Path, csv_path: Path) -> None:
    # patience 8 -> plateau patience 2: the third epoch without improvement halves the rate;
    # a rate of 1e-7 keeps the validation loss flat (improvements under the 1e-4 threshold)
    training = {"scheduler": "plateau", "patience": 8, "epochs": 8, "learning_rate": 1e-7}
    train_run(validate_config(tiny_config(csv_path, training=training)), tmp_path / "run")
    rates = pd.read_csv(tmp_path / "run" / "history.csv")["learning_rate"].tolist()
    assert rates == pytest.approx([1e-7] * 3 + [5e-8] * 3 + [2.5e-8] * 2)


def test_cosine_schedule_after_a_warm_up(tmp_path: Path, csv_path: Path) -> None:
    training = {"loss": "mae", "scheduler": "cosine", "warmup_epochs": 1, "epochs": 4}
    training["learning_rate"] = 0.001
    cfg = validate_config(
        tiny_config(csv_path, data={"window_norm": "standard"}, training=training)
    )
    train_run(cfg, tmp_path / "run")
    rates = pd.read_csv(tmp_path / "run" / "history.csv")["learning_rate"].tolist()
    cosine = [0.001 * 0.5 * (1 + np.cos(np.pi * k / 3)) for k in range(3)]
    assert rates == pytest.approx([0.001, *cosine])  # warm-up to 0.001, then cosine from the top


def test_scheduler_rates() -> None:
    from lstmcli.run.loop import _scheduled_rate

    cfg = validate_config(
        {
            "training": {
                "epochs": 10,
                "warmup_epochs": 2,
                "scheduler": "cosine",
                "learning_rate": 0.001,
            }
        }
    )
    rates = [_scheduled_rate(cfg.training, e) for e in range(1, 11)]
    assert rates[:3] == pytest.approx([0.0005, 0.001, 0.001])
    assert rates[-1] == pytest.approx(0.001 * 0.5 * (1 + np.cos(np.pi * 7 / 8)))


def test_a_cosine_cycle_still_learning_is_followed_by_another() -> None:
    """The 800-step schedule left a member of hourly demand (taylor summed to hours, 1,289
    windows) still learning when its rate reached zero: RMSE 2249 against 1205 with a constant
    rate. A cycle whose best val loss came late and 5% lower is followed by another."""
    from lstmcli.run.loop import EpochStats, _scheduled_rate, planned_epochs

    def history(*losses: float) -> list[EpochStats]:
        return [EpochStats(k + 1, 4, 1.0, v, 0.1, 0.0, 0) for k, v in enumerate(losses)]

    cfg = validate_config(
        {"training": {"epochs": 4, "scheduler": "cosine", "cycles": 3, "learning_rate": 0.01}}
    ).training
    assert planned_epochs(cfg, history(1.0, 0.8, 0.7, 0.6)) == 8  # 0.6: 14% below 0.7
    assert planned_epochs(cfg, history(1.0, 0.8, 0.7, 0.68)) == 4  # 3% lower: it has settled
    assert planned_epochs(cfg, history(1.0, 0.5, 0.7, 0.6)) == 4  # its best came earlier, by far
    assert planned_epochs(cfg, history(1.0, 0.6, 0.8, 0.604)) == 8  # its last within 1% of it
    assert planned_epochs(cfg, history(1.0, 0.6, 0.8, 0.615)) == 4  # a dip and a rise: noise
    assert planned_epochs(cfg, history(1.0, 0.8, 0.7)) == 4  # the cycle has not ended
    second = (1.0, 0.8, 0.7, 0.6, 0.9, 0.7, 0.6, 0.56)  # its best 7% below the first's
    assert planned_epochs(cfg, history(*second)) == 12
    assert planned_epochs(cfg, history(*second[:7], 0.58)) == 8  # 3% below: done
    assert planned_epochs(cfg, history(*second, 0.5, 0.4, 0.3, 0.2)) == 12  # at most 3 cycles
    once = cfg.model_copy(update={"cycles": 1})
    assert planned_epochs(once, history(1.0, 0.8, 0.7, 0.6)) == 4
    rates = [_scheduled_rate(cfg, epoch) for epoch in range(1, 9)]
    cycle = [0.01 * 0.5 * (1 + np.cos(np.pi * k / 4)) for k in range(4)]
    assert rates == pytest.approx(cycle + cycle)  # each cycle from the top


def test_small_scratch_runs_may_take_more_cycles() -> None:
    from lstmcli.config.resolve import resolve

    def plan(**training: object) -> tuple[int, int]:
        data = {"target": "y", "horizon": 6, "split": 0.75}
        config = validate_config({"data": data, "model": {"init": "none"}, "training": training})
        resolved = resolve(config, prepare_table(monthly_frame(400), config.data, "f"))
        return resolved.config.training.epochs, resolved.config.training.cycles

    assert plan() == (100, 1)  # 241 windows, 8 steps an epoch: the 150-epoch cap fits one
    assert plan(batch_size=8) == (26, 5)  # 31 steps an epoch: 5 cycles of 26 in 150 epochs
    assert plan(batch_size=8, epochs=30) == (30, 1)  # epochs a user sets: the most that run
    assert plan(batch_size=8, cycles=2) == (26, 2)


def test_an_ensemble_averages_its_members(tmp_path: Path, csv_path: Path) -> None:
    import torch

    from lstmcli.errors import LstmcliError
    from lstmcli.model.checkpoint import load_checkpoint
    from lstmcli.run.resume import prepare_resume

    cfg = validate_config(tiny_config(csv_path, training={"ensemble": 3, "epochs": 2}))
    result = train_run(cfg, tmp_path / "run")
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert history["member"].tolist() == [1, 1, 2, 2, 3, 3]
    model = load_checkpoint(tmp_path / "run").build_network()
    assert len(model.members) == 3
    windows = torch.randn(4, 12, 1)
    with torch.no_grad():
        mean = torch.stack([m(windows) for m in model.members]).mean(dim=0)
        torch.testing.assert_close(model(windows), mean)
        assert not torch.equal(model.members[0](windows), model.members[1](windows))
    single = train_run(
        validate_config(tiny_config(csv_path, training={"epochs": 2})), tmp_path / "one"
    )
    assert result.metrics["model"]["rmse"] != single.metrics["model"]["rmse"]
    with pytest.raises(LstmcliError, match=r"already ran 2 epoch\(s\)"):
        prepare_resume(tmp_path / "run")  # finished: every member ran its epochs


def test_an_ensemble_stopped_in_its_first_epoch_can_resume(tmp_path: Path, csv_path: Path) -> None:
    from lstmcli.errors import TrainingInterrupted
    from lstmcli.run.resume import prepare_resume

    cfg = validate_config(tiny_config(csv_path, training={"ensemble": 2}))
    with pytest.raises(TrainingInterrupted, match="continue with --resume"):
        train_run(cfg, tmp_path / "run", should_stop=lambda: True)
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert files == ["last.pt", "manifest.json"]  # no model yet
    session = json.loads((tmp_path / "run" / "manifest.json").read_text())["sessions"][-1]
    assert session["interrupted"] is True and session["finished"] is not None
    last, config = prepare_resume(tmp_path / "run")
    result = train_run(config, tmp_path / "run", resume=last)
    assert result.metrics["members"] == 2 and not result.training.interrupted


def test_members_trained_at_once_equal_members_trained_one_after_another(
    tmp_path: Path, csv_path: Path
) -> None:
    """A member depends on nothing but its seed, weights and window order: two workers (two
    threads) give the weights, history and metrics that one gives."""
    import threading

    import torch

    from lstmcli.model.checkpoint import load_checkpoint

    runs, threads = {}, {}
    before = torch.get_num_threads()
    for workers in (1, 2):
        cfg = validate_config(
            tiny_config(
                csv_path, training={"ensemble": 3, "epochs": 3, "workers": workers, "threads": 1}
            )
        )
        seen: set[int] = set()
        runs[workers] = train_run(
            cfg, tmp_path / f"w{workers}", on_epoch=lambda _, s=seen: s.add(threading.get_ident())
        )
        threads[workers] = len(seen)
    assert threads == {1: 1, 2: 2}
    one, two = (load_checkpoint(tmp_path / f"w{w}").state_dict for w in (1, 2))
    assert one.keys() == two.keys() and any(k.startswith("members.2.") for k in one)
    for key in one:
        torch.testing.assert_close(one[key], two[key], rtol=0, atol=0)
    history = [pd.read_csv(tmp_path / f"w{w}" / "history.csv") for w in (1, 2)]
    assert history[0]["member"].tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    pd.testing.assert_frame_equal(*(h.drop(columns="seconds") for h in history))
    assert runs[1].metrics["model"] == runs[2].metrics["model"]
    assert torch.get_num_threads() == before  # training.threads held for the runs only


@pytest.mark.slow
def test_training_does_not_import_the_compiler() -> None:
    """torch.optim's compiler guards would import torch._dynamo (seconds of start-up) on the
    optimizer's first calls; lstmcli steps around them, and the optimizer works the same."""
    import subprocess
    import sys

    code = """
import sys, torch
from lstmcli.run.startup import optimizer_step, skip_compiler_import
skip = sys.argv[1] == "skip"
if skip:
    skip_compiler_import()
weight = torch.nn.Parameter(torch.ones(3))
optimizer = torch.optim.Adam([weight], lr=0.1)
for _ in range(2):
    optimizer.zero_grad()
    (weight ** 2).sum().backward()
    optimizer_step(optimizer) if skip else optimizer.step()
optimizer.load_state_dict(optimizer.state_dict())
print("torch._dynamo" in sys.modules, round(float(weight[0]), 6))
"""
    out = {}
    for mode in ("skip", "plain"):
        done = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        out[mode] = done.stdout.split()
    assert out["skip"][0] == "False" and out["plain"][0] == "True"
    assert out["skip"][1] == out["plain"][1]  # the same two Adam steps
    assert float(out["skip"][1]) == pytest.approx(0.8, abs=1e-3)  # of about 0.1 each, from 1
