"""From a CSV to scaled series and window indices: read, check, order by time, split, scale.

Windows are never materialized: a window is the row index of its last input row (its anchor),
and a batch is gathered from the scaled series by index arithmetic.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from lstmcli.config import BUILTIN_PREFIX, DataConfig, SplitDates
from lstmcli.errors import LstmcliError

if TYPE_CHECKING:
    import torch

SPLIT_NAMES = ("train", "val", "test")


@dataclass
class Table:
    """The columns a run needs in time order: inputs as float32 (the model's precision), targets
    as float64 so actual values are reported exactly as the CSV had them."""

    inputs: np.ndarray
    targets: np.ndarray
    input_columns: list[str]
    target_columns: list[str]
    time: pd.Series | None = None
    notes: list[str] = field(default_factory=list)  # what data.missing did, for the user


@dataclass
class Scaler:
    """An affine map fitted on training rows, kept as plain numbers.

    scaled = (x - center) / scale
    """

    kind: str
    center: np.ndarray
    scale: np.ndarray

    def transform(self, values: np.ndarray, inplace: bool = False) -> np.ndarray:
        """float32 throughout, no float64 copy of a large series; `inplace` reuses a float32
        `values` array (training's raw inputs are not needed once scaled)."""
        center, scale = self.center.astype(np.float32), self.scale.astype(np.float32)
        if inplace and values.dtype == np.float32:
            values -= center
            values /= scale
            return values
        return (np.asarray(values, dtype=np.float32) - center) / scale

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return values * self.scale + self.center

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "center": self.center.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scaler:
        return cls(
            d["kind"], np.asarray(d["center"], np.float64), np.asarray(d["scale"], np.float64)
        )


@dataclass
class Split:
    """Row boundaries and window anchors of each part; windows' targets lie inside their part."""

    bounds: dict[str, tuple[int, int]]
    anchors: dict[str, np.ndarray] = field(default_factory=dict)


def builtin_datasets() -> list[str]:
    folder = resources.files("lstmcli") / "datasets"
    return sorted(p.name.removesuffix(".csv") for p in folder.iterdir() if p.name.endswith(".csv"))


def read_csv(
    source: str | Path | TextIO,
    label: str | None = None,
    columns: list[str] | None = None,
    float32: list[str] = (),
) -> pd.DataFrame:
    """Read a CSV file, `builtin:NAME`, or an open text stream into a DataFrame.

    With `columns`, a file is read with only those (when it has them all), and the `float32`
    ones are parsed straight to float32: a large file then costs about half the memory. A
    column that is not all numbers is read again as text, so its error can name the value.
    """
    label = label or str(source)
    if isinstance(source, str) and source.startswith(BUILTIN_PREFIX):
        name = source.removeprefix(BUILTIN_PREFIX)
        if name not in builtin_datasets():
            raise LstmcliError(
                f"unknown built-in dataset {name!r}; available: {builtin_datasets()}"
            )
        source = Path(str(resources.files("lstmcli") / "datasets" / f"{name}.csv"))
    try:
        usecols, dtype = None, None
        if columns is not None and isinstance(source, (str, Path)):
            header = pd.read_csv(source, nrows=0).columns
            if set(columns) <= set(header):
                usecols = [c for c in header if c in set(columns)]
                dtype = {c: np.float32 for c in float32 if c in usecols} or None
        try:
            frame = pd.read_csv(source, usecols=usecols, dtype=dtype)
        except ValueError:  # a float32 column holds text: read it as text, report it later
            if dtype is None:
                raise
            frame = pd.read_csv(source, usecols=usecols)
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


def prepare_table(
    frame: pd.DataFrame, cfg: DataConfig, label: str, *, targets: str = "required"
) -> Table:
    """Check the needed columns, order rows by time, handle missing values, return arrays.

    targets: "required" (present, every value a number) or "optional" (read when all target
    columns are present, empty cells allowed: a regression input's unknown targets).
    Plain numpy after the column checks, one array per column (float32 unless it is a target):
    `predict` runs this on every call, and `train` on files of millions of rows.
    """
    needed = ([cfg.time_column] if cfg.time_column else []) + cfg.input_columns
    if targets == "required":
        needed += [c for c in cfg.target if c not in cfg.input_columns]
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        available = ", ".join(map(str, frame.columns))
        raise LstmcliError(f"column(s) {absent} not found in {label}; available: {available}")
    read_targets = targets == "required" or all(c in frame.columns for c in cfg.target)
    names = list(dict.fromkeys(cfg.input_columns + (cfg.target if read_targets else [])))
    values = {
        name: numeric_column(frame, name, label, np.float64 if name in cfg.target else np.float32)
        for name in names
    }
    rows = np.arange(len(frame))  # file rows, for messages
    time = None
    if cfg.time_column:
        time = parse_time(frame[cfg.time_column], cfg.time_column, label)
        stamps = time.to_numpy()
        if len(stamps) > 1 and not (stamps[1:] > stamps[:-1]).all():  # sort only when needed
            rows = np.argsort(stamps, kind="stable")
            values = {name: column[rows] for name, column in values.items()}
            time = time.iloc[rows].reset_index(drop=True)
        _refuse_duplicate_times(time, cfg.time_column, label)
    may_be_empty = [c for c in cfg.target if c not in cfg.input_columns and targets == "optional"]
    checked = [name for name in names if name not in may_be_empty]
    values, kept, notes = fill_missing(values, checked, rows, cfg.missing, label)
    if kept is not None and time is not None:
        time = time[kept].reset_index(drop=True)
    n_rows = len(next(iter(values.values()))) if values else len(frame)
    inputs = np.empty((n_rows, len(cfg.input_columns)), dtype=np.float32)
    for j, name in enumerate(cfg.input_columns):
        inputs[:, j] = values[name]
    target_values = np.empty((n_rows, len(cfg.target) if read_targets else 0))
    for j, name in enumerate(cfg.target if read_targets else []):
        target_values[:, j] = values[name]
    return Table(inputs, target_values, cfg.input_columns, list(cfg.target), time, notes)


def numeric_column(frame: pd.DataFrame, name: str, label: str, dtype: type) -> np.ndarray:
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
    values: dict[str, np.ndarray], checked: list[str], rows: np.ndarray, policy: str, label: str
) -> tuple[dict[str, np.ndarray], np.ndarray | None, list[str]]:
    """Apply data.missing to empty cells of the `checked` columns of time-ordered values.

    error: refuse; drop: drop rows that have one; ffill: carry the last value forward;
    interpolate: linear between neighbours (the last value after the end). A leading gap has
    nothing to fill from and stays an error. `rows` are the file rows, for messages. Returns
    the values, the kept row mask (None when all are kept) and what was done.
    """
    empty = {name: np.isnan(values[name]) for name in checked}
    counts = {name: int(mask.sum()) for name, mask in empty.items()}
    if not any(counts.values()):
        return values, None, []
    if policy == "drop":
        kept = ~np.logical_or.reduce([empty[name] for name in checked])
        if not kept.any():
            raise LstmcliError(f"{label}: every row has a missing value; nothing is left to use")
        note = f"{label}: dropped {int((~kept).sum())} row(s) with missing values"
        return {name: column[kept] for name, column in values.items()}, kept, [note]
    if policy in ("ffill", "interpolate"):
        filled = dict(values)
        for name in checked:
            if counts[name]:
                series = pd.Series(values[name])
                if policy == "ffill":
                    series = series.ffill()
                else:
                    series = series.interpolate(method="linear", limit_direction="forward")
                filled[name] = series.to_numpy(values[name].dtype)
        left = {name: np.isnan(filled[name]) for name in checked}
        advice = f" with no earlier value to fill it from (data.missing: {policy})"
        _refuse_empty(left, rows, label, advice)
        done = ", ".join(f"{n} in {name!r}" for name, n in counts.items() if n)
        return filled, None, [f"{label}: filled {done} missing value(s) ({policy})"]
    advice = "; set data.missing to drop, ffill or interpolate to accept gaps"
    _refuse_empty(empty, rows, label, advice)
    raise AssertionError("unreachable: there was an empty cell")


def _refuse_empty(empty: dict[str, np.ndarray], rows: np.ndarray, label: str, advice: str) -> None:
    """Name the first column with an empty cell, and its first line in the file."""
    for name, mask in empty.items():
        if mask.any():
            row = int(rows[mask].min())
            raise LstmcliError(
                f"column {name!r} in {label} has a missing value {_at_row(row)}{advice}"
            )


def split_rows(n_rows: int, cfg: DataConfig, time: pd.Series | None = None) -> Split:
    """Cut rows in time order into train/val/test and find each part's complete windows;
    a part may come out with none (see `empty_parts`)."""
    if isinstance(cfg.split, SplitDates):
        n_train, n_val, has_val = _date_edges(cfg.split, time, cfg.time_column)
    else:
        n_train = int(n_rows * cfg.split.train)
        n_val = int(n_rows * cfg.split.val)
        has_val = cfg.split.val > 0
    edges = [0, n_train, n_train + n_val, n_rows]
    split = Split(bounds={})
    for name, start, stop in zip(SPLIT_NAMES, edges[:-1], edges[1:], strict=True):
        if name == "val" and not has_val:
            continue
        split.bounds[name] = (start, stop)
        split.anchors[name] = window_anchors(start, stop, cfg.lookback, cfg.horizon, cfg.task)
    return split


def _date_edges(
    dates: SplitDates, time: pd.Series | None, name: str | None
) -> tuple[int, int, bool]:
    """Rows before val_start (train), then before test_start (val); times as in the data."""
    if time is None:
        raise LstmcliError("a split by {val_start, test_start} needs data.time_column")

    def first_row_from(value: str | float, key: str) -> int:
        try:
            if pd.api.types.is_numeric_dtype(time):
                at = float(value)
            else:
                at = pd.Timestamp(value)
                at = at.tz_localize(time.dt.tz) if time.dt.tz and at.tz is None else at
            return int(np.searchsorted(time.to_numpy(), np.asarray(at, dtype=time.dtype)))
        except (ValueError, TypeError):
            raise LstmcliError(
                f"data.split.{key}: {value!r} is not a time like those in column {name!r}"
            ) from None

    test = first_row_from(dates.test_start, "test_start")
    if dates.val_start is None:
        return test, 0, False
    val = first_row_from(dates.val_start, "val_start")
    if val > test:
        raise LstmcliError("data.split: val_start must come before test_start")
    return val, test - val, True


def empty_parts(split: Split, cfg: DataConfig) -> list[str]:
    """One message per part without a window, saying how many rows it would need."""
    n_rows = max(stop for _, stop in split.bounds.values())
    messages = []
    advice = "use more data or change data.split, data.lookback or data.horizon"
    for name, (start, stop) in split.bounds.items():
        if len(split.anchors[name]):
            continue
        need = rows_needed(name, cfg)
        if name == "train" or stop - start < need:
            messages.append(
                f"the {name} part has {stop - start} of {n_rows} rows, too few for one window: "
                f"lookback {cfg.lookback} and horizon {cfg.horizon} need at least {need} rows "
                f"there; {advice}"
            )
        else:  # enough rows, but its windows' inputs would start before the data does
            messages.append(
                f"the {name} part ends at row {stop}, too early for one window: lookback "
                f"{cfg.lookback} and horizon {cfg.horizon} need at least "
                f"{rows_needed('train', cfg)} rows up to its end; {advice}"
            )
    return messages


def split_table(n_rows: int, cfg: DataConfig, time: pd.Series | None = None) -> Split:
    """`split_rows`, refusing a split where some part has no complete window."""
    split = split_rows(n_rows, cfg, time)
    problems = empty_parts(split, cfg)
    if problems:
        raise LstmcliError(problems[0])
    return split


def rows_needed(part: str, cfg: DataConfig) -> int:
    """Rows a part must hold for one window: the first part also holds its window's inputs."""
    target_rows = cfg.horizon if cfg.task == "forecast" else 1
    if part != "train":
        return target_rows
    return cfg.lookback + target_rows if cfg.task == "forecast" else cfg.lookback


def window_anchors(start: int, stop: int, lookback: int, horizon: int, task: str) -> np.ndarray:
    """Last input rows t of the windows whose target rows all lie in [start, stop).

    forecast: inputs t-lookback+1..t, targets t+1..t+horizon.
    regress:  inputs t-lookback+1..t, target t.
    """
    if task == "forecast":
        first, last = max(start - 1, lookback - 1), stop - 1 - horizon
    else:
        first, last = max(start, lookback - 1), stop - 1
    return np.arange(first, last + 1, dtype=np.int64) if last >= first else np.empty(0, np.int64)


def target_offsets(horizon: int, task: str) -> np.ndarray:
    """Rows of a window's targets relative to its anchor."""
    return np.arange(1, horizon + 1) if task == "forecast" else np.zeros(1, dtype=np.int64)


def fit_scaler(kind: str, rows: np.ndarray) -> Scaler:
    """Fit one scikit-learn scaler on training rows and keep its statistics as plain arrays.

    Constant columns get scale 1 (scikit-learn's rule), so nothing divides by zero.
    """
    n_columns = rows.shape[1]
    if kind == "none" or n_columns == 0:
        return Scaler(kind, np.zeros(n_columns), np.ones(n_columns))
    from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

    values = rows  # float32 inputs stay float32: scikit-learn accumulates in float64 itself
    if kind == "minmax":
        fitted = MinMaxScaler().fit(values)
        center, scale = fitted.data_min_, 1.0 / fitted.scale_
    elif kind == "standard":
        fitted = StandardScaler().fit(values)
        center, scale = fitted.mean_, fitted.scale_
    elif kind == "robust":
        fitted = RobustScaler().fit(values)
        center, scale = fitted.center_, fitted.scale_
    else:
        raise LstmcliError(f"unknown scaler {kind!r}")
    return Scaler(kind, np.asarray(center, np.float64), np.asarray(scale, np.float64))


def constant_columns(rows: np.ndarray, names: list[str]) -> list[str]:
    columns = zip(names, rows.T, strict=True)
    return [name for name, column in columns if len(column) and np.ptp(column) == 0]


class WindowSet:
    """Windows over scaled series tensors, gathered per batch by index arithmetic."""

    def __init__(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor | None,
        anchors: np.ndarray,
        lookback: int,
        offsets: np.ndarray,
    ) -> None:
        import torch

        device = inputs.device
        self.inputs = inputs
        self.targets = targets
        self.anchors = torch.as_tensor(anchors, dtype=torch.long, device=device)
        self.input_offsets = torch.arange(-lookback + 1, 1, device=device)
        self.target_offsets = torch.as_tensor(offsets, dtype=torch.long, device=device)

    def __len__(self) -> int:
        return len(self.anchors)

    def batch(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Inputs (B, lookback, n_inputs) and targets (B, steps, n_targets) of some windows."""
        anchors = self.anchors[positions].unsqueeze(1)
        inputs = self.inputs[anchors + self.input_offsets]
        if self.targets is None:  # prediction on data without known targets
            return inputs, None
        return inputs, self.targets[anchors + self.target_offsets]


def parse_time(column: pd.Series, name: str, label: str) -> pd.Series:
    """Numbers stay numbers (years, epochs); anything else must parse as dates.

    ISO 8601 is tried first (fast), then a format inferred from the first value, then each
    value on its own; times whose UTC offsets differ (daylight saving) are converted to UTC.
    """
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        parsed = column
    elif pd.api.types.is_datetime64_any_dtype(column):
        parsed = column
    else:
        parsed = None
        # ISO first: the common case, and fast. Offsets that change (daylight saving time)
        # are only comparable in UTC, which the last two attempts convert to.
        attempts = [("ISO8601", False), (None, False), ("mixed", False), ("ISO8601", True)]
        for fmt, utc in [*attempts, ("mixed", True)]:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "could not infer format": next one
                    parsed = pd.to_datetime(column, errors="coerce", format=fmt, utc=utc)
            except (ValueError, TypeError) as e:
                if (fmt, utc) == ("mixed", True):
                    reason = str(e).split(". ")[0]
                    raise LstmcliError(f"time column {name!r} in {label}: {reason}") from None
                continue
            if not parsed.isna().any():
                break
    bad = parsed.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise LstmcliError(
            f"time column {name!r} in {label}: cannot parse {column.iloc[row]!r} as a time "
            f"{_at_row(row)}"
        )
    return parsed


def _refuse_duplicate_times(time: pd.Series, name: str, label: str) -> None:
    """`time` is sorted: a duplicate equals its predecessor."""
    stamps = time.to_numpy()
    repeated = np.flatnonzero(stamps[1:] == stamps[:-1])
    if len(repeated):
        raise LstmcliError(
            f"time column {name!r} in {label} has duplicate time {time.iloc[repeated[0]]!s}; "
            "each row must be one time step"
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


def median_step(time: pd.Series) -> float | None:
    """The typical step of a numeric time column (years, epochs), for continuing it."""
    if len(time) < 2 or not pd.api.types.is_numeric_dtype(time):
        return None
    return float(np.median(np.diff(time.to_numpy(dtype=np.float64))))
