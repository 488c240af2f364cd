"""Fitting a forecaster on prepared data: the network(s), then the blend, the interval
calibration and the val part's scores, each chosen on the validation windows only.

`train` runs these stages with a `CheckpointSaver` (model.pt and last.pt as training goes);
a tune trial runs the same stages without one and reads the validation scores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lstmcli.backtest import actual_values
from lstmcli.blend import choose_blend
from lstmcli.checkpoint import CHECKPOINT_FILE, LAST_FILE, Checkpoint, save_checkpoint
from lstmcli.config import Config, TrainingConfig, no_val_part_for_intervals
from lstmcli.distributed import SINGLE, Distributed, gather
from lstmcli.errors import LstmcliError, TrainingInterrupted
from lstmcli.forecaster import Forecaster
from lstmcli.intervals import METHODS
from lstmcli.metrics import report
from lstmcli.model import Ensemble, LSTMForecaster, ModelSpec
from lstmcli.train import EpochStats, TrainResult, TrainState, fit
from lstmcli.training_data import TrainingData
from lstmcli.windows import WindowSet

OnEpoch = Callable[[EpochStats], None] | None


@dataclass(frozen=True)
class Fitted:
    """A trained forecaster before its test part is scored."""

    forecaster: Forecaster
    training: TrainResult
    history: pd.DataFrame
    blend: dict | None  # what the val part chose (metrics.json's `blend`), None: not chosen
    validation: dict | None  # the val part's scores in original units (see validation_scores)


@dataclass(frozen=True)
class CheckpointSaver:
    """The one place a run's checkpoints are built and written (model.pt, last.pt)."""

    config: Config
    data: TrainingData
    device: torch.device
    run_dir: Path

    def checkpoint(
        self, spec: ModelSpec, weights: dict, calibration: dict | None = None,
        state: TrainState | None = None,
    ) -> Checkpoint:  # fmt: skip
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
            calibration=calibration,
            baseline_intervals=data.baseline_intervals,
        )

    def save_progress(self, spec: ModelSpec, state: TrainState) -> None:
        """last.pt to continue from, and model.pt with the best weights so far."""
        save_checkpoint(self.checkpoint(spec, state.last_weights, state=state), self.last)
        if state.best_weights is not None:
            save_checkpoint(self.checkpoint(spec, state.best_weights), self.model)

    def save_final(self, spec: ModelSpec, weights: dict) -> None:
        """The same weights as model.pt and as last.pt (without a state: not resumable)."""
        for path in (self.last, self.model):
            save_checkpoint(self.checkpoint(spec, weights), path)

    def save_forecaster(self, forecaster: Forecaster) -> None:
        """model.pt: the forecaster with its blend and calibration."""
        calibration = forecaster.calibration
        checkpoint = self.checkpoint(
            forecaster.spec,
            forecaster.network.state_dict(),
            calibration.to_dict() if calibration is not None else None,
        )
        save_checkpoint(checkpoint, self.model)

    @property
    def model(self) -> Path:
        return self.run_dir / CHECKPOINT_FILE

    @property
    def last(self) -> Path:
        return self.run_dir / LAST_FILE


