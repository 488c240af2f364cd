"""`lstmcli train` as one function: config in, run folder out, in named stages.

Order matters: every check that can fail on bad input (config, data, split, device, run folder)
runs before training starts, so a mistake costs seconds and writes nothing.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lstmcli.auto import Choice, resolve
from lstmcli.backtest import actual_values, backtest_frame, score_backtest
from lstmcli.blend import Blended, choose_blend
from lstmcli.checkpoint import (
    CHECKPOINT_FILE,
    LAST_FILE,
    Checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from lstmcli.config import Config, DataConfig, TrainingConfig, config_to_yaml, override_config
from lstmcli.data import Table, business_days, infer_freq, load_table, median_step
from lstmcli.device import resolve_device
from lstmcli.distributed import (
    SINGLE,
    Distributed,
    agree,
    device_for,
    from_environment,
    gather,
    process_group,
)
from lstmcli.errors import LstmcliError, TrainingInterrupted, Warn, ignore_warning
from lstmcli.files import csv_text, prepare_run_dir, remove_stale_files, write_text
from lstmcli.intervals import (
    Calibration,
    QuantileCorrection,
    baseline_quantiles,
    calibrate,
    conformalize,
    quantile_bounds,
    scaled_bounds,
)
from lstmcli.lock import run_folder_lock
from lstmcli.metrics import (
    baseline_predictions,
    json_safe,
    mase_scales,
    report,
    series_mase_scales,
)
from lstmcli.model import Ensemble, LSTMForecaster, ModelSpec, predict_quantiles, predict_windows
from lstmcli.scaling import Scaler, fit_scaler, warn_constant_columns
from lstmcli.train import EpochStats, TrainResult, TrainState, fit, quantile_probabilities
from lstmcli.windows import (
    Split,
    WindowSet,
    part_rows,
    split_table,
    target_offsets,
    training_series,
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


@dataclass
class TrainingData:
    """The data as training sees it: the usable series, their split, the scalers fitted on
    the training rows, and what model.pt keeps about the data for predict and evaluate."""

    table: Table
    split: Split
    input_scaler: Scaler
    target_scaler: Scaler
    mase_scales: list[float | None]  # the training rows' in-sample naive error, per target
    series_mase_scales: np.ndarray | None  # the same per series (series, targets)
    time_freq: str | None  # the frequency of the longest series, to continue its times
    time_step: float | None  # the same for a numeric time column
    time_zone: str | None  # the times' zone (UTC when offsets changed); None: naive or numbers
    calibration: Calibration | QuantileCorrection | None = None  # intervals, once calibrated
    baseline_intervals: dict | None = None  # the seasonal-naive baseline's interval quantiles

    def row_series(self) -> np.ndarray | None:
        """Each row's series, for per-series scalers and scores; None for one series."""
        return self.table.row_series() if self.table.ids is not None else None


@dataclass
class FittedModel:
    """A trained model before its test part is scored: what `train` and each `tune` trial
    share (a trial stops here and reads `validation`)."""

    config: Config  # resolved: no `auto` left
    choices: list[Choice]
    data: TrainingData
    windows: dict[str, WindowSet]
    model: torch.nn.Module
    spec: ModelSpec
    training: TrainResult
    history: pd.DataFrame
    device: torch.device
    blend: dict | None
    validation: dict | None  # the val part's scores in original units (see score_validation)


