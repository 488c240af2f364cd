"""`lstmcli train` end to end, as straight stages that return values:

claim the run folder -> plan the config on the data and prepare it (split, scalers) -> open
the folder -> fit (network, blend, calibration; run/fitting.py, which writes nothing: the run
folder hears its events) -> score the test part (the fitted forecaster) -> write the rest.

Every check that can fail on bad input (config, data, split, device, run folder) runs before
training starts, so a mistake costs seconds and writes nothing.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lstmcli.config.plan import Choice, Plan, choices_record
from lstmcli.config.resolve import resolve
from lstmcli.config.schema import Config
from lstmcli.data.table import load_table
from lstmcli.data.training_data import TrainingData, make_windows, plan_data
from lstmcli.data.windows import Split
from lstmcli.errors import TrainingInterrupted, Warn, ignore_warning
from lstmcli.model.checkpoint import Checkpoint
from lstmcli.model.fitted import FittedForecaster
from lstmcli.run.device import resolve_device
from lstmcli.run.distributed import checked_together, device_for, from_environment, process_group
from lstmcli.run.events import each, on_epochs
from lstmcli.run.fitting import (
    Fitted,
    fit_forecaster,
    fitted_model,
    member_threads,
    members_at_once,
    threads_of,
)
from lstmcli.run.folder import RunFolder
from lstmcli.run.loop import EpochStats, TrainResult
from lstmcli.run.manifest import StageClock
from lstmcli.use.backtest import backtest_frame, score_rows, skipped_windows, untested


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
    command: list[str] | None = None,
    tracking_parent: str | None = None,
    chosen_before: dict | None = None,
    locked: bool = False,
) -> RunResult:
    """Read and split the data, fit scalers on the training rows, train, evaluate, write the run.

    Every `auto` in the config is chosen from the data first; `on_start` hears the config
    that will run and the choices, once every check has passed. With `resume` (a last.pt),
    its scalers, weights and training state are used instead, and training continues exactly
    where it stopped. `command` (the command line) goes into manifest.json, with the data
    file's fingerprint, versions, machine and the wall time of each stage. With
    `output.track: mlflow` the run is also logged to MLflow (nested under `tracking_parent`,
    a tune study's MLflow run, when given). What was chosen from the data and why is kept
    from the run's first session on resume, and from `chosen_before` (the choices of the run
    `--again` repeats) where the config still holds those values.

    Under torchrun every rank calls this: each reads the data and trains its share of each
    batch (see train.fit); rank 0 alone writes the run folder and scores the test part.
    """
    dist = from_environment()
    device = device_for(dist, resolve_device(config.training.device))
    clock = StageClock()
    with process_group(dist, device), contextlib.ExitStack() as held:
        # Checks, on every rank: the folder's lock first (a second writer fails before any
        # work), then the data, the `auto` choices, the split and scalers, the folder, the
        # tracking store. Rank 0 alone records: the others' folder is None.
        with checked_together(dist, device), clock.stage("prepare"):
            folder = None
            if dist.main:
                folder = held.enter_context(RunFolder.claim(run_dir, config, warn, locked))
            plan, data = prepare_run(config, warn, resume)
            config = plan.config
            if folder is not None:
                workers = members_at_once(config.training, dist)
                plan = plan.with_choices(folder.open(
                    config, list(plan.choices), data, str(device), dist.world, command, clock,
                    resume, overwrite, workers, member_threads(config.training, workers),
                    chosen_before, tracking_parent,
                ))  # fmt: skip
        if on_start is not None:
            on_start(config, list(plan.choices))
        events = each(on_epochs(on_epoch), folder.listen if folder is not None else None)

        try:
            # Fit: the network(s) on the training windows, blend and intervals on the val part.
            # training.threads holds for the fit and the scores, then torch's count is back
            held.enter_context(threads_of(config))
            with clock.stage("fit"):
                windows = make_windows(data, config.data, device)
                fitted = fit_forecaster(
                    plan, data, windows, device, events=events, snapshots=folder is not None,
                    should_stop=should_stop, resume=resume, dist=dist, warn=warn,
                )  # fmt: skip
            if folder is None:  # rank 0 scores and writes
                return RunResult(run_dir, {}, fitted.training)

            # Score the test part against the baselines, then write the rest of the run folder.
            with clock.stage("score"):
                model = fitted_model(config, data, device, fitted.forecaster)
                metrics, predictions = score_test(model, data)
                if metrics["windows_skipped"]:
                    warn(skipped_windows(metrics, "test"))
                if metrics.get("series_untested"):
                    warn(untested(metrics["series_untested"], config.data.horizon))
                metrics.update(run_facts(fitted, data, device, plan))
            with clock.stage("write"):
                folder.write(metrics, fitted.history, predictions)
        except TrainingInterrupted as e:  # before the first epoch: last.pt and the manifest
            if folder is not None:
                folder.stopped()
                raise TrainingInterrupted(f"{e}; continue with --resume {run_dir}") from None
            raise
        except KeyboardInterrupt:
            if folder is not None:
                folder.stopped()
            raise
        except BaseException:
            if folder is not None:
                folder.abandon()
            raise
        folder.finish(metrics, fitted.history, fitted.training)
        return RunResult(run_dir, metrics, fitted.training)


def prepare_run(
    config: Config, warn: Warn, resume: Checkpoint | None = None
) -> tuple[Plan, TrainingData]:
    """Load the data, plan the run on it (every `auto` chosen), split it and fit the scalers
    on the training rows (a resumed run keeps its own scalers, and its data must not have
    changed)."""
    plan = resolve(config, table := load_table(config.data, warn))
    return plan, plan_data(plan, table, warn, resume)


def resolved_config(config: Config, warn: Warn = ignore_warning) -> Plan:
    """The plan `train` would run, every `auto` chosen from the data (for --print-config)."""
    return resolve(config, load_table(config.data, warn))


def score_test(model: FittedForecaster, data: TrainingData) -> tuple[dict, pd.DataFrame]:
    """metrics.json's scores (model and baselines on the same test targets, their intervals
    when the model has levels) and the rows of test_predictions.csv, in original units. The
    test part is a rolling backtest: adaptive intervals follow the misses as actuals arrive."""
    table, anchors, cfg = data.table, data.split.anchors["test"], model.data
    series = np.arange(table.n_series) if data.input_scaler.per_series else None
    scored = score_rows(model, table, anchors, series, cfg.path)
    forecast = scored.forecast
    frame = backtest_frame(table, anchors, forecast.points, scored.actual, cfg, forecast.bounds)
    metrics = scored.metrics
    if table.ids is not None:  # a series whose test part holds no window is in no score
        tested = set(np.unique(table.series_of(anchors)).tolist())
        labels = table.id_labels()
        missing = [labels[k] for k in range(table.n_series) if k not in tested]
        if missing:
            metrics["series_untested"] = missing
    return metrics, frame


def run_facts(fitted: Fitted, data: TrainingData, device: torch.device, plan: Plan) -> dict:
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
        "auto": choices_record(plan.choices),
    }
    if plan.init.from_model:
        facts["init"] = init_report(plan.config.model.init, training, split)
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
