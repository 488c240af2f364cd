"""One global run over a whole competition group, against statsforecast's models and the same
series run one by one.

Every series of a group (all 427 of Tourism quarterly, say) goes into one CSV, as a user with
many related series writes it: an id column, dates at the group's frequency (every series
ending on the same date), the value. One run with the data keys only (`id_column`,
`time_column`, `target`, `horizon`, `split.test_start` at the first test row, common to all)
learns across the series; its test part is each series' one origin at the end of its own
training rows, the competition's horizon. On the same series, in the same run: statsforecast's
AutoETS, AutoARIMA, AutoTheta and their mean (SF-ens), seasonal naive, and with `--alone` the
scores of lstmcli run on each series alone (a `competition.py --json` file of the same series).
MASE as in competition.py (the in-sample seasonal naive error over the training part), mean
over series; runaways are MASE above twice the better naive's.

M3 is the development set; M1 and Tourism are check sets (nothing is chosen on them).

  python benchmarks/competition.py --collection tourism --groups quarterly --json alone.json
  python benchmarks/global_panel.py --collection tourism --group quarterly --alone alone.json
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
from competition import FREQ, collection, naive, sample, season_of
from statsforecast_reference import MODELS, references

END = "2020-01-01"  # every series' last test row


def panel_frame(series: list) -> tuple[pd.DataFrame, str]:
    """The group as one long CSV (id, date, value) and the first test date, common to all."""
    freq = FREQ[series[0].type]
    parts = []
    for s in series:
        values = np.concatenate([np.asarray(s.x, float), np.asarray(s.xx, float)])
        dates = pd.date_range(end=END, periods=len(values), freq=freq).strftime("%Y-%m-%d")
        parts.append(pd.DataFrame({"id": s.sn, "date": dates, "value": values}))
    test_start = pd.date_range(end=END, periods=int(series[0].h), freq=freq)[0]
    return pd.concat(parts, ignore_index=True), test_start.strftime("%Y-%m-%d")


def global_forecasts(series: list, seed: int, overrides: list[str]) -> tuple[dict, float]:
    """Each series' forecast from the one global run, and its seconds."""
    from lstmcli.config.edit import edit_config, validate_config
    from lstmcli.run.pipeline import train_run

    frame, test_start = panel_frame(series)
    with tempfile.TemporaryDirectory(prefix="global-panel-") as tmp:
        csv = Path(tmp) / "panel.csv"
        frame.to_csv(csv, index=False)
        data = {"path": str(csv), "id_column": "id", "time_column": "date", "target": "value",
                "horizon": int(series[0].h), "split": {"test_start": test_start}}  # fmt: skip
        config = validate_config({"data": data, "training": {"seed": seed}})
        if overrides:
            config = edit_config(config, dict(o.split("=", 1) for o in overrides), "--set")
        started = time.perf_counter()
        train_run(config, Path(tmp) / "run")
        seconds = time.perf_counter() - started
        predictions = pd.read_csv(Path(tmp) / "run" / "test_predictions.csv", dtype={"id": str})
    out = {}
    for sn, rows in predictions.groupby("id"):
        first = rows[rows["origin"] == rows["origin"].min()].sort_values("step")
        out[sn] = first["value"].to_numpy()
    return out, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", choices=["m3", "m1", "tourism"], default="tourism")
    parser.add_argument("--group", choices=list(FREQ), default="quarterly")
    parser.add_argument("--sample", type=int, help="this many series of the group (seeded)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--alone", type=Path, help="competition.py --json of the same series")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="a config override for the global run (key=value)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="write every series' MASE here")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(2)
    warnings.simplefilter("ignore")
    series = [s for s in collection(args.collection) if s.type == args.group]
    series = sample(series, args.sample, args.seed)
    forecasts, seconds = global_forecasts(series, args.seed, args.overrides)
    alone = {}
    if args.alone:
        alone = {r["sn"]: r for r in json.loads(args.alone.read_text())["series"]}
    rows = []
    for s in series:
        x, actual, h = np.asarray(s.x, float), np.asarray(s.xx, float), int(s.h)
        season = season_of(s) or 1
        lag = season if len(x) > season else 1
        scale = np.mean(np.abs(x[lag:] - x[:-lag]))
        methods = references(x, h, season)
        methods["seasonal_naive"] = naive(x, h, lag)
        methods["naive"] = naive(x, h, 1)
        if s.sn in forecasts:
            methods["global"] = forecasts[s.sn][:h]
        mase = {k: float(np.mean(np.abs(actual - f)) / scale) for k, f in methods.items()}
        if s.sn in alone and "lstmcli" in alone[s.sn]:
            mase["alone"] = alone[s.sn]["lstmcli"]["mase"]
        rows.append({"sn": s.sn, **mase})
    columns = ["global", "alone", *MODELS, "sf_ens", "seasonal_naive"]
    scored = [r for r in rows if "global" in r]
    print(f"\n{args.collection} {args.group}: {len(scored)} of {len(series)} series in one run, "
          f"{seconds:.0f} s; mean MASE")  # fmt: skip
    for column in columns:
        values = [r[column] for r in scored if column in r]
        if values:
            print(f"  {column:<15}{np.mean(values):8.3f}  ({len(values)} series)")
    best_naive = [min(r["naive"], r["seasonal_naive"]) for r in scored]
    for column in ("global", "alone", "sf_ens"):
        pairs = [(r[column], b) for r, b in zip(scored, best_naive, strict=True) if column in r]
        if pairs:
            print(f"  {column}: beats the better naive on {sum(m < b for m, b in pairs)}, "
                  f"runaways {sum(m > 2 * b for m, b in pairs)}")  # fmt: skip
    wins = sum(r["global"] < r["sf_ens"] for r in scored)
    print(f"  global beats SF-ens on {wins} of {len(scored)}")
    if args.json:
        args.json.write_text(json.dumps({"seconds": seconds, "series": rows}, indent=1))
    if any("alone" in r for r in scored):
        both = [r for r in scored if "alone" in r]
        print(f"  global beats alone on {sum(r['global'] < r['alone'] for r in both)} of "
              f"{len(both)}")  # fmt: skip


if __name__ == "__main__":
    main()
