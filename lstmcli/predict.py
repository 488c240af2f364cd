"""Predictions from a checkpoint on new rows, in original units.

Everything comes from the checkpoint: config, columns, fitted scalers (never refit) and weights.
Three shapes of output: the next `horizon` (or `steps`) rows after the input, a rolling
backtest over every complete window, and one prediction per row for the regress task.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from warnings import catch_warnings, simplefilter

import numpy as np
import pandas as pd
import torch

from lstmcli.backtest import actual_values, backtest_frame, bound_columns, score_backtest
from lstmcli.calendar import calendar_values
from lstmcli.checkpoint import Checkpoint, load_checkpoint
from lstmcli.config import DataConfig
from lstmcli.data import Table, prepare_table
from lstmcli.device import resolve_device
from lstmcli.errors import LstmcliError, Warn, ignore_warning
from lstmcli.forecaster import Forecast, Forecaster, scaled_windows
from lstmcli.lock import refuse_busy
from lstmcli.reading import read_input
from lstmcli.times import business_days, infer_freq, median_step
from lstmcli.windows import keep_series, series_anchors, window_need


@dataclass(frozen=True)
class Predictor:
    checkpoint: Checkpoint
    forecaster: Forecaster
    device: torch.device

    @property
    def data(self) -> DataConfig:
        return self.checkpoint.config.data


def load_predictor(run: Path, device: str | None = None) -> Predictor:
    """Load a run folder or model.pt onto `device`, or the device it was trained on when that
    exists here, else the CPU (so a GPU-trained model runs anywhere without flags). A `.onnx`
    file from `lstmcli export` runs with onnxruntime on the CPU. A folder still being trained
    is refused: its model.pt may be an early epoch's, without interval bands."""
    refuse_busy(run)
    if run.suffix.lower() == ".onnx" and run.is_file():
        from lstmcli.export import OnnxNetwork, OnnxSession

        session = OnnxSession(run)
        cpu = torch.device("cpu")
        forecaster = session.checkpoint.forecaster(cpu, network=OnnxNetwork(session))
        return Predictor(session.checkpoint, forecaster, cpu)
    checkpoint = load_checkpoint(run)
    target = resolve_device(device) if device is not None else default_device(checkpoint)
    return Predictor(checkpoint, checkpoint.forecaster(target), target)


def load_input(
    run: Path, source: str | None, device: str | None, ids: list[str], stdin: TextIO | None
) -> tuple[Predictor, pd.DataFrame, str]:
    """What predict and evaluate start from: the model, the input rows (of the `ids` series
    only, when given) and the input's name for messages."""
    predictor = load_predictor(run, device)
    frame, label = read_input(source, predictor.data.id_column, stdin)
    return predictor, keep_ids(frame, predictor.data, ids, label), label


def default_device(checkpoint: Checkpoint) -> torch.device:
    """The GPU a model trained on when this machine has it, else the CPU."""
    trained = checkpoint.trained_on
    if trained.startswith("cuda") and torch.cuda.is_available():
        index = torch.device(trained).index or 0
        return torch.device("cuda", index if index < torch.cuda.device_count() else 0)
    return torch.device("cpu")


