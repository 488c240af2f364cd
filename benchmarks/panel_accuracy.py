"""Many series: one global LSTM against a classical model fitted to each series on its own.

configs/panel.yaml (12 US quarterly macro series, bundled) is trained with seeds 0, 1, 2. Its
test part is every 4-quarter window from 2003 on, 24 origins per series. On exactly those
windows, Holt's damped-trend exponential smoothing (statsmodels, an optional benchmark
dependency) is refitted on each series' history up to each origin, the way a per-series
classical workflow runs. Reported: pooled RMSE, median over series of MASE (each series scaled
by its training rows' naive error, as in metrics.json), and in how many series each method has
the lower RMSE than the other.

  python -m pip install statsmodels     # optional
  python benchmarks/panel_accuracy.py
  python benchmarks/panel_accuracy.py --set training.ensemble=3 --seeds 0
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from lstmcli.config.io import load_config
from lstmcli.data.reading import read_csv
from lstmcli.model.checkpoint import load_checkpoint
from lstmcli.run.pipeline import train_run

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "panel.yaml"


def holt_forecasts(data: pd.DataFrame, windows: pd.DataFrame, horizon: int) -> np.ndarray:
    """Damped-trend Holt refitted on each window's history (rows up to its origin)."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    out = np.empty(len(windows) * horizon)
    for i, (series, origin) in enumerate(windows.itertuples(index=False)):
        history = data[(data["series"] == series) & (data["date"] <= origin)]["value"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter
            fit = ExponentialSmoothing(history.to_numpy(), trend="add", damped_trend=True).fit()
        out[i * horizon : (i + 1) * horizon] = fit.forecast(horizon)
    return out


def per_series(frame: pd.DataFrame, column: str, scales: dict[str, float]) -> pd.DataFrame:
    error = frame[column] - frame["value_actual"]
    grouped = error.groupby(frame["series"])
    return pd.DataFrame(
        {
            "rmse": np.sqrt((error**2).groupby(frame["series"]).mean()),
            "mase": grouped.apply(lambda e: e.abs().mean()) / pd.Series(scales),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    args = parser.parse_args()
    config = load_config(CONFIG, args.overrides)
    horizon = config.data.horizon
    data = read_csv(config.data.path)
    data["date"] = pd.to_datetime(data["date"])
    runs, started = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            seeded = load_config(CONFIG, [*args.overrides, f"training.seed={seed}"])
            result = train_run(seeded, Path(tmp) / str(seed))
            frame = pd.read_csv(result.run_dir / "test_predictions.csv", parse_dates=["origin"])
            runs.append(frame)
            checkpoint = load_checkpoint(result.run_dir)
    # each series' MASE scale: the mean naive error on its training rows, as in metrics.json
    scales = {
        name: scale[0]
        for name, scale in zip(checkpoint.series_ids, checkpoint.series_mase_scales, strict=True)
    }
    lstm_seconds = time.perf_counter() - started
    frame = runs[0]
    windows = frame[frame["step"] == 1][["series", "origin"]]
    started = time.perf_counter()
    frame = frame.assign(holt=holt_forecasts(data, windows, horizon))
    holt_seconds = time.perf_counter() - started
    frame["naive"] = np.repeat(
        [
            data[(data["series"] == s) & (data["date"] == o)]["value"].iloc[0]
            for s, o in windows.itertuples(index=False)
        ],
        horizon,
    )
    lstm = [per_series(f, "value", scales) for f in runs]
    holt = per_series(frame, "holt", scales)
    naive = per_series(frame, "naive", scales)

    def pooled(f: pd.DataFrame, column: str) -> float:
        return float(np.sqrt(np.mean((f[column] - f["value_actual"]) ** 2)))

    print(
        f"configs/panel.yaml: {len(windows)} test windows of {horizon} quarters in "
        f"{len(holt)} series; lstmcli seeds {args.seeds} ({lstm_seconds:.0f} s), "
        f"Holt refitted per window ({holt_seconds:.0f} s)"
    )
    print(f"  {'':30} {'pooled rmse':>12} {'median mase':>12}")
    rows = [
        ("naive (last value)", pooled(frame, "naive"), naive["mase"].median()),
        ("Holt, damped trend, per series", pooled(frame, "holt"), holt["mase"].median()),
    ]
    rmses = [pooled(f, "value") for f in runs]
    mases = [m["mase"].median() for m in lstm]
    median = ("lstmcli global (median seed)", statistics.median(rmses), statistics.median(mases))
    rows.append(median)
    for label, rmse, mase in rows:
        print(f"  {label:30} {rmse:12.2f} {mase:12.3f}")
    wins = [int((m["rmse"] < holt["rmse"]).sum()) for m in lstm]
    print(
        f"  series where lstmcli's rmse is below Holt's: {wins} of {len(holt)} "
        f"(per seed); rmse range over seeds {min(rmses):.2f}..{max(rmses):.2f}"
    )


if __name__ == "__main__":
    main()
