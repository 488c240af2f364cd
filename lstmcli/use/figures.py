"""The figures `lstmcli plot` and `lstmcli tune` draw, built on matplotlib's object API (no
pyplot state), from plain tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lstmcli.errors import LstmcliError

LOSS_NAMES = {"mse": "MSE", "mae": "MAE", "huber": "Huber"}


FIGSIZE = (10, 6)


DPI = 120


CONTEXT = "#9a9a9a"  # the training tail: there, but not the subject


ACTUAL = "#1f3b73"


FORECAST = "#d1495b"


BASELINE = "#8a8a3c"


GRID = 3  # series per row of the grid: the first, the worst and the best


@dataclass
class Predictions:
    """A predictions table (test_predictions.csv or a `predict` output) and how to read it."""

    frame: pd.DataFrame
    time: str  # the column holding each predicted row's time (or row number)
    targets: list[str]
    id: str | None = None  # the series id column of a model of many series

    @property
    def rolling(self) -> bool:
        """Rolling output: many forecast origins, each with steps 1..H."""
        return (
            "origin" in self.frame.columns
            and "step" in self.frame.columns
            and self.frame["origin"].nunique() > 1
        )

    def at_step(self, step: int) -> pd.DataFrame:
        """The rows of one horizon step; a single forecast (one origin) is drawn whole."""
        if not self.rolling:
            if step != 1 and "origin" not in self.frame.columns:
                raise LstmcliError(f"--step {step}: these predictions have one step per row")
            return self.frame
        steps = sorted(self.frame["step"].unique())
        if step not in steps:
            raise LstmcliError(f"--step {step}: the predictions hold steps {steps[0]}..{steps[-1]}")
        return self.frame[self.frame["step"] == step]


def series_grid_figure(
    predictions: Predictions,
    target: str,
    step: int = 1,
    history: pd.DataFrame | None = None,
) -> Figure:
    """Forecast vs actual of a few series: the first ones, the worst and the best (or every
    series once, when there are at most nine), after each series' history when given.

    Series are ranked by RMSE over the standard deviation of their actual values, so a series
    with large numbers is not the worst just for its size.
    """
    rows = predictions.at_step(step)
    actual = f"{target}_actual"
    groups = dict(list(rows.groupby(predictions.id, sort=False)))
    names = list(groups)
    if len(names) <= GRID * GRID:  # few enough to show each once
        picks = [("series", names[k : k + GRID]) for k in range(0, len(names), GRID)]
    else:
        picks = [("first", names[:GRID])]
    if actual in rows.columns and len(names) > GRID * GRID:
        error = {
            name: float(np.sqrt(np.mean((g[target] - g[actual]) ** 2)) / (g[actual].std() or 1.0))
            for name, g in groups.items()
        }
        ranked = sorted(names, key=lambda name: error[name])
        picks += [("worst", ranked[::-1][:GRID]), ("best", ranked[:GRID])]
    figure = Figure(figsize=(FIGSIZE[0] * 1.4, 3 * len(picks)), dpi=DPI)
    axes = figure.subplots(len(picks), GRID, squeeze=False)
    for row, (kind, chosen) in enumerate(picks):
        for col in range(GRID):
            ax = axes[row][col]
            if col >= len(chosen):
                ax.set_axis_off()
                continue
            g = groups[chosen[col]]
            if history is not None:
                own = history[history[predictions.id] == chosen[col]][target]
                tail = own[own.index < g[predictions.time].min()].iloc[-len(g) :]
                ax.plot(tail.index, tail.to_numpy(), color=CONTEXT, lw=1.2, label="history")
            if actual in g.columns:
                ax.plot(g[predictions.time], g[actual], color=ACTUAL, lw=1.2, label="actual")
            draw_bands(ax, g, predictions.time, target, legend=row == 0 and col == 0)
            ax.plot(g[predictions.time], g[target], color=FORECAST, lw=1.2, label="forecast")
            ax.set_title(f"{kind}: {chosen[col]}" if kind != "series" else chosen[col], fontsize=9)
            ax.tick_params(labelsize=7)
            if pd.api.types.is_datetime64_any_dtype(g[predictions.time]):
                locator = AutoDateLocator()  # each series has its own time range
                ax.xaxis.set_major_locator(locator)
                ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
            ax.grid(alpha=0.3)
            if row == 0 and col == 0:
                ax.legend(fontsize=7)
    where = f", step {step}" if predictions.rolling else ""
    ranking = "; worst/best by rmse / std of actual" if picks[-1][0] == "best" else ""
    figure.suptitle(f"{target}: {len(groups)} series{where}{ranking}")
    figure.set_layout_engine("constrained")
    return figure


def forecast_figure(
    predictions: Predictions,
    target: str,
    step: int = 1,
    history: pd.Series | None = None,
    baseline: pd.Series | None = None,
) -> Figure:
    """Forecast vs actual for one target at one horizon step, after the history's tail."""
    rows = predictions.at_step(step)
    figure = Figure(figsize=FIGSIZE, dpi=DPI)
    ax = figure.subplots()
    if history is not None and len(history):
        ax.plot(history.index, history.to_numpy(), color=CONTEXT, lw=1.2, label="history")
    actual = f"{target}_actual"
    if actual in rows.columns:
        ax.plot(rows[predictions.time], rows[actual], color=ACTUAL, lw=1.5, label="actual")
    draw_bands(ax, rows, predictions.time, target, legend=True)
    ax.plot(rows[predictions.time], rows[target], color=FORECAST, lw=1.5, label="forecast")
    if baseline is not None:
        ax.plot(baseline.index, baseline.to_numpy(), color=BASELINE, lw=1, ls="--", label="naive")
    where = f", step {step}" if predictions.rolling else ""
    versus = " vs actual" if actual in rows.columns else ""
    ax.set_title(f"{target}: forecast{versus}{where}")
    ax.set_xlabel(predictions.time)
    ax.set_ylabel(target)
    ax.grid(alpha=0.3)
    ax.legend()
    if pd.api.types.is_datetime64_any_dtype(rows[predictions.time]):
        figure.autofmt_xdate()
    return figure


