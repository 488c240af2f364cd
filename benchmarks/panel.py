"""Many series: building the window index, and training throughput on a panel vs one series.

A synthetic panel of `--series` series x `--length` rows (10,000 x 500 = 5M rows by default),
one target and one known-future feature, and one series with the same total rows.

  index        `prepare_table` (ids, sort by series and time, per-series offsets) and
               `split_table` (per-series split and every window's anchor), timed against the
               same anchors built by a Python loop over the series (the obvious way);
  throughput   `lstmcli.run.loop.fit` for `--steps` optimizer steps on the panel's training
               windows and on the single series' (same model, batch, lookback, rows),
               alternating, `--repeats` times; training windows per second and their ratio.

Run it alone (two torch processes on two cores slow each other down many times).

  python benchmarks/panel.py
  python benchmarks/panel.py --series 2000 --length 500 --steps 100
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd
import torch

from lstmcli.config.edit import validate_config
from lstmcli.config.schema import Config
from lstmcli.data.table import Table, prepare_table
from lstmcli.data.windows import WindowSet, split_table, target_offsets, window_anchors
from lstmcli.model.network import LSTMForecaster
from lstmcli.model.spec import ModelSpec
from lstmcli.run.loop import fit

LOOKBACK, BATCH, HIDDEN, LAYERS = 48, 256, 64, 2


def panel(n_series: int, length: int) -> pd.DataFrame:
    """Long format: id, time, y, price; every series its own level and season."""
    rng = np.random.default_rng(0)
    rows = n_series * length
    ids = np.repeat(np.arange(n_series), length)
    t = np.tile(np.arange(length), n_series)
    level = rng.uniform(10, 1000, n_series)[ids]
    period = rng.choice([7, 12, 24, 52], n_series)[ids]
    price = rng.uniform(1, 2, rows).astype(np.float32)
    y = level * (1 + 0.1 * np.sin(2 * np.pi * t / period)) - 5 * price + rng.normal(0, 1, rows)
    time = pd.Timestamp("2020-01-01") + pd.to_timedelta(t, unit="D")
    return pd.DataFrame({"id": ids, "time": time, "y": y, "price": price})


def config(id_column: str | None) -> object:
    return validate_config(
        {
            "data": {
                "path": "unused.csv",
                "id_column": id_column,
                "time_column": "time",
                "target": "y",
                "known_features": ["price"],
                "lookback": LOOKBACK,
                "split": {"train": 0.7, "val": 0.1, "test": 0.2},
            },
            "model": {"hidden_size": HIDDEN, "num_layers": LAYERS, "head": []},
            "training": {
                "epochs": 1,
                "batch_size": BATCH,
                "grad_clip": None,
                "patience": None,
                "checkpoint_every": None,
                "device": "cpu",
            },
        }
    )


def loop_anchors(table: Table, cfg: Config) -> np.ndarray:
    """The baseline: the same training anchors, one series at a time in Python."""
    parts = []
    for k in range(table.n_series):
        start, stop = table.offsets[k], table.offsets[k + 1]
        n_train = int((stop - start) * cfg.split.train)
        parts.append(start + window_anchors(0, n_train, cfg.lookback, cfg.horizon, cfg.task))
    return np.concatenate(parts)


def windows_of(frame: pd.DataFrame, cfg: Config) -> WindowSet:
    table = prepare_table(frame, cfg.data, "panel")
    split = split_table(table, cfg.data)
    inputs = torch.from_numpy(table.inputs / np.abs(table.inputs).max(axis=0))
    targets = torch.from_numpy((table.targets / np.abs(table.targets).max()).astype(np.float32))
    offsets = target_offsets(1, "forecast")
    future = cfg.data.layout.future
    return WindowSet(inputs, targets, split.anchors["train"], LOOKBACK, offsets, future)


def throughput(windows: WindowSet, steps: int, cfg: Config) -> float:
    """Training windows per second over `steps` optimizer steps of fit()."""
    torch.manual_seed(0)
    model = LSTMForecaster(ModelSpec(2, 1, 1, HIDDEN, LAYERS, 0.0, (), n_future=1))
    training = cfg.training.model_copy(update={"max_steps": steps})
    started = time.perf_counter()
    fit(model, windows, None, training)
    return steps * BATCH / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--length", type=int, default=500)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    frame = panel(args.series, args.length)
    rows = len(frame)
    panel_cfg, single_cfg = config("id"), config(None)

    shuffled = frame.sample(frac=1, random_state=0).reset_index(drop=True)
    started = time.perf_counter()
    table = prepare_table(shuffled, panel_cfg.data, "panel")
    prepared = time.perf_counter() - started
    started = time.perf_counter()
    split = split_table(table, panel_cfg.data)
    indexed = time.perf_counter() - started
    started = time.perf_counter()
    slow = loop_anchors(table, panel_cfg.data)
    looped = time.perf_counter() - started
    assert np.array_equal(slow, split.anchors["train"]), "the two indexes differ"
    n_windows = sum(len(a) for a in split.anchors.values())
    print(f"panel: {args.series:,} series x {args.length} rows = {rows:,} rows")
    print(f"  prepare_table (shuffled rows: ids, sort, offsets)   {prepared:7.2f} s")
    print(f"  split_table (all parts' anchors, {n_windows:,} windows) {indexed:7.3f} s")
    print(f"  Python loop over series (train anchors only)        {looped:7.3f} s")
    del shuffled, table, split

    single = frame.drop(columns="id").assign(
        time=pd.Timestamp("2020-01-01") + pd.to_timedelta(np.arange(rows), unit="h")
    )
    windows = {"panel": windows_of(frame, panel_cfg), "one series": windows_of(single, single_cfg)}
    for w in windows.values():
        throughput(w, 5, panel_cfg)  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in windows}
    for _ in range(args.repeats):
        for name, w in windows.items():
            rates[name].append(throughput(w, args.steps, panel_cfg))
    print(
        f"training throughput: {args.steps} steps of batch {BATCH}, LSTM {HIDDEN} x {LAYERS}, "
        f"{args.threads} thread(s), {args.repeats} repetitions"
    )
    print(f"  {'':12} {'train windows':>14} {'median windows/s':>17} {'min':>8} {'max':>8}")
    for name, values in rates.items():
        print(
            f"  {name:12} {len(windows[name]):>14,} {statistics.median(values):>17,.0f} "
            f"{min(values):>8,.0f} {max(values):>8,.0f}"
        )
    ratio = statistics.median(rates["panel"]) / statistics.median(rates["one series"])
    print(f"  ratio panel / one series: {ratio:.3f} (target >= 0.90)")


if __name__ == "__main__":
    main()
