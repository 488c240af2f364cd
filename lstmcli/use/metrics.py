"""Forecast metrics in the data's own units, and the naive baselines they are compared with."""

from __future__ import annotations

import math

import numpy as np

Metrics = dict[str, float | None]


Bounds = dict[float, tuple[np.ndarray, np.ndarray]]  # level -> (lower, upper), like the forecasts


def score(actual: np.ndarray, predicted: np.ndarray, mase_scale: float | None) -> Metrics:
    """mae, rmse, smape (%), mase, r2, and mape (%) when no actual value is zero.

    `mase_scale` is the in-sample mean absolute error of the (seasonal) naive forecast on the
    training rows; MASE is left out (None) when it is zero or unknown. Cells whose actual is
    NaN (a value data.missing made up) are not scored; with none left, every metric is None.
    """
    actual = np.asarray(actual, np.float64).ravel()
    predicted = np.asarray(predicted, np.float64).ravel()
    real = np.isfinite(actual)
    actual, predicted = actual[real], predicted[real]
    if not len(actual):
        return dict.fromkeys(["mae", "rmse", "smape", "mase", "r2"])
    error = predicted - actual
    mae = float(np.mean(np.abs(error)))
    denominator = np.abs(actual) + np.abs(predicted)
    ratio = np.divide(
        2 * np.abs(error), denominator, out=np.zeros_like(error), where=denominator > 0
    )
    spread = float(np.sum((actual - actual.mean()) ** 2))
    metrics: Metrics = {
        "mae": mae,
        "rmse": float(np.sqrt(np.mean(error**2))),
        "smape": float(100 * np.mean(ratio)),
        "mase": mae / mase_scale if mase_scale else None,
        "r2": 1 - float(np.sum(error**2)) / spread if spread > 0 else None,
    }
    if np.all(actual != 0):
        metrics["mape"] = float(100 * np.mean(np.abs(error / actual)))
    return metrics


