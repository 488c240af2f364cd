"""Figures people judge a forecast by: forecast vs actual, learning curves, residuals.

Built with matplotlib's object API on the Agg canvas (no display, no global pyplot state), so it
works over SSH and in CI; each figure is returned for inspection and saved whole or not at all.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from matplotlib.figure import Figure

from lstmcli.errors import LstmcliError
from lstmcli.files import atomic_path
from lstmcli.use.figures import (
    Predictions,
    as_time,
    forecast_figure,
    loss_figure,
    residuals_figure,
    series_grid_figure,
)

if TYPE_CHECKING:
    from lstmcli.model.checkpoint import Checkpoint


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
    frame[time] = as_time(frame[time])
    if "origin" in frame.columns:
        frame["origin"] = as_time(frame["origin"])
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
    if is_time(as_time(frame[first])):
        return None
    first_text = not pd.api.types.is_numeric_dtype(frame[first])
    second_time = not pd.api.types.is_numeric_dtype(frame[second]) and is_time(
        as_time(frame[second])
    )
    return first if first_text or second_time else None


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
    from lstmcli.model.checkpoint import load_checkpoint

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
    from lstmcli.data.reading import read_csv

    frame = read_csv(path, text=[predictions.id])
    if predictions.time == "step":  # no time column: steps continue the history's rows
        predictions.frame["step"] += len(frame) - 1
        frame = frame.rename_axis("step").reset_index()
    needed = [predictions.time, *predictions.targets] + ([predictions.id] if predictions.id else [])
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise LstmcliError(f"history {path} lacks column(s) {missing}")
    frame[predictions.time] = as_time(frame[predictions.time])
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
        from lstmcli.data.reading import read_csv
        from lstmcli.data.table import prepare_table

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


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


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
