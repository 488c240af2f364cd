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

With `--collection m3` (or m1, tourism) it scores competition series the M-competition way
instead (benchmarks/competition.py's protocol: one CSV per series, the data keys a new user
writes, one origin at the end of the training part, the competition's horizon), each with
`model.levels: [80, 95]`, beside damped-trend ETS's intervals (statsmodels, fitted on the
training part) and seasonal naive's (empirical quantiles of its own residuals at each step
over the training part, as lstmcli's baseline). Coverage is pooled over series and steps per
group; the interval score (Winkler) is in MASE units (over the in-sample seasonal-naive
error, as MSIS), a mean over series. Series lstmcli refuses are counted and left out of every
column. M3 is the development collection; M1 and Tourism are only ever scored.

  python benchmarks/intervals.py --collection m3 --sample 300 --json m3-intervals.json
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
import competition  # noqa: E402
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


def competition_series(s, overrides: list[str], seed: int) -> dict:
    """One competition series: lstmcli's, damped ETS's and seasonal naive's 80% and 95%
    bounds at the origin ending the training part, scored against the test part."""
    x, actual, h = np.asarray(s.x, float), np.asarray(s.xx, float), int(s.h)
    season = competition.season_of(s)
    lag = season if season and len(x) > season else 1
    scale = float(np.mean(np.abs(x[lag:] - x[:-lag])))
    row: dict = {"sn": s.sn, "group": s.type, "rows": len(x), "horizon": h}
    bounds = {"seasonal_naive": naive_bounds(x, h, lag)}
    bounds["ets"] = {level: (lo[0], hi[0]) for level, (lo, hi) in
                     ets_intervals(x, np.array([len(x) - 1]), h, season).items()}  # fmt: skip
    model = {"levels": list(LEVELS)}
    predictions, _, row["error"] = competition.lstmcli_predictions(s, overrides, seed, model)
    if predictions is not None:
        row["point_mase"] = float(np.mean(np.abs(predictions["value"] - actual)) / scale)
        bounds["lstmcli"] = {
            level: (predictions[f"value_lo_{level}"], predictions[f"value_hi_{level}"])
            for level in LEVELS
        }
    for method, by_level in bounds.items():
        row[method] = {}
        for level, (lo, hi) in by_level.items():
            inside = (actual >= lo) & (actual <= hi)
            row[method][str(level)] = {
                "covered": int(inside.sum()),
                "steps": h,
                "msis": winkler(actual, lo, hi, level) / scale,
            }
    return row


def naive_bounds(x: np.ndarray, h: int, lag: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Seasonal naive's bounds: its forecast plus the empirical quantiles of its own
    residuals at each step over the training part (a step without two residuals takes the
    last such step's, widened by the square root of the steps)."""
    steps = np.arange(1, h + 1)
    back = lag * np.ceil(steps / lag).astype(int)  # how far back each step's value lies
    forecast = competition.naive(x, h, lag)
    out = {}
    for level in LEVELS:
        alpha = 1 - level / 100
        lo, hi, last = np.full(h, np.nan), np.full(h, np.nan), None
        for k, step in enumerate(steps):
            origins = np.arange(back[k] - 1, len(x) - step)
            residuals = x[origins + step] - x[origins + step - back[k]]
            if len(residuals) >= 2:
                lo[k], hi[k] = np.quantile(residuals, [alpha / 2, 1 - alpha / 2])
                last = k
            elif last is not None:
                widen = math.sqrt(step / steps[last])
                lo[k], hi[k] = lo[last] * widen, hi[last] * widen
        out[level] = (forecast + lo, forecast + hi)
    return out


def competition_summary(rows: list[dict]) -> None:
    """Coverage (pooled over series and steps) and mean MSIS per group, per method."""
    methods = ("lstmcli", "ets", "seasonal_naive")
    print("\ncoverage (pooled over series and steps) / mean interval score in MASE units; "
          "lstmcli's refusals left out of every column")  # fmt: skip
    head = f"{'group':<10}{'n':>5}{'refused':>8}"
    for level in LEVELS:
        head += "".join(f"{m + ' ' + str(level):>22}" for m in methods)
    print(head)
    for group in (*competition.GROUPS, "all"):
        members = [r for r in rows if group in ("all", r["group"])]
        scored = [r for r in members if "lstmcli" in r]
        if not members:
            continue
        line = f"{group:<10}{len(members):>5}{len(members) - len(scored):>8}"
        for level in LEVELS:
            for method in methods:
                cells = [r[method][str(level)] for r in scored]
                if not cells:
                    line += f"{'-':>22}"
                    continue
                covered = sum(c["covered"] for c in cells) / sum(c["steps"] for c in cells)
                msis = np.mean([c["msis"] for c in cells])
                line += f"{covered:>13.3f} {msis:>8.2f}"
        print(line)


def competition_main(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(2)
    series = competition.collection(args.collection)
    series = competition.sample(series, args.sample, args.seed)
    rows = []
    for k, s in enumerate(series, 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            row = competition_series(s, args.override, args.seed)
        rows.append(row)
        shown = row["error"] or " ".join(
            f"{level}% {row['lstmcli'][str(level)]['covered']}/{row['horizon']}" for level in LEVELS
        )
        print(f"[{k}/{len(series)}] {s.sn} {s.type} {row['rows']} rows: {shown}", flush=True)
        if args.json:
            args.json.write_text(json.dumps({"series": rows}, indent=1))
    competition_summary(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="group", default="dev")
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--override", action="append", default=[])
    parser.add_argument("--ets-origins", type=int, default=30)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--collection", choices=["m3", "m1", "tourism"])
    parser.add_argument("--sample", type=int, help="with --collection: a stratified sample")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if args.collection:
        competition_main(args)
        return
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