def fit_forecaster(
    config: Config,
    data: TrainingData,
    windows: dict[str, WindowSet],
    device: torch.device,
    *,
    on_epoch: OnEpoch = None,
    should_stop: Callable[[], bool] = lambda: False,
    saver: CheckpointSaver | None = None,
    resume: Checkpoint | None = None,
    dist: Distributed = SINGLE,
) -> Fitted:
    """Train, blend, calibrate and score the val part, in that order. `config` is resolved;
    with `saver` the checkpoints are written as training goes and once more at the end."""
    # The network(s): one (resumable, saved as it goes) or an ensemble of them.
    if config.training.threads is not None:
        torch.set_num_threads(config.training.threads)
    torch.manual_seed(config.training.seed)
    spec = ModelSpec.for_config(config.data, config.model)
    if config.training.ensemble > 1:
        network, training, history = train_ensemble(
            spec, windows, config.training, device, on_epoch, should_stop, dist
        )
        spec = replace(spec, members=len(network.members))  # fewer than asked if interrupted
        if saver is not None:
            saver.save_final(spec, network.state_dict())
    else:
        network, training, history = train_single(
            spec, windows, config.training, device, on_epoch, should_stop, saver, resume, dist
        )
    data_cfg, model_cfg = config.data, config.model
    forecaster = Forecaster(spec, network, data.input_scaler, data.target_scaler,
                            adaptive=model_cfg.adaptive)  # fmt: skip
    val = windows.get("val")
    has_val = val is not None and len(val) > 0

    # The blend with the better naive forecast, where the val part says it helps.
    blend = None
    blendable = data_cfg.task == "forecast" and not spec.quantile_levels
    if model_cfg.blend == "auto" and has_val and blendable:
        network.eval()
        batches = lambda: forecaster.batches(val)  # noqa: E731 - the val windows, in chunks
        chosen, scores = choose_blend(network, batches, data_cfg.season, spec.target_columns)
        forecaster, blend = forecaster.with_blend(chosen), chosen.report(scores)

    # Interval bounds, calibrated on the val part (a quantile head's own, unconformalized).
    if model_cfg.levels:
        outputs = actual = None
        if model_cfg.needs_val_part:
            if not has_val:
                raise LstmcliError(no_val_part_for_intervals(model_cfg, "this split has none"))
            outputs, actual = forecaster.scaled_outputs(val)
        method = METHODS[model_cfg.intervals]
        calibration = method.fit(model_cfg.levels, spec.n_targets, outputs, actual)
        forecaster = forecaster.with_calibration(calibration)
    if saver is not None:
        saver.save_forecaster(forecaster)

    validation = validation_scores(forecaster, data, val, config, training) if has_val else None
    return Fitted(forecaster, training, history, blend, validation)


def validation_scores(
    forecaster: Forecaster,
    data: TrainingData,
    val: WindowSet,
    config: Config,
    training: TrainResult,
) -> dict:
    """The val part's scores: the best epoch's loss (scaled units, as early stopping saw it)
    and the final forecaster's RMSE, MAE and MASE in original units (after the blend; the
    median of a quantile model). What `tune` selects on and metrics.json reports as
    `validation`."""
    anchors = data.split.anchors["val"]
    series = data.table.series_of(anchors) if data.table.ids is not None else None
    predicted = forecaster.predict(val, series).points
    actual = actual_values(data.table, anchors, config.data)
    scores = report(actual, predicted, data.table.target_columns, data.mase_scales)
    best_loss = training.state.best_loss
    return {
        "loss": best_loss if np.isfinite(best_loss) else None,
        "rmse": scores.get("rmse"),  # in a target's units: one target only
        "mae": scores.get("mae"),
        "mase": scores.get("mase"),
        "windows": int(len(anchors)),
    }


def train_single(
    spec: ModelSpec,
    windows: dict[str, WindowSet],
    cfg: TrainingConfig,
    device: torch.device,
    on_epoch: OnEpoch,
    should_stop: Callable[[], bool],
    saver: CheckpointSaver | None,
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
    save = (lambda progress: saver.save_progress(spec, progress)) if saver else None
    training = fit(
        model, windows["train"], windows.get("val"), cfg, on_epoch, should_stop,
        state=state, on_checkpoint=save, dist=dist,
    )  # fmt: skip
    if save is not None:
        save(training.state)
    if training.epochs_run == 0:
        where = f"; continue with --resume {saver.run_dir}" if saver else ""
        raise TrainingInterrupted(f"interrupted before the first epoch finished{where}")
    return model, training, pd.DataFrame([asdict(s) for s in training.history])


def train_ensemble(
    spec: ModelSpec,
    windows: dict[str, WindowSet],
    cfg: TrainingConfig,
    device: torch.device,
    on_epoch: OnEpoch,
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


def _plain(values: np.ndarray | None) -> list | None:
    """An array as nested lists with None for NaN, for the checkpoint."""
    if values is None:
        return None
    return [[None if np.isnan(v) else float(v) for v in row] for row in values]
