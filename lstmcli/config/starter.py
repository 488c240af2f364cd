"""`lstmcli init`: a starter config written from a look at the data file (time, id and target
columns, the season).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from lstmcli.config.edit import validate_config
from lstmcli.config.fields import BUILTIN_PREFIX
from lstmcli.config.resolve import infer_season
from lstmcli.config.schema import Config
from lstmcli.data.reading import read_csv
from lstmcli.data.table import Table
from lstmcli.data.times import parse_time
from lstmcli.errors import LstmcliError

TIME_NAMES = ("date", "time", "datetime", "timestamp", "ts", "ds", "period", "month", "year", "day")


def starter_config(
    path: str, target: str | None = None, config_folder: Path | None = None
) -> tuple[Config, list[str]]:
    """A config for a CSV file, ready to train: its time column (a column named like one, or
    the first whose values parse as times), a target (`target`, else the first numeric column
    that is not the time), the season inferred from the times and a horizon of one season
    (one step without a season). Also the notes that say what was picked and why. The config
    names the file relative to `config_folder` (where it will be written; None: absolute),
    as config paths resolve against their file's folder."""
    frame = read_csv(path)
    time_column = _time_column(frame, path)
    time = parse_time(frame[time_column], time_column, path) if time_column else None
    id_column = _id_column(frame, time_column, time, path)
    frame = read_csv(path, text=[id_column]) if id_column else frame  # ids are labels
    numeric = [
        c
        for c in frame.columns
        if c not in (time_column, id_column)
        and pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
    ]
    picked = target is None
    if target is None:
        if not numeric:
            raise LstmcliError(f"{path} has no numeric column to forecast; name one with --target")
        target = numeric[0]
    elif target not in frame.columns:
        available = ", ".join(map(str, frame.columns))
        raise LstmcliError(f"--target {target!r} is not a column of {path}; available: {available}")
    notes = [f"target: {target}" + (" (the first numeric column)" if picked else "")]
    season = None
    if id_column is not None:
        counts = frame[id_column].value_counts()
        notes.append(
            f"id column: {id_column} ({len(counts)} series of {counts.min()} to {counts.max()} "
            "rows; the times repeat once per series)"
        )
    if time is not None:
        season, why = infer_season(_times_table(time, frame[id_column] if id_column else None))
        notes.append(f"time column: {time_column}; season: {season} ({why})")
    else:
        notes.append("no time column found: rows are taken in file order, without a season")
    horizon = season or 1
    notes.append(f"horizon: {horizon} ({'one season' if season else 'one step'})")
    config = validate_config(
        {
            "data": {
                "path": _path_from(path, config_folder),
                "time_column": time_column,
                "id_column": id_column,
                "target": [target],
                "season": season,
                "horizon": horizon,
            },
            "output": {"dir": f"runs/{Path(str(path)).stem}"},
        },
        "init",
    )
    return config, notes


ID_NAMES = ("id", "series", "unique_id", "series_id", "key", "store", "item", "sku", "name")


def _id_column(frame: pd.DataFrame, time_column: str | None, time: pd.Series | None,
               path: str) -> str | None:  # fmt: skip
    """When the times repeat (several series in one file): the text column whose values tell
    the series apart (each id with each time once), preferring a name like `id` or `series`;
    an error naming data.id_column when no column does."""
    if time is None or not time.duplicated().any():
        return None
    text = [
        c for c in frame.columns if c != time_column and not pd.api.types.is_numeric_dtype(frame[c])
    ]
    text.sort(key=lambda c: str(c).strip().lower() not in ID_NAMES)  # named ones first
    for column in text:
        pairs = pd.DataFrame({"id": frame[column].astype(str), "time": time})
        if frame[column].notna().all() and not pairs.duplicated().any():
            return column
    repeated = int(time.duplicated().sum())
    raise LstmcliError(
        f"{path}: the time column {time_column!r} repeats {repeated} time(s) and no text column "
        "tells the series apart; if the file holds several series, set data.id_column to the "
        "column that names them (ids are read as text), else remove the repeated rows"
    )


def _times_table(time: pd.Series, ids: pd.Series | None) -> Table:
    """A table of times only, in (series, time) order, for inferring the season."""
    if ids is None:
        time = time.sort_values().reset_index(drop=True)
        return Table(np.zeros((len(time), 0)), np.zeros((len(time), 0)), [], [], time)
    codes, uniques = pd.factorize(ids.astype(str), sort=True)
    order = np.lexsort([time.to_numpy(), codes])
    offsets = np.concatenate([[0], np.cumsum(np.bincount(codes))]).astype(np.int64)
    ordered = time.iloc[order].reset_index(drop=True)
    empty = np.zeros((len(time), 0))
    return Table(empty, empty, [], [], ordered, offsets, list(uniques))


def _path_from(path: str, folder: Path | None) -> str:
    if path.startswith(BUILTIN_PREFIX):
        return path
    absolute = Path(path).resolve()
    return str(absolute) if folder is None else os.path.relpath(absolute, folder)


def _time_column(frame: pd.DataFrame, path: str) -> str | None:
    """The column named like a time, else the first text column whose values are times."""
    named = [c for c in frame.columns if str(c).strip().lower() in TIME_NAMES]
    candidates = named + [
        c for c in frame.columns if c not in named and not pd.api.types.is_numeric_dtype(frame[c])
    ]
    for name in candidates:
        try:
            parse_time(frame[name], name, path)
            return name
        except LstmcliError:
            if name in named:  # a date column the rows cannot settle: say why, not file order
                raise
            continue
    return None
