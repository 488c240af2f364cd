"""From a CSV to a Table: read, check, order rows by series and time, handle missing values.

A Table holds one or many series as contiguous row ranges (`offsets`), in time order within
each; `windows.py` splits and windows it, `scaling.py` scales it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lstmcli.config.data_section import DataConfig
from lstmcli.data.calendar import calendar_values
from lstmcli.data.missing import fill_missing, numeric_column
from lstmcli.data.reading import read_csv
from lstmcli.data.rows import (
    needed_columns,
    refuse_empty,
    require_columns,
    row_order,
    trailing_empty_targets,
)
from lstmcli.data.times import wall_clock
from lstmcli.errors import Warn, ignore_warning


@dataclass
class Table:
    """The columns a run needs in time order, as float64: values are scaled in float64 before
    the model's float32, so a large level (1e9 + a small signal) or tiny units keep their
    detail, and actual values are reported exactly as the CSV had them."""

    inputs: np.ndarray
    targets: np.ndarray
    input_columns: list[str]
    target_columns: list[str]
    time: pd.Series | None = None
    # Series k holds rows offsets[k]:offsets[k+1], in time order; one series without an id.
    offsets: np.ndarray | None = None
    ids: list | None = None  # each series' id as the file has it (None: no id_column)
    future: np.ndarray | None = None  # per series, its trailing rows without targets (predict)
    # False where a target value was made up by data.missing (ffill, interpolate): such a value
    # is never an actual in a score. None: every value is real.
    observed: np.ndarray | None = None
    # Local wall-clock times (naive) when the file's UTC offsets change (daylight saving):
    # `time` is then in UTC, the one order they share, and calendar inputs use these.
    wall_time: pd.Series | None = None
    # The day-first or month-first format the times were read in where no data.time_format
    # said it (times.read_times): the run keeps it, so later files read the same way.
    time_format: str | None = None

    def __post_init__(self) -> None:
        if self.offsets is None:
            self.offsets = np.array([0, len(self.inputs)], dtype=np.int64)
        if self.future is None:
            self.future = np.zeros(self.n_series, dtype=np.int64)

    @property
    def n_series(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def series_of(self, rows: np.ndarray) -> np.ndarray:
        """The series index of each row."""
        return np.searchsorted(self.offsets, rows, side="right") - 1

    def rows_up_to(self, rows: np.ndarray) -> np.ndarray:
        """How many rows of its series each row ends (itself included): the history a
        forecast from it reads."""
        return rows - self.offsets[self.series_of(rows)] + 1

    def row_series(self) -> np.ndarray:
        """The series index of every row, in order."""
        return np.repeat(np.arange(self.n_series), self.lengths)

    def id_labels(self) -> list[str]:
        """Series ids as text, the form in which checkpoints store and match them."""
        return [str(i) for i in self.ids] if self.ids is not None else [""]

    def actual_targets(self) -> np.ndarray:
        """The targets where they are real: NaN where data.missing made a value up (and in rows
        to forecast, which have none). What a score may compare with."""
        if self.observed is None:
            return self.targets
        return np.where(self.observed, self.targets, np.nan)

    def select_series(self, keep: np.ndarray) -> Table:
        """A table of the series where `keep` is true, in the same order."""
        if keep.all():
            return self
        rows = keep[self.row_series()]
        lengths, future = self.lengths[keep], self.future[keep]
        return self._rows(rows, lengths, future, keep)

    def rows_to_forecast(self) -> np.ndarray:
        """Each row: is it one of its series' trailing rows without targets?"""
        position = np.arange(len(self.inputs)) - np.repeat(self.offsets[:-1], self.lengths)
        return position >= np.repeat(self.lengths - self.future, self.lengths)

    def without_rows_to_forecast(self) -> Table:
        """The table without each series' trailing rows without targets."""
        if not self.future.any():
            return self
        keep = np.ones(self.n_series, dtype=bool)
        history = ~self.rows_to_forecast()
        return self._rows(history, self.lengths - self.future, self.future * 0, keep)

    def _rows(
        self, rows: np.ndarray, lengths: np.ndarray, future: np.ndarray, keep: np.ndarray
    ) -> Table:
        return Table(
            self.inputs[rows],
            self.targets[rows],
            self.input_columns,
            self.target_columns,
            self.time.iloc[rows].reset_index(drop=True) if self.time is not None else None,
            np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            [i for i, k in zip(self.ids, keep, strict=True) if k] if self.ids is not None else None,
            future,
            self.observed[rows] if self.observed is not None else None,
            self.wall_time[rows].reset_index(drop=True) if self.wall_time is not None else None,
            self.time_format,
        )


