"""Peak memory of training on a large CSV, and CSV loading time by pandas engine.

Writes a CSV of `--rows` (default 10,000,000) rows x 4 numeric columns, then:

  loading   `pandas.read_csv` with the default (C) engine and with the pyarrow engine, each in
            a fresh process, alternating, `--repeats` times: seconds and peak RSS;
  training  `lstmcli train` in a fresh process: target a, features b c d, lookback 168,
            LSTM 64 x 2, training.max_steps 200, a small val and test part (0.1% each) so the
            run measures data handling and training, not a long evaluation: wall seconds and
            peak RSS (from wait4's rusage), against the 1.5 GB target.

  python benchmarks/memory.py
  python benchmarks/memory.py --rows 1000000
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import yaml


def make_csv(path: Path, rows: int) -> None:
    """Written in chunks with pyarrow, so the generator itself stays small."""
    rng = np.random.default_rng(0)
    chunk = 1_000_000
    with pa_csv.CSVWriter(path, pa.schema([(c, pa.float64()) for c in "abcd"])) as writer:
        for start in range(0, rows, chunk):
            t = np.arange(start, min(rows, start + chunk))
            columns = {
                c: np.round(np.sin(2 * np.pi * t / p) + rng.normal(0, 0.1, len(t)), 5)
                for c, p in zip("abcd", (24, 168, 50, 7), strict=True)
            }
            writer.write_table(pa.table(columns))


def run(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS in MiB of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{process.stderr.read().decode()}")
    return seconds, usage.ru_maxrss / 1024  # kilobytes on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv = folder / "big.csv"
        started = time.perf_counter()
        make_csv(csv, args.rows)
        size = csv.stat().st_size / 2**20
        print(
            f"wrote {args.rows:,} rows x 4 columns ({size:,.0f} MiB) in "
            f"{time.perf_counter() - started:.1f}s"
        )

        loaders = {
            engine: [
                sys.executable,
                "-c",
                f"import pandas; pandas.read_csv({str(csv)!r}, engine={engine!r})",
            ]
            for engine in ("c", "pyarrow")
        }
        loads: dict[str, list[tuple[float, float]]] = {engine: [] for engine in loaders}
        for _ in range(args.repeats):
            for engine, command in loaders.items():
                loads[engine].append(run(command))
        print(
            f"\nCSV loading, {args.repeats} repetitions (fresh process each; includes "
            "importing pandas)"
        )
        print(f"{'engine':10} {'median s':>9} {'min s':>7} {'max s':>7} {'peak RSS MiB':>13}")
        for engine, values in loads.items():
            seconds = [s for s, _ in values]
            peak = max(m for _, m in values)
            print(
                f"{engine:10} {statistics.median(seconds):>9.2f} {min(seconds):>7.2f} "
                f"{max(seconds):>7.2f} {peak:>13,.0f}"
            )

        config = {
            "data": {
                "path": str(csv),
                "time_column": None,
                "target": "a",
                "features": ["b", "c", "d"],
                "lookback": 168,
                "split": {"train": 0.998, "val": 0.001, "test": 0.001},
            },
            "model": {"hidden_size": 64, "num_layers": 2, "head": []},
            "training": {"epochs": 1, "max_steps": 200, "device": "cpu", "checkpoint_every": None},
        }
        (folder / "run.yaml").write_text(yaml.safe_dump(config))
        command = [
            sys.executable,
            "-m",
            "lstmcli",
            "train",
            "-c",
            str(folder / "run.yaml"),
            "-o",
            str(folder / "run"),
            "-q",
        ]
        seconds, peak = run(command)
        verdict = "under" if peak < 1536 else "OVER"
        print(
            f"\nlstmcli train, {args.rows:,} rows x 4, lookback 168, 200 steps: "
            f"{seconds:.1f}s wall, peak RSS {peak:,.0f} MiB ({verdict} the 1,536 MiB target)"
        )


if __name__ == "__main__":
    main()
