"""Prediction intervals: split-conformal bounds calibrated on the validation windows.

A forecast's error grows with how restless its series is, so the residuals are measured in
units of each window's own spread (the standard deviation of the target over the window, in
scaled units): the sizes of the validation windows' standardized residuals, per horizon step
and target, give a quantile, and a new window's bounds are its forecast plus and minus that
quantile times its spread. The quantile uses the finite-sample correction of split conformal
prediction, so the stated coverage holds for exchangeable windows; the test part plays no part.

The bounds are symmetric (the absolute residual is the conformity score): a validation part
is short and often drifts one way, and signed quantiles from it put the whole band on one side
of the forecast, even excluding the forecast itself, when the drift turns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

SPREAD_FLOOR = 1e-6  # a flat window (scaled units) must not give zero-width bounds


def level_name(level: float) -> str:
    """80 -> "80", 97.5 -> "97.5": as in the output's column names."""
    return f"{level:g}"


GRID = 201  # stored quantiles of the pooled absolute standardized residuals (0%, 0.5%, ...)
ADAPT_RATE = 0.05  # adaptive conformal inference: how fast a miss moves the level


@dataclass
class Calibration:
    """What the bounds are made of: quantiles of the pooled absolute standardized residuals
    (GRID, targets), each step's root mean square (steps, targets), the samples pooled."""

    levels: list[float]
    grid: np.ndarray
    rms: np.ndarray
    samples: int
    windows: int  # validation windows they came from

    def quantile(self, share: float) -> np.ndarray:
        """The pooled quantile at `share` in [0, 1], per target (interpolated on the grid)."""
        positions = np.linspace(0, 1, len(self.grid))
        return np.array([np.interp(share, positions, column) for column in self.grid.T])

    def quantile_at(self, shares: np.ndarray) -> np.ndarray:
        """Pooled quantiles at shares (steps, targets), each target's at its own shares."""
        positions = np.linspace(0, 1, len(self.grid))
        return np.stack(
            [np.interp(shares[:, j], positions, self.grid[:, j]) for j in range(shares.shape[1])],
            axis=1,
        )

    def share(self, level: float) -> float:
        """The pooled share of a level's bound, with split conformal's finite-sample
        correction (the k-th smallest of m scores, k = ceil((m + 1) level))."""
        m = self.samples
        k = min(m, math.ceil((m + 1) * level / 100))
        return (k - 1) / max(m - 1, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "levels": list(self.levels),
            "grid": self.grid.tolist(),
            "rms": self.rms.tolist(),
            "samples": self.samples,
            "windows": self.windows,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        return cls(
            [float(v) for v in d["levels"]],
            np.asarray(d["grid"], np.float64),
            np.asarray(d["rms"], np.float64),
            int(d["samples"]),
            int(d["windows"]),
        )


@dataclass
class QuantileCorrection:
    """For a quantile model: how much to widen (or narrow, when negative) each level's
    bounds, per target, in scaled units: conformalized quantile regression (Romano et al.
    2019) on the validation windows; zeros when not conformalized."""

    levels: list[float]
    correction: np.ndarray  # (levels, targets)
    windows: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "quantile",
            "levels": list(self.levels),
            "correction": self.correction.tolist(),
            "windows": self.windows,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantileCorrection:
        return cls(
            [float(v) for v in d["levels"]],
            np.asarray(d["correction"], np.float64),
            int(d["windows"]),
        )


def load_calibration(d: dict[str, Any] | None) -> Calibration | QuantileCorrection | None:
    """A checkpoint's interval calibration, of either method."""
    if not d:
        return None
    return (
        QuantileCorrection.from_dict(d)
        if d.get("method") == "quantile"
        else (Calibration.from_dict(d))
    )


def quantile_pairs(quantiles: np.ndarray, levels: list[float]) -> dict:
    """Each level's (lower, upper) from a quantile model's outputs (..., 2 x levels + 1):
    the lower bounds widest first, the median, the upper bounds narrowest first."""
    pairs = len(levels)
    return {
        level: (quantiles[..., pairs - 1 - k], quantiles[..., pairs + 1 + k])
        for k, level in enumerate(levels)
    }


def conformalize(
    quantiles: np.ndarray, actual: np.ndarray, levels: list[float]
) -> QuantileCorrection:
    """Conformity scores max(lower - y, y - upper) of the validation windows (pooled over
    windows and steps, per target); the correction of each level is their quantile at the
    level with split conformal's finite-sample correction."""
    correction = []
    for level, (lower, upper) in quantile_pairs(quantiles, levels).items():
        scores = np.maximum(lower - actual, actual - upper).reshape(-1, actual.shape[-1])
        ordered = np.sort(scores, axis=0)
        m = len(ordered)
        k = min(m, math.ceil((m + 1) * level / 100))
        correction.append(ordered[k - 1])
    return QuantileCorrection(list(levels), np.stack(correction), len(actual))


def quantile_bounds(quantiles: np.ndarray, correction: QuantileCorrection) -> dict:
    """Each level's bounds from a quantile model's outputs, widened by the correction."""
    out = {}
    for k, (level, (lower, upper)) in enumerate(
        quantile_pairs(quantiles, correction.levels).items()
    ):
        out[level] = (lower - correction.correction[k], upper + correction.correction[k])
    return out


def window_spread(inputs: torch.Tensor, target_index: list[int]) -> torch.Tensor:
    """(batch, 1, targets): each window's standard deviation of its target values."""
    values = inputs[..., target_index].float()
    return values.std(dim=1, unbiased=False, keepdim=True).clamp_min(SPREAD_FLOOR)


def calibrate(standardized: np.ndarray, levels: list[float]) -> Calibration:
    """A calibration from standardized residuals (windows, steps, targets).

    A validation part holds few windows (13 of 12 months in a 144-month series): too few for
    the tails of each step on its own. So each step's residuals are divided by their own root
    mean square, the steps are pooled (windows x steps samples per target), and a bound is a
    pooled quantile times the step's root mean square: the shape of the error is shared, its
    size grows with the step."""
    rms = np.sqrt(np.mean(standardized**2, axis=0))  # (steps, targets)
    rms = np.where(rms > 0, rms, 1.0)
    pooled = np.abs(standardized / rms[None]).reshape(-1, standardized.shape[2])
    grid = np.quantile(pooled, np.linspace(0, 1, GRID), axis=0)  # (GRID, targets)
    return Calibration(list(levels), grid, rms, len(pooled), len(standardized))


def bounds(
    predicted: np.ndarray, spread: np.ndarray, calibration: Calibration
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Each level's (lower, upper) bounds for forecasts (windows, steps, targets) with their
    windows' spreads (windows, 1, targets), in the same (scaled) units."""
    steps = predicted.shape[1]
    rms = calibration.rms[None, :steps]
    out = {}
    for level in calibration.levels:
        half = calibration.quantile(calibration.share(level)) * rms * spread
        out[level] = (predicted - half, predicted + half)
    return out


def adaptive_bounds(
    predicted: np.ndarray,
    spread: np.ndarray,
    actual: np.ndarray,
    series: np.ndarray,
    calibration: Calibration,
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """`bounds` for a rolling backtest, adapted as actuals arrive (adaptive conformal
    inference, Gibbs & Candes 2021). Windows are consecutive origins in time order within each
    series (`series`: each window's); step h of window j is known at window j + h + 1, and from
    then on a miss widens that step's intervals and a hit narrows them, at ADAPT_RATE. Only
    actuals known at a window's origin move it; NaN actuals (unknown, made up) move nothing;
    each series starts from the calibration."""
    n, steps, targets = predicted.shape
    rms = calibration.rms[:steps]
    out = {}
    for level in calibration.levels:
        alpha = 1 - level / 100
        base = calibration.share(level)  # where every series starts
        lower, upper = np.empty_like(predicted), np.empty_like(predicted)
        missed = np.full(predicted.shape, np.nan)
        shift = np.zeros((steps, targets))
        start = 0
        for i in range(n):
            if i and series[i] != series[i - 1]:
                shift[:], start = 0.0, i
            for h in range(steps):  # the actuals that became known at this origin
                j = i - h - 1
                if j >= start and np.isfinite(missed[j, h]).any():
                    known = np.isfinite(missed[j, h])
                    shift[h, known] += ADAPT_RATE * (missed[j, h, known] - alpha)
            # misses move the share up (wider bounds), hits down
            half = calibration.quantile_at(np.clip(base + shift, 0, 1)) * rms * spread[i]
            lower[i], upper[i] = predicted[i] - half, predicted[i] + half
            outside = (actual[i] < lower[i]) | (actual[i] > upper[i])
            missed[i] = np.where(np.isfinite(actual[i]), outside, np.nan)
        out[level] = (lower, upper)
    return out


def scaled_bounds(
    predicted: np.ndarray,
    spread: np.ndarray,
    actual: np.ndarray | None,
    series: np.ndarray,
    calibration: Calibration,
    adaptive: bool,
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """A rolling backtest's bounds: adapted as actuals arrive when asked and known, else the
    calibration's own."""
    if adaptive and actual is not None:
        return adaptive_bounds(predicted, spread, actual, series, calibration)
    return bounds(predicted, spread, calibration)


def baseline_quantiles(residuals: np.ndarray, levels: list[float]) -> dict[str, list]:
    """Empirical quantiles of a baseline's own residuals (windows, steps, targets) on the
    training rows, per level: the seasonal-naive baseline's intervals."""
    lower, upper = [], []
    for level in levels:
        alpha = 1 - level / 100
        lower.append(np.nanquantile(residuals, alpha / 2, axis=0))
        upper.append(np.nanquantile(residuals, 1 - alpha / 2, axis=0))
    return {
        "levels": list(levels),
        "lower": np.stack(lower).tolist(),
        "upper": np.stack(upper).tolist(),
    }
