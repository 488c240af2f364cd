"""Time to a model with the defaults, before and after: wall time and test error, one table.

Each case is one `lstmcli train` with only the data keys a new user sets (as the accuracy
suite's series: path, time column, target, season, horizon, split 0.75; the quick start: its
own config), timed as a user waits for it (the process, start-up included). The same case
runs twice: with the lstmcli of a baseline commit (`--baseline REF`, checked out into a
temporary worktree and put first on PYTHONPATH) and with this checkout's. Baseline results are
cached per commit (`--cache`), since they do not change.

Cases: the quick start (and the same data with one member, for what an ensemble costs);
half-hourly electricity demand (pmdarima's taylor, 4,032 rows) with the day (48) and the week
(336) as the season; the same demand summed to hours with 24 and 168; Microsoft's daily
closes (7,983 business days, season 5). `--suite` adds the accuracy suite's sets (wins over
the better naive, geometric mean of RMSE / Holt-Winters and median seconds per set).

  python benchmarks/time_to_model.py                         # the cases, baseline cached
  python benchmarks/time_to_model.py --only quickstart quickstart_1member
  python benchmarks/time_to_model.py --suite                 # also every suite series
Run it alone on the machine: two torch processes side by side slow each other down.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accuracy_suite as suite  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "05b766a"  # main before the speed work (#26)


@dataclass
class Case:
    name: str
    load: Callable[[], pd.DataFrame] | None  # None: the quick start's own config
    season: int | None = None
    horizon: int = 1
    overrides: tuple[str, ...] = ()


def _taylor_hourly() -> pd.DataFrame:
    """Half-hourly demand summed to hours (2,016 rows)."""
    halves = suite._pmdarima("taylor", "2000-06-05", "30min")()["value"].to_numpy()
    return suite._dated(halves.reshape(-1, 2).sum(axis=1), "2000-06-05", "h")


def _msft_daily() -> pd.DataFrame:
    return suite._msft_close()


CASES = [
    Case("quickstart", None),
    Case("quickstart_1member", None, overrides=("training.ensemble=1",)),
    Case("halfhourly_s48", suite._pmdarima("taylor", "2000-06-05", "30min"), 48, 48),
    Case("halfhourly_s336", suite._pmdarima("taylor", "2000-06-05", "30min"), 336, 48),
    Case("hourly_s24", _taylor_hourly, 24, 24),
    Case("hourly_s168", _taylor_hourly, 168, 24),
    Case("daily_msft_s5", _msft_daily, 5, 5),
]


def worktree(ref: str) -> Path:
    """The baseline's source in a temporary git worktree (removed by `git worktree prune`
    once the folder is gone)."""
    commit = subprocess.run(["git", "rev-parse", ref], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.strip()  # fmt: skip
    folder = Path(tempfile.gettempdir()) / f"lstmcli-baseline-{commit[:10]}"
    if not (folder / "lstmcli").is_dir():
        subprocess.run(["git", "worktree", "prune"], cwd=ROOT, check=True)
        subprocess.run(["git", "worktree", "add", "--detach", str(folder), commit], cwd=ROOT,
                       check=True, capture_output=True)  # fmt: skip
    return folder


def run_case(case: Case, source: Path, seed: int) -> dict:
    """One `lstmcli train` of the case with the lstmcli in `source`: seconds and test RMSE."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    folder = Path(tempfile.mkdtemp(prefix=f"ttm-{case.name}-"))
    if case.load is None:
        config = ROOT / "configs" / "quickstart.yaml"
        rows = None
    else:
        frame = case.load().reset_index(drop=True)
        frame.to_csv(folder / "data.csv", index=False)
        series = suite.Series(case.name, "", lambda: frame, case.season, case.horizon)
        data_keys = suite.data_keys(series, folder / "data.csv")
        (folder / "run.yaml").write_text(json.dumps({"data": data_keys}))
        config, rows = folder / "run.yaml", len(frame)
    command = [sys.executable, "-m", "lstmcli", "train", "-c", str(config), "-o",
               str(folder / "run"), "-q", "--set", f"training.seed={seed}"]  # fmt: skip
    for item in case.overrides:
        command += ["--set", item]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=folder)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        return {"error": suite.last_error(done), "seconds": seconds}
    metrics = json.loads((folder / "run" / "metrics.json").read_text())
    return {"seconds": seconds, "rmse": metrics["model"]["rmse"], "rows": rows,
            "resolved": suite._resolved(folder / "run" / "config.yaml")}  # fmt: skip


def cached(cache: Path, key: str, compute: Callable[[], dict]) -> dict:
    path = cache / f"{key}.json"
    if path.is_file():
        return json.loads(path.read_text())
    result = compute()
    if "error" not in result:
        cache.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result))
    return result


