"""Training throughput: lstmcli's training loop vs a minimal hand-written PyTorch loop.

Same data (synthetic, `--rows` x 4 columns, scaled), same model size (LSTM hidden 64, 2 layers,
batch_first, a Linear head), Adam, MSE, batch 256, lookback 48, horizon 1, `--threads` threads.

  lstmcli   `lstmcli.run.loop.fit`, the loop `lstmcli train` runs: window batches gathered from
            the series by index, validation at the end of the epoch (a 2% val part), the
            progress callback (plain lines to /dev/null) and the Ctrl-C check after each batch;
  minimal   the loop a person writes by hand: windows as one unfold() view, a random
            permutation, index a batch, forward, backward, step. No validation.

Each repetition runs one epoch of each, alternating, and reports training windows per second
(median, min, max) and the ratio lstmcli / minimal. Run it alone.

  python benchmarks/train_throughput.py                 # 100,000 rows, 3 repetitions
  python benchmarks/train_throughput.py --rows 30000 --repeats 5
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np
import torch
from rich.console import Console
from torch import nn

from lstmcli.cli.common import StopRequest
from lstmcli.cli.display import EpochReporter
from lstmcli.config.edit import validate_config
from lstmcli.config.schema import Config
from lstmcli.data.windows import WindowSet, split_rows, target_offsets
from lstmcli.model.network import LSTMForecaster
from lstmcli.model.spec import ModelSpec
from lstmcli.run.loop import fit

LOOKBACK, BATCH, HIDDEN, LAYERS, FEATURES = 48, 256, 64, 2, 4


class Minimal(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(FEATURES, HIDDEN, num_layers=LAYERS, batch_first=True)
        self.head = nn.Linear(HIDDEN, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(x)
        return self.head(h[-1])


def series(rows: int) -> torch.Tensor:
    rng = np.random.default_rng(0)
    t = np.arange(rows)[:, None]
    periods = np.array([24, 168, 50, 7])
    values = np.sin(2 * np.pi * t / periods) + rng.normal(0, 0.1, (rows, FEATURES))
    return torch.from_numpy(values.astype(np.float32))


def minimal_epoch(data: torch.Tensor, n_windows: int, bf16: bool) -> float:
    """One epoch of the hand-written loop over the first n_windows windows; seconds."""
    model = Minimal().to(data.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    windows = data.unfold(0, LOOKBACK, 1).transpose(1, 2)  # (windows, lookback, features)
    targets = data[LOOKBACK:, :1]  # window i predicts the first column of row i + lookback
    started = time.perf_counter()
    for idx in torch.randperm(n_windows, device=data.device).split(BATCH):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(data.device.type, torch.bfloat16, enabled=bf16):
            loss = nn.functional.mse_loss(model(windows[idx]).float(), targets[idx])
        loss.backward()
        optimizer.step()
    synchronize(data.device)
    return time.perf_counter() - started


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def lstmcli_epoch(data: torch.Tensor, config: Config) -> tuple[float, int]:
    """One epoch of lstmcli's fit(); seconds and training windows."""
    split = split_rows(len(data), config.data)
    offsets = target_offsets(1, "forecast")
    windows = {
        name: WindowSet(data, data[:, :1], anchors, LOOKBACK, offsets)
        for name, anchors in split.anchors.items()
    }
    spec = ModelSpec(FEATURES, 1, 1, HIDDEN, LAYERS, 0.0, ())
    model = LSTMForecaster(spec).to(data.device)
    console = Console(file=io.StringIO(), force_terminal=False)
    started = time.perf_counter()
    with EpochReporter(console, config.training.epochs) as reporter:
        fit(model, windows["train"], windows["val"], config.training, reporter, StopRequest())
    synchronize(data.device)
    return time.perf_counter() - started, len(windows["train"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--precision", default="32", choices=["32", "bf16"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = series(args.rows).to(args.device)  # on the device, as `lstmcli train` keeps it
    config = validate_config(
        {
            "data": {
                "target": "a",
                "lookback": LOOKBACK,
                "split": {"train": 0.93, "val": 0.02, "test": 0.05},
            },
            "model": {"hidden_size": HIDDEN, "num_layers": LAYERS, "head": []},
            "training": {
                "epochs": 1,
                "batch_size": BATCH,
                "grad_clip": None,
                "patience": None,
                "checkpoint_every": None,
                "device": args.device,
                "precision": args.precision,
            },
        }
    )
    warm = validate_config(
        config.model_dump() | {"training": {**config.training.model_dump(), "max_steps": 5}}
    )
    lstmcli_epoch(data, warm)  # warm-up: first-call allocations and thread pools
    minimal_epoch(data, BATCH * 5, args.precision == "bf16")
    rates: dict[str, list[float]] = {"lstmcli": [], "minimal": []}
    for _ in range(args.repeats):
        seconds, n_windows = lstmcli_epoch(data, config)
        rates["lstmcli"].append(n_windows / seconds)
        rates["minimal"].append(
            n_windows / minimal_epoch(data, n_windows, args.precision == "bf16")
        )

    print(
        f"training throughput, {args.rows:,} rows x {FEATURES} columns, lookback {LOOKBACK}, "
        f"batch {BATCH}, LSTM {HIDDEN} x {LAYERS}, {args.device}, precision {args.precision}, "
        f"{args.threads} thread(s), "
        f"{n_windows:,} training windows an epoch, {args.repeats} repetitions"
    )
    print(f"{'':10} {'median windows/s':>17} {'min':>8} {'max':>8}")
    for name, values in rates.items():
        print(
            f"{name:10} {statistics.median(values):>17,.0f} "
            f"{min(values):>8,.0f} {max(values):>8,.0f}"
        )
    ratio = statistics.median(rates["lstmcli"]) / statistics.median(rates["minimal"])
    print(f"ratio lstmcli / minimal: {ratio:.3f}")


if __name__ == "__main__":
    main()