def load_table(cfg: DataConfig, warn: Warn = ignore_warning) -> Table:
    """The training data of a config as a Table (only the needed columns are read)."""
    frame = read_csv(cfg.path, cfg.path, needed_columns(cfg), text=[cfg.id_column])
    return prepare_table(frame, cfg, cfg.path, warn=warn)


def prepare_table(
    frame: pd.DataFrame,
    cfg: DataConfig,
    label: str,
    *,
    targets: str = "required",
    warn: Warn = ignore_warning,
    last_rows: int | None = None,
    missing_advice: str = "",
) -> Table:
    """Check the needed columns, order rows by series and time, handle missing values, return
    arrays with the calendar inputs appended.

    targets: "required" (present and numbers; each series may end with rows whose targets are
    all empty: rows to forecast, which hold no actual and are never filled), "future" (the
    same, and a forecast model's known features must be given in those rows: predict's input)
    or "optional" (read when all target columns are present, empty cells allowed anywhere: a
    regression input's unknown targets). `last_rows` (predict's next forecast): only each
    series' last rows of history matter, so with data.missing error or drop an empty cell
    before them is no problem. `missing_advice` ends the message about an empty cell (predict
    cannot take `--set data.missing`, so it says something else).
    Plain numpy after the column checks, one array per column: `predict` runs this on every
    call, and `train` on files of millions of rows.
    """
    require_columns(frame, needed_columns(cfg, targets), label)
    read_targets = targets != "optional" or all(c in frame.columns for c in cfg.target)
    target_names = list(cfg.target) if read_targets else []
    rows = _ordered_rows(frame, cfg, label, target_names)
    if targets in ("required", "future"):
        rows.future = trailing_empty_targets(rows.values, cfg.target, rows.codes)
    if targets == "future" and cfg.task == "forecast":
        refuse_empty(
            {name: np.isnan(rows.values[name]) & rows.future for name in cfg.known_features},
            rows.file_rows,
            label,
            " in a row to forecast (empty targets); known features are needed there",
            every_row=True,
        )
    if last_rows is not None and cfg.missing in ("error", "drop"):
        rows.keep(_last_history_rows(rows.codes, rows.future, last_rows))
    may_be_empty = [c for c in cfg.target if c not in cfg.layout.past and targets == "optional"]
    checked = [name for name in rows.values if name not in may_be_empty]
    _fill_history(rows, target_names, checked, cfg.missing, label, warn, missing_advice)
    return _assemble(rows, frame, cfg, label, target_names)


@dataclass
class _Rows:
    """The rows of a table being built, in (series, time) order: each needed column's values,
    the file row, series code and time of each row, which rows are rows to forecast and which
    target cells data.missing made up."""

    values: dict[str, np.ndarray]
    file_rows: np.ndarray
    codes: np.ndarray
    ids: list | None
    time: pd.Series | None
    future: np.ndarray
    made_up: np.ndarray
    time_format: str | None = None

    def keep(self, mask: np.ndarray) -> None:
        """Only the rows where `mask` is true (or, given as indices, those rows)."""
        if mask.dtype == bool and mask.all():
            return
        self.values = {name: column[mask] for name, column in self.values.items()}
        self.file_rows, self.codes = self.file_rows[mask], self.codes[mask]
        self.future, self.made_up = self.future[mask], self.made_up[mask]
        if self.time is not None:
            self.time = self.time.iloc[mask].reset_index(drop=True)


