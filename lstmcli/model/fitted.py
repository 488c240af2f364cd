"""The fitted forecaster: a table's rows in, forecasts and their bounds in original units out.

One value is a trained model: the checkpoint's facts (config, columns, fitted scalers,
calibration, series ids, MASE scales) and a backend that runs the network, its combination
with a naive or classical forecast and its interval bounds on windows in original units. The
backend is torch (`model/forecaster.py`, on any device) or an exported ONNX file
(`model/onnx_file.py`, onnxruntime without torch); both take and give the same arrays. What
surrounds the backend is numpy and written once: windows gathered from the rows, the
classical (statsforecast) forecast of each series' history, recursive forecasts past the
horizon, and the bounds of a rolling backtest that adapt as actuals arrive. `predict`,
`evaluate` and training's test scoring all call `forecast` or `backtest`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

import numpy as np

from lstmcli.data.windows import target_offsets
from lstmcli.model.classical import (
    KINDS,
    history_forecasts,
    input_name,
    rows_read,
    seasonal_history,
)
from lstmcli.model.intervals import Intervals, load_calibration
from lstmcli.model.spec import windows_per_batch
from lstmcli.use.metrics import Bounds

if TYPE_CHECKING:
    from lstmcli.config.data_section import DataConfig
    from lstmcli.data.table import Table
    from lstmcli.model.checkpoint import Checkpoint
    from lstmcli.model.spec import ModelSpec


class Backend(Protocol):
    """Runs the model on windows in original units (float64): `inputs` (windows, lookback,
    inputs), then `future` (windows, horizon, known-ahead inputs) when the model has some, the
    series' scaler statistics when it scales per series, and the classical forecast of each
    window's series (windows, horizon, 1) when it combines with one. Returns the forecast,
    each level's lower and upper bound (in original units), each window's scale and the
    forecast in scaled units."""

    def run(self, feeds: list[np.ndarray]) -> list[np.ndarray]: ...


@dataclass(frozen=True)
class Forecast:
    """Forecasts (windows, steps, targets) in original units, and each level's bounds."""

    points: np.ndarray
    bounds: Bounds | None = None


