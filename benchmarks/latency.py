"""Start-up and prediction latency.

  start-up    wall time of `lstmcli --help`, `lstmcli train --help`, `lstmcli predict --help`
              next to `python -c pass` and `python -c "import torch"` (target: under 0.3 s);
  one forecast  in-process `forecast_next` on a 48-row frame with a loaded checkpoint (scaling,
              window, forward, inverse scaling, output frame) next to the bare model's forward
              on a ready tensor (target: median under 2 ms); model: LSTM 64 x 2, 4 inputs;
  CLI predict   `lstmcli predict RUN 200rows.csv` wall time next to
              `python -c "import torch, pandas"` (target: within 1.3x).

Commands alternate within each repetition, so machine noise cancels in the ratios. Run alone.

  python benchmarks/latency.py
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lstmcli.config import validate_config
from lstmcli.pipeline import train_run
from lstmcli.predict import forecast_next, load_predictor


def wall(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def timed(commands: dict[str, list[str]], repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in commands}
    for command in commands.values():
        wall(command)  # warm the file cache
    for _ in range(repeats):
        for name, command in commands.items():
            times[name].append(wall(command))
    return times


def table(title: str, times: dict[str, list[float]], unit: str = "s", scale: float = 1.0) -> None:
    print(f"\n{title}")
    print(f"{'':44} {'median':>9} {'min':>9} {'max':>9}")
    for name, values in times.items():
        v = [x * scale for x in values]
        low, high, mid = min(v), max(v), statistics.median(v)
        print(f"{name:44} {mid:>8.3f}{unit} {low:>8.3f}{unit} {high:>8.3f}{unit}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    py = sys.executable
    lstmcli = [py, "-m", "lstmcli"]

    startup = timed(
        {
            "python -c pass": [py, "-c", "pass"],
            'python -c "import torch"': [py, "-c", "import torch"],
            "lstmcli --help": [*lstmcli, "--help"],
            "lstmcli train --help": [*lstmcli, "train", "--help"],
            "lstmcli predict --help": [*lstmcli, "predict", "--help"],
        },
        args.repeats,
    )
    table("start-up (wall, seconds)", startup)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = 3000
        t = np.arange(rows)
        frame = pd.DataFrame(
            {
                "date": pd.date_range("2020-01-01", periods=rows, freq="h").strftime(
                    "%Y-%m-%d %H:%M:%S"
                ),
                **{c: np.sin(t / p) for c, p in zip("abcd", [24, 168, 50, 7], strict=True)},
            }
        )
        frame.to_csv(folder / "data.csv", index=False)
        config = validate_config(
            {
                "data": {
                    "path": str(folder / "data.csv"),
                    "target": "a",
                    "features": ["b", "c", "d"],
                    "lookback": 48,
                },
                "model": {"hidden_size": 64, "num_layers": 2, "head": []},
                "training": {"epochs": 1, "max_steps": 2, "device": "cpu"},
            }
        )
        train_run(config, folder / "run")
        predictor = load_predictor(folder / "run", "cpu")
        window = frame.iloc[-48:].reset_index(drop=True)
        ready = torch.randn(1, 48, 4)
        inprocess: dict[str, list[float]] = {"forecast_next (48-row frame)": [], "bare forward": []}
        with torch.inference_mode():
            for _ in range(20):  # warm-up
                forecast_next(predictor, window, "frame", None)
                predictor.model(ready)
            for _ in range(300):
                started = time.perf_counter()
                forecast_next(predictor, window, "frame", None)
                inprocess["forecast_next (48-row frame)"].append(time.perf_counter() - started)
                started = time.perf_counter()
                predictor.model(ready)
                inprocess["bare forward"].append(time.perf_counter() - started)
        table(
            f"one forecast in-process, {torch.get_num_threads()} thread(s) (ms)",
            inprocess,
            "ms",
            1000,
        )

        frame.iloc[-200:].to_csv(folder / "recent.csv", index=False)
        cli = timed(
            {
                'python -c "import torch, pandas"': [py, "-c", "import torch, pandas"],
                "lstmcli predict RUN recent.csv (200 rows)": [
                    *lstmcli,
                    "predict",
                    str(folder / "run"),
                    str(folder / "recent.csv"),
                    "-q",
                ],
            },
            args.repeats,
        )
        table("CLI predict (wall, seconds)", cli)
        medians = {k: statistics.median(v) for k, v in cli.items()}
        base, ours = medians.values()
        print(f"ratio predict / import torch, pandas: {ours / base:.2f}")


if __name__ == "__main__":
    main()
