"""Splits and windows over a Table, per series and without a Python loop per window.

Windows are never materialized: a window is the row index of its last input row (its anchor),
and a batch is gathered from the scaled series by index arithmetic.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lstmcli.config.data_section import DataConfig, SplitDates
from lstmcli.data.table import Table
from lstmcli.errors import LstmcliError, Warn, first_names, plural

if TYPE_CHECKING:
    import torch

SPLIT_NAMES = ("train", "val", "test")


@dataclass
class Split:
    """Row boundaries and window anchors of each part; windows' targets lie inside their part."""

    bounds: dict[str, tuple[int, int]]
    anchors: dict[str, np.ndarray] = field(default_factory=dict)


def split_rows(table: Table | int, cfg: DataConfig, time: pd.Series | None = None) -> Split:
    """Cut each series in time order into train/val/test and find each part's complete
    windows; a part may come out with none (see `empty_parts`). `table` may be a row count
    (one series)."""
    offsets = table.offsets if isinstance(table, Table) else np.array([0, table], np.int64)
    if isinstance(table, Table) and time is None:
        time = table.time
    starts, stops = offsets[:-1], offsets[1:]
    lengths = stops - starts
    if isinstance(cfg.split, SplitDates):
        n_train, n_val, has_val = _date_edges(cfg.split, time, cfg.time_column, starts)
    else:
        n_train = np.floor(lengths * cfg.split.train).astype(np.int64)
        n_val = np.floor(lengths * cfg.split.val).astype(np.int64)
        has_val = cfg.split.val > 0
    edges = [starts, starts + n_train, starts + n_train + n_val, stops]
    split = Split(bounds={})
    for name, part_start, part_stop in zip(SPLIT_NAMES, edges[:-1], edges[1:], strict=True):
        if name == "val" and not has_val:
            continue
        split.bounds[name] = (part_start, part_stop)
        split.anchors[name] = series_anchors(
            part_start, part_stop, starts, cfg.history_rows, cfg.horizon, cfg.task
        )
    return split


def part_rows(bounds: tuple[np.ndarray, np.ndarray]) -> slice | np.ndarray:
    """The rows of one part of every series: a slice (no copy) for one series."""
    starts, stops = bounds
    if len(starts) == 1:
        return slice(int(starts[0]), int(stops[0]))
    return series_anchors(starts, stops, starts, 1, 0, "regress")


