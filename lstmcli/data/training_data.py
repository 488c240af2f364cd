"""The data as training sees it: usable series, their split, scalers fitted on the training
rows, and the facts about the data that model.pt keeps for predict and evaluate.

`prepare_data` makes it once per data config (a tune study reuses it across trials); it is
never changed afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from lstmcli.config.data_section import DataConfig
from lstmcli.config.plan import Plan, PlannedData
from lstmcli.data.scaling import Scaler, fit_scaler, warn_constant_columns, warn_series_scales
from lstmcli.data.table import Table
from lstmcli.data.times import frequency, median_step, missing_steps
from lstmcli.data.windows import (
    Split,
    WindowSet,
    part_rows,
    split_table,
    target_offsets,
    training_series,
)
from lstmcli.errors import LstmcliError, Warn
from lstmcli.model.bands import baseline_quantiles
from lstmcli.model.checkpoint import Checkpoint
from lstmcli.model.forecaster import scaled_windows
from lstmcli.use.metrics import baseline_predictions, mase_scales, series_mase_scales


@dataclass(frozen=True)
class TrainingData:
    """The usable series, their split, the scalers fitted on the training rows, and what
    model.pt keeps about the data."""

    table: Table
    split: Split
    input_scaler: Scaler
    target_scaler: Scaler
    mase_scales: list[float | None]  # the naive error over the rows before the test part
    series_mase_scales: np.ndarray | None  # the same per series (series, targets)
    time_freq: str | None  # the frequency of the longest series, to continue its times
    time_step: float | None  # the same for a numeric time column
    time_zone: str | None  # the times' zone (UTC when offsets changed); None: naive or numbers
    baseline_intervals: dict | None = None  # the seasonal-naive baseline's interval quantiles

    def row_series(self) -> np.ndarray | None:
        """Each row's series, for per-series scalers and scores; None for one series."""
        return self.table.row_series() if self.table.ids is not None else None

    def window_series(self, part: str) -> np.ndarray | None:
        """Each window's series in a part, for per-series scalers; None for one series."""
        anchors = self.split.anchors[part]
        return self.table.series_of(anchors) if self.table.ids is not None else None


def plan_data(
    plan: Plan, table: Table, warn: Warn, resume: Checkpoint | None = None
) -> TrainingData:
    """The prepared data of a plan: the one way train and a tune trial split the table and
    fit the scalers (a resumed run keeps its own scalers, and its data must not have
    changed)."""
    config = plan.config
    return prepare_data(
        table,
        config.data,
        warn,
        config.model.levels,
        scalers=(resume.input_scaler, resume.target_scaler) if resume is not None else None,
        expected_rows=resume.data_rows if resume is not None else None,
        windowless=plan.init.windowless,
    )