def suite_sets(source: Path, seed: int) -> list[dict]:
    """Every available accuracy-suite series trained with the lstmcli in `source`."""
    os.environ["PYTHONPATH"] = str(source)  # train_series runs lstmcli with this environment
    os.chdir(tempfile.gettempdir())  # `python -m` puts the current folder first on the path
    results = []
    for series in suite.SERIES:
        try:
            series.load()
        except (ImportError, FileNotFoundError, KeyError):
            continue
        result = suite.run_series(series, [], 60, seed)
        print(f"  {series.name}: {result.get('seconds', math.nan):.1f} s, "
              f"RMSE {result.get('model', math.nan):.5g}", file=sys.stderr)  # fmt: skip
        results.append(result)
    os.environ.pop("PYTHONPATH")
    return results


def summarize(results: list[dict]) -> dict[str, dict]:
    """Per set: wins over the better naive, geometric mean RMSE / Holt-Winters, median s."""
    out = {}
    for group in dict.fromkeys(r.get("group") for r in results if "error" not in r):
        part = [r for r in results if r.get("group") == group]
        wins = sum(r["model"] < min(v for v in (r["naive"], r["seasonal_naive"]) if v is not None)
                   for r in part)  # fmt: skip
        ratios = [r["model_on_hw_origins"] / r["holt_winters"] for r in part if "holt_winters" in r]
        geo = math.exp(np.mean(np.log(ratios))) if ratios else math.nan
        out[group] = {"n": len(part), "wins": wins, "ratio": geo,
                      "median_s": float(np.median([r["seconds"] for r in part]))}  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE, help="git ref to compare against")
    parser.add_argument("--only", nargs="*", help="case names")
    parser.add_argument("--suite", action="store_true", help="also the accuracy suite's sets")
    parser.add_argument("--no-cases", action="store_true", help="the suite only")
    parser.add_argument(
        "--before-only",
        action="store_true",
        help="only fill the baseline's cache (run it once, alone)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cache", type=Path,
                        default=Path(tempfile.gettempdir()) / "lstmcli-time-to-model")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    args.cache, args.json = args.cache.resolve(), args.json and args.json.resolve()
    base = worktree(args.baseline)
    cache = args.cache / base.name
    out: dict = {"baseline": args.baseline, "cases": {}, "suite": {}}
    cases = [] if args.no_cases else [c for c in CASES if not args.only or c.name in args.only]
    if cases:
        print(f"{'case':20} {'rows':>5} {'m':>4} {'h':>3} {'before s':>9} {'after s':>8} "
              f"{'x':>5} {'before rmse':>11} {'after rmse':>10}  after: resolved")  # fmt: skip
    for case in cases:
        key = f"{case.name}-{args.seed}"
        before = cached(cache, key, lambda c=case: run_case(c, base, args.seed))
        if args.before_only:
            print(f"{case.name:20} before {before.get('seconds', math.nan):.1f} s", flush=True)
            continue
        after = run_case(case, ROOT, args.seed)
        out["cases"][case.name] = {"before": before, "after": after}
        if "error" in before or "error" in after:
            print(f"{case.name:20} error: {before.get('error') or after.get('error')}")
            continue
        print(
            f"{case.name:20} {after['rows'] or '-':>5} {case.season or '-':>4} "
            f"{case.horizon if case.load else 52:>3} {before['seconds']:>9.1f} "
            f"{after['seconds']:>8.1f} {before['seconds'] / after['seconds']:>5.1f} "
            f"{before['rmse']:>11.4g} {after['rmse']:>10.4g}  {after['resolved']}",
            flush=True,
        )
    if args.suite:
        before = cached(cache, f"suite-{args.seed}", lambda: {"runs": suite_sets(base, args.seed)})
        if args.before_only:
            return
        after = suite_sets(ROOT, args.seed)
        old, new = summarize(before["runs"]), summarize(after)
        print(f"\n{'suite set':10} {'n':>3} {'wins before/after':>18} "
              f"{'RMSE/HW before/after':>21} {'median s before/after':>22}")  # fmt: skip
        for group in old:
            a, b = old[group], new.get(group, {})
            print(f"{group:10} {a['n']:>3} {a['wins']:>9}/{b.get('wins', '-'):<8} "
                  f"{a['ratio']:>10.3f}/{b.get('ratio', math.nan):<10.3f} "
                  f"{a['median_s']:>11.1f}/{b.get('median_s', math.nan):<10.1f}")  # fmt: skip
        out["suite"] = {
            "before": old,
            "after": new,
            "runs": {"before": before["runs"], "after": after},
        }
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
