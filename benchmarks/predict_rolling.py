"""Rolling prediction throughput: `lstmcli predict --rolling` vs the bare model's forward pass.

Writes a synthetic CSV (default 1,000,000 rows), trains a small model on its first rows for one
epoch (weights do not matter for speed), then alternates, `--repeats` times:

  lstmcli   read the CSV, check and order it, scale, gather windows, forward, unscale, build the
            output frame and write it as CSV (to /dev/null): everything `predict --rolling` does
            after start-up, in-process;
  bare      the same model's forward pass over the same windows, pre-built as one tensor view.

after one untimed warm-up round (the first forward pass of a shape is slow), and prints rows/s
for both with median/min/max, and their ratio. Run it alone: another torch
process on the same cores distorts both figures.

  python benchmarks/predict_rolling.py              # 1M rows, hidden 32, 1 layer, lookback 24
  python benchmarks/predict_rolling.py --rows 200000 --hidden 64 --layers 2 --lookback 48
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lstmcli.config.edit import validate_config
from lstmcli.data.reading import read_csv
from lstmcli.files import csv_text
from lstmcli.run.pipeline import train_run
from lstmcli.use.predict import load_predictor, rolling


def make_csv(path: Path, rows: int) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(rows)
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2000-01-01", periods=rows, freq="min").strftime(
                "%Y-%m-%d %H:%M"
            ),
            "y": np.sin(2 * np.pi * t / 60) + rng.normal(0, 0.1, rows),
        }
    )
    frame.to_csv(path, index=False, float_format="%.5f")


def bare_forward(model: torch.nn.Module, series: torch.Tensor, lookback: int, batch: int) -> int:
    """The floor: one tensor view of all windows, batched forward passes, nothing else."""
    windows = series.unfold(0, lookback, 1).transpose(1, 2)  # (windows, lookback, features)
    with torch.inference_mode():
        for start in range(0, len(windows), batch):
            model(windows[start : start + batch])
    return len(windows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--lookback", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv = folder / "big.csv"
        started = time.perf_counter()
        make_csv(csv, args.rows)
        print(f"wrote {args.rows:,} rows in {time.perf_counter() - started:.1f}s")
        small = folder / "small.csv"
        pd.read_csv(csv, nrows=5000).to_csv(small, index=False)
        config = validate_config(
            {
                "data": {"path": str(small), "target": "y", "lookback": args.lookback},
                "model": {"hidden_size": args.hidden, "num_layers": args.layers, "head": []},
                "training": {"epochs": 1, "device": "cpu"},
            }
        )
        train_run(config, folder / "run")
        predictor = load_predictor(folder / "run", "cpu")
        scaled = torch.from_numpy(
            predictor.checkpoint.input_scaler.transform(read_csv(csv)[["y"]].to_numpy(np.float32))
        )

        timings: dict[str, list[float]] = {"lstmcli": [], "bare": []}
        for repeat in range(args.repeats + 1):  # the first round warms up, untimed
            started = time.perf_counter()
            frame = read_csv(csv)
            result = rolling(predictor, frame, str(csv))
            Path(os.devnull).write_text(csv_text(result))
            lstmcli_seconds = time.perf_counter() - started
            windows = len(result)

            started = time.perf_counter()
            bare_windows = bare_forward(
                predictor.backend.module.forecaster.network, scaled, args.lookback, 4096
            )
            bare_seconds = time.perf_counter() - started
            if repeat:
                timings["lstmcli"].append(lstmcli_seconds)
                timings["bare"].append(bare_seconds)

    print(
        f"\nrolling predictions, {args.rows:,} rows, lookback {args.lookback}, hidden "
        f"{args.hidden} x {args.layers} layer(s), {args.threads} thread(s), {args.repeats} repeats"
    )
    print(f"{'':10} {'windows':>10} {'median rows/s':>14} {'min':>10} {'max':>10} {'median s':>9}")
    rates = {}
    for name, count in (("lstmcli", windows), ("bare", bare_windows)):
        per_second = [count / s for s in timings[name]]
        rates[name] = statistics.median(per_second)
        print(
            f"{name:10} {count:>10,} {rates[name]:>14,.0f} {min(per_second):>10,.0f} "
            f"{max(per_second):>10,.0f} {statistics.median(timings[name]):>9.2f}"
        )
    print(f"ratio lstmcli / bare: {rates['lstmcli'] / rates['bare']:.2f}")


if __name__ == "__main__":
    main()