def _ordered_rows(frame: pd.DataFrame, cfg: DataConfig, label: str, targets: list[str]) -> _Rows:
    """The needed columns as numbers, rows in (series, time) order."""
    names = list(dict.fromkeys(cfg.layout.file_inputs + targets))
    values = {name: numeric_column(frame, name, label) for name in names}
    order, codes, ids, time, time_format = row_order(frame, cfg, label)
    if order is not None:
        values = {name: column[order] for name, column in values.items()}
    n = len(codes)
    return _Rows(
        values,
        order if order is not None else np.arange(len(frame)),
        codes,
        ids,
        time,
        np.zeros(n, dtype=bool),
        np.zeros((n, len(targets)), dtype=bool),
        time_format,
    )


def _fill_history(
    rows: _Rows,
    targets: list[str],
    checked: list[str],
    policy: str,
    label: str,
    warn: Warn,
    advice: str,
) -> None:
    """data.missing on the history, never on rows to forecast; the target cells it fills
    are remembered, so that no score takes them for actual values."""
    history = np.flatnonzero(~rows.future)
    for j, name in enumerate(targets):
        rows.made_up[:, j] = np.isnan(rows.values[name]) & ~rows.future
    if not rows.future.any():  # the usual training file: no copies of its columns
        rows.values, kept = fill_missing(
            rows.values, checked, rows.file_rows, policy, label, rows.codes, warn, advice
        )
        if kept is not None:  # fill_missing dropped the rows from the values itself
            values, rows.values = rows.values, {}
            rows.keep(kept)
            rows.values = values
    else:
        filled, kept = fill_missing(
            {name: column[history] for name, column in rows.values.items()},
            checked,
            rows.file_rows[history],
            policy,
            label,
            rows.codes[history],
            warn,
            advice,
        )
        kept_rows = history[kept] if kept is not None else history
        rows.values = {name: column.copy() for name, column in rows.values.items()}
        for name, column in filled.items():
            rows.values[name][kept_rows] = column
        if kept is not None:  # dropped rows go, rows to forecast stay
            rows.keep(np.sort(np.concatenate([kept_rows, np.flatnonzero(rows.future)])))
    if policy == "drop":
        rows.made_up[:] = False  # what is left was all given


def _assemble(
    rows: _Rows, frame: pd.DataFrame, cfg: DataConfig, label: str, targets: list[str]
) -> Table:
    """The Table: input columns in the layout's order (calendar inputs computed from the
    times), targets, series offsets."""
    layout, n_rows = cfg.layout, len(rows.codes)
    inputs = np.empty((n_rows, len(layout.inputs)))
    for j, name in enumerate(layout.file_inputs):
        inputs[:, j] = rows.values[name]
    wall = None
    if cfg.calendar and rows.time is not None:
        wall = wall_clock(frame[cfg.time_column], rows.time, rows.file_rows)
        inputs[:, layout.calendar_slice] = calendar_values(
            wall if wall is not None else rows.time, cfg.calendar, label
        )
    target_values = np.empty((n_rows, len(targets)))
    for j, name in enumerate(targets):
        target_values[:, j] = rows.values[name]
    counts = np.bincount(rows.codes, minlength=len(rows.ids or [0]))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    table = Table(
        inputs,
        target_values,
        layout.inputs,
        list(cfg.target),
        rows.time,
        offsets,
        rows.ids,
        np.bincount(rows.codes[rows.future], minlength=len(counts)).astype(np.int64),
        ~rows.made_up if rows.made_up.any() else None,
        wall,
        rows.time_format,
    )
    return table.select_series(counts > 0)  # every row of a series may have been dropped


def _last_history_rows(codes: np.ndarray, future: np.ndarray, count: int) -> np.ndarray:
    """Rows among the last `count` history rows of their series, or rows to forecast (rows
    are grouped by series, history before its rows to forecast)."""
    # history rows from each row to the end of the file, less those of later series
    to_end = np.cumsum((~future)[::-1].astype(np.int64))[::-1]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    ends = np.r_[starts[1:], len(codes)]
    later = np.repeat(np.r_[to_end[ends[:-1]], 0], ends - starts)
    return future | (to_end - later <= count)
