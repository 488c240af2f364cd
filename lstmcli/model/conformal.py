"""Prediction intervals: split-conformal bounds calibrated on many forecast origins.

A forecast's error grows with how restless its series is, so the residuals are measured in
scale-free units: each divided by its window's naive error (the mean absolute change of the
target from one season to the next over the lookback, from row to row without a season or
with a lookback of one season or less; in scaled units), as MASE divides by the in-sample
seasonal naive error. A season's swing is no error a seasonal forecast makes, so it stays out
of the unit. The sizes of the calibration origins' scale-free residuals, per horizon step and
target, give a quantile, and a new window's bounds are its forecast plus and minus that
quantile times its naive error. The origins are every window of the val part (each series'
consecutive forecast origins; a panel's pooled across its series) and, for a run started from
a prior, the prior's own errors on its pretraining series, weighted as PRIOR_WINDOWS windows,
so a short series with a few origins, or none, still gets an honest band. The quantile uses
the finite-sample correction of split conformal prediction, so the stated coverage holds for
exchangeable windows; the test part plays no part.

The bounds are symmetric (the absolute residual is the conformity score): a validation part
is short and often drifts one way, and signed quantiles from it put the whole band on one side
of the forecast, even excluding the forecast itself, when the drift turns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from lstmcli.model.bands import ScaledOutputs

if TYPE_CHECKING:
    import torch


PRIOR_WINDOWS = 20  # the weight of a prior's errors beside the run's own val windows


GRID = 201  # stored quantiles of the pooled absolute standardized residuals (0%, 0.5%, ...)


ADAPT_RATE = 0.05  # adaptive conformal inference: how fast a miss moves the level


ROUNDING = 1e-6  # relative: how close to a bound float32 forecasts leave an actual undecided


@dataclass
class Calibration:
    """Conformal bounds (`model.intervals: conformal`): quantiles of the pooled absolute
    standardized residuals (GRID, targets), each step's size (steps, targets),
    the samples pooled.

    Every interval method offers what this class does: `fit` from the val part's scaled
    outputs, `tensors` (its constants, which the forecaster keeps as buffers so that an ONNX
    export holds them), `scaled_bounds` in torch, `to_dict` / `from_dict` for the checkpoint;
    `from_quantiles` says whether it reads a quantile head, `adapts` whether rolling
    backtests adapt it (`adaptive_bounds`), `scale` what its widths are in units of (the
    window's scale the forecaster passes to `scaled_bounds`: see SCALES)."""

    levels: list[float]
    grid: np.ndarray
    size: np.ndarray  # each step's size (steps, targets): mean absolute scale-free residual
    samples: int
    windows: int  # validation windows (forecast origins) they came from
    scale: str = "spread"  # what residuals are divided by (SCALES); older checkpoints: spread
    prior_windows: int = 0  # the weight, in windows, of a prior's errors pooled in

    from_quantiles: ClassVar[bool] = False
    adapts: ClassVar[bool] = True

    @staticmethod
    def needs_val_part(conformalize: bool) -> bool:
        """Conformal bounds are the val part's misses (or a prior's own errors)."""
        return True

    @classmethod
    def fit(
        cls,
        levels: list[float],
        n_targets: int,
        outputs: ScaledOutputs | None,
        actual: torch.Tensor | None,
        prior: Calibration | None = None,
        steps: int | None = None,
    ) -> Calibration:
        """From the val windows' residuals in units of each window's naive error, pooled
        with a prior's errors when there is one (its errors alone, for `steps` horizon
        steps, without val windows)."""
        if outputs is None or actual is None:
            standardized = np.empty((0, steps or prior.size.shape[0], n_targets))
        else:
            standardized = ((actual - outputs.point.float()) / outputs.spread).cpu().numpy()
        return calibrate(standardized, levels, prior)

    def tensors(self) -> dict[str, np.ndarray]:
        """Each level's half width (levels, steps, targets) in units of a window's scale."""
        return {
            "half": np.stack([self.quantile(self.share(level))[None, :] * self.size
                              for level in self.levels])
        }  # fmt: skip

    def scaled_bounds(
        self, point: torch.Tensor, spread: torch.Tensor, quantiles: torch.Tensor | None,
        tensors: dict[str, torch.Tensor],
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:  # fmt: skip
        """Each level's (lower, upper): the forecast minus and plus its half width times the
        window's spread."""
        half = tensors["half"].to(point.dtype)
        return [(point - half[k][None] * spread, point + half[k][None] * spread)
                for k in range(len(self.levels))]  # fmt: skip

    def adaptive_bounds(
        self, point: np.ndarray, spread: np.ndarray, actual: np.ndarray, series: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """The bounds of a rolling backtest, adapted to misses as actuals arrive."""
        bounds = adaptive_bounds(point, spread, actual, series, self)
        return [bounds[level] for level in self.levels]

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

    def report(self) -> dict[str, Any]:
        """What metrics.json says about the calibration: its origins and weights."""
        return {
            "method": "conformal",
            "scale": self.scale,
            "val_origins": self.windows,
            "scores": self.samples,
            "prior_windows": self.prior_windows,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "conformal",
            "levels": list(self.levels),
            "grid": self.grid.tolist(),
            "rms": self.size.tolist(),  # the step sizes, under the key versions before wrote
            "samples": self.samples,
            "windows": self.windows,
            "scale": self.scale,
            "prior_windows": self.prior_windows,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        return cls(
            [float(v) for v in d["levels"]],
            np.asarray(d["grid"], np.float64),
            np.asarray(d["rms"], np.float64),
            int(d["samples"]),
            int(d["windows"]),
            str(d.get("scale", "spread")),
            int(d.get("prior_windows", 0)),
        )


def calibrate(
    standardized: np.ndarray, levels: list[float], prior: Calibration | None = None
) -> Calibration:
    """A calibration from scale-free residuals (windows, steps, targets), pooled with a
    prior's calibration (weighted as PRIOR_WINDOWS windows) when given.

    A validation part holds few windows (13 of 12 months in a 144-month series): too few for
    the tails of each step on its own. So each step's residuals are divided by the step's
    size (their mean absolute value: robust to the heavy tails of errors pooled over many
    series, where a root mean square follows a few runaways), the steps are pooled (windows x
    steps samples per target), and a bound is a pooled quantile times the step's size: the
    shape of the error is shared, its size grows with the step. A prior's errors join as a
    weighted sample (its grid at each step's size), so each step's size and the pooled shape
    are the weighted mix of the run's and the prior's."""
    windows, steps, targets = standardized.shape
    finite = np.isfinite(standardized)
    counts = finite.sum(axis=0)  # (steps, targets): own windows per step
    own_size = np.abs(np.where(finite, standardized, 0.0)).sum(axis=0)
    weight = PRIOR_WINDOWS if prior is not None else 0
    prior_size = prior.size[:steps] if prior is not None else np.zeros((steps, targets))
    size = (own_size + weight * prior_size) / np.maximum(counts + weight, 1)
    size = np.where(size > 0, size, 1.0)
    grid = np.empty((GRID, targets))
    shares = np.linspace(0, 1, GRID)
    for j in range(targets):
        values = [np.abs(standardized[:, :, j] / size[None, :, j])[finite[:, :, j]]]
        weights = [np.ones(len(values[0]))]
        if prior is not None:  # the prior's grid at each step, as weight x steps samples
            for h in range(steps):
                values.append(prior.grid[:, j] * prior_size[h, j] / size[h, j])
                weights.append(np.full(len(prior.grid), weight / len(prior.grid)))
        grid[:, j] = weighted_quantiles(np.concatenate(values), np.concatenate(weights), shares)
    samples = int(counts.sum(axis=0).min()) + weight * steps
    return Calibration(list(levels), grid, size, samples, windows, "naive", weight)


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Quantiles of a weighted sample (interpolated between the sorted values, as
    np.quantile's default is for equal weights)."""
    order = np.argsort(values)
    values, weights = values[order], weights[order]
    cumulative = np.cumsum(weights) - weights / 2  # each value at the middle of its weight
    positions = (cumulative - cumulative[0]) / max(cumulative[-1] - cumulative[0], 1e-12)
    if len(values) == 1:
        return np.full_like(shares, values[0])
    return np.interp(shares, positions, values)


def adaptive_bounds(
    predicted: np.ndarray,
    spread: np.ndarray,
    actual: np.ndarray,
    series: np.ndarray,
    calibration: Calibration,
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """The bounds of a rolling backtest, adapted as actuals arrive (adaptive conformal
    inference, Gibbs & Candes 2021). Windows are consecutive origins in time order within each
    series (`series`: each window's); step h of window j is known at window j + h + 1, and from
    then on a miss widens that step's intervals and a hit narrows them, at ADAPT_RATE. Only
    actuals known at a window's origin move it; NaN actuals (unknown, made up) move nothing;
    each series starts from the calibration. Each level adapts on its own, but the bands stay
    nested on every row: a level's half width is at least the narrower levels' (a wider level
    that hits have narrowed is held at the narrower one), and each level's misses are counted
    on the bands as given."""
    n, steps, targets = predicted.shape
    size = calibration.size[:steps]
    levels = sorted(calibration.levels)
    alphas = np.array([1 - level / 100 for level in levels])[:, None]
    base = np.array([calibration.share(level) for level in levels])[:, None, None]
    halves = np.empty((len(levels), *predicted.shape))
    missed = np.full((len(levels), *predicted.shape), np.nan)
    shift = np.zeros((len(levels), steps, targets))
    start = 0
    for i in range(n):
        if i and series[i] != series[i - 1]:
            shift[:], start = 0.0, i
        for h in range(steps):  # the actuals that became known at this origin
            j = i - h - 1
            if j >= start:
                known = np.isfinite(missed[:, j, h])
                if known.any():
                    moved = ADAPT_RATE * (np.nan_to_num(missed[:, j, h]) - alphas)
                    shift[:, h] += np.where(known, moved, 0.0)
        # misses move the share up (wider bounds), hits down; nested across levels
        shares = np.clip(base + shift, 0, 1)
        half = np.stack([calibration.quantile_at(share) for share in shares]) * size * spread[i]
        half = np.maximum.accumulate(half, axis=0)
        halves[:, i] = half
        # an actual within float32's rounding of a bound counts as inside: a miss decided by
        # rounding would steer every later band (and differ between torch and ONNX)
        slack = ROUNDING * (1 + np.abs(predicted[i]))
        outside = (actual[i] < predicted[i] - half - slack) | (
            actual[i] > predicted[i] + half + slack
        )
        missed[:, i] = np.where(np.isfinite(actual[i]), outside, np.nan)
    return {level: (predicted - halves[k], predicted + halves[k]) for k, level in enumerate(levels)}
