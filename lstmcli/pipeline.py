"""`lstmcli train` end to end, as straight stages that return values:

load and resolve the config on the data -> prepare (split, scalers) -> open the run folder ->
fit (network, blend, calibration; fitting.py) -> score the test part -> write the run folder.

Every check that can fail on bad input (config, data, split, device, run folder) runs before
training starts, so a mistake costs seconds and writes nothing.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from lstmcli.auto import Choice, resolve
from lstmcli.backtest import actual_values, backtest_frame, score_backtest
from lstmcli.checkpoint import Checkpoint
from lstmcli.config import Config, DataConfig
from lstmcli.config_io import config_to_yaml
from lstmcli.data import load_table
from lstmcli.device import resolve_device
from lstmcli.distributed import checked_together, device_for, from_environment, process_group
from lstmcli.errors import Warn, ignore_warning
from lstmcli.files import csv_text, prepare_run_dir, remove_stale_files, write_text
from lstmcli.fitting import CheckpointSaver, Fitted, fit_forecaster
from lstmcli.forecaster import Forecaster
from lstmcli.lock import run_folder_lock
from lstmcli.metrics import json_safe
from lstmcli.prior import is_prior, windowless_parts
from lstmcli.train import EpochStats, TrainResult
from lstmcli.training_data import TrainingData, make_windows, prepare_data
from lstmcli.windows import Split, WindowSet


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    metrics: dict
    training: TrainResult | None  # None: a finished run read back (another process trained it)


def train_run(
    config: Config,
    run_dir: Path,
    *,
    overwrite: bool = False,
    on_start: Callable[[Config, list[Choice]], None] | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    warn: Warn = ignore_warning,
    resume: Checkpoint | None = None,
) -> RunResult:
    """Read and split the data, fit scalers on the training rows, train, evaluate, write the run.

    Every `auto` in the config is chosen from the data first; `on_start` hears the config
    that will run and the choices, once every check has passed. With `resume` (a last.pt),
    its scalers, weights and training state are used instead, and training continues exactly
    where it stopped.

    Under torchrun every rank calls this: each reads the data and trains its share of each
    batch (see train.fit); rank 0 alone writes the run folder and scores the test part.
    """
    dist = from_environment()
    device = device_for(dist, resolve_device(config.training.device))
    with process_group(dist, device), contextlib.ExitStack() as held:
        # Checks, on every rank: the folder's lock first (a second writer fails before any
        # work), then the data, the `auto` choices, the split and scalers, the folder.
        with checked_together(dist, device):
            if dist.main:
                held.enter_context(run_folder_lock(run_dir, warn))
            config, choices, data = prepare_run(config, warn, resume)
            if dist.main:
                open_run_folder(run_dir, overwrite, resumed=resume is not None)
        if on_start is not None:
            on_start(config, choices)

        # Fit: the network(s) on the training windows, blend and intervals on the val part.
        windows = make_windows(data, config.data, device)
        saver = CheckpointSaver(config, data, device, run_dir) if dist.main else None
        fitted = fit_forecaster(
            config, data, windows, device, on_epoch=on_epoch, should_stop=should_stop,
            saver=saver, resume=resume, dist=dist, warn=warn,
        )  # fmt: skip
        if not dist.main:  # rank 0 scores and writes
            return RunResult(run_dir, {}, fitted.training)

        # Score the test part against the baselines, then write the rest of the run folder.
        metrics, predictions = score_test(fitted.forecaster, data, windows["test"], config.data)
        metrics.update(run_facts(fitted, data, device, choices, config.model.init))
        write_run(run_dir, config, metrics, fitted.history, predictions)
        return RunResult(run_dir, metrics, fitted.training)


def prepare_run(
    config: Config, warn: Warn, resume: Checkpoint | None = None
) -> tuple[Config, list[Choice], TrainingData]:
    """Load the data, choose every `auto` from it, split it and fit the scalers on the
    training rows (a resumed run keeps its own scalers, and its data must not have changed)."""
    table = load_table(config.data, warn)
    config, choices = resolve(config, table)
    data = prepare_data(
        table,
        config.data,
        warn,
        config.model.levels,
        scalers=(resume.input_scaler, resume.target_scaler) if resume is not None else None,
        expected_rows=resume.data_rows if resume is not None else None,
        windowless=windowless_parts(config.model.init),
    )
    return config, choices, data


def resolved_config(config: Config, warn: Warn = ignore_warning) -> tuple[Config, list[Choice]]:
    """The config `train` would run, every `auto` chosen from the data (for --print-config)."""
    return resolve(config, load_table(config.data, warn))


def open_run_folder(run_dir: Path, overwrite: bool, resumed: bool) -> None:
    """Create the run folder (refusing a used one without `overwrite`), or tidy the folder a
    resumed run continues in."""
    if resumed:
        remove_stale_files(run_dir)
    else:
        prepare_run_dir(run_dir, overwrite)


def score_test(
    forecaster: Forecaster, data: TrainingData, test: WindowSet, cfg: DataConfig
) -> tuple[dict, pd.DataFrame]:
    """metrics.json's scores (model and baselines on the same test targets, their intervals
    when the model has levels) and the rows of test_predictions.csv, in original units. The
    test part is a rolling backtest: adaptive intervals follow the misses as actuals arrive."""
    table, anchors = data.table, data.split.anchors["test"]
    actual = actual_values(table, anchors, cfg)
    series = table.series_of(anchors)
    forecast = forecaster.predict(test, data.window_series("test"), actual=actual, series=series)
    metrics = score_backtest(
        table,
        anchors,
        forecast.points,
        cfg,
        data.mase_scales,
        data.series_mase_scales,
        cfg.path,
        forecast.bounds,
        data.baseline_intervals,
    )
    return metrics, backtest_frame(table, anchors, forecast.points, actual, cfg, forecast.bounds)


def run_facts(
    fitted: Fitted, data: TrainingData, device: torch.device, choices: list[Choice], init: str
) -> dict:
    """What metrics.json says about the run besides the test scores."""
    split, training = data.split, fitted.training
    facts: dict = {}
    if fitted.blend is not None:
        facts["blend"] = fitted.blend
    if fitted.validation is not None:
        facts["validation"] = fitted.validation
    if fitted.forecaster.calibration is not None:
        facts["calibration"] = fitted.forecaster.calibration.report()
    facts |= {
        "targets": data.table.target_columns,
        "test_windows": int(len(split.anchors["test"])),
        "rows": {name: int((b - a).sum()) for name, (a, b) in split.bounds.items()},
        "windows": {name: int(len(a)) for name, a in split.anchors.items()},
        "epochs_run": training.epochs_run,
        "best_epoch": training.best_epoch,
        "stopped_early": training.stopped_early,
        "reached_max_steps": training.reached_max_steps,
        "steps": training.state.steps,
        "interrupted": training.interrupted,
        "training_seconds": round(training.seconds, 3),
        "device": str(device),
        "members": fitted.forecaster.spec.members,
        "auto": {c.key: {"value": c.value, "why": c.why} for c in choices},
    }
    if is_prior(init):
        facts["init"] = init_report(init, training, split)
    return facts


def init_report(init: str, training: TrainResult, split: Split) -> dict:
    """What the val part chose for a run started from another model: its network as is
    (epoch 0) or fine-tuned (the best epoch), with the val loss of each, over how many
    forecast origins (the val part's windows; the last member's, in an ensemble)."""
    state = training.state
    return {
        "from": init,
        "kept": "as is" if state.best_epoch == 0 else f"fine-tuned ({state.best_epoch} epochs)",
        "val_origins": int(len(split.anchors.get("val", []))),
        "val_loss_as_is": state.start_loss,
        "val_loss_kept": state.best_loss if math.isfinite(state.best_loss) else None,
    }


def write_run(
    run_dir: Path, config: Config, metrics: dict, history: pd.DataFrame, predictions: pd.DataFrame
) -> None:
    """config.yaml, history.csv, metrics.json and test_predictions.csv (model.pt and last.pt
    are written during fitting)."""
    write_text(run_dir / "config.yaml", config_to_yaml(config))
    columns = ["epoch", "train_loss", "val_loss", "learning_rate", "seconds"]
    history = history[["member", *columns] if "member" in history else columns]
    write_text(run_dir / "history.csv", csv_text(history))
    write_text(run_dir / "metrics.json", json.dumps(json_safe(metrics), indent=2) + "\n")
    write_text(run_dir / "test_predictions.csv", csv_text(predictions))
