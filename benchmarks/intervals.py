"""Prediction intervals of the defaults on public series: coverage and interval score.

Each series of benchmarks/accuracy_suite.py is trained with its data keys and `model.levels:
[80, 95]` (everything else lstmcli's default). From the run's metrics.json: the empirical
coverage, mean width and interval (Winkler) score of the model's 80% and 95% intervals over
every test window, and the same for the seasonal-naive baseline's intervals (empirical
quantiles of its own residuals on the training rows; naive where there is no season). With
statsmodels installed, an ETS model (additive error, damped additive trend, additive season
where there is one) is refitted at up to `--ets-origins` evenly spaced origins and its
prediction intervals scored on those origins, next to the model's on the same origins.

  python benchmarks/intervals.py --set dev
  python benchmarks/intervals.py --set fresh --only nottem
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy_suite import SERIES, Series, last_error, train_series  # noqa: E402

LEVELS = (80, 95)


def ets_intervals(
    values: np.ndarray, origins: np.ndarray, horizon: int, season: int | None
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    shape = (len(origins), horizon)
    out = {level: (np.full(shape, np.nan), np.full(shape, np.nan)) for level in LEVELS}
    for k, origin in enumerate(origins):
        history = values[: origin + 1]
        seasonal = "add" if season and len(history) >= 2 * season + 10 else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                fit = ETSModel(
                    pd.Series(history),
                    error="add",
                    trend="add",
                    damped_trend=True,
                    seasonal=seasonal,
                    seasonal_periods=season if seasonal else None,
                ).fit(disp=False)
                prediction = fit.get_prediction(len(history), len(history) + horizon - 1)
                for level in LEVELS:
                    frame = prediction.summary_frame(alpha=1 - level / 100)
                    out[level][0][k] = frame["pi_lower"].to_numpy()
                    out[level][1][k] = frame["pi_upper"].to_numpy()
            except (ValueError, np.linalg.LinAlgError):
                continue
    return out


def winkler(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray, level: float) -> float:
    alpha = 1 - level / 100
    score = (upper - lower) + (2 / alpha) * np.maximum(lower - actual, 0)
    score += (2 / alpha) * np.maximum(actual - upper, 0)
    return float(np.nanmean(score))


def run_series(series: Series, overrides: list[str], ets_origins: int) -> dict:
    frame = series.load().reset_index(drop=True)
    sections = {"model": {"levels": list(LEVELS)}}
    folder, done, seconds = train_series(series, frame, sections, overrides, "intervals")
    if done.returncode != 0:
        return {"name": series.name, "error": last_error(done)}
    metrics = json.loads((folder / "run" / "metrics.json").read_text())
    intervals = metrics["intervals"]
    base_name = next(iter(intervals["baselines"]), None)
    result = {"name": series.name, "group": series.group, "seconds": seconds, "baseline": base_name}
    for level in LEVELS:
        key = f"{level:g}"
        result[key] = {
            "model": intervals["model"][key],
            "baseline": intervals["baselines"][base_name][key] if base_name else None,
        }
    result.update(_versus_ets(series, frame, folder, ets_origins))
    return result


def _versus_ets(series: Series, frame: pd.DataFrame, folder: Path, ets_origins: int) -> dict:
    try:
        import statsmodels  # noqa: F401
    except ImportError:
        return {}
    saved = pd.read_csv(folder / "run" / "test_predictions.csv")
    position = {t: k for k, t in enumerate(frame["date"].astype(str))}
    saved["origin_row"] = (
        saved["origin"].astype(str).map(lambda t: position.get(t, position.get(t.split(" ")[0])))
    )
    origins = np.sort(saved["origin_row"].dropna().unique().astype(int))
    if len(origins) > ets_origins:
        origins = origins[np.linspace(0, len(origins) - 1, ets_origins).round().astype(int)]
    values = frame["value"].to_numpy(float)
    ets = ets_intervals(values, origins, series.horizon, series.season)
    chosen = saved[saved["origin_row"].isin(origins)].sort_values(["origin_row", "step"])
    actual = values[origins[:, None] + np.arange(1, series.horizon + 1)]
    out = {}
    for level in LEVELS:
        lo = chosen[f"value_lo_{level}"].to_numpy().reshape(len(origins), series.horizon)
        hi = chosen[f"value_hi_{level}"].to_numpy().reshape(len(origins), series.horizon)
        e_lo, e_hi = ets[level]
        out[f"ets_{level}"] = {
            "model_score": winkler(actual, lo, hi, level),
            "ets_score": winkler(actual, e_lo, e_hi, level),
            "ets_coverage": float(np.nanmean((actual >= e_lo) & (actual <= e_hi))),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="group", default="dev")
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--override", action="append", default=[])
    parser.add_argument("--ets-origins", type=int, default=30)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    chosen = [
        s
        for s in SERIES
        if (args.group == "all" or s.group == args.group) and (not args.only or s.name in args.only)
    ]
    print(
        f"{'series':18} {'cov80':>6} {'base80':>6} {'cov95':>6} {'base95':>6} "
        f"{'IS80':>9} {'base':>9} {'ETS':>9} {'IS95':>9} {'base':>9} {'ETS':>9} {'s':>5}"
    )
    results = []
    for series in chosen:
        try:
            series.load()
        except (ImportError, FileNotFoundError, KeyError) as e:
            print(f"{series.name:18} not available ({type(e).__name__})")
            continue
        r = run_series(series, args.override, args.ets_origins)
        results.append(r)
        if "error" in r:
            print(f"{series.name:18} error: {r['error']}")
            continue
        cells = []
        for level in LEVELS:
            m, b = r[f"{level}"]["model"], r[f"{level}"]["baseline"] or {}
            cells.append((m["coverage"], b.get("coverage", math.nan)))
        scores = []
        for level in LEVELS:
            m, b = r[f"{level}"]["model"], r[f"{level}"]["baseline"] or {}
            ets = r.get(f"ets_{level}", {})
            ratio = ets.get("ets_score", math.nan) / ets["model_score"] if ets else math.nan
            scores.append((m["interval_score"], b.get("interval_score", math.nan), ratio))
        print(
            f"{series.name:18} {cells[0][0]:>6.2f} {cells[0][1]:>6.2f} {cells[1][0]:>6.2f} "
            f"{cells[1][1]:>6.2f} {scores[0][0]:>9.4g} {scores[0][1]:>9.4g} "
            f"{scores[0][2]:>9.2f} {scores[1][0]:>9.4g} {scores[1][1]:>9.4g} "
            f"{scores[1][2]:>9.2f} {r['seconds']:>5.1f}",
            flush=True,
        )
    ok = [r for r in results if "error" not in r]
    if ok:
        for level in LEVELS:
            cover = [r[f"{level}"]["model"]["coverage"] for r in ok]
            beats = sum(
                r[f"{level}"]["model"]["interval_score"]
                < (r[f"{level}"]["baseline"] or {}).get("interval_score", math.inf)
                for r in ok
            )
            within = sum(abs(c - level / 100) <= 0.05 for c in cover)
            print(
                f"{level}%: median coverage {np.median(cover):.3f}; within 5 points on "
                f"{within} of {len(ok)}; interval score below the baseline's on {beats} of "
                f"{len(ok)}"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
