"""From a CSV to a Table: read, check, order rows by series and time, handle missing values.

A Table holds one or many series as contiguous row ranges (`offsets`), in time order within
each; `windows.py` splits and windows it, `scaling.py` scales it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lstmcli.calendar import calendar_values
from lstmcli.config import DataConfig
from lstmcli.errors import LstmcliError, Warn, ignore_warning
from lstmcli.reading import at_row, read_csv
from lstmcli.times import parse_time, wall_clock


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
        )


def needed_columns(cfg: DataConfig, targets: str = "required") -> list[str]:
    """The file columns a run reads: id, time, inputs and (unless optional) the targets."""
    keys = [c for c in (cfg.id_column, cfg.time_column) if c]
    names = keys + cfg.layout.file_inputs
    if targets in ("required", "future"):
        names += [c for c in cfg.target if c not in names]
    return names


def require_columns(frame: pd.DataFrame, names: list[str], label: str) -> None:
    absent = [c for c in names if c not in frame.columns]
    if not absent:
        return
    available = ", ".join(map(str, frame.columns))
    message = f"column(s) {absent} not found in {label}; available: {available}"
    separators = [s for s in (";", "\t", "|") if len(frame.columns) == 1 and s in frame.columns[0]]
    if separators:
        shown = "a tab" if separators[0] == "\t" else repr(separators[0])
        message += (
            f" (the header looks separated by {shown}; lstmcli reads comma-separated files, "
            "so convert the file first)"
        )
    raise LstmcliError(message)


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
        rows.future = _trailing_empty_targets(rows.values, cfg.target, rows.codes)
    if targets == "future" and cfg.task == "forecast":
        _refuse_empty(
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
    order, codes, ids, time = _row_order(frame, cfg, label)
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


def _row_order(frame: pd.DataFrame, cfg: DataConfig, label: str) -> tuple:
    """File rows in (series, time) order (None when already so), each sorted row's series
    code, the ids, and the sorted times; duplicate times within a series are refused."""
    codes, ids = _series_codes(frame, cfg.id_column, label)
    time = None
    if cfg.time_column:
        time = parse_time(frame[cfg.time_column], cfg.time_column, label, cfg.time_format)
    rows = _sorted_rows(codes, time)
    if rows is not None:
        codes = codes[rows]
        time = time.iloc[rows].reset_index(drop=True) if time is not None else None
    if time is not None:
        _refuse_duplicate_times(time, codes, ids, cfg.time_column, label)
    return rows, codes, ids, time


def frame_problems(frame: pd.DataFrame, cfg: DataConfig, label: str) -> list[str]:
    """Every problem of a training file that `prepare_table` stops at, one per column instead
    of the first, found by the same checks: for `check`, which lists them all. A missing
    column does not hide the problems of the columns that are there."""
    problems = []
    try:
        require_columns(frame, needed_columns(cfg), label)
    except LstmcliError as e:
        problems.append(str(e))
    for name in dict.fromkeys(cfg.layout.file_inputs + cfg.target):
        if name not in frame.columns:
            continue
        try:
            empty = np.isnan(numeric_column(frame, name, label, np.float64))
            if cfg.missing == "error":
                _refuse_empty({name: empty}, np.arange(len(empty)), label, MISSING_ADVICE)
        except LstmcliError as e:
            problems.append(str(e))
    if cfg.id_column is None or cfg.id_column in frame.columns:  # ids say which rows are one series
        if cfg.time_column is not None and cfg.time_column not in frame.columns:
            cfg = cfg.model_copy(update={"time_column": None})
        try:
            _row_order(frame, cfg, label)
        except LstmcliError as e:
            problems.append(str(e))
    return problems


def _series_codes(frame: pd.DataFrame, id_column: str | None, label: str) -> tuple:
    """Each row's series number, and the ids as text in sorted order (so row order never
    matters). Ids are labels: `read_csv` keeps them as the file wrote them (`07` is not `7`),
    and any other frame's ids are compared as text too."""
    if id_column is None:
        return np.zeros(len(frame), dtype=np.int64), None
    column = frame[id_column]
    if column.isna().any():
        row = int(np.flatnonzero(column.isna().to_numpy())[0])
        raise LstmcliError(f"id column {id_column!r} in {label} is empty {at_row(row)}")
    codes, uniques = pd.factorize(column.astype(str), sort=True)
    return codes.astype(np.int64), [str(i) for i in uniques]


def _sorted_rows(codes: np.ndarray, time: pd.Series | None) -> np.ndarray | None:
    """File rows in (series, time) order; None when the file is already in that order."""
    if len(codes) < 2:
        return None
    in_order = codes[1:] >= codes[:-1]
    if time is None:
        return None if in_order.all() else np.argsort(codes, kind="stable")
    stamps = time.to_numpy()
    in_order &= (codes[1:] != codes[:-1]) | (stamps[1:] > stamps[:-1])
    return None if in_order.all() else np.lexsort([stamps, codes])  # by codes, then time


def _trailing_empty_targets(
    values: dict[str, np.ndarray], target: list[str], codes: np.ndarray
) -> np.ndarray:
    """Rows at the end of each series whose targets are all empty: the rows to forecast.
    `codes` are sorted (rows grouped by series)."""
    empty = np.logical_and.reduce([np.isnan(values[name]) for name in target])
    if not empty.any():
        return empty
    rows = np.arange(len(codes))
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    # the last row with a target in each series (-1 when none): rows after it are trailing
    last_filled = np.maximum.reduceat(np.where(empty, -1, rows), starts)
    return rows > np.repeat(last_filled, np.diff(np.r_[starts, len(codes)]))


