"""What keeping a record costs: the manifest's data fingerprint, MLflow tracking, `lstmcli runs`.

  fingerprint  SHA-256 of a generated file (`--megabytes`, default 512) through
               `manifest.file_fingerprint`, next to reading the same file without hashing:
               seconds per GB;
  train        `lstmcli train` wall time on the quick-start data (one network, 30 epochs),
               without and with `--track mlflow` (a SQLite store in a temporary folder),
               alternating, `--repeats` times: the median of each and the difference;
  runs         `lstmcli runs --csv` over `--folders` copies of a real run folder, next to
               `lstmcli --version` (the start-up alone).

Run alone (two torch processes on the same cores slow each other down many times over):

  python benchmarks/tracking.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lstmcli.run.manifest import file_fingerprint

ROOT = Path(__file__).resolve().parents[1]


def wall(command: list[str], cwd: Path, env: dict | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def fingerprint(folder: Path, megabytes: int) -> None:
    path = folder / "big.csv"
    block = os.urandom(1 << 20)
    with open(path, "wb") as file:
        for _ in range(megabytes):
            file.write(block)
    started = time.perf_counter()
    with open(path, "rb") as file:
        while file.read(1 << 20):
            pass
    read = time.perf_counter() - started
    started = time.perf_counter()
    file_fingerprint(path)
    hashed = time.perf_counter() - started
    per_gb = 1024 / megabytes
    print(f"fingerprint  {megabytes} MB: read {read:.2f} s, read + SHA-256 {hashed:.2f} s "
          f"({hashed * per_gb:.2f} s per GB)")  # fmt: skip
    path.unlink()


def train(folder: Path, repeats: int) -> Path:
    quickstart = str(ROOT / "configs/quickstart.yaml")
    lstmcli = [sys.executable, "-m", "lstmcli", "train", "-c", quickstart,
               "-q", "--set", "training.ensemble=1", "--set", "training.epochs=30",
               "--set", "training.patience=null"]  # fmt: skip
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}"}
    plain, tracked = [], []
    for i in range(repeats):
        plain.append(wall([*lstmcli, "-o", str(folder / f"plain-{i}")], folder, env))
        tracked.append(wall([*lstmcli, "-o", str(folder / f"tracked-{i}"), "--track", "mlflow"],
                            folder, env))  # fmt: skip
    a, b = statistics.median(plain), statistics.median(tracked)
    print(f"train        without tracking {a:.2f} s, with --track mlflow {b:.2f} s: "
          f"+{b - a:.2f} s (median of {repeats})")  # fmt: skip
    return folder / "plain-0"


def runs(folder: Path, run_dir: Path, copies: int) -> None:
    many = folder / "many"
    for i in range(copies):
        shutil.copytree(run_dir, many / f"run-{i:03d}", ignore=shutil.ignore_patterns("*.pt"))
    command = [sys.executable, "-m", "lstmcli"]
    start = statistics.median(wall([*command, "--version"], folder) for _ in range(3))
    listing = statistics.median(wall([*command, "runs", str(many), "--csv"], folder)
                                for _ in range(3))  # fmt: skip
    print(f"runs         {copies} folders: {listing:.2f} s (start-up alone {start:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folders", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        fingerprint(folder, args.megabytes)
        run_dir = train(folder, args.repeats)
        runs(folder, run_dir, args.folders)


if __name__ == "__main__":
    main()
