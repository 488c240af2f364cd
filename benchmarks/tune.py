"""`lstmcli tune` on public series: does a short study beat the defaults, and how fast is it?

For each series of benchmarks/accuracy_suite.py chosen (by default a few of the holdout and
fresh sets, which the defaults were not chosen on), with only the data keys set (`split:
0.75`, so the test part is the last 25% of rows):

1. `lstmcli train`: the defaults' test RMSE;
2. `lstmcli tune --trials N` (the default space, the val part `auto` carves): wall time,
   trials per minute, how many were pruned, and the best config's test RMSE (its `best` run,
   scored on the test part once, after the search).

Selection never sees the test part, so "tuned beats default" here is an honest outcome, not
a fit to it. Run alone (two torch processes on 2 cores slow each other many times over).

  python benchmarks/tune.py
  python benchmarks/tune.py --only nottem ausbeer --trials 30
  python benchmarks/tune.py --folds 3          # each trial scored on 3 validation cuts
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy_suite import SERIES, last_error, train_series  # noqa: E402

DEFAULT_SERIES = ["nottem", "ausbeer", "UKDriverDeaths", "treering", "inflation_dp"]


def lstmcli(*args: str) -> tuple[int, float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "lstmcli", *args], capture_output=True, text=True)
    return done.returncode, time.perf_counter() - started, done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=DEFAULT_SERIES)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--folds", type=int, default=1, help="tune.folds: validation cuts")
    args = parser.parse_args()
    print(
        f"{'series':16} {'rows':>5} {'default':>9} {'tuned':>9} {'ratio':>6} "
        f"{'study s':>8} {'trials/min':>10} {'pruned':>6} {'failed':>6}"
    )
    ratios, seconds = [], []
    for series in SERIES:
        if series.name not in args.only:
            continue
        try:
            frame = series.load().reset_index(drop=True)
        except (ImportError, FileNotFoundError, KeyError) as e:
            print(f"{series.name:16} not available ({type(e).__name__})")
            continue
        folder, done, _ = train_series(series, frame, {}, [], "tune")  # the defaults
        if done.returncode:
            print(f"{series.name:16} train failed: {last_error(done)}")
            continue
        default = json.loads((folder / "run" / "metrics.json").read_text())["model"]["rmse"]
        code, took, err = lstmcli("tune", "-c", str(folder / "run.yaml"), "-o",
                                  str(folder / "study"), "-q", "--trials", str(args.trials),
                                  "--jobs", str(args.jobs), "--set",
                                  f"tune.folds={args.folds}")  # fmt: skip
        if code:
            print(f"{series.name:16} tune failed: {err.strip().splitlines()[-1]}")
            continue
        tuned = json.loads((folder / "study" / "best" / "metrics.json").read_text())
        trials = pd.read_csv(folder / "study" / "trials.csv")
        ratio = tuned["model"]["rmse"] / default
        ratios.append(ratio)
        seconds.append(took)
        print(
            f"{series.name:16} {len(frame):>5} {default:>9.4g} {tuned['model']['rmse']:>9.4g} "
            f"{ratio:>6.3f} {took:>8.1f} {len(trials) / took * 60:>10.1f} "
            f"{(trials['state'] == 'pruned').sum():>6} {(trials['state'] == 'fail').sum():>6}",
            flush=True,
        )
    if ratios:
        print(
            f"tuned below default on {sum(r < 1 for r in ratios)} of {len(ratios)}; geometric "
            f"mean ratio {np.exp(np.mean(np.log(ratios))):.3f}; study seconds median "
            f"{np.median(seconds):.0f}, max {max(seconds):.0f}"
        )


if __name__ == "__main__":
    main()
