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

from lstmcli.config import BUILTIN_PREFIX, DataConfig
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

    def transform(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.center) / self.scale).astype(np.float32)

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


def read_csv(source: str | Path | TextIO, label: str | None = None) -> pd.DataFrame:
    """Read a CSV file, `builtin:NAME`, or an open text stream into a DataFrame."""
    label = label or str(source)
    if isinstance(source, str) and source.startswith(BUILTIN_PREFIX):
        name = source.removeprefix(BUILTIN_PREFIX)
        if name not in builtin_datasets():
            raise LstmcliError(
                f"unknown built-in dataset {name!r}; available: {builtin_datasets()}"
            )
        source = Path(str(resources.files("lstmcli") / "datasets" / f"{name}.csv"))
    try:
        frame = pd.read_csv(source)
    except FileNotFoundError:
        raise LstmcliError(f"data file not found: {label}") from None
    except IsADirectoryError:
        raise LstmcliError(f"data path is a folder, not a CSV file: {label}") from None
    except pd.errors.EmptyDataError:
        raise LstmcliError(f"data file is empty: {label}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as e:
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
    """
    needed = ([cfg.time_column] if cfg.time_column else []) + cfg.input_columns
    if targets == "required":
        needed += [c for c in cfg.target if c not in cfg.input_columns]
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        available = ", ".join(map(str, frame.columns))
        raise LstmcliError(f"column(s) {absent} not found in {label}; available: {available}")
    read_targets = targets == "required" or all(c in frame.columns for c in cfg.target)
    columns = list(dict.fromkeys(cfg.input_columns + (cfg.target if read_targets else [])))
    values = numeric_frame(frame, columns, label)
    time = None
    if cfg.time_column:
        time = parse_time(frame[cfg.time_column], cfg.time_column, label)
        order = np.argsort(time.to_numpy(), kind="stable")
        values, time = values.iloc[order], time.iloc[order]
        _refuse_duplicate_times(time, cfg.time_column, label)
    may_be_empty = [c for c in cfg.target if c not in cfg.input_columns and targets == "optional"]
    values, notes = fill_missing(values, cfg.missing, label, skip=may_be_empty)
    if time is not None:
        time = time.loc[values.index].reset_index(drop=True)
    inputs = values[cfg.input_columns].to_numpy(np.float32)
    if read_targets:
        target_values = values[list(cfg.target)].to_numpy(np.float64)
    else:
        target_values = np.empty((len(values), 0))
    return Table(inputs, target_values, cfg.input_columns, list(cfg.target), time, notes)


def numeric_frame(frame: pd.DataFrame, columns: list[str], label: str) -> pd.DataFrame:
    """The columns as float64, indexed by file row; an error names the first value that is not
    a number (empty cells stay NaN for `fill_missing`; infinities are refused here)."""
    out = {}
    for name in columns:
        column = frame[name]
        values = pd.to_numeric(column, errors="coerce")
        not_numeric = values.isna() & column.notna()
        if not_numeric.any():
            row = int(np.flatnonzero(not_numeric.to_numpy())[0])
            raise LstmcliError(
                f"column {name!r} in {label} has a non-numeric value {column.iloc[row]!r} "
                f"{_at_row(row)}"
            )
        array = values.to_numpy(dtype=np.float64, na_value=np.nan)
        infinite = np.isinf(array)
        if infinite.any():
            row = int(np.flatnonzero(infinite)[0])
            raise LstmcliError(
                f"column {name!r} in {label} has the value {array[row]} {_at_row(row)}"
            )
        out[name] = array
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))


def fill_missing(
    values: pd.DataFrame, policy: str, label: str, skip: list[str] = ()
) -> tuple[pd.DataFrame, list[str]]:
    """Apply data.missing to empty cells of time-ordered values (index: file row).

    error: refuse the first one; drop: drop rows that have one; ffill: carry the last value
    forward; interpolate: linear between neighbours (the last value after the end). A leading
    gap has nothing to fill from and stays an error. Returns the values and what was done.
    """
    checked = [c for c in values.columns if c not in skip]
    empty = values[checked].isna()
    counts = empty.sum()
    if not counts.any():
        return values, []
    if policy == "drop":
        kept = values[~empty.any(axis=1)]
        if kept.empty:
            raise LstmcliError(f"{label}: every row has a missing value; nothing is left to use")
        return kept, [f"{label}: dropped {len(values) - len(kept)} row(s) with missing values"]
    if policy in ("ffill", "interpolate"):
        filled = values.copy()
        if policy == "ffill":
            filled[checked] = filled[checked].ffill()
        else:
            filled[checked] = filled[checked].interpolate(
                method="linear", limit_direction="forward"
            )
        leading = filled[checked].isna()
        if leading.any().any():
            name = leading.any().idxmax()
            row = int(leading[name].idxmax())
            raise LstmcliError(
                f"column {name!r} in {label} has a missing value {_at_row(row)} with no earlier "
                f"value to fill it from (data.missing: {policy})"
            )
        done = ", ".join(f"{n} in {c!r}" for c, n in counts.items() if n)
        return filled, [f"{label}: filled {done} missing value(s) ({policy})"]
    name = counts.ne(0).idxmax()
    row = int(empty[name].idxmax())
    raise LstmcliError(
        f"column {name!r} in {label} has a missing value {_at_row(row)}; set data.missing to "
        "drop, ffill or interpolate to accept gaps"
    )


def split_rows(n_rows: int, cfg: DataConfig) -> Split:
    """Cut rows in time order into train/val/test and find each part's complete windows;
    a part may come out with none (see `empty_parts`)."""
    fractions = cfg.split
    n_train = int(n_rows * fractions.train)
    n_val = int(n_rows * fractions.val)
    edges = [0, n_train, n_train + n_val, n_rows]
    split = Split(bounds={})
    for name, start, stop in zip(SPLIT_NAMES, edges[:-1], edges[1:], strict=True):
        if name == "val" and fractions.val == 0:
            continue
        split.bounds[name] = (start, stop)
        split.anchors[name] = window_anchors(start, stop, cfg.lookback, cfg.horizon, cfg.task)
    return split


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


def split_table(n_rows: int, cfg: DataConfig) -> Split:
    """`split_rows`, refusing a split where some part has no complete window."""
    split = split_rows(n_rows, cfg)
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

    values = rows.astype(np.float64)
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

    The format is inferred from the first value (fast); only if that fails for some rows are
    they parsed one by one in mixed formats.
    """
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        parsed = column
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "could not infer format": handled just below
            parsed = pd.to_datetime(column, errors="coerce")
        if parsed.isna().any():
            parsed = pd.to_datetime(column, errors="coerce", format="mixed")
    bad = parsed.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise LstmcliError(
            f"time column {name!r} in {label}: cannot parse {column.iloc[row]!r} as a time "
            f"{_at_row(row)}"
        )
    return parsed


def _refuse_duplicate_times(time: pd.Series, name: str, label: str) -> None:
    repeated = time.duplicated()
    if repeated.any():
        row = int(np.flatnonzero(repeated.to_numpy())[0])
        raise LstmcliError(
            f"time column {name!r} in {label} has duplicate time {time.iloc[row]!s}; "
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
