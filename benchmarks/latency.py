"""Start-up and prediction latency.

  start-up    wall time of `lstmcli --help`, `lstmcli train --help`, `lstmcli predict --help`
              next to `python -c pass` and `python -c "import torch"` (target: under 0.3 s);
  one forecast  in-process `forecast_next` on a 48-row frame with a loaded checkpoint (scaling,
              window, forward, inverse scaling, output frame) next to the bare model's forward
              on a ready tensor (target: median under 2 ms); model: LSTM 64 x 2, 4 inputs;
  CLI predict   `lstmcli predict RUN 200rows.csv` wall time next to
              `python -c "import torch, pandas"` (target: within 1.3x);
  whole train   `lstmcli train` as a whole process on a 12,000-row CSV (about 7 s of work)
              next to a minimal hand-written script doing the same job: read the CSV, scale on
              the training rows, window, train the same network for the same epochs, score the
              test windows, save the weights (target: within 1.10x).

Commands alternate within each repetition, so machine noise cancels in the ratios. Run alone.

  python benchmarks/latency.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lstmcli.config.edit import validate_config
from lstmcli.run.pipeline import train_run
from lstmcli.use.predict import forecast_next, load_predictor


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


MINIMAL_TRAIN = """
import sys
import numpy as np, pandas as pd, torch
from torch import nn

csv, out, epochs, lookback = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(42)
frame = pd.read_csv(csv, parse_dates=["date"]).sort_values("date")
values = frame[["a", "b", "c", "d"]].to_numpy(np.float32)
n_train = int(len(values) * 0.7)
low, high = values[:n_train].min(0), values[:n_train].max(0)
series = torch.from_numpy((values - low) / (high - low))
windows = series.unfold(0, lookback, 1).transpose(1, 2)[:-1]  # window i predicts row i+lookback
targets = series[lookback:, :1]
train = torch.arange(n_train - lookback)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 64, num_layers=2, batch_first=True)
        self.head = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                                  nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 1))

    def forward(self, x):
        return self.head(self.lstm(x)[1][0][-1])


model = Net()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(epochs):
    for batch in train[torch.randperm(len(train))].split(64):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(windows[batch]), targets[batch])
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
model.eval()
with torch.no_grad():
    test = torch.arange(n_train - lookback, len(windows))
    predicted = model(windows[test]).numpy()[:, 0] * (high[0] - low[0]) + low[0]
actual = values[test.numpy() + lookback, 0]
print(float(np.sqrt(np.mean((predicted - actual) ** 2))))
torch.save(model.state_dict(), out)
"""


def whole_train(folder: Path, repeats: int, epochs: int = 3, lookback: int = 48) -> None:
    """`lstmcli train` against the minimal script, both as whole processes, alternating."""
    rows = 12_000
    t = np.arange(rows)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2020-01-01", periods=rows, freq="h").strftime(
                "%Y-%m-%d %H:%M:%S"
            ),
            **{
                c: np.sin(2 * np.pi * t / p) + rng.normal(0, 0.1, rows)
                for c, p in zip("abcd", [24, 168, 50, 7], strict=True)
            },
        }
    )
    frame.to_csv(folder / "train.csv", index=False)
    (folder / "minimal.py").write_text(MINIMAL_TRAIN)
    # The minimal script's job exactly: one network, no val part, no window normalization,
    # no linear skip or blend (the data-driven defaults would choose an ensemble of three).
    config = {
        "data": {"path": "train.csv", "target": "a", "features": ["b", "c", "d"]},
        "model": {"hidden_size": 64, "num_layers": 2, "head": [256, 256, 128],
                  "linear_skip": False, "blend": "none"},
        "training": {"epochs": epochs, "batch_size": 64, "checkpoint_every": None,
                     "ensemble": 1, "learning_rate": 0.001},
    }  # fmt: skip
    config["data"] |= {"lookback": lookback, "split": 0.7, "scaler": "minmax",
                       "validation": "none", "window_norm": "none", "season": None}  # fmt: skip
    config["training"]["device"] = "cpu"
    (folder / "train.yaml").write_text(json.dumps(config))  # JSON is YAML
    py = sys.executable
    times = timed(
        {
            "minimal script (same job)": [
                py, str(folder / "minimal.py"), str(folder / "train.csv"),
                str(folder / "minimal.pt"), str(epochs), str(lookback),
            ],
            "lstmcli train": [
                py, "-m", "lstmcli", "train", "-c", str(folder / "train.yaml"),
                "-o", str(folder / "run"), "--overwrite", "-q",
            ],
        },
        repeats,
    )  # fmt: skip
    table(f"whole train process, {rows:,} rows, {epochs} epochs (wall, seconds)", times)
    base, ours = (statistics.median(v) for v in times.values())
    print(f"ratio lstmcli train / minimal script: {ours / base:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--only-train", action="store_true", help="Only the whole-train comparison."
    )
    args = parser.parse_args()
    if args.only_train:
        with tempfile.TemporaryDirectory() as tmp:
            whole_train(Path(tmp), args.repeats)
        return
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
                predictor.backend.module.forecaster.network(ready)
            for _ in range(300):
                started = time.perf_counter()
                forecast_next(predictor, window, "frame", None)
                inprocess["forecast_next (48-row frame)"].append(time.perf_counter() - started)
                started = time.perf_counter()
                predictor.backend.module.forecaster.network(ready)
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
        whole_train(folder, args.repeats)


if __name__ == "__main__":
    main()
