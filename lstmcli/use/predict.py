"""Predictions from a checkpoint on new rows, in original units.

Everything comes from the checkpoint: config, columns, fitted scalers (never refit) and weights.
Three shapes of output: the next `horizon` (or `steps`) rows after the input, a rolling
backtest over every complete window, and one prediction per row for the regress task.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np
import pandas as pd

from lstmcli.config.data_section import DataConfig
from lstmcli.data.calendar import calendar_values
from lstmcli.data.reading import read_input
from lstmcli.data.table import Table, prepare_table
from lstmcli.data.windows import keep_series, series_anchors, window_need
from lstmcli.errors import LstmcliError, Warn, ignore_warning
from lstmcli.model.checkpoint import Checkpoint, load_checkpoint
from lstmcli.model.classical import too_short_for_the_season
from lstmcli.model.fitted import FittedForecaster
from lstmcli.run.lock import refuse_busy
from lstmcli.use.backtest import actual_values, backtest_frame, bound_columns

if TYPE_CHECKING:
    import torch

from lstmcli.use.backtest import score_rows
from lstmcli.use.future import _forecast_times, warn_irregular_steps, warn_time_zone


def load_predictor(run: Path, device: str | None = None) -> FittedForecaster:
    """Load a run folder or model.pt onto `device`, or the device it was trained on when that
    exists here, else the CPU (so a GPU-trained model runs anywhere without flags). A `.onnx`
    file from `lstmcli export` runs with onnxruntime on the CPU, without importing torch. A
    folder still being trained is refused: its model.pt may be an early epoch's, without
    interval bands."""
    refuse_busy(run)
    if run.suffix.lower() == ".onnx" and run.is_file():
        from lstmcli.model.onnx_file import load_onnx

        if device not in (None, "auto", "cpu"):
            raise LstmcliError(
                f"--device {device}: an ONNX file runs on the CPU with onnxruntime; give the "
                "run folder to use a GPU"
            )
        return load_onnx(run)
    from lstmcli.run.device import resolve_device

    checkpoint = load_checkpoint(run)
    target = resolve_device(device) if device is not None else default_device(checkpoint)
    return checkpoint.fitted(target)


def load_input(
    run: Path, source: str | None, device: str | None, ids: list[str], stdin: TextIO | None
) -> tuple[FittedForecaster, pd.DataFrame, str]:
    """What predict and evaluate start from: the model, the input rows (of the `ids` series
    only, when given) and the input's name for messages."""
    predictor = load_predictor(run, device)
    frame, label = read_input(source, predictor.data.id_column, stdin)
    return predictor, keep_ids(frame, predictor.data, ids, label), label


def default_device(checkpoint: Checkpoint) -> torch.device:
    """The GPU a model trained on when this machine has it, else the CPU."""
    import torch

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
    predictor: FittedForecaster,
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
        # a classical blend reads each series' whole history, as it did in training
        last_rows=None if predictor.reads_history else lookback,
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
    history_end = table.offsets[:-1] + _history_rows(table)  # first row after the history
    rows = history_end[:, None] + np.arange(-lookback, future_rows)[None, :]
    rows = np.clip(rows, table.offsets[:-1, None], table.offsets[1:, None] - 1)  # pad short ones
    sequence = table.inputs[rows].astype(np.float64)  # (series, rows, inputs)
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
    histories = None
    if predictor.reads_history:
        _warn_short_histories(predictor, _history_rows(table), "series", label, warn)
        column = cfg.layout.target_index[0]
        ends = zip(table.offsets[:-1], history_end, strict=True)
        histories = [table.inputs[start:end, column] for start, end in ends]
    predicted, bounds = predictor.forecast(sequence, blocks, series, histories)
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


def _warn_short_histories(
    predictor: FittedForecaster, rows: np.ndarray, what: str, label: str, warn: Warn
) -> None:
    """The classical forecast (or seasonal naive) a model combines with reads each series'
    history given: one too short for the season forecasts without it, a worse forecast."""
    need = predictor.seasonal_history
    short = int((rows < need).sum()) if need is not None else 0
    if short:
        who = f"{short} of {len(rows)} {what} have" if len(rows) > 1 else "the series has"
        why = too_short_for_the_season(predictor.checkpoint.blend["kind"], predictor.spec.season)
        advice = (
            "the first origins of a file have the least"
            if what == "forecast origins"
            else "give a series' whole history where it has more"
        )
        warn(f"{label}: {who} fewer than {need} rows of history: {why} ({advice})")


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
    predictor: FittedForecaster, frame: pd.DataFrame, label: str, warn: Warn = ignore_warning
) -> pd.DataFrame:
    """A forecast from every window whose targets all lie in the input (a backtest);
    for the regress task, one prediction per row that has a full window."""
    table, anchors, series = _windows(predictor, frame, label, warn=warn)
    # what is known of the actuals adapts the intervals of a rolling backtest
    actual = actual_values(table, anchors, predictor.data) if table.targets.shape[1] else None
    forecast = predictor.backtest(table, anchors, series, actual)
    return backtest_frame(table, anchors, forecast.points, actual, predictor.data, forecast.bounds)


def evaluate(
    predictor: FittedForecaster, frame: pd.DataFrame, label: str, warn: Warn = ignore_warning
) -> dict:
    """Rolling predictions scored like metrics.json, against baselines on the same targets
    (and per series, for a model of many series)."""
    table, anchors, series = _windows(predictor, frame, label, "required", warn)
    result = score_rows(predictor, table, anchors, series, label).metrics
    result["targets"] = predictor.checkpoint.target_columns
    result["rows"] = int(len(table.inputs))
    result["windows"] = int(len(anchors)) - result["windows_skipped"]
    return result


def _windows(
    predictor: FittedForecaster,
    frame: pd.DataFrame,
    label: str,
    targets: str = "optional",
    warn: Warn = ignore_warning,
) -> tuple[Table, np.ndarray, np.ndarray | None]:
    """The input's table, every complete window of every series the model can forecast, and
    each series' row in per-series scalers. Rows to forecast at the end of a series (empty
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
    if predictor.reads_history:  # each origin's history: its series' rows up to it
        rows = table.rows_up_to(anchors)
        _warn_short_histories(predictor, rows, "forecast origins", label, warn)
    return table, anchors, series


def _anchors(table: Table, cfg: DataConfig) -> np.ndarray:
    """Every complete window of every series, none reaching into rows to forecast."""
    starts = table.offsets[:-1]
    stops = table.offsets[1:] - table.future
    return series_anchors(starts, stops, starts, cfg.history_rows, cfg.horizon, cfg.task)