def _naive_errors(
    train_targets: np.ndarray, season: int | None, series: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """|y[t] - y[t-m]| over training rows (m = season, else 1), never across two series;
    and the series of each difference."""
    lag = season or 1
    if len(train_targets) <= lag:
        return np.empty((0, train_targets.shape[1])), np.empty(0, np.int64)
    # NaN where either value was made up by data.missing: such differences are left out
    diffs = np.abs(train_targets[lag:].astype(np.float64) - train_targets[:-lag])
    if series is None:
        return diffs, np.zeros(len(diffs), np.int64)
    same = series[lag:] == series[:-lag]
    return diffs[same], series[lag:][same]


def mase_scales(
    train_targets: np.ndarray, season: int | None, series: np.ndarray | None = None
) -> list[float | None]:
    """Per target: mean |y[t] - y[t-m]| over the training rows (m = season, else 1), within
    each series (`series`: each row's) when there are several."""
    diffs, _ = _naive_errors(train_targets, season, series)
    counts = np.isfinite(diffs).sum(axis=0)
    means = np.nansum(diffs, axis=0) / np.maximum(counts, 1)
    return [float(v) if n and v > 0 else None for v, n in zip(means, counts, strict=True)]


def series_mase_scales(
    train_targets: np.ndarray, season: int | None, series: np.ndarray, n_series: int
) -> np.ndarray:
    """`mase_scales` of each series on its own: (n_series, n_targets), NaN where unknown."""
    diffs, of = _naive_errors(train_targets, season, series)
    sums = np.zeros((n_series, train_targets.shape[1]))
    counts = np.zeros((n_series, train_targets.shape[1]))
    np.add.at(sums, of, np.nan_to_num(diffs))
    np.add.at(counts, of, np.isfinite(diffs))
    with np.errstate(invalid="ignore", divide="ignore"):
        scales = sums / counts
    scales[~(scales > 0)] = np.nan
    return scales


def has_baseline_history(
    anchors: np.ndarray,
    offsets: np.ndarray,
    task: str,
    season: int | None,
    first_rows: np.ndarray | int = 0,
) -> np.ndarray:
    """Which windows have the rows every baseline looks back to (see baseline_predictions),
    inside their own series (`first_rows`: the first row of each window's series)."""
    origins = anchors if task == "forecast" else anchors - 1
    ok = origins >= first_rows
    if season:
        steps_ahead = offsets[None, :] + anchors[:, None] - origins[:, None]
        seasonal_rows = anchors[:, None] + offsets[None, :] - season * np.ceil(steps_ahead / season)
        ok &= seasonal_rows.min(axis=1) >= first_rows
    return ok


def scored_windows(
    anchors: np.ndarray,
    offsets: np.ndarray,
    task: str,
    season: int | None,
    first_rows: np.ndarray | int = 0,
) -> tuple[np.ndarray, int | None]:
    """Which windows to score, and the season the seasonal baseline can use.

    Model and baselines are scored on the same targets, so windows whose baselines would look
    back before their series starts are left out. When no window has a whole season before
    it, the seasonal baseline is dropped (season None) rather than every window.
    """
    if season:
        seasonal = has_baseline_history(anchors, offsets, task, season, first_rows)
        if seasonal.any():
            return seasonal, season
    return has_baseline_history(anchors, offsets, task, None, first_rows), None


def baseline_predictions(
    targets: np.ndarray, anchors: np.ndarray, offsets: np.ndarray, task: str, season: int | None
) -> dict[str, np.ndarray]:
    """Naive and seasonal-naive forecasts for the same target rows as the model's windows.

    The origin is the last row whose target is known: the anchor for forecasting, the row before
    it for regression. naive repeats the origin's value; seasonal-naive takes the value a whole
    number of seasons before each target row, at or before the origin. Returns arrays shaped
    (windows, steps, n_targets), in the units of `targets`.
    """
    origins = anchors if task == "forecast" else anchors - 1
    target_rows = anchors[:, None] + offsets[None, :]
    out: dict[str, np.ndarray] = {}
    if origins.min(initial=0) >= 0:
        out["naive"] = np.repeat(targets[origins][:, None, :], len(offsets), axis=1)
    if season:
        steps_ahead = target_rows - origins[:, None]
        seasonal_rows = target_rows - season * np.ceil(steps_ahead / season).astype(np.int64)
        if seasonal_rows.min(initial=0) >= 0:
            out["seasonal_naive"] = targets[seasonal_rows]
    return out


UNIT_FREE = ("smape", "mase", "r2", "mape")  # comparable across targets in other units


def report(
    actual: np.ndarray,
    predicted: np.ndarray,
    target_names: list[str],
    scales: list[float | None],
) -> dict:
    """Metrics over all steps, per target and (horizon > 1) per step.

    One target: its metrics. Several: the top level holds only unit-free metrics (smape,
    mase, r2, mape) averaged over targets, and each target's full metrics are in `per_target`:
    a mean of errors in GDP dollars and unemployment percent would be GDP's alone.
    """
    per_target = {
        name: score(actual[:, :, j], predicted[:, :, j], scales[j])
        for j, name in enumerate(target_names)
    }
    out: dict = _over_targets(list(per_target.values()))
    if len(target_names) > 1:
        out["per_target"] = per_target
    steps = actual.shape[1]
    if steps > 1:
        out["per_step"] = {
            str(k + 1): _over_targets(
                [
                    score(actual[:, k, j], predicted[:, k, j], scales[j])
                    for j in range(len(target_names))
                ]
            )
            for k in range(steps)
        }
    return out


def _over_targets(items: list[Metrics]) -> Metrics:
    """A target's metrics, or for several the mean over targets of the unit-free ones."""
    if len(items) == 1:
        return dict(items[0])
    return {k: v for k, v in _mean_over(items).items() if k in UNIT_FREE}


def compare(
    actual: np.ndarray,
    predicted: np.ndarray,
    baselines: dict[str, np.ndarray],
    target_names: list[str],
    scales: list[float | None],
) -> dict:
    """The model and each baseline scored on the same targets, and the model's skill: 1 -
    model rmse / baseline rmse, per target; with several targets the mean over targets (and
    each target's in `skill_per_target`)."""
    model = report(actual, predicted, target_names, scales)
    scored = {
        name: report(actual, values, target_names, scales) for name, values in baselines.items()
    }
    if len(target_names) == 1:
        skills = {name: skill(model["rmse"], b["rmse"]) for name, b in scored.items()}
        return {"model": model, "baselines": scored, "skill": skills}
    per_target = {
        target: {
            name: skill(model["per_target"][target]["rmse"], b["per_target"][target]["rmse"])
            for name, b in scored.items()
        }
        for target in target_names
    }
    skills = {name: _mean_or_none([per_target[t][name] for t in target_names]) for name in scored}
    return {
        "model": model,
        "baselines": scored,
        "skill": skills,
        "skill_per_target": per_target,
    }


def _mean_or_none(values: list[float | None]) -> float | None:
    return None if any(v is None for v in values) else float(np.mean(values))


def series_report(
    actual: np.ndarray,
    predicted: np.ndarray,
    baselines: dict[str, np.ndarray],
    window_series: np.ndarray,
    ids: list[str],
    scales: np.ndarray,
) -> dict:
    """Metrics of each series on its own windows, and their aggregate: the mean and median
    over series of each metric, and the share of series where the model's RMSE beats each
    baseline's (of series and targets, with several targets). `window_series` is each
    window's series index into `ids` and `scales` (per-series MASE scales, NaN where
    unknown)."""
    present, groups = np.unique(window_series, return_inverse=True)
    scales = scales[present]
    model_by_target = grouped_scores(actual, predicted, groups, scales)
    model = _combine(model_by_target)
    scored, skills, beats = {}, {}, {}
    for name, values in baselines.items():
        by_target = grouped_scores(actual, values, groups, scales)
        scored[name] = _combine(by_target)
        pairs = [(m["rmse"], b["rmse"]) for m, b in zip(model_by_target, by_target, strict=True)]
        with np.errstate(divide="ignore", invalid="ignore"):
            skills[name] = np.mean([np.where(b > 0, 1 - m / b, np.nan) for m, b in pairs], axis=0)
        beats[name] = float(np.mean([m < b for m, b in pairs]))
    windows = np.bincount(groups, minlength=len(present))

    def row(metrics: dict[str, np.ndarray], k: int) -> Metrics:
        return {key: None if np.isnan(v[k]) else float(v[k]) for key, v in metrics.items()}

    per_series = {}
    for k, series in enumerate(present):
        per_series[ids[series]] = {
            "windows": int(windows[k]),
            "model": row(model, k),
            "baselines": {name: row(m, k) for name, m in scored.items()},
            "skill": {name: None if np.isnan(v[k]) else float(v[k]) for name, v in skills.items()},
        }
    aggregate = {
        "model": _spread(model),
        "baselines": {name: _spread(m) for name, m in scored.items()},
        "beats": beats,
        "worst": _worst_series(model, scored, [ids[k] for k in present]),
    }
    return {"count": len(present), "aggregate": aggregate, "per_series": per_series}


def _worst_series(
    model: dict[str, np.ndarray], baselines: dict[str, dict[str, np.ndarray]], ids: list[str]
) -> dict | None:
    """The series with the highest MASE, beside the better naive baseline's MASE on it: a
    pooled score can look fine while one series is forecast in the wrong units."""
    mase = model.get("mase")
    if mase is None or not np.isfinite(mase).any():
        return None
    k = int(np.nanargmax(mase))
    naive = [float(m["mase"][k]) for m in baselines.values() if np.isfinite(m["mase"][k])]
    return {"id": ids[k], "mase": float(mase[k]), "better_naive_mase": min(naive, default=None)}


def _combine(per_target: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """`_over_targets` for arrays of groups: one target's, or the unit-free means."""
    if len(per_target) == 1:
        return per_target[0]
    return {
        key: np.mean([m[key] for m in per_target], axis=0)
        for key in per_target[0]
        if key in UNIT_FREE
    }


def grouped_scores(
    actual: np.ndarray, predicted: np.ndarray, groups: np.ndarray, scales: np.ndarray
) -> list[dict[str, np.ndarray]]:
    """`score` of every group of windows at once (no loop over groups), for each target: a
    list (one per target) of arrays (groups,) per metric, NaN where `score` gives None. `actual` and
    `predicted` are (windows, steps, targets); `groups` each window's group 0..G-1; `scales`
    (G, targets) the MASE scales."""
    n_groups = len(scales)
    steps, n_targets = actual.shape[1], actual.shape[2]
    rows = np.repeat(groups, steps)  # one row per (window, step)

    per_target: list[dict[str, np.ndarray]] = []
    for j in range(n_targets):
        a = actual[:, :, j].ravel().astype(np.float64)
        real = np.isfinite(a)  # made-up values (NaN) are not scored
        weight = real.astype(np.float64)
        count = np.bincount(rows, weights=weight, minlength=n_groups)
        a = np.where(real, a, 0.0)
        e = np.where(real, predicted[:, :, j].ravel().astype(np.float64) - a, 0.0)

        def per_group(values: np.ndarray, weight: np.ndarray = weight, count: np.ndarray = count):
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.bincount(rows, weights=values * weight, minlength=n_groups) / count

        denominator = np.abs(a) + np.abs(e + a)
        ratio = np.divide(2 * np.abs(e), denominator, out=np.zeros_like(e), where=denominator > 0)
        mae = per_group(np.abs(e))
        mse = per_group(e**2)
        spread = per_group((a - np.nan_to_num(per_group(a))[rows]) ** 2) * count
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(scales[:, j] > 0, scales[:, j], np.nan)
            metrics = {
                "mae": mae,
                "rmse": np.sqrt(mse),
                "smape": 100 * per_group(ratio),
                "mase": mae / scale,
                "r2": np.where(spread > 0, 1 - mse * count / spread, np.nan),
            }
            zeros = np.bincount(rows, weights=(a == 0) & real, minlength=n_groups)
            relative = np.divide(np.abs(e), np.abs(a), out=np.zeros_like(e), where=a != 0)
            metrics["mape"] = np.where(zeros == 0, 100 * per_group(relative), np.nan)
        per_target.append(metrics)
    return per_target


def _spread(metrics: dict[str, np.ndarray]) -> dict:
    """Mean and median over series of each metric (series without a value are left out)."""
    out: dict = {"mean": {}, "median": {}}
    for key, values in metrics.items():
        values = values[np.isfinite(values)]
        out["mean"][key] = float(np.mean(values)) if len(values) else None
        out["median"][key] = float(np.median(values)) if len(values) else None
    return out


def skill(model_rmse: float | None, baseline_rmse: float | None) -> float | None:
    """1 - model_rmse / baseline_rmse: above 0 means the model beats the baseline."""
    if model_rmse is None or baseline_rmse is None or not baseline_rmse > 0:
        return None
    return 1 - model_rmse / baseline_rmse


def _mean_over(items) -> Metrics:
    items = list(items)
    keys = [k for k in items[0] if all(k in m for m in items)]
    out: Metrics = {}
    for key in keys:
        values = [m[key] for m in items]
        out[key] = None if any(v is None for v in values) else float(np.mean(values))
    return out


def json_safe(value):
    """NaN and inf become None, so metrics.json is valid JSON for any reader."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
