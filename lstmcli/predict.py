"""Predictions from a checkpoint on new rows, in original units.

Everything comes from the checkpoint: config, columns, fitted scalers (never refit) and weights.
Three shapes of output: the next `horizon` (or `steps`) rows after the input, a rolling
backtest over every complete window, and one prediction per row for the regress task.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from warnings import catch_warnings, simplefilter

import numpy as np
import pandas as pd
import torch

from lstmcli.calendar import calendar_values
from lstmcli.checkpoint import Checkpoint, load_checkpoint
from lstmcli.data import Table, infer_freq, median_step, prepare_table
from lstmcli.device import resolve_device
from lstmcli.errors import LstmcliError, some
from lstmcli.metrics import baseline_predictions, compare, scored_windows, series_report
from lstmcli.model import predict_windows
from lstmcli.windows import WindowSet, series_anchors, target_offsets


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


def keep_ids(frame: pd.DataFrame, cfg, ids: list[str], label: str) -> pd.DataFrame:  # noqa: ANN001
    """The rows of the series named by `--id` (compared as text); an id not in the input is an
    error that names it."""
    if not ids:
        return frame
    if cfg.id_column is None:
        raise LstmcliError("--id needs a model trained on many series (data.id_column)")
    if cfg.id_column not in frame.columns:
        raise LstmcliError(f"column(s) [{cfg.id_column!r}] not found in {label}")
    text = frame[cfg.id_column].astype(str)
    absent = [i for i in dict.fromkeys(ids) if not (text == i).any()]
    if absent:
        raise LstmcliError(
            f"--id: series {absent} not found in column {cfg.id_column!r} of {label}"
        )
    return frame[text.isin(ids).to_numpy()].reset_index(drop=True)


def forecast_next(
    predictor: Predictor,
    frame: pd.DataFrame,
    label: str,
    steps: int | None,
    warnings: list[str] | None = None,
) -> pd.DataFrame:
    """The next `steps` rows after each series' last row with targets (default: the horizon).

    Rows at the end of a series with empty targets are the rows to forecast: they carry the
    known features (and their times). Beyond the horizon the forecast is recursive:
    predictions are fed back as inputs, which needs every past-only input to be a target.
    """
    cfg, cp = predictor.data, predictor.checkpoint
    horizon = cfg.horizon
    steps = steps or horizon
    if steps > horizon and cfg.features:
        raise LstmcliError(
            f"--steps {steps} is more than the model's horizon ({horizon}) and would need "
            f"future values of the feature column(s) {cfg.features}; recursive forecasts work "
            "only when every past input is a target (known_features and calendar are fine)"
        )
    table = prepare_table(frame, cfg, label, targets="future")
    history = table.lengths - table.future
    table = _enough_history(table, history >= cfg.lookback, cfg.lookback, label, warnings)
    history = table.lengths - table.future
    blocks = -(-steps // horizon)  # forecasts of `horizon` rows each
    n_rows = blocks * horizon  # rows of future inputs the last block needs
    if cfg.known_features:
        short = table.future < n_rows
        if short.any():
            k = int(np.flatnonzero(short)[0])
            where = f" of series {table.ids[k]!r}" if table.ids is not None else ""
            raise LstmcliError(
                f"{label}: the model uses known_features {cfg.known_features}, so the input must "
                f"end with {n_rows} row(s) to forecast (empty targets, known values); the last "
                f"{int(table.future[k])} row(s){where} have empty targets"
            )
    series = _scaler_rows(cp, table, label)
    scaled = cp.input_scaler.transform(
        table.inputs, series[table.row_series()] if series is not None else None
    )
    ends = table.offsets[:-1] + history  # first row after each series' history
    window_rows = ends[:, None] + np.arange(-cfg.lookback, n_rows)[None, :]
    has_future_rows = table.future >= n_rows
    work = scaled[np.minimum(window_rows, table.offsets[1:, None] - 1)]  # (series, rows, inputs)
    times = _forecast_times(table, ends, n_rows, has_future_rows, cp)
    if cfg.calendar and not has_future_rows.all():  # rows made up here: their calendar
        n_cal = len(cfg.calendar_columns)
        values = calendar_values(pd.Series(times), cfg.calendar, label)
        made = ~has_future_rows
        work[made, cfg.lookback :, -n_cal:] = values.reshape(table.n_series, n_rows, n_cal)[made]
    work = torch.from_numpy(work).to(predictor.device)
    n_future = len(cfg.future_columns)
    target_index = [cp.input_columns.index(c) for c in cp.target_columns]
    target_inputs = cp.input_scaler.columns(target_index)  # how targets are scaled as inputs
    scaler_series = series if cp.target_scaler.per_series else None
    outputs: list[np.ndarray] = []
    with torch.inference_mode():
        for block in range(blocks):
            at = cfg.lookback + block * horizon
            window = work[:, at - cfg.lookback : at]
            future = work[:, at : at + horizon, work.shape[2] - n_future :] if n_future else None
            out = predictor.model(window, future).cpu().numpy().astype(np.float64)
            predicted = cp.target_scaler.inverse(out, scaler_series)
            outputs.append(predicted)
            if block + 1 < blocks:  # feed the forecast back as the targets' next inputs
                fed = target_inputs.transform(predicted, scaler_series)
                work[:, at : at + horizon, target_index] = torch.from_numpy(fed).to(work.device)
    predicted = np.concatenate(outputs, axis=1)[:, :steps]  # (series, steps, targets)
    columns: dict[str, object] = {}
    if table.ids is not None:
        columns[cfg.id_column] = np.repeat(np.asarray(table.ids), steps)
    if cfg.time_column:
        if table.n_series == 1:
            columns[cfg.time_column] = times[:steps]
        else:
            series_rows = np.arange(table.n_series)[:, None] * n_rows
            columns[cfg.time_column] = times[(series_rows + np.arange(steps)).ravel()]
    else:
        columns["step"] = np.tile(np.arange(1, steps + 1), table.n_series)
    for j, name in enumerate(cp.target_columns):
        columns[name] = predicted[:, :, j].ravel()
    return pd.DataFrame(columns)


def _forecast_times(
    table: Table, ends: np.ndarray, n_rows: int, given: np.ndarray, cp: Checkpoint
) -> pd.Index | list | None:
    """The times of every series' rows to forecast, series after series (n_rows each): the
    input's own rows to forecast when it has them, else continued from the series' history at
    the data's frequency. Array operations over all series, not a loop, in the usual case."""
    if table.time is None:
        return None
    if table.n_series == 1:  # the common single-series call: no array set-up to pay for
        if given[0]:
            return pd.Index(table.time.iloc[ends[0] : ends[0] + n_rows])
        history = table.time if not table.future[0] else table.time.iloc[: ends[0]]
        return future_times(history, n_rows, cp)
    times = pd.Index(table.time)
    positions = np.minimum(ends[:, None] + np.arange(n_rows)[None, :], len(times) - 1)
    made = np.flatnonzero(~given)
    dated = isinstance(times, pd.DatetimeIndex)
    if dated:  # as integer nanoseconds (UTC), so that blocks of series can be written at once
        times = times.as_unit("ns")
        values = times.asi8[positions].copy()
        regular, continued = _continue_together(table, times, ends, made, n_rows, cp)
        values[regular] = continued
    else:
        values = times.to_numpy()[positions].astype(object)
        regular = np.empty(0, np.int64)
    for k in np.setdiff1d(made, regular):  # numbers (years), or a series of its own rhythm
        history = table.time.iloc[table.offsets[k] : ends[k]].reset_index(drop=True)
        future = pd.Index(future_times(history, n_rows, cp))
        values[k] = future.as_unit("ns").asi8 if dated else future.to_numpy()
    if not dated:
        return pd.Index(list(values.ravel()))
    out = pd.DatetimeIndex(values.ravel().view("datetime64[ns]"))
    return out.tz_localize("UTC").tz_convert(times.tz) if times.tz is not None else out


