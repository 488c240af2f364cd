"""From a CSV to a Table: read, check, order rows by series and time, handle missing values.

A Table holds one or many series as contiguous row ranges (`offsets`), in time order within
each; `windows.py` splits and windows it, `scaling.py` scales it.
"""

from __future__ import annotations

import csv
import io
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from lstmcli.calendar import calendar_values
from lstmcli.config import BUILTIN_PREFIX, DataConfig
from lstmcli.errors import LstmcliError, Warn, ignore_warning


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


def builtin_datasets() -> list[str]:
    folder = resources.files("lstmcli") / "datasets"
    return sorted(p.name.removesuffix(".csv") for p in folder.iterdir() if p.name.endswith(".csv"))


def read_csv(
    source: str | Path | TextIO,
    label: str | None = None,
    columns: list[str] | None = None,
    text: list[str | None] = (),
) -> pd.DataFrame:
    """Read a CSV file, `builtin:NAME`, or an open text stream into a DataFrame.

    With `columns`, a file is read with only those (when it has them all). The `text` columns
    (series ids) are read as text: ids are labels, so `07` stays `07` and never merges with
    `7`. Duplicate column names are refused (pandas would rename the second to `y.1`).
    """
    label = label or str(source)
    if isinstance(source, str) and source.startswith(BUILTIN_PREFIX):
        name = source.removeprefix(BUILTIN_PREFIX)
        if name not in builtin_datasets():
            raise LstmcliError(
                f"unknown built-in dataset {name!r}; available: {builtin_datasets()}"
            )
        source = Path(str(resources.files("lstmcli") / "datasets" / f"{name}.csv"))
    if isinstance(source, (str, Path)) and Path(source).suffix.lower() in PARQUET_SUFFIXES:
        return read_parquet(Path(source), label, columns, text)
    dtype = {name: str for name in text if name} or None
    try:
        if isinstance(source, (str, Path)):
            with open(source, encoding="utf-8", newline="") as file:
                first_line = file.readline()
            data: str | Path | TextIO = source
        else:  # a stream is read once: keep its text for the header and the rows
            content = source.read()
            first_line, data = content.split("\n", 1)[0], io.StringIO(content)
        names = _header(first_line, label)
        usecols = None
        if columns is not None and set(columns) <= set(names):
            usecols = [c for c in names if c in set(columns)]
        frame = pd.read_csv(data, header=0, names=names, usecols=usecols, dtype=dtype)
    except FileNotFoundError:
        raise LstmcliError(f"data file not found: {label}") from None
    except IsADirectoryError:
        raise LstmcliError(f"data path is a folder, not a CSV file: {label}") from None
    except pd.errors.EmptyDataError:
        raise LstmcliError(f"data file is empty: {label}") from None
    except (ValueError, OSError) as e:  # ParserError and UnicodeDecodeError are ValueErrors
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LstmcliError(f"cannot read CSV {label}: {detail}") from None
    if frame.empty:
        raise LstmcliError(f"data file has a header but no rows: {label}")
    return frame


PARQUET_SUFFIXES = (".parquet", ".pq")


def read_parquet(
    path: Path, label: str, columns: list[str] | None = None, text: list[str | None] = ()
) -> pd.DataFrame:
    """A Parquet file (pyarrow), read column-wise: only `columns` when it has them all, so a
    wide file costs only what a run uses. Id columns become text, as in a CSV."""
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
        wanted = (
            [c for c in names if c in set(columns)]
            if columns and set(columns) <= set(names)
            else None
        )
        frame = pq.read_table(path, columns=wanted).to_pandas()
    except FileNotFoundError:
        raise LstmcliError(f"data file not found: {label}") from None
    except IsADirectoryError:
        raise LstmcliError(f"data path is a folder, not a Parquet file: {label}") from None
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LstmcliError(f"cannot read Parquet {label}: {detail}") from None
    for name in text:
        if name and name in frame.columns:
            frame[name] = frame[name].astype(str)
    if frame.empty:
        raise LstmcliError(f"data file has no rows: {label}")
    return frame


