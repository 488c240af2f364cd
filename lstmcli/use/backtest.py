"""Rolling forecasts over a table's windows (a backtest): as a table, and scored.

The table is the format of test_predictions.csv and `predict --rolling`; the scores are those
of metrics.json and `evaluate`. `train` and `predict` both use this module, so a run's test
metrics and an `evaluate` of the same rows are computed by the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lstmcli.config.data_section import DataConfig
from lstmcli.data.table import Table
from lstmcli.data.windows import target_offsets
from lstmcli.errors import LstmcliError
from lstmcli.model.bands import level_name
from lstmcli.use.interval_metrics import compare_intervals, pinball

if TYPE_CHECKING:
    from lstmcli.model.fitted import FittedForecaster

from lstmcli.model.fitted import Forecast
from lstmcli.use.metrics import Bounds, baseline_predictions, compare, scored_windows, series_report


def bound_columns(name: str, j: int, bounds: Bounds | None) -> dict[str, np.ndarray]:
    """`<target>_lo_<level>` and `<target>_hi_<level>` of target j, flattened as the target."""
    columns: dict[str, np.ndarray] = {}
    for level, (lower, upper) in (bounds or {}).items():
        columns[f"{name}_lo_{level_name(level)}"] = lower[:, :, j].ravel()
        columns[f"{name}_hi_{level_name(level)}"] = upper[:, :, j].ravel()
    return columns


def backtest_frame(
    table: Table,
    anchors: np.ndarray,
    predicted: np.ndarray,
    actual: np.ndarray | None,
    cfg: DataConfig,
    bounds: Bounds | None = None,
) -> pd.DataFrame:
    """One row per (window, step).

    forecast: origin (the window's last row), the predicted row's time, step, each target's
    prediction (with its interval bounds, when the model has levels), and <target>_actual.
    regress: the predicted row's time, each target's prediction, <target>_actual. Without a
    time column, times are 0-based row positions in a column named `row`; a model of many
    series starts with the id column.
    """
    offsets = target_offsets(cfg.horizon, cfg.task)
    steps = len(offsets)
    target_rows = (anchors[:, None] + offsets[None, :]).ravel()

    def times(rows: np.ndarray) -> np.ndarray:
        return table.time.iloc[rows].to_numpy() if table.time is not None else rows

    columns: dict[str, object] = {}
    if table.ids is not None:
        window_ids = np.asarray(table.ids)[table.series_of(anchors)]
        columns[cfg.id_column] = np.repeat(window_ids, steps)
    if cfg.task == "forecast":
        columns["origin"] = times(np.repeat(anchors, steps))
    columns[cfg.time_column or "row"] = times(target_rows)
    if cfg.task == "forecast":
        columns["step"] = np.tile(np.arange(1, steps + 1), len(anchors))
    for j, name in enumerate(table.target_columns):
        columns[name] = predicted[:, :, j].ravel()
        columns.update(bound_columns(name, j, bounds))
    if actual is not None:
        for j, name in enumerate(table.target_columns):
            columns[f"{name}_actual"] = actual[:, :, j].ravel()
    return pd.DataFrame(columns)


def actual_values(table: Table, anchors: np.ndarray, cfg: DataConfig) -> np.ndarray:
    """The actual targets of each window (windows, steps, targets), in original units; NaN
    where data.missing made the value up, so that no score counts it."""
    return table.actual_targets()[anchors[:, None] + target_offsets(cfg.horizon, cfg.task)]


def score_backtest(
    table: Table,
    anchors: np.ndarray,
    predicted: np.ndarray,
    cfg: DataConfig,
    mase_scales: list[float | None],
    series_mase_scales: np.ndarray | None,
    label: str,
    bounds: Bounds | None = None,
    baseline_intervals: dict | None = None,
) -> dict:
    """The model and the naive baselines scored on exactly the same targets, with skill; for a
    table of many series also per series (`series_mase_scales`: one row per table series).

    Windows whose baselines would look back before their series starts are left out (counted
    in `windows_skipped`; `series_unscored` names the series none of whose windows is left),
    so every row of the result covers the same targets; target values
    made up by data.missing are no actuals and are left out of every score.
    """
    offsets = target_offsets(cfg.horizon, cfg.task)
    window_series = table.series_of(anchors)
    scored, season = scored_windows(
        anchors, offsets, cfg.task, cfg.season, table.offsets[window_series]
    )
    if not scored.any():
        raise LstmcliError(
            f"{label}: no window can be scored against the naive baseline, which needs the row "
            "before each window's first target in the same series; give more rows"
        )
    unscored = np.setdiff1d(window_series, window_series[scored])  # no window of theirs scored
    anchors, predicted, window_series = anchors[scored], predicted[scored], window_series[scored]
    actual = actual_values(table, anchors, cfg)
    baselines = baseline_predictions(table.targets, anchors, offsets, cfg.task, season)
    result = compare(actual, predicted, baselines, table.target_columns, mase_scales)
    if table.ids is not None:
        scales = series_mase_scales
        if scales is None:
            scales = np.full((table.n_series, len(table.target_columns)), np.nan)
        result["series"] = series_report(
            actual, predicted, baselines, window_series, table.id_labels(), scales
        )
    if bounds:
        ours = {level: (lo[scored], hi[scored]) for level, (lo, hi) in bounds.items()}
        theirs = _baseline_bounds(baselines, baseline_intervals)
        result["intervals"] = compare_intervals(
            actual, ours, theirs, table.target_columns, mase_scales
        )
        result["intervals"] |= _pinball(actual, predicted, ours, table, window_series,
                                        mase_scales, series_mase_scales)  # fmt: skip
    result["windows_skipped"] = int((~scored).sum())
    if table.ids is not None and len(unscored):
        result["series_unscored"] = [table.id_labels()[k] for k in unscored]
    return result


def skipped_windows(metrics: dict, part: str = "") -> str:
    """Why some windows of a scoring are left out, and which series have no score at all
    (their forecasts are in the predictions all the same)."""
    windows = f"{metrics['windows_skipped']} {part} window(s)".replace("  ", " ")
    text = (f"{windows} are not scored: the baselines need history before a window's first "
            "target in its series (one row, one season for seasonal naive)")  # fmt: skip
    unscored = metrics.get("series_unscored") or []
    if unscored:
        text += (f"; {_series(unscored)} no score (too short to score; forecasts are written "
                 "all the same)")  # fmt: skip
    return text


def untested(ids: list[str], horizon: int) -> str:
    """Which series a run's test part holds no window of, for a warning."""
    them = "it" if len(ids) == 1 else "them"
    return (f"{_series(ids)} no test window (too few rows in the test part for a horizon of "
            f"{horizon}): no score, and no row in test_predictions.csv; predict forecasts "
            f"{them}")  # fmt: skip


def _series(ids: list[str]) -> str:
    """`series a has` / `series a, b, ... and 3 more have`: the first five ids named."""
    more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
    return f"series {', '.join(ids[:5])}{more} {'has' if len(ids) == 1 else 'have'}"


def _pinball(
    actual: np.ndarray,
    predicted: np.ndarray,
    bounds: Bounds,
    table: Table,
    window_series: np.ndarray,
    mase_scales: list[float | None],
    series_mase_scales: np.ndarray | None,
) -> dict:
    """The mean pinball loss of the stated quantiles (median and bounds): `scaled_pinball`
    in each series' and target's naive-error units (comparable across series, like MASE and
    MSIS), and `pinball` in the data's units when there is one series and one target."""
    if table.ids is not None:
        scales = series_mase_scales
        if scales is None:
            scales = np.full((table.n_series, len(table.target_columns)), np.nan)
        per_window = np.asarray(scales, np.float64)[window_series][:, None, :]
    else:
        per_window = np.array([np.nan if v is None else v for v in mase_scales])[None, None]
    out = {"scaled_pinball": pinball(actual, predicted, bounds, per_window)}
    if table.ids is None and len(table.target_columns) == 1:
        out["pinball"] = pinball(actual, predicted, bounds)
    return out


def _baseline_bounds(baselines: dict[str, np.ndarray], intervals: dict | None) -> dict:
    """The baseline's forecasts plus the quantiles of its own training residuals."""
    if not intervals or intervals["baseline"] not in baselines:
        return {}
    forecast = baselines[intervals["baseline"]]
    steps = forecast.shape[1]
    lower, upper = np.asarray(intervals["lower"]), np.asarray(intervals["upper"])
    bounds = {
        level: (forecast + lower[k, :steps], forecast + upper[k, :steps])
        for k, level in enumerate(intervals["levels"])
    }
    return {intervals["baseline"]: bounds}


@dataclass(frozen=True)
class Scored:
    """A rolling backtest of a fitted forecaster, scored: metrics (as metrics.json and
    `evaluate` give them), the forecasts, their bounds and the actuals they met."""

    metrics: dict
    forecast: Forecast
    actual: np.ndarray | None


def score_rows(
    model: FittedForecaster,
    table: Table,
    anchors: np.ndarray,
    series: np.ndarray | None,
    label: str,
) -> Scored:
    """The forecasts of the windows at `anchors` (adaptive bounds following the misses as
    actuals arrive), scored against the baselines on the same targets with the MASE scales
    the model keeps: training's test part and `evaluate` alike."""
    cfg, checkpoint = model.data, model.checkpoint
    actual = actual_values(table, anchors, cfg) if table.targets.shape[1] else None
    forecast = model.backtest(table, anchors, series, actual)
    per_series = (
        checkpoint.series_mase_scales_of(table.id_labels()) if table.ids is not None else None
    )
    metrics = score_backtest(
        table,
        anchors,
        forecast.points,
        cfg,
        checkpoint.mase_scales,
        per_series,
        label,
        forecast.bounds,
        checkpoint.baseline_intervals,
    )
    return Scored(metrics, forecast, actual)
