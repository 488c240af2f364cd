"""`lstmcli train` as one function: config in, run folder out.

Order matters: every check that can fail on bad input (config, data, split, device, run folder)
runs before training starts, so a mistake costs seconds and writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lstmcli.checkpoint import (
    CHECKPOINT_FILE,
    LAST_FILE,
    Checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from lstmcli.config import Config, DataConfig, TrainingConfig, config_to_yaml, override_config
from lstmcli.data import Table, infer_freq, median_step, prepare_table, read_csv
from lstmcli.device import resolve_device
from lstmcli.errors import LstmcliError, TrainingInterrupted, some
from lstmcli.files import csv_text, prepare_run_dir, write_text
from lstmcli.metrics import (
    baseline_predictions,
    compare,
    json_safe,
    mase_scales,
    scored_windows,
    series_mase_scales,
    series_report,
)
from lstmcli.model import Ensemble, LSTMForecaster, model_arguments, predict_windows
from lstmcli.predict import prediction_frame
from lstmcli.scaling import constant_columns, fit_scaler, fit_series_scaler
from lstmcli.train import EpochStats, TrainResult, TrainState, fit
from lstmcli.windows import (
    Split,
    WindowSet,
    part_rows,
    rows_needed,
    split_rows,
    split_table,
    target_offsets,
)

# What `--resume` may change: the length and saving of training, and where it runs.
RESUMABLE_KEYS = {
    "training.epochs",
    "training.max_steps",
    "training.threads",
    "training.precision",
    "training.patience",
    "training.checkpoint_every",
    "training.device",
}


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict
    training: TrainResult
    warnings: list[str] = field(default_factory=list)


def train_run(
    config: Config,
    run_dir: Path,
    *,
    overwrite: bool = False,
    on_epoch: Callable[[EpochStats], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_warning: Callable[[str], None] = lambda message: None,
    resume: Checkpoint | None = None,
) -> RunResult:
    """Read and split the data, fit scalers on the training rows, train, evaluate, write the run.

    With `resume` (a last.pt), its scalers, weights and training state are used instead, and
    training continues exactly where it stopped.
    """
    data_cfg = config.data
    label = data_cfg.path
    keys = [data_cfg.id_column, data_cfg.time_column]
    needed = [c for c in [*keys, *data_cfg.input_columns, *data_cfg.target] if c]
    features_only = [c for c in data_cfg.input_columns if c not in data_cfg.target]
    frame = read_csv(data_cfg.path, label, needed, float32=features_only)
    table = prepare_table(frame, data_cfg, label)
    del frame  # the arrays are in the table now; a large CSV's frame is worth freeing
    warnings = list(table.notes)
    table = _usable_series(table, data_cfg, warnings)
    split = split_table(table, data_cfg)
    train_rows = part_rows(split.bounds["train"])
    row_series = table.row_series() if table.ids is not None else None
    train_series = row_series[train_rows] if row_series is not None else None
    if resume is not None:
        if resume.data_rows != len(table.inputs):
            raise LstmcliError(
                f"{label} has {len(table.inputs)} rows but the run started with "
                f"{resume.data_rows}; the data changed, so start a new run"
            )
        input_scaler, target_scaler = resume.input_scaler, resume.target_scaler
    elif data_cfg.scale_by == "series":
        n = table.n_series
        input_scaler = fit_series_scaler(data_cfg.scaler, table.inputs[train_rows], train_series, n)
        target_scaler = fit_series_scaler(
            data_cfg.scaler, table.targets[train_rows], train_series, n
        )
    else:
        input_scaler = fit_scaler(data_cfg.scaler, table.inputs[train_rows])
        target_scaler = fit_scaler(data_cfg.scaler, table.targets[train_rows])
    calendar = [table.input_columns.index(c) for c in data_cfg.calendar_columns]
    input_scaler = input_scaler.without_scaling(calendar)
    constant = constant_columns(table.inputs[train_rows], table.input_columns)
    if constant:
        warnings.append(
            f"column(s) {constant} are constant in the training rows; they carry no signal"
        )
    for message in warnings:
        on_warning(message)
    device = resolve_device(config.training.device)
    if resume is None:
        prepare_run_dir(run_dir, overwrite)

    if config.training.threads is not None:
        torch.set_num_threads(config.training.threads)
    torch.manual_seed(config.training.seed)
    scaled_inputs = input_scaler.transform(table.inputs, row_series, inplace=True)
    inputs = torch.from_numpy(scaled_inputs).to(device)
    targets = torch.from_numpy(target_scaler.transform(table.targets, row_series)).to(device)
    offsets = target_offsets(data_cfg.horizon, data_cfg.task)
    n_future = len(data_cfg.future_columns)
    windows = {
        name: WindowSet(inputs, targets, anchors, data_cfg.lookback, offsets, n_future)
        for name, anchors in split.anchors.items()
    }
    model_args = model_arguments(
        len(table.input_columns),
        len(table.target_columns),
        len(offsets),
        config.model,
        data_cfg.window_norm,
        [table.input_columns.index(c) for c in table.target_columns]
        if data_cfg.task == "forecast"
        else None,
        n_future,
    )
    train_targets = table.targets[train_rows]
    scales = mase_scales(train_targets, data_cfg.season, train_series)
    series_scales = None
    if table.ids is not None:
        series_scales = series_mase_scales(
            train_targets, data_cfg.season, train_series, table.n_series
        )
    longest = int(np.argmax(table.lengths))
    series_time = (
        table.time.iloc[table.offsets[longest] : table.offsets[longest + 1]]
        if table.time is not None
        else None
    )
    time_freq = infer_freq(series_time) if series_time is not None else None
    time_step = median_step(series_time) if series_time is not None else None

    def checkpoint(weights: dict, train_state: TrainState | None = None) -> Checkpoint:
        return Checkpoint(
            config=config,
            model_args=model_args,
            state_dict=weights,
            input_columns=table.input_columns,
            target_columns=table.target_columns,
            input_scaler=input_scaler,
            target_scaler=target_scaler,
            mase_scales=scales,
            trained_on=str(device),
            time_freq=time_freq,
            time_step=time_step,
            data_rows=len(table.inputs),
            train_state=train_state.to_dict() if train_state is not None else None,
            series_ids=table.id_labels() if table.ids is not None else None,
            series_mase_scales=_plain(series_scales),
        )

    def save_progress(train_state: TrainState) -> None:
        """last.pt to continue from, and model.pt with the best weights so far."""
        save_checkpoint(checkpoint(train_state.last_weights, train_state), run_dir / LAST_FILE)
        if train_state.best_weights is not None:
            save_checkpoint(checkpoint(train_state.best_weights), run_dir / CHECKPOINT_FILE)

    if config.training.ensemble > 1:
        model, training, history = _train_ensemble(
            model_args, windows, config.training, device, on_epoch, should_stop
        )
        if training.epochs_run == 0:
            raise TrainingInterrupted("interrupted before the first epoch finished; nothing saved")
        model_args = {**model_args, "members": len(model.members)}
        save_checkpoint(checkpoint(model.state_dict()), run_dir / LAST_FILE)
        save_checkpoint(checkpoint(model.state_dict()), run_dir / CHECKPOINT_FILE)
    else:
        model = LSTMForecaster(**model_args).to(device)
        state = None
        if resume is not None:
            model.load_state_dict(resume.state_dict)
            state = TrainState.from_dict(resume.train_state)
        training = fit(
            model,
            windows["train"],
            windows.get("val"),
            config.training,
            on_epoch,
            should_stop,
            state=state,
            on_checkpoint=save_progress,
        )
        save_progress(training.state)
        if training.epochs_run == 0:
            raise TrainingInterrupted(
                f"interrupted before the first epoch finished; continue with --resume {run_dir}"
            )
        history = pd.DataFrame([asdict(s) for s in training.history])

    test_anchors = split.anchors["test"]
    window_series = table.series_of(test_anchors)
    scaled = predict_windows(model, windows["test"]).cpu().numpy()
    predicted = target_scaler.inverse(scaled, window_series)
    actual = table.targets[test_anchors[:, None] + offsets]
    metrics = _metrics(
        config, table, split, predicted, actual, (scales, series_scales), training, device
    )
    metrics["members"] = model_args.get("members", 1)  # fewer than asked if interrupted

    write_text(run_dir / "config.yaml", config_to_yaml(config))
    columns = ["epoch", "train_loss", "val_loss", "learning_rate", "seconds"]
    history = history[["member", *columns] if "member" in history else columns]
    write_text(run_dir / "history.csv", csv_text(history))
    write_text(run_dir / "metrics.json", json.dumps(json_safe(metrics), indent=2) + "\n")
    frame = prediction_frame(table, test_anchors, offsets, predicted, actual, data_cfg)
    write_text(run_dir / "test_predictions.csv", csv_text(frame))
    return RunResult(run_dir, metrics, training, warnings)


def _train_ensemble(
    model_args: dict,
    windows: dict[str, WindowSet],
    cfg: TrainingConfig,
    device: torch.device,
    on_epoch: Callable[[EpochStats], None] | None,
    should_stop: Callable[[], bool],
) -> tuple[Ensemble, TrainResult, pd.DataFrame]:
    """Train `cfg.ensemble` members from seeds seed, seed+1, ...; stop early on Ctrl-C with
    the members that have at least one epoch. Returns the ensemble, the last member's result
    (its flags: interrupted, ...) and all members' history with a `member` column."""
    members, results, histories = [], [], []
    for index in range(cfg.ensemble):
        torch.manual_seed(cfg.seed + index)
        member = LSTMForecaster(**model_args).to(device)
        member_cfg = cfg.model_copy(update={"seed": cfg.seed + index})
        result = fit(
            member, windows["train"], windows.get("val"), member_cfg, on_epoch, should_stop
        )
        if result.epochs_run:
            members.append(member)
            results.append(result)
            rows = pd.DataFrame([asdict(s) for s in result.history]).assign(member=index + 1)
            histories.append(rows)
        if result.interrupted:
            break
    if not members:
        return Ensemble([member]), result, pd.DataFrame()
    return Ensemble(members), results[-1], pd.concat(histories, ignore_index=True)