def numeric_column(
    frame: pd.DataFrame, name: str, label: str, dtype: type = np.float64
) -> np.ndarray:
    """One column as floats (rows in file order); an error names the first value that is not a
    number (empty cells stay NaN for `fill_missing`; infinities are refused here)."""
    column = frame[name]
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        out = column.to_numpy(dtype, na_value=np.nan)  # fast path: nothing to parse
    else:
        numbers = pd.to_numeric(column, errors="coerce")
        not_numeric = numbers.isna() & column.notna()
        if not_numeric.any():
            row = int(np.flatnonzero(not_numeric.to_numpy())[0])
            raise LstmcliError(
                f"column {name!r} in {label} has a non-numeric value {column.iloc[row]!r} "
                f"{at_row(row)}"
            )
        out = numbers.to_numpy(dtype, na_value=np.nan)
    infinite = np.isinf(out)
    if infinite.any():
        row = int(np.flatnonzero(infinite)[0])
        raise LstmcliError(f"column {name!r} in {label} has the value {out[row]} {at_row(row)}")
    return out


def fill_missing(
    values: dict[str, np.ndarray],
    checked: list[str],
    rows: np.ndarray,
    policy: str,
    label: str,
    series: np.ndarray | None = None,
    warn: Warn = ignore_warning,
    advice: str = "",
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Apply data.missing to empty cells of the `checked` columns of time-ordered values.

    error: refuse; drop: drop rows that have one; ffill: carry the last value forward;
    interpolate: linear between neighbours (the last value after the end). Filling never
    crosses from one series (`series`: each row's) into the next, and a gap at the start of
    a series has nothing to fill from, so it stays an error. `rows` are the file rows, for
    messages. Returns the values and the kept row mask (None when all are kept); what was done
    goes to `warn`. `advice` ends the message about an empty cell under `error`.
    """
    empty = {name: np.isnan(values[name]) for name in checked}
    counts = {name: int(mask.sum()) for name, mask in empty.items()}
    if not any(counts.values()):
        return values, None
    if policy == "drop":
        kept = ~np.logical_or.reduce([empty[name] for name in checked])
        if not kept.any():
            raise LstmcliError(f"{label}: every row has a missing value; nothing is left to use")
        warn(f"{label}: dropped {int((~kept).sum())} row(s) with missing values")
        return {name: column[kept] for name, column in values.items()}, kept
    if policy in ("ffill", "interpolate"):
        filled = dict(values)
        for name in checked:
            if counts[name]:
                filled[name] = _fill(values[name], policy, series)
        left = {name: np.isnan(filled[name]) for name in checked}
        advice = f" with no earlier value to fill it from (data.missing: {policy})"
        _refuse_empty(left, rows, label, advice)
        done = ", ".join(f"{n} in {name!r}" for name, n in counts.items() if n)
        warn(f"{label}: filled {done} missing value(s) ({policy})")
        return filled, None
    _refuse_empty(empty, rows, label, advice or MISSING_ADVICE)
    raise AssertionError("unreachable: there was an empty cell")


MISSING_ADVICE = "; set data.missing to drop, ffill or interpolate to accept gaps"


def _fill(values: np.ndarray, policy: str, series: np.ndarray | None) -> np.ndarray:
    """ffill or interpolate one column within each series; a leading gap stays empty."""
    column = pd.Series(values)
    if series is None or series[0] == series[-1]:  # one series
        if policy == "ffill":
            return column.ffill().to_numpy(values.dtype)
        return column.interpolate(limit_direction="forward").to_numpy(values.dtype)
    groups = column.groupby(series)
    carried = groups.ffill()
    if policy == "ffill":
        return carried.to_numpy(values.dtype)
    # Interpolating the whole column is right inside a series (both neighbours are its own);
    # after a series' last value, carry it; before its first, leave the gap.
    inside = carried.notna() & groups.bfill().notna()
    across = column.interpolate(limit_direction="forward")
    return np.where(inside, across, carried).astype(values.dtype)


def _refuse_empty(
    empty: dict[str, np.ndarray],
    rows: np.ndarray,
    label: str,
    advice: str,
    every_row: bool = False,
) -> None:
    """Name the first column with an empty cell, and its first line in the file (or, with
    `every_row`, up to ten of its lines)."""
    for name, mask in empty.items():
        if mask.any():
            lines = np.sort(rows[mask]) + 2
            if every_row:
                shown = ", ".join(map(str, lines[:10])) + (", ..." if len(lines) > 10 else "")
                where = f"at line{'s' if len(lines) > 1 else ''} {shown}"
            else:
                where = at_row(int(lines[0]) - 2)
            raise LstmcliError(f"column {name!r} in {label} has a missing value {where}{advice}")


def _refuse_duplicate_times(
    time: pd.Series, codes: np.ndarray, ids: list | None, name: str, label: str
) -> None:
    """Rows are sorted by series and time: a duplicate equals its predecessor."""
    stamps = time.to_numpy()
    repeated = np.flatnonzero((stamps[1:] == stamps[:-1]) & (codes[1:] == codes[:-1]))
    if len(repeated):
        first = repeated[0]
        where = f" in series {ids[codes[first]]!r}" if ids is not None else ""
        several = (
            " (several series in one file? set data.id_column to the column that names them)"
            if ids is None
            else ""
        )
        raise LstmcliError(
            f"time column {name!r} in {label} has duplicate time {time.iloc[first]!s}{where}; "
            f"each row must be one time step of its series{several}"
        )