def _date_edges(
    dates: SplitDates, time: pd.Series | None, name: str | None, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Per series: rows before val_start (train), then before test_start (val); times as in
    the data, the same dates for every series."""
    if time is None:
        raise LstmcliError("a split by {val_start, test_start} needs data.time_column")

    def rows_before(value: str | float, key: str) -> np.ndarray:
        try:
            if pd.api.types.is_numeric_dtype(time):
                at = float(value)
            else:
                at = pd.Timestamp(value)
                at = at.tz_localize(time.dt.tz) if time.dt.tz and at.tz is None else at
            before = (time < at).to_numpy(dtype=bool)  # pandas compares zoned times too
        except (ValueError, TypeError):
            raise LstmcliError(
                f"data.split.{key}: {value!r} is not a time like those in column {name!r}"
            ) from None
        return np.add.reduceat(before.astype(np.int64), starts) if len(before) else starts * 0

    test = rows_before(dates.test_start, "test_start")
    if dates.val_start is None:
        return test, test * 0, False
    val = rows_before(dates.val_start, "val_start")
    if (val > test).any():
        raise LstmcliError("data.split: val_start must come before test_start")
    return val, test - val, True


def empty_parts(split: Split, cfg: DataConfig, optional: tuple = ()) -> list[str]:
    """One message per part without a window in any series, saying how many rows it needs
    (none for the parts in `optional`)."""
    n_series = len(split.bounds["train"][0])
    n_rows = int(max(stops.max() for _, stops in split.bounds.values()))
    messages = []
    advice = "use more data or change data.split, data.lookback or data.horizon"
    for name, (starts, stops) in split.bounds.items():
        if len(split.anchors[name]) or name in optional:
            continue
        need = rows_needed(name, cfg)
        rows = int((stops - starts).sum())
        if n_series > 1:
            messages.append(
                f"the {name} part has no complete window in any of the {n_series} series "
                f"(at most {plural(int((stops - starts).max()), 'row')} in one; "
                f"{_reads(cfg)} and horizon {cfg.horizon} need {plural(need, 'row')} there); "
                f"{advice}"
            )
        elif name == "train" or rows < need:
            messages.append(
                f"the {name} part has {rows} of {n_rows} rows, too few for one window: "
                f"{_reads(cfg)} and horizon {cfg.horizon} need at least "
                f"{plural(need, 'row')} there; {advice}"
            )
        else:  # enough rows, but its windows' inputs would start before the data does
            messages.append(
                f"the {name} part ends at row {int(stops[0])}, too early for one window: "
                f"{_reads(cfg)} and horizon {cfg.horizon} need at least "
                f"{rows_needed('train', cfg)} rows up to its end; {advice}"
            )
    return messages


def split_table(
    table: Table | int, cfg: DataConfig, time: pd.Series | None = None, optional: tuple = ()
) -> Split:
    """`split_rows`, refusing a split where some part has no complete window (the parts in
    `optional` may have none: a prior needs no training window)."""
    split = split_rows(table, cfg, time)
    problems = empty_parts(split, cfg, optional)
    if problems:
        raise LstmcliError(problems[0])
    return split


def rows_needed(part: str, cfg: DataConfig) -> int:
    """Rows a part must hold for one window: the first part also holds its window's inputs."""
    target_rows = cfg.horizon if cfg.task == "forecast" else 1
    if part != "train":
        return target_rows
    history = cfg.history_rows  # the lookback, unless data.min_history pads shorter windows
    return history + target_rows if cfg.task == "forecast" else history


def _reads(cfg: DataConfig) -> str:
    """The real rows a window reads, for messages: `lookback 24`, or `data.min_history 3`
    when shorter histories are padded up to the lookback (a run from a prior)."""
    if cfg.history_rows < cfg.lookback:
        return f"data.min_history {cfg.history_rows}"
    return f"lookback {cfg.lookback}"


def window_need(cfg: DataConfig) -> str:
    """What one window needs, for messages: `lookback 24 and horizon 6 need 30 rows`."""
    rows = rows_needed("train", cfg)
    lookback = _reads(cfg)
    if cfg.task == "forecast":
        return f"{lookback} and horizon {cfg.horizon} need {rows} rows"
    return f"{lookback} needs {rows} rows"


def keep_series(table: Table, keep: np.ndarray, why: str, label: str, warn: Warn) -> Table:
    """The series where `keep` is true. The others are skipped with one warning that counts and
    names them; when none is left, an error. `why` says what the skipped ones are, e.g.
    `shorter than one window (lookback 24 and horizon 1 need 25 rows)`."""
    if keep.all():
        return table
    if not keep.any():
        if table.ids is None:
            rows = int(table.lengths[0] - table.future[0])  # rows to forecast are not history
            raise LstmcliError(f"{label} is {why}: it has {rows} row(s)")
        raise LstmcliError(f"every series in {label} ({table.n_series}) is {why}")
    skipped = [name for name, k in zip(table.id_labels(), keep, strict=True) if not k]
    warn(f"skipped {len(skipped)} of {table.n_series} series {why}: {first_names(skipped)}")
    return table.select_series(keep)


def training_series(table: Table, cfg: DataConfig, warn: Warn) -> Table:
    """The series `train` uses: those long enough for one window and, with scale_by: series,
    with a training row to fit their scaler on. `check` asks the same question. A single
    series is left to `split_table`, whose message names the part that is too short. Rows
    to forecast at the end of a series (empty targets) hold nothing to learn or score."""
    if table.future.any():
        rows, ends = int(table.future.sum()), int((table.future > 0).sum())
        where = f"of {ends} series " if table.ids is not None else ""
        warn(
            f"{cfg.path}: the last {rows} row(s) {where}have empty targets: rows to forecast, "
            "left out of training and scoring"
        )
        table = table.without_rows_to_forecast()
    if table.ids is None:
        return table
    short = table.lengths < rows_needed("train", cfg)
    why = f"shorter than one window ({window_need(cfg)})"
    table = keep_series(table, ~short, why, cfg.path, warn)
    if cfg.scale_by == "series":
        starts, stops = split_rows(table, cfg).bounds["train"]
        why = (
            "without a training row to fit its scaler on (data.scale_by: series); "
            "move data.split's dates, carve no val part (data.validation: none) or scale "
            "globally"
        )
        table = keep_series(table, stops > starts, why, cfg.path, warn)
    return table


def window_anchors(start: int, stop: int, lookback: int, horizon: int, task: str) -> np.ndarray:
    """Last input rows t of the windows whose target rows all lie in [start, stop) of a
    series that starts at row 0.

    forecast: inputs t-lookback+1..t, targets t+1..t+horizon.
    regress:  inputs t-lookback+1..t, target t.
    """
    return series_anchors(
        np.array([start]), np.array([stop]), np.array([0]), lookback, horizon, task
    )


def series_anchors(
    starts: np.ndarray,
    stops: np.ndarray,
    series_starts: np.ndarray,
    lookback: int,
    horizon: int,
    task: str,
) -> np.ndarray:
    """`window_anchors` for many series at once, without a Python loop: part k of series k is
    rows [starts[k], stops[k]) and the series begins at series_starts[k]. A window's inputs
    never reach before its series' first row, and its targets never pass the part's end."""
    if task == "forecast":
        first = np.maximum(starts - 1, series_starts + lookback - 1)
        last = stops - 1 - horizon
    else:
        first = np.maximum(starts, series_starts + lookback - 1)
        last = stops - 1
    counts = np.maximum(last - first + 1, 0).astype(np.int64)
    total = int(counts.sum())
    # Each part's anchors are first[k], first[k]+1, ...: one arange, shifted per part.
    shift = np.repeat(first - (np.cumsum(counts) - counts), counts)
    return (np.arange(total, dtype=np.int64) + shift).astype(np.int64)


def target_offsets(horizon: int, task: str) -> np.ndarray:
    """Rows of a window's targets relative to its anchor."""
    return np.arange(1, horizon + 1) if task == "forecast" else np.zeros(1, dtype=np.int64)


class WindowSet:
    """Windows over scaled series tensors, gathered per batch by index arithmetic.

    The `future` input columns are known in advance (known features, calendar): their values
    at the target rows are gathered too, as the model's `future` input. `starts` holds each
    window's series' first row (None: one series from row 0): a window that reaches before its
    series repeats that row (data.min_history), and a Theta blend's history starts there.
    """

    def __init__(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor | None,
        anchors: np.ndarray,
        lookback: int,
        offsets: np.ndarray,
        future: slice | None = None,
        starts: np.ndarray | None = None,
    ) -> None:
        import torch

        device = inputs.device
        self.inputs = inputs
        self.targets = targets
        has_future = future is not None and future.start != future.stop
        self.future_columns = future if has_future else None
        self.anchors = torch.as_tensor(anchors, dtype=torch.long, device=device)
        self.starts = None if starts is None else torch.as_tensor(starts, dtype=torch.long,
                                                                    device=device)  # fmt: skip
        self.input_offsets = torch.arange(-lookback + 1, 1, device=device)
        self.target_offsets = torch.as_tensor(offsets, dtype=torch.long, device=device)

    def __len__(self) -> int:
        return len(self.anchors)

    def subset(self, positions: np.ndarray) -> WindowSet:
        """The same windows over the same tensors, only those at `positions`."""
        import torch

        out = copy.copy(self)
        index = torch.as_tensor(positions, dtype=torch.long, device=self.anchors.device)
        out.anchors = self.anchors[index]
        out.starts = None if self.starts is None else self.starts[index]
        return out

    def histories(self, positions: np.ndarray, column: int) -> list[np.ndarray]:
        """Each window's whole history of one input column (from its series' first row to
        its last input row), scaled: what a classical blend reads."""
        anchors = self.anchors.cpu().numpy()[positions]
        starts = self.starts.cpu().numpy()[positions] if self.starts is not None else 0 * anchors
        values = self.inputs[:, column].cpu().numpy()
        return [values[a : b + 1] for a, b in zip(starts, anchors, strict=True)]

    def batch(
        self, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Inputs (B, lookback, n_inputs), future inputs (B, steps, n_future) or None, and
        targets (B, steps, n_targets) of some windows (None without known targets)."""
        anchors = self.anchors[positions].unsqueeze(1)
        rows = anchors + self.input_offsets
        if self.starts is not None:
            rows = rows.maximum(self.starts[positions].unsqueeze(1))
        inputs = self.inputs[rows]
        future = None
        if self.future_columns is not None:
            future = self.inputs[anchors + self.target_offsets][..., self.future_columns]
        if self.targets is None:  # prediction on data without known targets
            return inputs, future, None
        return inputs, future, self.targets[anchors + self.target_offsets]