def _header(line: str, label: str) -> list[str]:
    """The column names of a CSV's first line, without stray spaces around them (`date, y`);
    a name given twice is an error (pandas would quietly rename the second `y.1`)."""
    if not line.strip():
        raise pd.errors.EmptyDataError
    names = [name.strip() for name in next(csv.reader([line]))]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise LstmcliError(f"{label} has duplicate column names {repeated}; rename them")
    return names


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
    layout = cfg.layout
    require_columns(frame, needed_columns(cfg, targets), label)
    read_targets = targets != "optional" or all(c in frame.columns for c in cfg.target)
    names = list(dict.fromkeys(layout.file_inputs + (cfg.target if read_targets else [])))
    values = {name: numeric_column(frame, name, label) for name in names}
    rows, codes, ids, time = _row_order(frame, cfg, label)
    if rows is not None:
        values = {name: column[rows] for name, column in values.items()}
    rows = rows if rows is not None else np.arange(len(frame))

    future = np.zeros(len(codes), dtype=bool)
    if targets in ("required", "future"):
        future = _trailing_empty_targets(values, cfg.target, codes)
    if targets == "future" and cfg.task == "forecast":
        _refuse_empty(
            {name: np.isnan(values[name]) & future for name in cfg.known_features},
            rows,
            label,
            " in a row to forecast (empty targets); known features are needed there",
            every_row=True,
        )
    may_be_empty = [c for c in cfg.target if c not in layout.past and targets == "optional"]
    checked = [name for name in names if name not in may_be_empty]
    if last_rows is not None and cfg.missing in ("error", "drop"):
        used = _last_history_rows(codes, future, last_rows)
        if not used.all():
            values = {name: column[used] for name, column in values.items()}
            rows, codes, future = rows[used], codes[used], future[used]
            time = time.iloc[used].reset_index(drop=True) if time is not None else None
    # data.missing applies to the history, never to rows to forecast; the target cells it
    # fills are remembered, so that no score takes them for actual values.
    history = np.flatnonzero(~future)
    made_up = np.zeros((len(codes), len(cfg.target) if read_targets else 0), dtype=bool)
    for j, name in enumerate(cfg.target if read_targets else []):
        made_up[:, j] = np.isnan(values[name]) & ~future
    if not future.any():  # the usual training file: no copies of its columns
        values, kept = fill_missing(
            values, checked, rows, cfg.missing, label, codes, warn, missing_advice
        )
        kept_rows = history[kept] if kept is not None else history
    else:
        filled, kept = fill_missing(
            {name: column[history] for name, column in values.items()},
            checked,
            rows[history],
            cfg.missing,
            label,
            codes[history],
            warn,
            missing_advice,
        )
        kept_rows = history[kept] if kept is not None else history
        values = {name: column.copy() for name, column in values.items()}
        for name, column in filled.items():
            values[name][kept_rows] = column
    if kept is not None:  # dropped rows go, rows to forecast stay
        order = np.sort(np.concatenate([kept_rows, np.flatnonzero(future)]))
        if future.any():  # (without rows to forecast, fill_missing dropped the rows itself)
            values = {name: column[order] for name, column in values.items()}
        codes, future, made_up = codes[order], future[order], made_up[order]
        rows = rows[order]
        time = time.iloc[order].reset_index(drop=True) if time is not None else None
    if cfg.missing == "drop":
        made_up[:] = False  # what is left was all given

    n_rows = len(codes)
    inputs = np.empty((n_rows, len(layout.inputs)))
    for j, name in enumerate(layout.file_inputs):
        inputs[:, j] = values[name]
    wall = None
    if cfg.calendar and time is not None:
        wall = _wall_clock(frame[cfg.time_column], time, rows)
        inputs[:, layout.calendar_slice] = calendar_values(
            wall if wall is not None else time, cfg.calendar, label
        )
    target_values = np.empty((n_rows, len(cfg.target) if read_targets else 0))
    for j, name in enumerate(cfg.target if read_targets else []):
        target_values[:, j] = values[name]
    counts = np.bincount(codes, minlength=len(ids or [0]))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    table = Table(
        inputs,
        target_values,
        layout.inputs,
        list(cfg.target),
        time,
        offsets,
        ids,
        np.bincount(codes[future], minlength=len(counts)).astype(np.int64),
        ~made_up if made_up.any() else None,
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
    of the first, found by the same checks: for `check`, which lists them all."""
    try:
        require_columns(frame, needed_columns(cfg), label)
    except LstmcliError as e:
        return [str(e)]
    problems = []
    for name in dict.fromkeys(cfg.layout.file_inputs + cfg.target):
        try:
            empty = np.isnan(numeric_column(frame, name, label, np.float64))
            if cfg.missing == "error":
                _refuse_empty({name: empty}, np.arange(len(empty)), label, MISSING_ADVICE)
        except LstmcliError as e:
            problems.append(str(e))
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
        raise LstmcliError(f"id column {id_column!r} in {label} is empty {_at_row(row)}")
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
                f"{_at_row(row)}"
            )
        out = numbers.to_numpy(dtype, na_value=np.nan)
    infinite = np.isinf(out)
    if infinite.any():
        row = int(np.flatnonzero(infinite)[0])
        raise LstmcliError(f"column {name!r} in {label} has the value {out[row]} {_at_row(row)}")
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
                where = _at_row(int(lines[0]) - 2)
            raise LstmcliError(f"column {name!r} in {label} has a missing value {where}{advice}")


def parse_time(
    column: pd.Series, name: str, label: str, time_format: str | None = None
) -> pd.Series:
    """Numbers stay numbers (years, epochs); text must be times, all in one format.

    The format is `time_format` (strptime codes) when given, else ISO 8601 when the first
    value is ISO, else the format pandas guesses from the first value. A value in another
    format is an error that names its line: parsing each value on its own would read
    `01/09/1960` in an ISO file as 9 January and sort it there without a word. Times whose
    UTC offsets differ (daylight saving) are read in UTC, the one order they share.
    """
    if pd.api.types.is_bool_dtype(column):
        pass  # neither numbers nor times: refused below
    elif pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column):
        return _refuse_empty_times(column, name, label)
    text = column.astype("string")
    first = text.dropna().iloc[0] if text.notna().any() else None
    fmt = time_format
    if fmt is None and first is not None:
        fmt = "ISO8601" if _parses(first, "ISO8601") else _guess_format(first)
        if fmt is None:
            raise LstmcliError(
                f"time column {name!r} in {label}: cannot tell the time format of {first!r}; "
                "set data.time_format (e.g. '%d.%m.%Y %H:%M')"
            )
    parsed = _to_datetime(column, fmt)
    bad = (parsed.isna() & text.notna()).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = column.iloc[row]
        where = f"{_at_row(row)}"
        if time_format is None and _parses(str(value), "mixed"):
            described = "ISO 8601" if fmt == "ISO8601" else repr(fmt)
            raise LstmcliError(
                f"time column {name!r} in {label}: {value!r} {where} is not in the format of "
                f"the first row ({first!r}, {described}); write every time in one format, or "
                "set data.time_format"
            )
        expected = f" (data.time_format {time_format!r})" if time_format else ""
        raise LstmcliError(
            f"time column {name!r} in {label}: cannot parse {value!r} as a time{expected} {where}"
        )
    return _refuse_empty_times(parsed, name, label)


def _to_datetime(column: pd.Series, fmt: str | None) -> pd.Series:
    """Times in one format; in UTC when their offsets differ (NaT where a value does not fit)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parsed = pd.to_datetime(column, errors="coerce", format=fmt)
        except (ValueError, TypeError):  # offsets that change: comparable only in UTC
            return pd.to_datetime(column, errors="coerce", format=fmt, utc=True)
    if not pd.api.types.is_datetime64_any_dtype(parsed):  # mixed offsets left as objects
        return pd.to_datetime(column, errors="coerce", format=fmt, utc=True)
    return parsed


def _parses(value: str, fmt: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pd.notna(pd.to_datetime(value, format=fmt, utc=True))
        except (ValueError, TypeError, OverflowError):
            return False


def _guess_format(value: str) -> str | None:
    from pandas.tseries.api import guess_datetime_format

    return guess_datetime_format(value)


def _wall_clock(column: pd.Series, time: pd.Series, rows: np.ndarray) -> pd.Series | None:
    """The local wall-clock times of the table's rows (file rows `rows`) when the file's
    times carry UTC offsets that change (daylight saving) and were read in UTC; else None.
    An hour-of-day input must see 9:00 as 9:00 in summer and in winter."""
    if not pd.api.types.is_datetime64_any_dtype(time) or str(time.dt.tz) != "UTC":
        return None
    text = column.iloc[rows].astype(str).reset_index(drop=True)
    offsets = text.str.extract(r"([+-]\d\d:?\d\d|Z)$")[0]
    if offsets.isna().any() or offsets.nunique() < 2:
        return None  # one offset: the times already keep it (or they were UTC)
    local = text.str.slice(0, -offsets.str.len().max())
    return pd.to_datetime(local.str.rstrip(), format="ISO8601", errors="coerce")


def _refuse_empty_times(time: pd.Series, name: str, label: str) -> pd.Series:
    empty = time.isna().to_numpy()
    if empty.any():
        row = int(np.flatnonzero(empty)[0])
        raise LstmcliError(f"time column {name!r} in {label} is empty {_at_row(row)}")
    return time


def _refuse_duplicate_times(
    time: pd.Series, codes: np.ndarray, ids: list | None, name: str, label: str
) -> None:
    """Rows are sorted by series and time: a duplicate equals its predecessor."""
    stamps = time.to_numpy()
    repeated = np.flatnonzero((stamps[1:] == stamps[:-1]) & (codes[1:] == codes[:-1]))
    if len(repeated):
        first = repeated[0]
        where = f" in series {ids[codes[first]]!r}" if ids is not None else ""
        raise LstmcliError(
            f"time column {name!r} in {label} has duplicate time {time.iloc[first]!s}{where}; "
            "each row must be one time step of its series"
        )


def _at_row(row: int) -> str:
    """Where a bad value is, as a person finds it in the file (the header is line 1)."""
    return f"at line {row + 2}"


def infer_freq(time: pd.Series) -> str | None:
    """The pandas frequency alias of regular datetimes (e.g. 'W-SAT', 'MS'), else None."""
    if len(time) < 3 or not pd.api.types.is_datetime64_any_dtype(time):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas is changing infer_freq's return type
        try:
            freq = pd.infer_freq(time)
        except (TypeError, ValueError):
            return None
    return to_offset(freq).freqstr if freq is not None else None


def business_days(time: pd.Series) -> str | None:
    """ "B" for daily data that never falls on a weekend (a stock's trading days, with
    holidays missing, so pandas infers no frequency): its next row is a Monday, not a
    Saturday."""
    if len(time) < 5 or not pd.api.types.is_datetime64_any_dtype(time):
        return None
    daily = time.diff().median() == pd.Timedelta(days=1)
    weekdays = (time.dt.day_of_week < 5).all() and (time.dt.normalize() == time).all()
    return "B" if daily and weekdays else None


def median_step(time: pd.Series) -> float | None:
    """The typical step of a numeric time column (years, epochs), for continuing it."""
    if len(time) < 2 or not pd.api.types.is_numeric_dtype(time):
        return None
    return float(np.median(np.diff(time.to_numpy(dtype=np.float64))))
