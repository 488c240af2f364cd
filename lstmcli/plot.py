"""Figures people judge a forecast by: forecast vs actual, learning curves, residuals.

Built with matplotlib's object API on the Agg canvas (no display, no global pyplot state), so it
works over SSH and in CI; each figure is returned for inspection and saved whole or not at all.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lstmcli.errors import LstmcliError
from lstmcli.files import atomic_path

if TYPE_CHECKING:
    from lstmcli.checkpoint import Checkpoint

LOSS_NAMES = {"mse": "MSE", "mae": "MAE", "huber": "Huber"}

FIGSIZE = (10, 6)
DPI = 120
CONTEXT = "#9a9a9a"  # the training tail: there, but not the subject
ACTUAL = "#1f3b73"
FORECAST = "#d1495b"
BASELINE = "#8a8a3c"


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


def read_predictions(
    path: Path,
    time: str | None = None,
    targets: list[str] | None = None,
    id_column: str | None = None,
):
    """Read a predictions CSV. Without a config, the time is the first column (after `origin`
    and `step` in rolling output, and after a series id column) and the targets are the other
    numeric columns, less `_actual`. A first column of text that is not times, followed by
    `origin` or by times, is taken as the series id."""
    try:
        frame = pd.read_csv(path, dtype={id_column: str} if id_column else None)
        if id_column is None and time is None and len(frame.columns) > 2:
            id_column = _id_column(frame)
            if id_column is not None:  # read again: ids are labels (`07` is not `7`)
                frame = pd.read_csv(path, dtype={id_column: str})
    except FileNotFoundError:
        raise LstmcliError(f"predictions file not found: {path}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as e:
        raise LstmcliError(f"cannot read predictions {path}: {e}") from None
    if frame.empty:
        raise LstmcliError(f"predictions file {path} has no rows")
    rolling = "origin" in frame.columns and "step" in frame.columns
    others = [
        c for c in frame.columns if (not rolling or c not in ("origin", "step")) and c != id_column
    ]
    # One origin (a single forecast over the whole horizon): its steps are the time axis.
    time = time or others[0]
    if targets is None:
        targets = [
            c
            for c in others
            if c != time
            and not c.endswith("_actual")
            and not _is_bound(c)
            and pd.api.types.is_numeric_dtype(frame[c])
        ]
    missing = [c for c in [time, *targets] if c not in frame.columns]
    if missing or not targets:
        what = f"column(s) {missing}" if missing else "target columns"
        raise LstmcliError(f"{path} does not look like lstmcli predictions: no {what}")
    frame[time] = _as_time(frame[time])
    if "origin" in frame.columns:
        frame["origin"] = _as_time(frame["origin"])
    return Predictions(frame, time, targets, id_column)


def _is_bound(column: str) -> bool:
    """`<target>_lo_<level>` or `<target>_hi_<level>`: an interval bound, not a target."""
    head, _, level = column.rpartition("_")
    return head.endswith(("_lo", "_hi")) and level.replace(".", "", 1).isdigit()


def _id_column(frame: pd.DataFrame) -> str | None:
    """The first column, when it names series: it comes before `origin` or `step`, or it is
    text that is not times, or (numbers such as `07`) it is followed by times."""
    first, second = frame.columns[0], frame.columns[1]
    if first in ("origin", "step"):
        return None
    if second in ("origin", "step"):
        return first
    is_time = pd.api.types.is_datetime64_any_dtype
    if is_time(_as_time(frame[first])):
        return None
    first_text = not pd.api.types.is_numeric_dtype(frame[first])
    second_time = not pd.api.types.is_numeric_dtype(frame[second]) and is_time(
        _as_time(frame[second])
    )
    return first if first_text or second_time else None


GRID = 3  # series per row of the grid: the first, the worst and the best


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


Written = list[tuple[Path, Figure]]


def save(figure: Figure, path: Path) -> tuple[Path, Figure]:
    """Write the figure in the format its suffix names, atomically."""
    try:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format=path.suffix.lstrip("."), bbox_inches="tight")
    except OSError as e:
        raise LstmcliError(f"cannot write {path}: {e.strerror or e}") from None
    return path, figure


def plot_run(run: Path, out_dir: Path | None, fmt: str, step: int, baseline: bool) -> Written:
    """The three figures of a training run, from its run folder (and its data for context)."""
    from lstmcli.checkpoint import load_checkpoint

    run_dir = run.parent if run.is_file() else run
    out_dir = _out_dir(out_dir or run_dir)
    checkpoint = load_checkpoint(run_dir)
    cfg = checkpoint.config.data
    time = cfg.time_column or "row"
    predictions = read_predictions(
        _need(run_dir, "test_predictions.csv"), time, cfg.target, cfg.id_column
    )
    history = pd.read_csv(_need(run_dir, "history.csv"))
    metrics = json.loads(_need(run_dir, "metrics.json").read_text())
    loss = loss_figure(history, metrics.get("best_epoch"), checkpoint.config.training.loss)
    written = [save(loss, out_dir / f"loss.{fmt}")]
    suffix = f"_step{step}" if step != 1 else ""
    if cfg.id_column is not None and baseline:
        raise LstmcliError("--baseline is drawn for single-series runs; this model has many series")
    if cfg.id_column is not None:  # many series: a grid of some, and pooled residuals
        for target in cfg.target:
            figure = series_grid_figure(predictions, target, step)
            written.append(save(figure, out_dir / f"series_{_safe(target)}{suffix}.{fmt}"))
            figure = residuals_figure(predictions, target, step)
            written.append(save(figure, out_dir / f"residuals_{_safe(target)}{suffix}.{fmt}"))
        return written
    series = _series(checkpoint, predictions)
    for target in cfg.target:
        tail = _tail(series[target], predictions, step)
        naive = _naive(series[target], predictions, step) if baseline else None
        figure = forecast_figure(predictions, target, step, tail, naive)
        written.append(save(figure, out_dir / f"forecast_{_safe(target)}{suffix}.{fmt}"))
        figure = residuals_figure(predictions, target, step)
        written.append(save(figure, out_dir / f"residuals_{_safe(target)}{suffix}.{fmt}"))
    return written


def plot_predictions(
    path: Path, out_dir: Path | None, fmt: str, step: int, history_csv: Path | None
) -> Written:
    """Figures of a `predict` output: forecast vs actual (and residuals) when it has actuals;
    a future forecast after the input's history when `history_csv` is given (per series in
    the grid, for a model of many series). Files for `--step K` end in `_stepK`."""
    predictions = read_predictions(path)
    out_dir = _out_dir(out_dir or path.parent)
    history = _read_history(history_csv, predictions) if history_csv is not None else None
    written = []
    stem, suffix = path.stem, f"_step{step}" if step != 1 else ""
    for target in predictions.targets:
        if predictions.id is not None:
            figure = series_grid_figure(predictions, target, step, history)
        else:
            tail = history[target] if history is not None else None
            figure = forecast_figure(predictions, target, step, tail)
        written.append(save(figure, out_dir / f"{stem}_{_safe(target)}{suffix}.{fmt}"))
        if f"{target}_actual" in predictions.frame.columns:
            figure = residuals_figure(predictions, target, step)
            name = f"{stem}_residuals_{_safe(target)}{suffix}.{fmt}"
            written.append(save(figure, out_dir / name))
    return written


def _read_history(path: Path, predictions: Predictions) -> pd.DataFrame:
    """The input a forecast followed, indexed by time (and with its id column for many
    series), sorted."""
    from lstmcli.reading import read_csv

    frame = read_csv(path, text=[predictions.id])
    if predictions.time == "step":  # no time column: steps continue the history's rows
        predictions.frame["step"] += len(frame) - 1
        frame = frame.rename_axis("step").reset_index()
    needed = [predictions.time, *predictions.targets] + ([predictions.id] if predictions.id else [])
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise LstmcliError(f"history {path} lacks column(s) {missing}")
    frame[predictions.time] = _as_time(frame[predictions.time])
    return frame.sort_values(predictions.time).set_index(predictions.time)


def _series(checkpoint: Checkpoint, predictions: Predictions) -> pd.DataFrame:
    """Each target's known values by time: the training data when it is still there, plus the
    actuals of the predictions; for context lines and the naive baseline."""
    known = []
    for target in predictions.targets:
        actual = f"{target}_actual"
        if actual in predictions.frame.columns:
            known.append(predictions.frame.set_index(predictions.time)[actual].rename(target))
    frame = pd.concat(known, axis=1) if known else pd.DataFrame()
    cfg = checkpoint.config.data
    try:
        from lstmcli.data import prepare_table
        from lstmcli.reading import read_csv

        table = prepare_table(read_csv(cfg.path, text=[cfg.id_column]), cfg, cfg.path)
    except LstmcliError:
        return frame.groupby(level=0).first()  # the data moved: plot without its tail
    index = table.time if table.time is not None else pd.RangeIndex(len(table.targets))
    data = pd.DataFrame(table.targets, columns=table.target_columns, index=pd.Index(index))
    return pd.concat([data, frame]).groupby(level=0).first().sort_index()


def _tail(series: pd.Series, predictions: Predictions, step: int) -> pd.Series:
    """The rows before the first plotted prediction, as many as the predictions span."""
    rows = predictions.at_step(step)
    start = rows[predictions.time].min()
    before = series[series.index < start]
    return before.iloc[-len(rows) :]


def _naive(series: pd.Series, predictions: Predictions, step: int) -> pd.Series | None:
    """The naive forecast of each plotted row: the value at its window's origin."""
    rows = predictions.at_step(step)
    origin = rows["origin"] if "origin" in rows.columns else None
    if origin is None:
        return None
    values = series.reindex(origin.to_numpy()).to_numpy()
    return pd.Series(values, index=rows[predictions.time].to_numpy())


def _out_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LstmcliError(f"cannot create output folder {path}: {e.strerror or e}") from None
    return path


def _need(run_dir: Path, name: str) -> Path:
    path = run_dir / name
    if not path.is_file():
        raise LstmcliError(f"{run_dir} has no {name}; is it a finished run folder?")
    return path


def _as_time(column: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column):
        return column
    parsed = pd.to_datetime(column, errors="coerce", format="mixed")
    return parsed if parsed.notna().all() else column


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


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


def show_figures(figures: list[Figure]) -> bool:
    """Open the figures in windows when a display exists; False when there is none."""
    has_display = sys.platform in ("darwin", "win32") or any(
        os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY")
    )
    if not has_display:
        return False
    import io

    import matplotlib.pyplot as plt

    for figure in figures:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", bbox_inches="tight")
        buffer.seek(0)
        window = plt.figure(figsize=figure.get_size_inches())
        window.figimage(plt.imread(buffer), resize=True)
    plt.show()
    return True