def prepare_resume(run_dir: Path, overrides: list[str] = ()) -> tuple[Checkpoint, Config]:
    """The run's last.pt and its config with overrides (only RESUMABLE_KEYS may change);
    pass both to `train_run(config, run_dir, resume=checkpoint)`."""
    last = load_checkpoint(run_dir, LAST_FILE)
    if last.train_state is None:
        reason = " (ensembles cannot be resumed)" if last.config.training.ensemble > 1 else ""
        raise LstmcliError(f"{run_dir / LAST_FILE} holds no training state to resume from{reason}")
    return last, override_config(last.config, list(overrides), RESUMABLE_KEYS, "--resume")


def _usable_series(table: Table, cfg: DataConfig, warnings: list[str]) -> Table:
    """Leave out series too short for one window (and, with scale_by: series, those without a
    training row to fit their scaler on), saying how many; refuse when none is left."""
    if table.ids is None:
        return table
    short = table.lengths < rows_needed("train", cfg)
    reasons = {f"shorter than one window ({rows_needed('train', cfg)} rows)": short}
    if cfg.scale_by == "series":
        starts, stops = split_rows(table, cfg).bounds["train"]
        reasons["without a training row to fit its scaler on"] = (stops == starts) & ~short
    keep = ~np.logical_or.reduce(list(reasons.values()))
    for reason, mask in reasons.items():
        if mask.any():
            names = [str(i) for i, m in zip(table.ids, mask, strict=True) if m]
            warnings.append(
                f"skipped {len(names)} of {table.n_series} series {reason}: {some(names)}"
            )
    if short.all():
        raise LstmcliError(
            f"none of the {table.n_series} series in {cfg.path} is long enough for one window "
            f"(lookback {cfg.lookback} and horizon {cfg.horizon} need "
            f"{rows_needed('train', cfg)} rows)"
        )
    if not keep.any():
        raise LstmcliError(
            f"none of the {table.n_series} series in {cfg.path} has a training row to fit its "
            "scaler on (data.scale_by: series); move data.split's dates or scale globally"
        )
    return table.select_series(keep)


