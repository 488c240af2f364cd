"""Scores of prediction intervals: coverage, width, the interval (Winkler) score and pinball
loss, against the seasonal-naive baseline's intervals.
"""

from __future__ import annotations

import numpy as np

from lstmcli.use.metrics import Metrics, _mean_or_none, _mean_over, skill


def interval_score(
    actual: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    level: float,
    mase_scale: float | None,
) -> Metrics:
    """coverage (share of actuals inside), mean width, the interval (Winkler) score and MSIS
    (the interval score over the in-sample naive error, like MASE) of central intervals at
    `level` percent. Cells whose actual is NaN (made up by data.missing) are not scored."""
    actual = np.asarray(actual, np.float64).ravel()
    lower = np.asarray(lower, np.float64).ravel()
    upper = np.asarray(upper, np.float64).ravel()
    real = np.isfinite(actual)
    actual, lower, upper = actual[real], lower[real], upper[real]
    if not len(actual):
        return dict.fromkeys(["coverage", "width", "interval_score", "msis"])
    alpha = 1 - level / 100
    score = (
        (upper - lower)
        + (2 / alpha) * np.maximum(lower - actual, 0)
        + (2 / alpha) * np.maximum(actual - upper, 0)
    )
    mean_score = float(np.mean(score))
    return {
        "coverage": float(np.mean((actual >= lower) & (actual <= upper))),
        "width": float(np.mean(upper - lower)),
        "interval_score": mean_score,
        "msis": mean_score / mase_scale if mase_scale else None,
    }


def interval_report(
    actual: np.ndarray,
    bounds: dict[float, tuple[np.ndarray, np.ndarray]],
    target_names: list[str],
    scales: list[float | None],
) -> dict:
    """`interval_score` per level over all steps, per target (several targets: the top level
    keeps coverage and msis, which do not depend on units) and per step."""
    out: dict = {}
    for level, (lower, upper) in bounds.items():
        per_target = {
            name: interval_score(actual[..., j], lower[..., j], upper[..., j], level, scales[j])
            for j, name in enumerate(target_names)
        }
        entry: dict = dict(per_target[target_names[0]])
        if len(target_names) > 1:
            entry = {
                k: v
                for k, v in _mean_over(per_target.values()).items()
                if k in ("coverage", "msis")
            }
            entry["per_target"] = per_target
        if actual.shape[1] > 1:
            entry["per_step"] = {
                str(k + 1): _mean_over(
                    [
                        interval_score(
                            actual[:, k, j], lower[:, k, j], upper[:, k, j], level, scales[j]
                        )
                        for j in range(len(target_names))
                    ]
                )
                for k in range(actual.shape[1])
            }
        out[f"{level:g}"] = entry
    return out


def compare_intervals(
    actual: np.ndarray,
    model: dict[float, tuple[np.ndarray, np.ndarray]],
    baselines: dict[str, dict[float, tuple[np.ndarray, np.ndarray]]],
    target_names: list[str],
    scales: list[float | None],
) -> dict:
    """The model's intervals and each baseline's on the same targets, and the model's skill
    per level: 1 - its interval score / the baseline's (several targets: their mean)."""
    ours = interval_report(actual, model, target_names, scales)
    theirs = {
        name: interval_report(actual, b, target_names, scales) for name, b in baselines.items()
    }
    skills: dict = {}
    for level in model:
        key = f"{level:g}"
        skills[key] = {}
        for name in baselines:
            values = []
            for j in range(len(target_names)):
                mine = interval_score(actual[..., j], *_pair(model[level], j), level, None)
                base = interval_score(
                    actual[..., j], *_pair(baselines[name][level], j), level, None
                )
                values.append(skill(mine["interval_score"], base["interval_score"]))
            skills[key][name] = _mean_or_none(values)
    return {"model": ours, "baselines": theirs, "skill": skills}


def _pair(bounds: tuple[np.ndarray, np.ndarray], j: int) -> tuple[np.ndarray, np.ndarray]:
    return bounds[0][..., j], bounds[1][..., j]


def pinball(
    actual: np.ndarray,
    points: np.ndarray,
    bounds: dict[float, tuple[np.ndarray, np.ndarray]],
    scales: np.ndarray | None = None,
) -> float | None:
    """The mean pinball loss of the quantiles a forecast states: the point as the median and
    each level's bounds as its lower and upper quantiles. With `scales` (broadcast against
    the cells: each series' and target's in-sample naive error) every cell's loss is in
    units of its own series, so series of different sizes can be averaged; cells without a
    scale or an actual are left out."""
    quantiles = [(0.5, points)]
    for level, (lower, upper) in bounds.items():
        alpha = 1 - level / 100
        quantiles += [(alpha / 2, lower), (1 - alpha / 2, upper)]
    divide = np.ones_like(actual) if scales is None else np.broadcast_to(scales, actual.shape)
    real = np.isfinite(actual) & np.isfinite(divide) & (divide > 0)
    if not real.any():
        return None
    losses = []
    for q, values in sorted(quantiles, key=lambda item: item[0]):
        error = (actual[real] - values[real]) / divide[real]
        losses.append(np.mean(np.maximum(q * error, (q - 1) * error)))
    return float(np.mean(losses))