def prepare_data(
    table: Table,
    cfg: PlannedData,
    warn: Warn,
    levels: list[float] = (),
    scalers: tuple[Scaler, Scaler] | None = None,
    expected_rows: int | None = None,
    windowless: tuple[str, ...] = (),
) -> TrainingData:
    """The usable series of a table, their split, and scalers fitted on the training rows
    (or `scalers`, a resumed run's, whose data had `expected_rows`). With interval `levels`,
    also the seasonal-naive baseline's intervals. The parts in `windowless` may have no window
    (see prior.windowless_parts). `cfg` is resolved: no `auto` left."""
    table = training_series(table, cfg, warn)
    split = split_table(table, cfg, optional=windowless)
    train_rows = part_rows(split.bounds["train"])
    row_series = table.row_series() if table.ids is not None else None
    train_series = row_series[train_rows] if row_series is not None else None
    if expected_rows is not None and expected_rows != len(table.inputs):
        raise LstmcliError(
            f"{cfg.path} has {len(table.inputs)} rows but the run started with "
            f"{expected_rows}; the data changed, so start a new run"
        )
    if scalers is not None:
        input_scaler, target_scaler = scalers
    else:
        n, by = table.n_series, train_series if cfg.scale_by == "series" else None
        input_scaler = fit_scaler(cfg.scaler, table.inputs[train_rows], by, n)
        target_scaler = fit_scaler(cfg.scaler, table.targets[train_rows], by, n)
        input_scaler = input_scaler.without_scaling(cfg.layout.calendar_slice)  # sin/cos
    warn_constant_columns(table.inputs[train_rows], table.input_columns, warn)
    if table.ids is not None and scalers is None:  # a resumed run heard them when it began
        warn_series_scales(table, table.targets[train_rows], train_series,
                           shared=cfg.scale_by == "global", warn=warn)  # fmt: skip
    # MASE's scale as the competitions define it: the in-sample naive error over every row
    # before the test part (the val part's too), not just the rows left for training.
    before_test = part_rows((split.bounds["train"][0], split.bounds["test"][0]))
    in_sample = table.actual_targets()[before_test]  # made-up values are no naive errors
    sample_series = row_series[before_test] if row_series is not None else None
    series_scales = None
    if table.ids is not None:
        series_scales = series_mase_scales(in_sample, cfg.season, sample_series, table.n_series)
    time = longest_series_time(table)
    freq = frequency(time) if time is not None else None
    warn_missing_rows(table, freq, cfg, warn)
    return TrainingData(
        table=table,
        split=split,
        input_scaler=input_scaler,
        target_scaler=target_scaler,
        mase_scales=mase_scales(in_sample, cfg.season, sample_series),
        series_mase_scales=series_scales,
        time_freq=freq,
        time_step=median_step(time) if time is not None else None,
        time_zone=_zone(time),
        baseline_intervals=_baseline_intervals(table, split, cfg, levels) if levels else None,
    )


def longest_series_time(table: Table) -> pd.Series | None:
    """The times of the longest series: what its frequency and step are read from."""
    if table.time is None:
        return None
    longest = int(np.argmax(table.lengths))
    return table.time.iloc[table.offsets[longest] : table.offsets[longest + 1]]


def warn_missing_rows(table: Table, freq: str | None, cfg: DataConfig, warn: Warn) -> None:
    """Rows absent from a regular series (a daily file missing a few days): say where, and
    that the model reads rows, so a window across a gap covers more time than it seems."""
    if freq is None:
        return
    gaps = missing_steps(table.time, freq, table.row_series())
    if gaps.any():
        first = table.time.iloc[int(np.flatnonzero(gaps)[0])]
        warn(
            f"{cfg.path}: {int(gaps.sum())} gap(s) of missing rows in the {freq} times, the "
            f"first after {first}; the model reads rows, not times, so a window across a gap "
            "spans more time than its rows (data.missing fills empty cells, not missing rows: "
            "add the missing rows with empty values to have them filled)"
        )


def _zone(time: pd.Series | None) -> str | None:
    if time is None or not pd.api.types.is_datetime64_any_dtype(time) or time.dt.tz is None:
        return None
    return str(time.dt.tz)


def _baseline_intervals(
    table: Table, split: Split, cfg: PlannedData, levels: list[float]
) -> dict | None:
    """The seasonal-naive (else naive) baseline's intervals: quantiles of its own residuals on
    the training windows, to compare the model's intervals with."""
    train = split.anchors["train"]
    offsets = target_offsets(cfg.horizon, cfg.task)
    season = cfg.season
    forecasts = baseline_predictions(table.targets, train, offsets, cfg.task, season)
    name = "seasonal_naive" if "seasonal_naive" in forecasts else "naive"
    if name not in forecasts:
        return None
    residuals = table.actual_targets()[train[:, None] + offsets] - forecasts[name]
    if not np.isfinite(residuals).any():  # no training window (a run from a prior): none
        return None
    return {"baseline": name, **baseline_quantiles(residuals, list(levels))}


def make_windows(data: TrainingData, cfg: DataConfig, device: torch.device) -> dict[str, WindowSet]:
    """Each part's windows over the scaled series (float32 tensors on the device)."""
    return scaled_windows(
        data.table,
        data.split.anchors,
        cfg,
        data.input_scaler,
        data.target_scaler,
        data.row_series(),
        device,
    )