def _continue_together(
    table: Table,
    times: pd.DatetimeIndex,
    ends: np.ndarray,
    made: np.ndarray,
    n_rows: int,
    cp: Checkpoint,
) -> tuple[np.ndarray, np.ndarray]:
    """The series of `made` whose last step is one step of a shared frequency (that of the
    first one's history, else the training data's), and their next n_rows times as integer
    nanoseconds (series, n_rows). A step of the offset is one array operation for them all."""
    none = np.empty(0, np.int64), np.empty((0, n_rows), np.int64)
    if not len(made):
        return none
    first = made[0]
    freq = infer_freq(table.time.iloc[table.offsets[first] : ends[first]]) or cp.time_freq
    if freq is None:
        return none
    offset = pd.tseries.frequencies.to_offset(freq)
    candidates = made[ends[made] - table.offsets[:-1][made] >= 2]
    last, before = times[ends[candidates] - 1], times[ends[candidates] - 2]
    with catch_warnings():
        simplefilter("ignore", pd.errors.PerformanceWarning)  # offsets without numpy
        regular = candidates[np.asarray(before + offset == last)]
        last = times[ends[regular] - 1]
        steps = [(last + k * offset).as_unit("ns").asi8 for k in range(1, n_rows + 1)]
    return regular, np.stack(steps, axis=1) if steps else none[1]


def _enough_history(
    table: Table, enough: np.ndarray, lookback: int, label: str, warnings: list[str] | None
) -> Table:
    """Series with fewer history rows than the lookback cannot be forecast: an error for a
    single series or when none is left, else a warning that counts them."""
    if enough.all():
        return table
    have = int((table.lengths - table.future).max())
    if not enough.any():
        what = " in its longest series" if table.ids is not None else ""
        raise LstmcliError(
            f"{label} has {have} row(s){what}; the lookback window needs at least {lookback}"
        )
    skipped = [str(i) for i, ok in zip(table.ids, enough, strict=True) if not ok]
    if warnings is not None:
        warnings.append(
            f"skipped {len(skipped)} series with fewer than {lookback} rows: {some(skipped)}"
        )
    return table.select_series(enough)


