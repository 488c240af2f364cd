"""Training throughput with 1 and 2 processes (torchrun, CPU, gloo): windows per second.

The same config (a 20,000-row synthetic series, LSTM 64, batch 256, a few epochs, no val
part) is trained with `lstmcli train` in one process and under `torchrun --nproc_per_node 2`,
alternating, each `--repeats` times; windows/s is training windows x epochs / training
seconds (from metrics.json, so process start-up is not counted). On a 2-core machine two
processes share the same cores: expect little or no gain there; the figure that matters is on
a machine with a core (or GPU) per process.

  python benchmarks/distributed.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="distributed-"))
    t = np.arange(args.rows)
    noise = np.random.default_rng(0).normal(0, 0.1, args.rows)
    pd.DataFrame({"y": np.sin(2 * np.pi * t / 24) + noise}).to_csv(folder / "s.csv", index=False)
    config = {
        "data": {"path": str(folder / "s.csv"), "time_column": None, "target": "y",
                 "lookback": 48, "horizon": 1,
                 "season": 24, "split": {"train": 0.9, "test": 0.1}, "validation": "none"},
        "model": {"hidden_size": 64, "head": [64], "blend": "none"},
        "training": {"epochs": args.epochs, "batch_size": 256, "ensemble": 1, "device": "cpu",
                     "patience": None, "checkpoint_every": None},
    }  # fmt: skip
    (folder / "run.yaml").write_text(yaml.safe_dump(config))
    cores = os.cpu_count() or 1
    launchers = {
        1: [sys.executable],
        2: [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"],
    }
    rates: dict[int, list[float]] = {1: [], 2: []}
    for repeat in range(args.repeats):
        for processes, launcher in launchers.items():
            out = folder / f"run{processes}_{repeat}"
            threads = max(1, cores // processes)
            command = [*launcher, "-m", "lstmcli", "train", "-c", str(folder / "run.yaml"),
                       "-o", str(out), "-q", "--set", f"training.threads={threads}"]  # fmt: skip
            subprocess.run(command, check=True, capture_output=True)
            metrics = json.loads((out / "metrics.json").read_text())
            windows = metrics["windows"]["train"] * metrics["epochs_run"]
            rates[processes].append(windows / metrics["training_seconds"])
    one, two = (float(np.median(rates[p])) for p in (1, 2))
    print(f"cores: {cores}; {args.rows} rows, LSTM 64, batch 256, {args.epochs} epochs")
    print(f"1 process:   {one:,.0f} windows/s (median of {args.repeats})")
    print(f"2 processes: {two:,.0f} windows/s (median of {args.repeats}); ratio {two / one:.2f}")


if __name__ == "__main__":
    main()