def interval_levels(frame: pd.DataFrame, target: str) -> list[str]:
    """The levels of the `<target>_lo_<level>` / `_hi_<level>` columns present, widest first."""
    prefix = f"{target}_lo_"
    levels = [c.removeprefix(prefix) for c in frame.columns if c.startswith(prefix)]
    levels = [lv for lv in levels if f"{target}_hi_{lv}" in frame.columns]
    return sorted(levels, key=float, reverse=True)


def draw_bands(ax: Axes, rows: pd.DataFrame, time: str, target: str, legend: bool) -> None:
    """Shaded prediction intervals, the widest palest, where the rows carry bounds."""
    for k, level in enumerate(interval_levels(rows, target)):
        ax.fill_between(
            rows[time],
            rows[f"{target}_lo_{level}"],
            rows[f"{target}_hi_{level}"],
            color=FORECAST,
            alpha=0.12 + 0.1 * k,
            lw=0,
            label=f"{level}% interval" if legend else None,
        )


def loss_figure(history: pd.DataFrame, best_epoch: int | None, loss: str = "mse") -> Figure:
    """Train and validation loss per epoch on a log scale, with the kept epoch marked."""
    figure = Figure(figsize=FIGSIZE, dpi=DPI)
    ax = figure.subplots()
    members = history.groupby("member") if "member" in history else [(1, history)]
    for number, rows in members:  # an ensemble: one pair of curves per member
        first = number == 1
        ax.plot(rows["epoch"], rows["train_loss"], color=ACTUAL, label="train" if first else None)
        if rows["val_loss"].notna().any():
            label = "validation" if first else None
            ax.plot(rows["epoch"], rows["val_loss"], color=FORECAST, label=label)
    if best_epoch:
        ax.axvline(best_epoch, color=CONTEXT, ls="--", label=f"best epoch ({best_epoch})")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.set_title("learning curves")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"loss ({LOSS_NAMES[loss]}, scaled units)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return figure


def residuals_figure(predictions: Predictions, target: str, step: int = 1) -> Figure:
    """Residual (actual - forecast) over time and its histogram, with MAE and RMSE."""
    rows = predictions.at_step(step)
    actual = f"{target}_actual"
    if actual not in rows.columns:
        raise LstmcliError(f"residuals need actual values: column {actual!r} is missing")
    residual = (rows[actual] - rows[target]).to_numpy()
    mae, rmse = np.nanmean(np.abs(residual)), np.sqrt(np.nanmean(residual**2))
    figure = Figure(figsize=FIGSIZE, dpi=DPI)
    over_time, histogram = figure.subplots(1, 2, width_ratios=[2, 1])
    if predictions.id is not None:  # many series share the time axis: points, not a line
        over_time.plot(rows[predictions.time], residual, ".", color=ACTUAL, ms=2, alpha=0.5)
    else:
        over_time.plot(rows[predictions.time], residual, color=ACTUAL, lw=1)
    over_time.axhline(0, color=CONTEXT, lw=1)
    over_time.set_xlabel(predictions.time)
    over_time.set_ylabel(f"{target}: actual - forecast")
    over_time.grid(alpha=0.3)
    histogram.hist(residual[np.isfinite(residual)], bins=30, color=ACTUAL, alpha=0.8)
    histogram.set_xlabel("residual")
    histogram.set_ylabel("count")
    where = f", step {step}" if predictions.rolling else ""
    figure.suptitle(f"{target} residuals{where}: MAE {mae:.4g}, RMSE {rmse:.4g}")
    if pd.api.types.is_datetime64_any_dtype(rows[predictions.time]):
        figure.autofmt_xdate()
    return figure


def as_time(column: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column):
        return column
    parsed = pd.to_datetime(column, errors="coerce", format="mixed")
    return parsed if parsed.notna().all() else column


def tune_history_figure(trials: pd.DataFrame, metric: str) -> Figure:
    """Each completed trial's validation metric by trial number, the best so far as a step
    line, and where pruned and failed trials fell."""
    figure = Figure(figsize=FIGSIZE, dpi=DPI)
    ax = figure.subplots()
    done = trials[trials["state"] == "complete"].sort_values("number")
    ax.plot(done["number"], done[metric], "o", color=ACTUAL, ms=4, label="trial")
    ax.step(done["number"], done[metric].cummin(), where="post", color=FORECAST, label="best")
    bottom = done[metric].min() if len(done) else 0.0
    for state, marker in (("pruned", "x"), ("fail", "v")):
        rows = trials[trials["state"] == state]
        if len(rows):
            ax.plot(rows["number"], np.full(len(rows), bottom), marker, color=CONTEXT,
                    label=f"{state} (not scored)")  # fmt: skip
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("tune: optimization history")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{metric} (validation part)")
    ax.grid(alpha=0.3)
    ax.legend()
    return figure


def importance_figure(importances: dict[str, float], metric: str) -> Figure:
    """How much of the metric's variation each searched key explains (a bar per key)."""
    figure = Figure(figsize=FIGSIZE, dpi=DPI)
    ax = figure.subplots()
    names = list(importances)[::-1]  # most important on top
    ax.barh(names, [importances[n] for n in names], color=ACTUAL)
    ax.set_title(f"tune: parameter importance for {metric}")
    ax.set_xlabel("share of the metric's variation")
    ax.grid(alpha=0.3, axis="x")
    figure.subplots_adjust(left=0.3)
    return figure
