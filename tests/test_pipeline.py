"""`train` as straight stages: what each returns, the order of events, and that a tune
trial runs the same stages without the writing ones."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from lstmcli.config.edit import config_value, validate_config
from lstmcli.data.training_data import make_windows
from lstmcli.errors import LstmcliError
from lstmcli.run.fitting import fit_forecaster
from lstmcli.run.pipeline import prepare_run, train_run

from .conftest import tiny_config

AUTO_KEYS = (
    "data.lookback",
    "data.season",
    "data.window_norm",
    "model.hidden_size",
    "model.head",
    "training.epochs",
    "training.ensemble",
    "training.batch_size",
)


def test_prepare_resolves_every_auto_and_freezes_the_data(csv_path: Path) -> None:
    raw = tiny_config(csv_path)
    for key in AUTO_KEYS:
        section, name = key.split(".")
        raw[section][name] = "auto"
    raw["training"]["epochs"] = 2  # keep it quick; the rest is chosen from the data
    plan, data = prepare_run(validate_config(raw), print)
    config = plan.config
    assert {c.key for c in plan.choices} >= set(AUTO_KEYS) - {"training.epochs"}
    assert all(config_value(config, key) != "auto" for key in AUTO_KEYS)
    assert isinstance(config.data.lookback, int) and isinstance(config.training.ensemble, int)
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.split = None  # stages return values; none edits another's
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.init = None
    assert data.input_scaler.center.shape == (1,)


def test_a_trial_runs_trains_stages_and_writes_nothing(tmp_path: Path, csv_path: Path) -> None:
    raw = tiny_config(csv_path, model={"levels": [80], "blend": "auto"})
    result = train_run(validate_config(raw), tmp_path / "run")
    plan, data = prepare_run(validate_config(raw), print)
    config = plan.config
    windows = make_windows(data, config.data, torch.device("cpu"))
    before = set(tmp_path.rglob("*"))
    heard = []
    fitted = fit_forecaster(
        plan, data, windows, torch.device("cpu"), events=heard.append, snapshots=True
    )
    assert set(tmp_path.rglob("*")) == before  # fitting writes nothing, snapshots or not
    kinds = [type(event).__name__ for event in heard]
    epochs = config.training.epochs * config.training.ensemble
    assert kinds.count("EpochEnded") == result.metrics["epochs_run"] * config.training.ensemble
    assert epochs >= kinds.count("EpochEnded") > 0 and "CheckpointDue" in kinds
    assert kinds[-1] == "ForecasterReady" and kinds.count("ForecasterReady") == 1
    assert heard[-1].forecaster.levels == [80]  # what model.pt holds: blend and calibration
    assert fitted.validation == result.metrics["validation"]
    assert fitted.blend == result.metrics["blend"]
    assert fitted.forecaster.levels == [80]


def test_the_run_folder_opens_only_after_every_check(tmp_path: Path, csv_path: Path) -> None:
    seen = []

    def on_start(config: object, choices: list) -> None:  # told once the checks passed
        seen.append(sorted(p.name for p in (tmp_path / "run").iterdir()))

    train_run(validate_config(tiny_config(csv_path)), tmp_path / "run", on_start=on_start)
    assert seen == [[".lock", "manifest.json"]]  # held, and says what runs; nothing trained
    bad = tiny_config(csv_path, data={"lookback": 500})
    with pytest.raises(LstmcliError, match="too few for one window"):
        train_run(validate_config(bad), tmp_path / "other", on_start=on_start)
    assert not (tmp_path / "other").exists() and len(seen) == 1


def test_training_threads_hold_for_the_run_and_are_restored(tmp_path: Path, csv_path: Path) -> None:
    """training.threads is torch's count while a run fits and scores, not after it: a
    library caller (a notebook, tune's own process) keeps its own."""
    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    seen = []
    raw = tiny_config(csv_path, training={"threads": wanted, "epochs": 2})
    train_run(validate_config(raw), tmp_path / "run",
              on_epoch=lambda stats: seen.append(torch.get_num_threads()))  # fmt: skip
    assert seen and set(seen) == {wanted}
    assert torch.get_num_threads() == before
    plan, data = prepare_run(validate_config(raw), print)
    windows = make_windows(data, plan.config.data, torch.device("cpu"))
    fit_forecaster(plan, data, windows, torch.device("cpu"))
    assert torch.get_num_threads() == before


def test_the_plan_holds_only_chosen_values_and_reads_the_prior_once(
    tmp_path: Path, csv_path: Path, monkeypatch
) -> None:
    """resolve gives a Plan: every `auto` a value of the type the code below reads, and the
    checkpoint model.init names, read once for the whole run (a run folder here)."""
    from lstmcli.config import resolve as resolving
    from lstmcli.config.plan import Plan, PlannedConfig
    from lstmcli.data.table import load_table
    from lstmcli.model.checkpoint import load_checkpoint

    first = train_run(validate_config(tiny_config(csv_path)), tmp_path / "first")
    reads = []
    monkeypatch.setattr(
        resolving, "load_prior", lambda init: reads.append(init) or load_checkpoint(Path(init))
    )
    raw = tiny_config(csv_path, model={"init": str(first.run_dir), "hidden_size": "auto"})
    raw["training"]["epochs"] = 1
    result = train_run(validate_config(raw), tmp_path / "second")
    assert reads == [str(first.run_dir)] and result.metrics["epochs_run"] <= 1
    plan = resolving.resolve(validate_config(raw), load_table(validate_config(raw).data))
    assert isinstance(plan.config, PlannedConfig) and plan.init.from_model
    assert isinstance(plan.config.model.hidden_size, int)  # the prior's
    with pytest.raises(LstmcliError, match=r"no value was chosen for data\.lookback"):
        Plan.of(validate_config(tiny_config(csv_path, data={"lookback": "auto"})))