def keep_ids(frame: pd.DataFrame, cfg: DataConfig, ids: list[str], label: str) -> pd.DataFrame:
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
    steps: int | None = None,
    warn: Warn = ignore_warning,
) -> pd.DataFrame:
    """The next `steps` rows after each series' last row with targets (default: the horizon).

    Rows at the end of a series with empty targets are the rows to forecast: they carry the
    known features (and their times). Beyond the horizon the forecast is recursive:
    predictions are fed back as inputs, which needs every past-only input to be a target.
    """
    cfg, checkpoint = predictor.data, predictor.checkpoint
    lookback, horizon = cfg.lookback, cfg.horizon
    steps = steps or horizon
    if steps > horizon and cfg.features:
        raise LstmcliError(
            f"--steps {steps} is more than the model's horizon ({horizon}) and would need "
            f"future values of the feature column(s) {cfg.features}; recursive forecasts work "
            "only when every past input is a target (known_features and calendar are fine)"
        )
    table = prepare_table(
        frame,
        cfg,
        label,
        targets="future",
        warn=warn,
        # a Theta blend reads each series' whole history, as it did in training
        last_rows=None if predictor.forecaster.reads_history else lookback,
        missing_advice=_missing_advice(cfg),
    )
    need = cfg.history_rows  # the lookback, or fewer when data.min_history pads windows
    why = f"shorter than the {'lookback' if need == lookback else 'data.min_history'} ({need} rows)"
    table = keep_series(table, _history_rows(table) >= need, why, label, warn)
    table, series = _known_series(checkpoint, table, label, warn)
    warn_time_zone(table, checkpoint, label, warn)
    warn_irregular_steps(table, checkpoint, label, warn)
    blocks = -(-steps // horizon)  # forecasts of `horizon` rows each
    future_rows = blocks * horizon  # rows to forecast that the last block reads
    if cfg.known_features:
        _require_rows_to_forecast(table, future_rows, cfg, label)

    # Each series as one sequence: its last `lookback` history rows, then `future_rows` rows
    # to forecast: the input's own when it has them all, else placeholders filled in below.
    scaled = checkpoint.input_scaler.transform(
        table.inputs,
        series[table.row_series()] if series is not None else None,
        table.input_columns,
    )
    history_end = table.offsets[:-1] + _history_rows(table)  # first row after the history
    rows = history_end[:, None] + np.arange(-lookback, future_rows)[None, :]
    rows = np.clip(rows, table.offsets[:-1, None], table.offsets[1:, None] - 1)  # pad short ones
    sequence = scaled[rows]  # (series, rows, inputs)
    given = table.future >= future_rows
    times = _forecast_times(table, history_end, future_rows, given, checkpoint)
    if cfg.calendar and not given.all():  # placeholder rows: their calendar from their times
        calendar_times = pd.Series(times)
        if table.wall_time is not None:  # local clock, at the last history row's UTC offset
            last = history_end - 1
            shift = (
                table.wall_time.to_numpy()[last] - table.time.dt.tz_localize(None).to_numpy()[last]
            )
            calendar_times = calendar_times.dt.tz_localize(None) + np.repeat(shift, future_rows)
        calendar = calendar_values(calendar_times, cfg.calendar, label)
        calendar = calendar.reshape(table.n_series, future_rows, -1)
        sequence[~given, lookback:, cfg.layout.calendar_slice] = calendar[~given]
    sequence = torch.from_numpy(sequence).to(predictor.device)
    histories = None
    if predictor.forecaster.reads_history:
        column = cfg.layout.target_index[0]
        ends = zip(table.offsets[:-1], history_end, strict=True)
        histories = [scaled[start:end, column] for start, end in ends]
    predicted, bounds = _roll_forward(predictor, sequence, blocks, series, histories)
    if bounds is not None and steps > horizon:
        warn(
            f"interval bounds cover the model's horizon ({horizon} steps); the recursive steps "
            "beyond it have none"
        )
    bounds = (
        {level: (lo[:, :steps], hi[:, :steps]) for level, (lo, hi) in bounds.items()}
        if bounds is not None
        else None
    )
    return _forecast_frame(table, predicted[:, :steps], times, future_rows, cfg, bounds)


def _missing_advice(cfg: DataConfig) -> str:
    """What to do about an empty cell in predict's input (there is no --set to change data.missing
    here: the model handles gaps as it was trained to)."""
    return (
        f"; the model was trained with data.missing: {cfg.missing}, so fill the gap in the "
        "input (or train a model with data.missing set to drop, ffill or interpolate)"
    )


def _history_rows(table: Table) -> np.ndarray:
    """Rows with targets in each series (all but its rows to forecast)."""
    return table.lengths - table.future


def warn_time_zone(table: Table, cp: Checkpoint, label: str, warn: Warn) -> None:
    """Times with a UTC offset where the model learned naive ones, or the other way round,
    are compared as if they were the same clock: say so."""
    if table.time is None or not pd.api.types.is_datetime64_any_dtype(table.time):
        return
    zone = table.time.dt.tz
    if (zone is None) != (cp.time_zone is None):
        model = f"with a UTC offset ({cp.time_zone})" if cp.time_zone else "without a UTC offset"
        given = f"with one ({zone})" if zone is not None else "without one"
        warn(
            f"{label}: the model was trained on times {model}, the input's are {given}; "
            "future times and calendar inputs assume they are the same clock"
        )


def warn_irregular_steps(table: Table, cp: Checkpoint, label: str, warn: Warn) -> None:
    """Warn when the input's rows are not one step of the training data's frequency apart:
    the model reads rows, not times, so a missing row silently shifts what it sees. Rows to
    forecast must follow one another exactly: their times label the model's steps."""
    irregular, unit = _irregular_steps(table, cp)
    if irregular is None or not irregular.any():
        return
    time = table.time
    future = table.rows_to_forecast()
    labels = irregular & future[1:]  # a step into or within the rows to forecast
    if labels.any():
        at = int(np.flatnonzero(labels)[0])
        raise LstmcliError(
            f"{label}: the rows to forecast must follow one another one step ({unit}) apart, "
            f"as the model's forecast steps do; {time.iloc[at + 1]} follows {time.iloc[at]}"
        )
    first = int(np.flatnonzero(irregular)[0])
    warn(
        f"{label}: {int(irregular.sum())} step(s) between rows are not one step of the "
        f"training data ({unit}), the first after {time.iloc[first]}; the model reads rows, "
        "not times, so a missing row shifts what it sees"
    )


def _irregular_steps(table: Table, cp: Checkpoint) -> tuple[np.ndarray | None, str]:
    """For each pair of consecutive rows of one series: are they not one training step apart?
    None when the step is unknown."""
    time = table.time
    if time is None or len(time) < 2:
        return None, ""
    same_series = np.diff(table.row_series()) == 0
    if pd.api.types.is_datetime64_any_dtype(time) and cp.time_freq is not None:
        stamps = pd.DatetimeIndex(time)
        with catch_warnings():
            simplefilter("ignore", pd.errors.PerformanceWarning)  # offsets without numpy
            off = np.asarray(stamps[:-1] + pd.tseries.frequencies.to_offset(cp.time_freq))
        return (off != np.asarray(stamps[1:])) & same_series, cp.time_freq
    if pd.api.types.is_numeric_dtype(time) and cp.time_step:
        steps = np.diff(time.to_numpy(dtype=np.float64))
        irregular = ~np.isclose(steps, cp.time_step, rtol=1e-9, atol=0) & same_series
        return irregular, f"{cp.time_step:g}"
    return None, ""


def _require_rows_to_forecast(table: Table, rows: int, cfg: DataConfig, label: str) -> None:
    """A model with known features needs their values at every row it forecasts."""
    short = table.future < rows
    if short.any():
        k = int(np.flatnonzero(short)[0])
        where = f" of series {table.ids[k]!r}" if table.ids is not None else ""
        raise LstmcliError(
            f"{label}: the model uses known_features {cfg.known_features}, so the input must "
            f"end with {rows} row(s) to forecast (empty targets, known values); the last "
            f"{int(table.future[k])} row(s){where} have empty targets"
        )


def _roll_forward(
    predictor: Predictor,
    sequence: torch.Tensor,
    blocks: int,
    series: np.ndarray | None,
    histories: list[np.ndarray] | None,
) -> tuple[np.ndarray, dict | None]:
    """Forecast `blocks` horizons one after another (series, blocks * horizon, targets), in
    original units, with the first horizon's interval bounds when the model has levels (NaN
    beyond it). Each block's forecast becomes the targets' inputs of the next (and extends
    the histories a Theta blend reads)."""
    cfg, checkpoint = predictor.data, predictor.checkpoint
    lookback, horizon, layout = cfg.lookback, cfg.horizon, cfg.layout
    target_inputs = layout.target_index
    as_inputs = checkpoint.input_scaler.columns(target_inputs)  # targets, scaled as inputs
    outputs: list[np.ndarray] = []
    first: Forecast | None = None
    for block in range(blocks):
        start = lookback + block * horizon  # the first row this block forecasts
        window = sequence[:, start - lookback : start]
        future = sequence[:, start : start + horizon, layout.future] if layout.n_future else None
        forecast = predictor.forecaster.forecast_batch(window, future, series, histories)
        outputs.append(forecast.points)
        first = first or forecast
        if block + 1 < blocks:
            fed = as_inputs.transform(forecast.points, series)
            sequence[:, start : start + horizon, target_inputs] = torch.from_numpy(fed).to(
                sequence.device
            )
            if histories is not None:
                histories = [np.r_[h, f[:, 0]] for h, f in zip(histories, fed, strict=True)]
    bounds = None
    if first.bounds:
        bounds = {level: (_pad(lo, blocks), _pad(hi, blocks))
                  for level, (lo, hi) in first.bounds.items()}  # fmt: skip
    return np.concatenate(outputs, axis=1), bounds


def _pad(values: np.ndarray, blocks: int) -> np.ndarray:
    """One horizon's bounds followed by NaN for the recursive blocks after it."""
    empty = np.full((values.shape[0], values.shape[1] * (blocks - 1), values.shape[2]), np.nan)
    return np.concatenate([values, empty], axis=1)


def _forecast_frame(
    table: Table,
    predicted: np.ndarray,
    times: pd.Index | list | None,
    future_rows: int,
    cfg: DataConfig,
    bounds: dict | None = None,
) -> pd.DataFrame:
    """The forecast table: id (many series), time (or `step`), one column per target; the
    rows of each series together. `times` holds `future_rows` times per series."""
    n_series, steps = predicted.shape[0], predicted.shape[1]
    columns: dict[str, object] = {}
    if table.ids is not None:
        columns[cfg.id_column] = np.repeat(np.asarray(table.ids), steps)
    if cfg.time_column:
        if n_series == 1:
            columns[cfg.time_column] = times[:steps]
        else:
            first = np.arange(n_series)[:, None] * future_rows
            columns[cfg.time_column] = times[(first + np.arange(steps)).ravel()]
    else:
        columns["step"] = np.tile(np.arange(1, steps + 1), n_series)
    for j, name in enumerate(table.target_columns):
        columns[name] = predicted[:, :, j].ravel()
        columns.update(bound_columns(name, j, bounds))
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


def _known_series(
    cp: Checkpoint, table: Table, label: str, warn: Warn
) -> tuple[Table, np.ndarray | None]:
    """The series the model can scale, and each one's row in its per-series scalers (None
    with a global scaler, which serves any series). A series without statistics in the model
    (training skipped it, or never saw it) is skipped with a warning, as training skips
    series; none left is an error."""
    if not cp.input_scaler.per_series:
        return table, None
    why = (
        "without scaler statistics in the model (data.scale_by: series fits each series on "
        "its own training rows; training skipped these or never saw them)"
    )
    rows = cp.series_rows(table.id_labels())
    return keep_series(table, rows >= 0, why, label, warn), rows[rows >= 0]


def rolling(
    predictor: Predictor, frame: pd.DataFrame, label: str, warn: Warn = ignore_warning
) -> pd.DataFrame:
    """A forecast from every window whose targets all lie in the input (a backtest);
    for the regress task, one prediction per row that has a full window."""
    table, anchors, predicted, bounds = _predict_all(predictor, frame, label, warn=warn)
    actual = actual_values(table, anchors, predictor.data) if table.targets.shape[1] else None
    return backtest_frame(table, anchors, predicted, actual, predictor.data, bounds)


def evaluate(
    predictor: Predictor, frame: pd.DataFrame, label: str, warn: Warn = ignore_warning
) -> dict:
    """Rolling predictions scored like metrics.json, against baselines on the same targets
    (and per series, for a model of many series)."""
    cfg, cp = predictor.data, predictor.checkpoint
    table, anchors, predicted, bounds = _predict_all(predictor, frame, label, "required", warn)
    series_scales = cp.series_mase_scales_of(table.id_labels()) if table.ids is not None else None
    result = score_backtest(
        table,
        anchors,
        predicted,
        cfg,
        cp.mase_scales,
        series_scales,
        label,
        bounds,
        cp.baseline_intervals,
    )
    result["targets"] = cp.target_columns
    result["rows"] = int(len(table.inputs))
    result["windows"] = int(len(anchors)) - result["windows_skipped"]
    return result


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
    freq = infer_freq(time) or checkpoint.time_freq or business_days(time)
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
    warn: Warn = ignore_warning,
) -> tuple[Table, np.ndarray, np.ndarray, dict | None]:
    """Predictions of every complete window of every series, and their interval bounds when
    the model has levels (None otherwise). Rows to forecast at the end of a series (empty
    targets) hold no actuals, so no window's targets reach into them."""
    cfg, cp = predictor.data, predictor.checkpoint
    table = prepare_table(
        frame,
        cfg,
        label,
        targets="future" if cfg.task == "forecast" else targets,
        warn=warn,
        missing_advice=_missing_advice(cfg),
    )
    warn_time_zone(table, cp, label, warn)
    warn_irregular_steps(table, cp, label, warn)
    anchors = _anchors(table, cfg)
    has_window = np.bincount(table.series_of(anchors), minlength=table.n_series) > 0
    why = f"shorter than one window ({window_need(cfg)})"
    if not has_window.all():
        table = keep_series(table, has_window, why, label, warn)
    table, series = _known_series(cp, table, label, warn)
    anchors = _anchors(table, cfg)
    row_series = series[table.row_series()] if series is not None else None
    windows = scaled_windows(
        table, {"all": anchors}, cfg, cp.input_scaler, None, row_series, predictor.device
    )["all"]
    window_series = series[table.series_of(anchors)] if series is not None else None
    # what is known of the actuals adapts the intervals of a rolling backtest
    actual = actual_values(table, anchors, cfg) if table.targets.shape[1] else None
    forecast = predictor.forecaster.predict(
        windows, window_series, actual=actual, series=table.series_of(anchors)
    )
    return table, anchors, forecast.points, forecast.bounds


def _anchors(table: Table, cfg: DataConfig) -> np.ndarray:
    """Every complete window of every series, none reaching into rows to forecast."""
    starts = table.offsets[:-1]
    stops = table.offsets[1:] - table.future
    return series_anchors(starts, stops, starts, cfg.history_rows, cfg.horizon, cfg.task)