@dataclass(frozen=True)
class FittedForecaster:
    checkpoint: Checkpoint
    backend: Backend
    batch_size: int | None = None  # windows per backend call (None: from the model's size)

    @property
    def data(self) -> DataConfig:
        return self.checkpoint.config.data

    @property
    def spec(self) -> ModelSpec:
        return self.checkpoint.spec

    @cached_property
    def calibration(self) -> Intervals | None:
        return load_calibration(self.checkpoint.calibration)

    @property
    def levels(self) -> list[float]:
        return list(self.calibration.levels) if self.calibration is not None else []

    @property
    def reads_history(self) -> bool:
        """Whether a forecast needs each series' whole history (a classical combination),
        not only its window."""
        return reads_history(self.checkpoint)

    @property
    def seasonal_history(self) -> int | None:
        """Rows of a series' history the classical forecast it combines with needs to follow
        the season (None: no such forecast, or no season)."""
        if not self.reads_history:
            return None
        return seasonal_history(self.checkpoint.blend["kind"], self.spec.season)

    def series_rows(self, table: Table) -> np.ndarray | None:
        """Each series' row in the per-series scalers (None with global ones); -1 for a
        series the model has no statistics for."""
        if not self.checkpoint.input_scaler.per_series:
            return None
        return self.checkpoint.series_rows(table.id_labels())

    def forecast(
        self,
        sequence: np.ndarray,
        blocks: int,
        series: np.ndarray | None,
        histories: list[np.ndarray] | None,
    ) -> tuple[np.ndarray, Bounds | None]:
        """`blocks` horizons forecast one after another from each series' `sequence` (series,
        lookback + blocks * horizon, inputs; original units): the forecasts (series, blocks *
        horizon, targets) and the first horizon's bounds (NaN beyond it). Each block's forecast
        becomes the targets' inputs of the next (and extends the histories the classical
        forecast reads, each
        series' target values before its forecasts)."""
        data = self.data
        if histories is not None:
            histories = [
                self._as_seen(h[:, None], _repeat(series, k, len(h)))[:, 0]
                for k, h in enumerate(histories)
            ]
        lookback, horizon, layout = data.lookback, data.horizon, data.layout
        target_inputs = layout.target_index
        outputs, first = [], None
        for block in range(blocks):
            start = lookback + block * horizon  # the first row this block forecasts
            window = sequence[:, start - lookback : start]
            future = (
                sequence[:, start : start + horizon, layout.future] if layout.n_future else None
            )
            history = self._classical(histories) if histories is not None else None
            points, bounds, _, _ = self._run(window, future, series, history)
            outputs.append(points)
            first = first or Forecast(points, bounds)
            if block + 1 < blocks:
                sequence[:, start : start + horizon, target_inputs] = points
                if histories is not None:
                    seen = self._as_seen(points[..., :1], series)[..., 0]
                    histories = [np.r_[h, f] for h, f in zip(histories, seen, strict=True)]
        bounds = None
        if first.bounds:
            bounds = {level: (_pad(lo, blocks), _pad(hi, blocks))
                      for level, (lo, hi) in first.bounds.items()}  # fmt: skip
        return np.concatenate(outputs, axis=1), bounds

    def backtest(
        self,
        table: Table,
        anchors: np.ndarray,
        series: np.ndarray | None,
        actual: np.ndarray | None = None,
    ) -> Forecast:
        """The forecast of every window (its last input row at `anchors`), in original units.
        `series`: each table series' row in per-series scalers (None: global). With the
        `actual` values (NaN where unknown), the bounds of a calibration that adapts follow
        the misses as actuals arrive (when the model's config asks for it)."""
        window_series = table.series_of(anchors)
        rows = series[window_series] if series is not None else None
        size = self.batch_size or windows_per_batch(self.spec.hidden_size, self.data.lookback)
        parts = [
            self._run(*self._windows(table, anchors[c], rows[c] if rows is not None else None))
            for c in (slice(k, k + size) for k in range(0, len(anchors), size))
        ]
        if not parts:
            empty = np.empty((0, self.spec.steps, self.spec.n_targets))
            return Forecast(empty, {level: (empty, empty) for level in self.levels} or None)
        points = np.concatenate([p[0] for p in parts])
        bounds = {
            level: tuple(np.concatenate([p[1][level][side] for p in parts]) for side in (0, 1))
            for level in self.levels
        } or None
        calibration = self.calibration
        adapts = calibration is not None and calibration.adapts
        if bounds and actual is not None and adapts and self.checkpoint.config.model.adaptive:
            spread = np.concatenate([p[2] for p in parts]).astype(np.float64)
            scaled = np.concatenate([p[3] for p in parts]).astype(np.float64)
            target = self.checkpoint.target_scaler
            actual_scaled = target.transform(actual, rows).astype(np.float64)
            adaptive = calibration.adaptive_bounds(scaled, spread, actual_scaled, window_series)
            bounds = {
                level: (target.inverse(lo, rows), target.inverse(hi, rows))
                for level, (lo, hi) in zip(self.levels, adaptive, strict=True)
            }
        return Forecast(points, bounds)

    def _windows(self, table: Table, anchors: np.ndarray, rows: np.ndarray | None) -> tuple:
        """The backend's arguments for some windows: their input rows (a window reaching
        before its series' first row repeats it, as data.min_history pads), known-ahead
        inputs, scaler rows and, for a classical combination, the forecast of each series'
        history up to the window's last row."""
        data = self.data
        at = anchors[:, None]
        first = table.offsets[table.series_of(anchors)][:, None]
        window = table.inputs[np.maximum(at + np.arange(-data.lookback + 1, 1), first)]
        future = None
        if data.layout.n_future:
            ahead = at + target_offsets(data.horizon, data.task)
            future = table.inputs[ahead][..., data.layout.future]
        history = None
        if self.reads_history:
            column = data.layout.target_index[0]
            starts = first[:, 0]  # each history's first row the forecast reads
            if (need := rows_read(self.checkpoint.blend["kind"], self.spec.season)) is not None:
                starts = np.maximum(starts, anchors + 1 - need)
            histories = [
                self._as_seen(table.inputs[a : b + 1, column, None], _repeat(rows, k, b + 1 - a))
                for k, (a, b) in enumerate(zip(starts, anchors, strict=True))
            ]
            history = self._classical([h[:, 0] for h in histories])
        return window, future, rows, history

    def _run(
        self,
        window: np.ndarray,
        future: np.ndarray | None,
        rows: np.ndarray | None,
        history: np.ndarray | None,
    ) -> tuple[np.ndarray, Bounds | None, np.ndarray, np.ndarray]:
        """One backend call: forecasts, bounds, each window's scale and the scaled forecast."""
        feeds = [np.ascontiguousarray(window, dtype=np.float64)]
        if future is not None:
            feeds.append(np.ascontiguousarray(future, dtype=np.float64))
        if rows is not None:
            i, t = self.checkpoint.input_scaler, self.checkpoint.target_scaler
            feeds += [i.center[rows], i.scale[rows], t.center[rows], t.scale[rows]]
        if history is not None:
            feeds.append(history)
        out = self.backend.run(feeds)
        bounds = {
            level: (out[1 + 2 * k], out[2 + 2 * k]) for k, level in enumerate(self.levels)
        } or None
        return out[0], bounds, out[-2], out[-1]

    def _as_seen(self, values: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        """The target's values as the network's input column holds them (scaled to float32
        and back), so the classical forecast reads the history training read."""
        column = self.checkpoint.input_scaler.columns([self.data.layout.target_index[0]])
        shape = values.shape
        flat = values.reshape(-1, 1)
        flat_rows = None if rows is None else np.repeat(rows, flat.shape[0] // len(rows))
        return column.inverse(column.transform(flat, flat_rows), flat_rows).reshape(shape)

    def _classical(self, histories: list[np.ndarray]) -> np.ndarray:
        """The classical forecast of each history (windows, horizon, 1), original units."""
        steps, season, kind = self.spec.steps, self.spec.season, self.checkpoint.blend["kind"]
        return history_forecasts(kind, histories, steps, season)[..., None]


def _repeat(rows: np.ndarray | None, k: int, count: int) -> np.ndarray | None:
    return None if rows is None else np.full(count, rows[k])


def _pad(values: np.ndarray, blocks: int) -> np.ndarray:
    """One horizon's bounds followed by NaN for the recursive blocks after it."""
    empty = np.full((values.shape[0], values.shape[1] * (blocks - 1), values.shape[2]), np.nan)
    return np.concatenate([values, empty], axis=1)


def input_names(checkpoint: Checkpoint) -> list[str]:
    """The backend's inputs, in order (an exported file's input names)."""
    data = checkpoint.config.data
    names = ["inputs"]
    if data.layout.n_future:
        names.append("future")
    if checkpoint.input_scaler.per_series:
        names += ["input_center", "input_scale", "target_center", "target_scale"]
    if reads_history(checkpoint):
        names.append(input_name(checkpoint.blend["kind"]))  # `classical` or `theta`
    return names


def output_names(checkpoint: Checkpoint) -> list[str]:
    """The backend's outputs, in order (an exported file's output names)."""
    calibration = load_calibration(checkpoint.calibration)
    names = ["forecast"]
    for level in calibration.levels if calibration is not None else []:
        names += [f"lo_{level:g}", f"hi_{level:g}"]
    return names + ["scale", "forecast_scaled"]


def reads_history(checkpoint: Checkpoint) -> bool:
    """Whether the model's forecast needs each series' whole history (a combination with
    a classical forecast), not only its window."""
    blend = checkpoint.blend
    return bool(blend) and blend["weight"] != 1.0 and blend["kind"] in KINDS
