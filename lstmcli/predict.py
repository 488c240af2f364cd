"""Predictions from a checkpoint on new rows, in original units.

Everything comes from the checkpoint: config, columns, fitted scalers (never refit) and weights.
Three shapes of output: the next `horizon` (or `steps`) rows after the input, a rolling
backtest over every complete window, and one prediction per row for the regress task.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lstmcli.checkpoint import Checkpoint, load_checkpoint
from lstmcli.data import (
    Table,
    WindowSet,
    infer_freq,
    median_step,
    prepare_table,
    target_offsets,
    window_anchors,
)
from lstmcli.device import resolve_device
from lstmcli.errors import LstmcliError
from lstmcli.metrics import baseline_predictions, compare, has_baseline_history
from lstmcli.model import predict_windows


@dataclass
class Predictor:
    checkpoint: Checkpoint
    model: torch.nn.Module  # an LSTMForecaster or an Ensemble of them
    device: torch.device

    @property
    def data(self):  # noqa: ANN201 - DataConfig
        return self.checkpoint.config.data


def load_predictor(run: Path, device: str | None = None) -> Predictor:
    """Load a run folder or model.pt onto `device`, or the device it was trained on when that
    exists here, else the CPU (so a GPU-trained model runs anywhere without flags)."""
    checkpoint = load_checkpoint(run)
    if device is not None:
        target = resolve_device(device)
    else:
        trained = checkpoint.trained_on
        available = trained.startswith("cuda") and torch.cuda.is_available()
        target = torch.device(trained if available else "cpu")
    return Predictor(checkpoint, checkpoint.build_model(target), target)


def forecast_next(
    predictor: Predictor, frame: pd.DataFrame, label: str, steps: int | None
) -> pd.DataFrame:
    """The next `steps` rows after the input's last row (default: the model's horizon).

    Beyond the horizon the forecast is recursive: predictions are fed back as inputs, which is
    only possible when every input column is a target.
    """
    cfg, cp = predictor.data, predictor.checkpoint
    steps = steps or cfg.horizon
    if steps > cfg.horizon and cp.input_columns != cp.target_columns:
        extra = [c for c in cp.input_columns if c not in cp.target_columns]
        raise LstmcliError(
            f"--steps {steps} is more than the model's horizon ({cfg.horizon}) and would need "
            f"future values of the feature column(s) {extra}; recursive forecasts work only "
            "when every input column is a target"
        )
    table = prepare_table(frame, predictor.data, label, targets="required")
    _require_rows(len(table.inputs), cfg.lookback, label, "the lookback window")
    window = torch.from_numpy(cp.input_scaler.transform(table.inputs[-cfg.lookback :]))
    window = window.to(predictor.device)
    outputs: list[np.ndarray] = []
    with torch.inference_mode():
        while True:
            scaled = predictor.model(window.unsqueeze(0))[0]
            predicted = cp.target_scaler.inverse(scaled.cpu().numpy().astype(np.float64))
            outputs.append(predicted)
            if len(outputs) * cfg.horizon >= steps:
                break
            # Inputs are exactly the targets here (checked above): feed the forecast back.
            fed_back = torch.from_numpy(cp.input_scaler.transform(predicted)).to(window.device)
            window = torch.cat([window, fed_back])[-cfg.lookback :]
    predicted = np.concatenate(outputs)[:steps]
    columns: dict[str, object] = {}
    if cfg.time_column:
        columns[cfg.time_column] = future_times(table.time, steps, cp)
    else:
        columns["step"] = np.arange(1, steps + 1)
    for j, name in enumerate(cp.target_columns):
        columns[name] = predicted[:, j]
    return pd.DataFrame(columns)


def rolling(predictor: Predictor, frame: pd.DataFrame, label: str) -> pd.DataFrame:
    """A forecast from every window whose targets all lie in the input (a backtest);
    for the regress task, one prediction per row that has a full window."""
    table, anchors, predicted = _predict_all(predictor, frame, label)
    offsets = target_offsets(predictor.data.horizon, predictor.data.task)
    actual = table.targets[anchors[:, None] + offsets] if table.targets.shape[1] else None
    return prediction_frame(table, anchors, offsets, predicted, actual, predictor.data)


def evaluate(predictor: Predictor, frame: pd.DataFrame, label: str) -> dict:
    """Rolling predictions scored like metrics.json, against baselines on the same targets."""
    cfg, cp = predictor.data, predictor.checkpoint
    table, anchors, predicted = _predict_all(predictor, frame, label, targets="required")
    offsets = target_offsets(cfg.horizon, cfg.task)
    # Score only windows where every baseline can look back far enough, so that all are
    # compared on exactly the same targets.
    scored = has_baseline_history(anchors, offsets, cfg.task, cfg.season)
    if not scored.any():
        raise LstmcliError(
            f"{label} has {len(table.inputs)} rows: too few to score any window against the "
            f"baselines, which look back {cfg.season or 1} row(s) before each target; "
            "give more rows"
        )
    anchors, predicted = anchors[scored], predicted[scored]
    actual = table.targets[anchors[:, None] + offsets]
    baselines = baseline_predictions(table.targets, anchors, offsets, cfg.task, cfg.season)
    result = compare(actual, predicted, baselines, cp.target_columns, cp.mase_scales)
    return {
        **result,
        "targets": cp.target_columns,
        "rows": int(len(table.inputs)),
        "windows": int(len(anchors)),
        "windows_skipped": int((~scored).sum()),
    }


def prediction_frame(
    table: Table,
    anchors: np.ndarray,
    offsets: np.ndarray,
    predicted: np.ndarray,
    actual: np.ndarray | None,
    cfg,  # noqa: ANN001 - DataConfig
) -> pd.DataFrame:
    """Rolling output, the format of test_predictions.csv too.

    forecast: one row per (window, step): origin (the window's last row), the predicted row's
    time, step, each target's prediction, and <target>_actual.
    regress: one row per predicted row: time, each target's prediction, <target>_actual.
    Without a time column, times are 0-based row positions in a column named `row`.
    """
    steps = len(offsets)
    target_rows = (anchors[:, None] + offsets[None, :]).ravel()
    time_name = cfg.time_column or "row"

    def times(rows: np.ndarray) -> np.ndarray:
        return table.time.iloc[rows].to_numpy() if table.time is not None else rows

    columns: dict[str, object] = {}
    if cfg.task == "forecast":
        columns["origin"] = times(np.repeat(anchors, steps))
    columns[time_name] = times(target_rows)
    if cfg.task == "forecast":
        columns["step"] = np.tile(np.arange(1, steps + 1), len(anchors))
    for j, name in enumerate(table.target_columns):
        columns[name] = predicted[:, :, j].ravel()
    if actual is not None:
        for j, name in enumerate(table.target_columns):
            columns[f"{name}_actual"] = actual[:, :, j].ravel()
    return pd.DataFrame(columns)


def future_times(time: pd.Series | None, steps: int, checkpoint: Checkpoint) -> list:
    """Times of the `steps` rows after the input, continued at the data's frequency.

    The input's own frequency wins; a short or irregular input falls back to the training
    data's frequency, then to the input's median step.
    """
    last = time.iloc[-1]
    if pd.api.types.is_numeric_dtype(time):
        step = median_step(time) or checkpoint.time_step
        if step is None:
            raise LstmcliError("cannot continue the time column: give at least two input rows")
        if pd.api.types.is_integer_dtype(time) and float(step).is_integer():
            step = int(step)  # years stay 2009, not 2009.0
        return [last + step * k for k in range(1, steps + 1)]
    freq = infer_freq(time) or checkpoint.time_freq
    if freq is not None:
        offset = pd.tseries.frequencies.to_offset(freq)
        return [last + k * offset for k in range(1, steps + 1)]
    if len(time) < 2:
        raise LstmcliError("cannot infer the time step from one row; give more input rows")
    delta = time.diff().median()
    return [last + k * delta for k in range(1, steps + 1)]


def _predict_all(
    predictor: Predictor, frame: pd.DataFrame, label: str, targets: str = "optional"
) -> tuple[Table, np.ndarray, np.ndarray]:
    cfg, cp = predictor.data, predictor.checkpoint
    table = prepare_table(
        frame, cfg, label, targets="required" if cfg.task == "forecast" else targets
    )
    n = len(table.inputs)
    anchors = window_anchors(0, n, cfg.lookback, cfg.horizon, cfg.task)
    if len(anchors) == 0:
        need = cfg.lookback + (cfg.horizon if cfg.task == "forecast" else 0)
        what = f"lookback {cfg.lookback}" + (
            f" and horizon {cfg.horizon}" if cfg.task == "forecast" else ""
        )
        _require_rows(n, need, label, what)
    inputs = torch.from_numpy(cp.input_scaler.transform(table.inputs)).to(predictor.device)
    windows = WindowSet(inputs, None, anchors, cfg.lookback, target_offsets(cfg.horizon, cfg.task))
    scaled = predict_windows(predictor.model, windows).cpu().numpy().astype(np.float64)
    return table, anchors, cp.target_scaler.inverse(scaled)


def _require_rows(have: int, need: int, label: str, what: str) -> None:
    if have < need:
        raise LstmcliError(f"{label} has {have} row(s); {what} needs at least {need}")