def _scaler_rows(cp: Checkpoint, table: Table, label: str) -> np.ndarray | None:
    """Each series' row in per-series scalers (None with global scalers)."""
    if not cp.input_scaler.per_series:
        return None  # a global scaler serves any series, seen in training or not
    return cp.series_index(table.id_labels(), label)


def rolling(
    predictor: Predictor, frame: pd.DataFrame, label: str, warnings: list[str] | None = None
) -> pd.DataFrame:
    """A forecast from every window whose targets all lie in the input (a backtest);
    for the regress task, one prediction per row that has a full window."""
    table, anchors, predicted = _predict_all(predictor, frame, label, warnings=warnings)
    offsets = target_offsets(predictor.data.horizon, predictor.data.task)
    actual = table.targets[anchors[:, None] + offsets] if table.targets.shape[1] else None
    return prediction_frame(table, anchors, offsets, predicted, actual, predictor.data)


def evaluate(
    predictor: Predictor, frame: pd.DataFrame, label: str, warnings: list[str] | None = None
) -> dict:
    """Rolling predictions scored like metrics.json, against baselines on the same targets
    (and per series, for a model of many series)."""
    cfg, cp = predictor.data, predictor.checkpoint
    table, anchors, predicted = _predict_all(predictor, frame, label, "required", warnings)
    offsets = target_offsets(cfg.horizon, cfg.task)
    # Score only windows where every baseline can look back far enough (in its own series),
    # so that all are compared on exactly the same targets.
    window_series = table.series_of(anchors)
    scored, season = scored_windows(
        anchors, offsets, cfg.task, cfg.season, table.offsets[window_series]
    )
    if not scored.any():
        raise LstmcliError(
            f"{label} has {len(table.inputs)} rows: too few to score any window against the "
            f"naive baseline, which looks back 1 row before each target; give more rows"
        )
    anchors, predicted, window_series = anchors[scored], predicted[scored], window_series[scored]
    actual = table.targets[anchors[:, None] + offsets]
    baselines = baseline_predictions(table.targets, anchors, offsets, cfg.task, season)
    result = compare(actual, predicted, baselines, cp.target_columns, cp.mase_scales)
    if table.ids is not None:
        known = {name: k for k, name in enumerate(cp.series_ids or [])}
        trained = np.array(cp.series_mase_scales or [], dtype=np.float64)
        scales = np.full((table.n_series, len(cp.target_columns)), np.nan)
        for k, name in enumerate(table.id_labels()):
            if name in known and len(trained):
                scales[k] = trained[known[name]]
        result["series"] = series_report(
            actual, predicted, baselines, window_series, table.id_labels(), scales
        )
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
    if table.ids is not None:
        window_ids = np.asarray(table.ids)[table.series_of(anchors)]
        columns[cfg.id_column] = np.repeat(window_ids, steps)
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
    predictor: Predictor,
    frame: pd.DataFrame,
    label: str,
    targets: str = "optional",
    warnings: list[str] | None = None,
) -> tuple[Table, np.ndarray, np.ndarray]:
    """Predictions of every complete window of every series. Rows to forecast at the end of
    a series (empty targets) hold no actuals, so no window's targets reach into them."""
    cfg, cp = predictor.data, predictor.checkpoint
    table = prepare_table(
        frame, cfg, label, targets="future" if cfg.task == "forecast" else targets
    )

    def anchors_of(table: Table) -> np.ndarray:
        starts = table.offsets[:-1]
        stops = table.offsets[1:] - table.future
        return series_anchors(starts, stops, starts, cfg.lookback, cfg.horizon, cfg.task)

    anchors = anchors_of(table)
    if len(anchors) == 0:
        need = cfg.lookback + (cfg.horizon if cfg.task == "forecast" else 0)
        what = f"lookback {cfg.lookback}" + (
            f" and horizon {cfg.horizon}" if cfg.task == "forecast" else ""
        )
        _require_rows(int((table.lengths - table.future).max()), need, label, what)
    has_window = np.bincount(table.series_of(anchors), minlength=table.n_series) > 0
    if not has_window.all():
        skipped = [i for i, ok in zip(table.id_labels(), has_window, strict=True) if not ok]
        if warnings is not None:
            warnings.append(
                f"skipped {len(skipped)} series too short for one window: {some(skipped)}"
            )
        table = table.select_series(has_window)
        anchors = anchors_of(table)
    series = _scaler_rows(cp, table, label)
    row_series = series[table.row_series()] if series is not None else None
    inputs = torch.from_numpy(cp.input_scaler.transform(table.inputs, row_series))
    offsets = target_offsets(cfg.horizon, cfg.task)
    windows = WindowSet(
        inputs.to(predictor.device), None, anchors, cfg.lookback, offsets, len(cfg.future_columns)
    )
    scaled = predict_windows(predictor.model, windows).cpu().numpy().astype(np.float64)
    window_series = series[table.series_of(anchors)] if series is not None else None
    return table, anchors, cp.target_scaler.inverse(scaled, window_series)


def _require_rows(have: int, need: int, label: str, what: str) -> None:
    if have < need:
        raise LstmcliError(f"{label} has {have} row(s); {what} needs at least {need}")
