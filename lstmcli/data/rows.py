"""Ordering a frame's rows by series and time, and the checks on them (columns present, series
ids, duplicate times), each reported once in one wording.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lstmcli.config.data_section import DataConfig
from lstmcli.data.missing import MISSING_ADVICE, numeric_column, refuse_empty
from lstmcli.data.reading import at_row
from lstmcli.data.times import read_times
from lstmcli.errors import LstmcliError


def row_order(frame: pd.DataFrame, cfg: DataConfig, label: str) -> tuple:
    """File rows in (series, time) order (None when already so), each sorted row's series
    code, the ids, the sorted times and the day-first or month-first format they were read in
    where the rows decided it (read_times); duplicate times within a series are refused."""
    codes, ids = _series_codes(frame, cfg.id_column, label)
    time, time_format = None, None
    if cfg.time_column:
        time, time_format = read_times(
            frame[cfg.time_column], cfg.time_column, label, cfg.time_format
        )
    rows = _sorted_rows(codes, time)
    if rows is not None:
        codes = codes[rows]
        time = time.iloc[rows].reset_index(drop=True) if time is not None else None
    if time is not None:
        _refuse_duplicate_times(time, codes, ids, cfg.time_column, label)
    return rows, codes, ids, time, time_format


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
                refuse_empty({name: empty}, np.arange(len(empty)), label, MISSING_ADVICE)
        except LstmcliError as e:
            problems.append(str(e))
    if cfg.id_column is None or cfg.id_column in frame.columns:  # ids say which rows are one series
        if cfg.time_column is not None and cfg.time_column not in frame.columns:
            cfg = cfg.model_copy(update={"time_column": None})
        try:
            row_order(frame, cfg, label)
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


def trailing_empty_targets(
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