def train_run(
    config: Config,
    run_dir: Path,
    *,
    overwrite: bool = False,
    on_epoch: Callable[[EpochStats], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    warn: Warn = ignore_warning,
    resume: Checkpoint | None = None,
    on_resolved: Callable[[Config, list[Choice]], None] | None = None,
) -> RunResult:
    """Read and split the data, fit scalers on the training rows, train, evaluate, write the run.

    Every `auto` in the config is chosen from the data first (`on_resolved` hears the result,
    before training). With `resume` (a last.pt), its scalers, weights and training state are
    used instead, and training continues exactly where it stopped.

    Under torchrun every rank calls this: each reads the data and trains its share of each
    batch (see train.fit); rank 0 alone writes the run folder and scores the test part.
    """
    dist = from_environment()
    device = device_for(dist, resolve_device(config.training.device))
    with process_group(dist, device), contextlib.ExitStack() as held:
        # The run folder's lock first (rank 0): a second writer fails before any work.
        try:
            if dist.main:
                held.enter_context(run_folder_lock(run_dir, warn))
            table = load_table(config.data, warn)
        except LstmcliError:
            agree(dist, False, device)
            raise
        return _train_and_write(
            config, table, run_dir, overwrite, on_epoch, should_stop, warn, resume,
            on_resolved, dist,
        )  # fmt: skip


def _train_and_write(
    config: Config,
    table: Table,
    run_dir: Path,
    overwrite: bool,
    on_epoch: Callable[[EpochStats], None] | None,
    should_stop: Callable[[], bool],
    warn: Warn,
    resume: Checkpoint | None,
    on_resolved: Callable[[Config, list[Choice]], None] | None,
    dist: Distributed,
) -> RunResult:
    """train_run once the folder is locked and the data read: train, score, write."""

    def start(resolved: Config, choices: list[Choice]) -> None:
        if dist.main and resume is None:
            prepare_run_dir(run_dir, overwrite)
        elif dist.main:
            remove_stale_files(run_dir)
        if on_resolved is not None:  # every check passed: training starts now
            on_resolved(resolved, choices)

    fitted = fit_model(
        config,
        table,
        run_dir if dist.main else None,
        on_epoch,
        should_stop,
        warn,
        resume,
        on_resolved=start,
        dist=dist,
    )
    if not dist.main:  # rank 0 scores and writes
        return RunResult(run_dir, {}, fitted.training)

    # Score the test windows against the baselines, then write the rest of the run folder.
    config, spec, data = fitted.config, fitted.spec, fitted.data
    metrics, predictions = score_test(
        fitted.model, data, fitted.windows["test"], config.data, spec, config.model.adaptive
    )
    if fitted.blend is not None:
        metrics["blend"] = fitted.blend
    if fitted.validation is not None:
        metrics["validation"] = fitted.validation
    metrics.update(_run_facts(data, fitted.training, fitted.device, spec.members))
    metrics["auto"] = {c.key: {"value": c.value, "why": c.why} for c in fitted.choices}
    write_run(run_dir, config, metrics, fitted.history, predictions)
    return RunResult(run_dir, metrics, fitted.training)


def fit_model(
    config: Config,
    table: Table,
    run_dir: Path | None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    warn: Warn = ignore_warning,
    resume: Checkpoint | None = None,
    prepared: Callable[[Config], tuple[TrainingData, dict]] | None = None,
    on_resolved: Callable[[Config, list[Choice]], None] | None = None,
    dist: Distributed = SINGLE,
) -> FittedModel:
    """Everything of a run up to its test part: choose the `auto`s, split, scale, train,
    blend, calibrate intervals, score the val part. The test rows are not read here beyond
    splitting. With `run_dir` None nothing is written (a tune trial); `prepared` may hand
    back the data and windows of an earlier call with the same data config."""
    # Data: choose what `auto` leaves to the data, keep the usable series, split in time
    # order, fit the scalers; then the device. Every rank of a distributed run checks, and
    # all learn whether all passed before any waits on another.
    device = device_for(dist, resolve_device(config.training.device))
    try:
        config, choices = resolve(config, table)
        if prepared is not None:
            data, windows = prepared(config)
        else:
            data = prepare_data(table, config.data, warn, resume)
            windows = None
        if on_resolved is not None:
            on_resolved(config, choices)
    except LstmcliError:
        agree(dist, False, device)
        raise
    if not agree(dist, True, device):
        raise LstmcliError("another process of this distributed run failed (rank 0 says why)")

    # Windows over the scaled series, on the device; the network's shape from the config.
    if config.training.threads is not None:
        torch.set_num_threads(config.training.threads)
    torch.manual_seed(config.training.seed)
    if windows is None:
        windows = make_windows(data, config.data, device)
    spec = ModelSpec.for_config(config.data, config.model)
    writer = CheckpointWriter(config, data, device, run_dir)

    # Train one network (resumable, saved as it goes) or an ensemble of them.
    if config.training.ensemble > 1:
        model, training, history = train_ensemble(
            spec, windows, config.training, device, on_epoch, should_stop, dist
        )
        spec = replace(spec, members=len(model.members))  # fewer than asked if interrupted
        writer.save_final(spec, model.state_dict())
    else:
        model, training, history = train_single(
            spec, windows, config.training, device, on_epoch, should_stop, writer, resume, dist
        )

    # Blend with the better naive forecast where the validation part says it helps.
    blend = None
    blendable = config.data.task == "forecast" and not spec.quantile_levels
    if config.model.blend == "auto" and "val" in windows and blendable:
        model, spec, blend = blend_on_validation(model, spec, windows["val"], config.data)
        if blend["model_weight"] < 1.0:
            writer.save_model(spec, model.state_dict())

    # Prediction intervals: calibrated on the validation windows, the baseline's on training.
    if config.model.levels:
        calibrate_intervals(model, spec, windows, data, config)
        writer.save_model(spec, model.state_dict())

    validation = None
    if "val" in windows and len(windows["val"]):
        validation = score_validation(model, data, windows["val"], config.data, spec, training)
    return FittedModel(
        config, choices, data, windows, model, spec, training, history, device, blend, validation
    )


def score_validation(
    model: torch.nn.Module,
    data: TrainingData,
    val: WindowSet,
    cfg: DataConfig,
    spec: ModelSpec,
    training: TrainResult,
) -> dict:
    """The val part's scores: the best epoch's loss (scaled units, as early stopping saw it)
    and the final model's RMSE, MAE and MASE in original units (after blending; the median
    of a quantile model). What `tune` selects on and metrics.json reports as `validation`."""
    anchors = data.split.anchors["val"]
    series = data.table.series_of(anchors)
    if spec.quantile_levels:
        scaled = predict_quantiles(model, val).cpu().numpy()[..., len(spec.quantile_levels)]
    else:
        scaled = predict_windows(model, val).cpu().numpy()
    predicted = data.target_scaler.inverse(scaled.astype(np.float64), series)
    actual = actual_values(data.table, anchors, cfg)
    scores = report(actual, predicted, data.table.target_columns, data.mase_scales)
    return {
        "loss": training.state.best_loss if np.isfinite(training.state.best_loss) else None,
        "rmse": scores.get("rmse"),  # in a target's units: one target only
        "mae": scores.get("mae"),
        "mase": scores.get("mase"),
        "windows": int(len(anchors)),
    }


def resolved_config(config: Config, warn: Warn = ignore_warning) -> tuple[Config, list[Choice]]:
    """The config `train` would run, every `auto` chosen from the data (for --print-config)."""
    return resolve(config, load_table(config.data, warn))


def prepare_data(
    table: Table, cfg: DataConfig, warn: Warn, resume: Checkpoint | None = None
) -> TrainingData:
    """The usable series of a table, their split and scalers fitted on the training rows (or
    a resumed run's). `cfg` is resolved: no `auto` left."""
    table = training_series(table, cfg, warn)
    split = split_table(table, cfg)
    train_rows = part_rows(split.bounds["train"])
    row_series = table.row_series() if table.ids is not None else None
    train_series = row_series[train_rows] if row_series is not None else None
    if resume is not None:
        if resume.data_rows != len(table.inputs):
            raise LstmcliError(
                f"{cfg.path} has {len(table.inputs)} rows but the run started with "
                f"{resume.data_rows}; the data changed, so start a new run"
            )
        input_scaler, target_scaler = resume.input_scaler, resume.target_scaler
    else:
        n, by = table.n_series, train_series if cfg.scale_by == "series" else None
        input_scaler = fit_scaler(cfg.scaler, table.inputs[train_rows], by, n)
        target_scaler = fit_scaler(cfg.scaler, table.targets[train_rows], by, n)
        input_scaler = input_scaler.without_scaling(cfg.layout.calendar_slice)  # sin/cos
    warn_constant_columns(table.inputs[train_rows], table.input_columns, warn)
    train_targets = table.actual_targets()[train_rows]  # made-up values are no naive errors
    series_scales = None
    if table.ids is not None:
        series_scales = series_mase_scales(train_targets, cfg.season, train_series, table.n_series)
    longest = int(np.argmax(table.lengths))
    time = table.time
    if time is not None:
        time = time.iloc[table.offsets[longest] : table.offsets[longest + 1]]
    return TrainingData(
        table=table,
        split=split,
        input_scaler=input_scaler,
        target_scaler=target_scaler,
        mase_scales=mase_scales(train_targets, cfg.season, train_series),
        series_mase_scales=series_scales,
        time_freq=(infer_freq(time) or business_days(time)) if time is not None else None,
        time_step=median_step(time) if time is not None else None,
        time_zone=_zone(time),
    )


def _zone(time: pd.Series | None) -> str | None:
    if time is None or not pd.api.types.is_datetime64_any_dtype(time) or time.dt.tz is None:
        return None
    return str(time.dt.tz)


def make_windows(data: TrainingData, cfg: DataConfig, device: torch.device) -> dict:
    """Each part's windows over the scaled series (float32 tensors on the device)."""
    table, series = data.table, data.row_series()
    scaled_inputs = data.input_scaler.transform(table.inputs, series, table.input_columns)
    inputs = torch.from_numpy(scaled_inputs).to(device)
    scaled_targets = data.target_scaler.transform(table.targets, series, table.target_columns)
    targets = torch.from_numpy(scaled_targets).to(device)
    offsets = target_offsets(cfg.horizon, cfg.task)
    future = cfg.layout.future
    return {
        name: WindowSet(inputs, targets, anchors, cfg.lookback, offsets, future)
        for name, anchors in data.split.anchors.items()
    }


@dataclass
class CheckpointWriter:
    """The one place a run's checkpoints are built and written (model.pt, last.pt)."""

    config: Config
    data: TrainingData
    device: torch.device
    run_dir: Path | None  # None: nothing is written (a tune trial)

    def checkpoint(
        self, spec: ModelSpec, weights: dict, state: TrainState | None = None
    ) -> Checkpoint:
        data, table = self.data, self.data.table
        return Checkpoint(
            config=self.config,
            spec=spec,
            state_dict=weights,
            input_columns=table.input_columns,
            target_columns=table.target_columns,
            input_scaler=data.input_scaler,
            target_scaler=data.target_scaler,
            mase_scales=data.mase_scales,
            trained_on=str(self.device),
            time_freq=data.time_freq,
            time_step=data.time_step,
            time_zone=data.time_zone,
            data_rows=len(table.inputs),
            train_state=state.to_dict() if state is not None else None,
            series_ids=table.id_labels() if table.ids is not None else None,
            series_mase_scales=_plain(data.series_mase_scales),
            calibration=data.calibration.to_dict() if data.calibration is not None else None,
            baseline_intervals=data.baseline_intervals,
        )

    def save_progress(self, spec: ModelSpec, state: TrainState) -> None:
        """last.pt to continue from, and model.pt with the best weights so far."""
        if self.run_dir is None:
            return
        save_checkpoint(self.checkpoint(spec, state.last_weights, state), self.run_dir / LAST_FILE)
        if state.best_weights is not None:
            save_checkpoint(
                self.checkpoint(spec, state.best_weights), self.run_dir / CHECKPOINT_FILE
            )

    def save_model(self, spec: ModelSpec, weights: dict) -> None:
        """model.pt alone (last.pt keeps the state to resume from)."""
        if self.run_dir is None:
            return
        save_checkpoint(self.checkpoint(spec, weights), self.run_dir / CHECKPOINT_FILE)

    def save_final(self, spec: ModelSpec, weights: dict) -> None:
        """The same weights as model.pt and as last.pt (without a state: not resumable)."""
        if self.run_dir is None:
            return
        for name in (LAST_FILE, CHECKPOINT_FILE):
            save_checkpoint(self.checkpoint(spec, weights), self.run_dir / name)


def train_single(
    spec: ModelSpec,
    windows: dict[str, WindowSet],
    cfg: TrainingConfig,
    device: torch.device,
    on_epoch: Callable[[EpochStats], None] | None,
    should_stop: Callable[[], bool],
    writer: CheckpointWriter,
    resume: Checkpoint | None,
    dist: Distributed = SINGLE,
) -> tuple[LSTMForecaster, TrainResult, pd.DataFrame]:
    """One network, from a resumed state when given, saved every checkpoint_every epochs and
    at the end (also when interrupted, so `--resume` can continue)."""
    model = LSTMForecaster(spec).to(device)
    state = None
    if resume is not None:
        model.load_state_dict(resume.state_dict)
        state = TrainState.from_dict(resume.train_state)
    training = fit(
        model,
        windows["train"],
        windows.get("val"),
        cfg,
        on_epoch,
        should_stop,
        state=state,
        on_checkpoint=lambda progress: writer.save_progress(spec, progress),
        dist=dist,
    )
    writer.save_progress(spec, training.state)
    if training.epochs_run == 0:
        raise TrainingInterrupted(
            f"interrupted before the first epoch finished; continue with --resume {writer.run_dir}"
        )
    return model, training, pd.DataFrame([asdict(s) for s in training.history])


def train_ensemble(
    spec: ModelSpec,
    windows: dict[str, WindowSet],
    cfg: TrainingConfig,
    device: torch.device,
    on_epoch: Callable[[EpochStats], None] | None,
    should_stop: Callable[[], bool],
    dist: Distributed = SINGLE,
) -> tuple[Ensemble, TrainResult, pd.DataFrame]:
    """Train `cfg.ensemble` members from seeds seed, seed+1, ...; stop early on Ctrl-C with
    the members that have at least one epoch. Returns the ensemble, the last member's result
    (its flags: interrupted, ...) and all members' history with a `member` column.

    Under torchrun the members train in parallel, member i on rank i mod N, each on all of
    its windows (no gradients to share), and every rank gathers them all in member order."""
    trained: list[tuple[int, dict, TrainResult, pd.DataFrame]] = []
    for index in range(dist.rank, cfg.ensemble, dist.world):
        torch.manual_seed(cfg.seed + index)
        member = LSTMForecaster(spec).to(device)
        member_cfg = cfg.model_copy(update={"seed": cfg.seed + index})
        result = fit(
            member, windows["train"], windows.get("val"), member_cfg, on_epoch, should_stop
        )
        if result.epochs_run:
            rows = pd.DataFrame([asdict(s) for s in result.history]).assign(member=index + 1)
            weights = {k: v.cpu() for k, v in member.state_dict().items()}
            trained.append((index, weights, result, rows))
        if result.interrupted:
            break
    if dist.world > 1:  # every rank's members, in member order, on every rank
        gathered = gather([(i, w, _plain_result(r), h) for i, w, r, h in trained], dist)
        trained = sorted(
            ((i, w, _result_from(r), h) for part in gathered for i, w, r, h in part),
            key=lambda m: m[0],
        )
    if not trained:
        raise TrainingInterrupted("interrupted before the first epoch finished; nothing saved")
    members = []
    for _, weights, _, _ in trained:
        member = LSTMForecaster(spec).to(device)
        member.load_state_dict(weights)
        members.append(member)
    last = trained[-1][2]
    last.interrupted = any(m[2].interrupted for m in trained)
    history = pd.concat([m[3] for m in trained], ignore_index=True)
    return Ensemble(members), last, history


def _plain_result(result: TrainResult) -> dict:
    """A member's result without its weights (sent apart), to send to the other ranks."""
    state = result.state.to_dict() | {"best_weights": None, "last_weights": None}
    return {
        "state": state | {"optimizer": None, "order": None},
        "stopped_early": result.stopped_early,
        "interrupted": result.interrupted,
        "reached_max_steps": result.reached_max_steps,
    }


def _result_from(plain: dict) -> TrainResult:
    return TrainResult(
        TrainState.from_dict(plain["state"]),
        plain["stopped_early"],
        plain["interrupted"],
        plain["reached_max_steps"],
    )


def blend_on_validation(
    model: torch.nn.Module, spec: ModelSpec, val: WindowSet, cfg: DataConfig
) -> tuple[torch.nn.Module, ModelSpec, dict]:
    """The network blended with the better naive forecast at the weight the validation
    windows prefer (see blend.py); the test part plays no part in the choice."""
    index = list(spec.target_index) if spec.target_index is not None else [0]
    kind, weight, scores = choose_blend(model, val, cfg.season, index)
    report = {
        "baseline": "seasonal_naive" if kind == "seasonal" else "naive",
        "model_weight": weight,
        "val_rmse_scaled": scores,
    }
    if weight == 1.0:
        return model, spec, report
    spec = replace(spec, blend_weight=weight, blend_baseline=kind, season=cfg.season)
    return Blended(model, weight, kind, cfg.season, index), spec, report


def calibrate_intervals(
    model: torch.nn.Module,
    spec: ModelSpec,
    windows: dict[str, WindowSet],
    data: TrainingData,
    config: Config,
) -> None:
    """Fill `data.calibration` from the validation windows' standardized residuals (see
    intervals.py) and `data.baseline_intervals` from the seasonal-naive (else naive)
    baseline's residuals on the training windows."""
    cfg, levels = config.data, config.model.levels
    needs_val = not spec.quantile_levels or config.model.conformalize
    if needs_val and ("val" not in windows or not len(windows["val"])):
        raise LstmcliError(
            f"model.levels: {config.model.intervals} intervals are calibrated on a val part, "
            "and this split has none; give data.split one or use more data"
        )
    if spec.quantile_levels and not config.model.conformalize:
        zeros = np.zeros((len(levels), spec.n_targets))
        data.calibration = QuantileCorrection(list(levels), zeros, 0)
    else:
        val = windows["val"]
        positions = torch.arange(len(val), device=val.anchors.device)
        actual = val.batch(positions)[2].float()
        if spec.quantile_levels:
            quantiles = predict_quantiles(model, val).float()
            data.calibration = conformalize(
                quantiles.cpu().numpy(), actual.cpu().numpy(), list(levels)
            )
        else:
            index = list(spec.target_index) if spec.target_index is not None else [0]
            scaled, spread = predict_windows(model, val, index)
            standardized = ((actual - scaled.float()) / spread).cpu().numpy()
            data.calibration = calibrate(standardized, levels)
    table, train = data.table, data.split.anchors["train"]
    offsets = target_offsets(cfg.horizon, cfg.task)
    season = cfg.season if isinstance(cfg.season, int) else None
    forecasts = baseline_predictions(table.targets, train, offsets, cfg.task, season)
    name = "seasonal_naive" if "seasonal_naive" in forecasts else "naive"
    if name in forecasts:
        residuals = table.actual_targets()[train[:, None] + offsets] - forecasts[name]
        data.baseline_intervals = {
            "baseline": name,
            **baseline_quantiles(residuals, config.model.levels),
        }


def score_test(
    model: torch.nn.Module,
    data: TrainingData,
    test: WindowSet,
    cfg: DataConfig,
    spec: ModelSpec,
    adaptive: bool = True,
) -> tuple[dict, pd.DataFrame]:
    """metrics.json's scores (model and baselines on the same test targets, their intervals
    when the model has levels) and the rows of test_predictions.csv, in original units."""
    table, anchors = data.table, data.split.anchors["test"]
    series = table.series_of(anchors)
    bounds, pinball = None, None
    if isinstance(data.calibration, QuantileCorrection):
        quantiles = predict_quantiles(model, test).cpu().numpy().astype(np.float64)
        scaled = quantiles[..., len(spec.quantile_levels)]  # the median
        bounds = {
            level: (data.target_scaler.inverse(lo, series), data.target_scaler.inverse(hi, series))
            for level, (lo, hi) in quantile_bounds(quantiles, data.calibration).items()
        }
        pinball = _pinball(quantiles, data, anchors, cfg, spec)
    elif data.calibration is not None:
        index = list(spec.target_index) if spec.target_index is not None else [0]
        scaled, spread = (t.cpu().numpy() for t in predict_windows(model, test, index))
        actual_scaled = data.target_scaler.transform(actual_values(table, anchors, cfg), series)
        bounds = scaled_bounds(scaled, spread, actual_scaled, series, data.calibration, adaptive)
        bounds = {
            level: (data.target_scaler.inverse(lo, series), data.target_scaler.inverse(hi, series))
            for level, (lo, hi) in bounds.items()
        }
    else:
        scaled = predict_windows(model, test).cpu().numpy()
    predicted = data.target_scaler.inverse(scaled, series)
    metrics = score_backtest(
        table,
        anchors,
        predicted,
        cfg,
        data.mase_scales,
        data.series_mase_scales,
        cfg.path,
        bounds,
        data.baseline_intervals,
    )
    if pinball is not None:
        metrics["intervals"]["pinball"] = pinball
    actual = actual_values(table, anchors, cfg)
    return metrics, backtest_frame(table, anchors, predicted, actual, cfg, bounds)


def _pinball(
    quantiles: np.ndarray, data: TrainingData, anchors: np.ndarray, cfg: DataConfig, spec: ModelSpec
) -> float:
    """The mean pinball loss of a quantile model's test quantiles, in original units."""
    series = data.table.series_of(anchors)
    actual = actual_values(data.table, anchors, cfg)
    probabilities = quantile_probabilities(spec.quantile_levels)
    losses = []
    for k, q in enumerate(probabilities):
        error = actual - data.target_scaler.inverse(quantiles[..., k], series)
        losses.append(np.nanmean(np.maximum(q * error, (q - 1) * error)))
    return float(np.mean(losses))


def _run_facts(
    data: TrainingData, training: TrainResult, device: torch.device, members: int
) -> dict:
    """What metrics.json says about the run besides the scores."""
    split = data.split
    return {
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
        "members": members,
    }


def write_run(
    run_dir: Path, config: Config, metrics: dict, history: pd.DataFrame, predictions: pd.DataFrame
) -> None:
    """config.yaml, history.csv, metrics.json and test_predictions.csv (model.pt and last.pt
    are written during training)."""
    write_text(run_dir / "config.yaml", config_to_yaml(config))
    columns = ["epoch", "train_loss", "val_loss", "learning_rate", "seconds"]
    history = history[["member", *columns] if "member" in history else columns]
    write_text(run_dir / "history.csv", csv_text(history))
    write_text(run_dir / "metrics.json", json.dumps(json_safe(metrics), indent=2) + "\n")
    write_text(run_dir / "test_predictions.csv", csv_text(predictions))


def prepare_resume(run_dir: Path, overrides: list[str] = ()) -> tuple[Checkpoint, Config]:
    """The run's last.pt and its config with overrides (only RESUMABLE_KEYS may change);
    pass both to `train_run(config, run_dir, resume=checkpoint)`."""
    last = load_checkpoint(run_dir, LAST_FILE)
    if last.train_state is None:
        reason = " (ensembles cannot be resumed)" if last.config.training.ensemble > 1 else ""
        raise LstmcliError(f"{run_dir / LAST_FILE} holds no training state to resume from{reason}")
    config = override_config(last.config, list(overrides), RESUMABLE_KEYS, "--resume")
    _refuse_finished(last.train_state, config.training, run_dir)
    return last, config


def _refuse_finished(state: dict, cfg: TrainingConfig, run_dir: Path) -> None:
    """A run that ended (all its epochs, early stopping, max_steps) has nothing to continue:
    resuming it would only re-evaluate, under a config.yaml that no longer says what ran."""
    if state.get("order") is not None:
        return  # stopped in the middle of an epoch: there is an epoch to finish
    done, best = state["epoch"], state["best_epoch"]
    history = state.get("history") or []
    has_val = bool(history) and history[-1].get("val_loss") is not None
    if done >= cfg.epochs:
        raise LstmcliError(
            f"{run_dir} already ran {done} epoch(s) (training.epochs {cfg.epochs}); to train "
            f"longer, resume with --set training.epochs=N for some N above {done}"
        )
    if has_val and cfg.patience is not None and done - best >= cfg.patience:
        raise LstmcliError(
            f"{run_dir} stopped early at epoch {done}: no better validation loss for "
            f"{done - best} epoch(s) (training.patience {cfg.patience}); to go on, resume "
            f"with --set training.patience=N for some N above {done - best}"
        )
    if cfg.max_steps is not None and state["steps"] >= cfg.max_steps:
        raise LstmcliError(
            f"{run_dir} reached training.max_steps ({cfg.max_steps}); resume with a higher "
            "--set training.max_steps=N"
        )


def _plain(values: np.ndarray | None) -> list | None:
    """An array as nested lists with None for NaN, for the checkpoint."""
    if values is None:
        return None
    return [[None if np.isnan(v) else float(v) for v in row] for row in values]
