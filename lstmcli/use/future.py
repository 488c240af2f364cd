"""The times of rows to forecast: each series' next steps at its frequency, and warnings for
irregular steps or a time zone that differs from training.
"""

from __future__ import annotations

from warnings import catch_warnings, simplefilter

import numpy as np
import pandas as pd

from lstmcli.data.table import Table
from lstmcli.data.times import business_days, infer_freq, median_step
from lstmcli.errors import LstmcliError, Warn
from lstmcli.model.checkpoint import Checkpoint


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