def _plain(values: np.ndarray | None) -> list | None:
    """An array as nested lists with None for NaN, for the checkpoint."""
    if values is None:
        return None
    return [[None if np.isnan(v) else float(v) for v in row] for row in values]


def _metrics(
    config: Config,
    table: Table,
    split: Split,
    predicted: np.ndarray,
    actual: np.ndarray,
    scales: tuple[list[float | None], np.ndarray | None],
    training: TrainResult,
    device: torch.device,
) -> dict:
    """metrics.json: model and baselines on exactly the same test targets (per series too, for
    a file of many series), plus run facts."""
    data_cfg = config.data
    test_anchors = split.anchors["test"]
    offsets = target_offsets(data_cfg.horizon, data_cfg.task)
    window_series = table.series_of(test_anchors)
    scored, season = scored_windows(
        test_anchors, offsets, data_cfg.task, data_cfg.season, table.offsets[window_series]
    )
    baselines = baseline_predictions(
        table.targets, test_anchors[scored], offsets, data_cfg.task, season
    )
    pooled, by_series = scales
    result = compare(actual[scored], predicted[scored], baselines, table.target_columns, pooled)
    if table.ids is not None:
        result["series"] = series_report(
            actual[scored],
            predicted[scored],
            baselines,
            window_series[scored],
            table.id_labels(),
            by_series,
        )
    return {
        **result,
        "targets": table.target_columns,
        "test_windows": int(len(test_anchors)),
        "windows_skipped": int((~scored).sum()),
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
    }
