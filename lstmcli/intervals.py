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
from typing import Any, ClassVar

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
    """Conformal bounds (`model.intervals: conformal`): quantiles of the pooled absolute
    standardized residuals (GRID, targets), each step's root mean square (steps, targets),
    the samples pooled.

    Every interval method offers what this class does: `fit` from the val part's scaled
    outputs, `tensors` (its constants, which the forecaster keeps as buffers so that an ONNX
    export holds them), `scaled_bounds` in torch, `to_dict` / `from_dict` for the checkpoint;
    `from_quantiles` says whether it reads a quantile head, `adapts` whether rolling
    backtests adapt it (`adaptive_bounds`)."""

    levels: list[float]
    grid: np.ndarray
    rms: np.ndarray
    samples: int
    windows: int  # validation windows they came from

    from_quantiles: ClassVar[bool] = False
    adapts: ClassVar[bool] = True

    @classmethod
    def fit(
        cls, levels: list[float], n_targets: int, outputs: ScaledOutputs, actual: torch.Tensor
    ) -> Calibration:
        """From the val windows' residuals in units of each window's spread."""
        standardized = ((actual - outputs.point.float()) / outputs.spread).cpu().numpy()
        return calibrate(standardized, levels)

    def tensors(self) -> dict[str, np.ndarray]:
        """Each level's half width (levels, steps, targets) in units of a window's spread."""
        return {
            "half": np.stack([self.quantile(self.share(level))[None, :] * self.rms
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "conformal",
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
    samples: int = 0  # conformity scores pooled (windows x steps); 0: not conformalized

    from_quantiles: ClassVar[bool] = True
    adapts: ClassVar[bool] = False

    @classmethod
    def fit(
        cls,
        levels: list[float],
        n_targets: int,
        outputs: ScaledOutputs | None,
        actual: torch.Tensor | None,
    ) -> QuantileCorrection:
        """Conformalized on the val windows; zeros (the quantiles as the head gives them)
        without them."""
        if outputs is None or actual is None:
            return cls(list(levels), np.zeros((len(levels), n_targets)), 0)
        quantiles = outputs.quantiles.float().cpu().numpy()
        return conformalize(quantiles, actual.float().cpu().numpy(), list(levels))

    def tensors(self) -> dict[str, np.ndarray]:
        return {"correction": self.correction}

    def scaled_bounds(
        self, point: torch.Tensor, spread: torch.Tensor, quantiles: torch.Tensor | None,
        tensors: dict[str, torch.Tensor],
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:  # fmt: skip
        """Each level's quantiles, widened (or narrowed) by its correction."""
        correction = tensors["correction"].to(quantiles.dtype)
        pairs = quantile_pairs(quantiles, self.levels).values()
        return [(lower - correction[k], upper + correction[k])
                for k, (lower, upper) in enumerate(pairs)]  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "quantile",
            "levels": list(self.levels),
            "correction": self.correction.tolist(),
            "windows": self.windows,
            "samples": self.samples,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantileCorrection:
        return cls(
            [float(v) for v in d["levels"]],
            np.asarray(d["correction"], np.float64),
            int(d["windows"]),
            int(d.get("samples", d["windows"])),
        )


Intervals = Calibration | QuantileCorrection
METHODS: dict[str, type[Intervals]] = {"conformal": Calibration, "quantile": QuantileCorrection}


@dataclass(frozen=True)
class ScaledOutputs:
    """A forecaster's outputs over windows in scaled units: the point forecast (after the
    blend), each window's spread of its targets (windows, 1, targets), and the quantile
    head's outputs (windows, steps, targets, 2 x levels + 1) when it has one."""

    point: torch.Tensor
    spread: torch.Tensor
    quantiles: torch.Tensor | None = None


def load_calibration(d: dict[str, Any] | None) -> Intervals | None:
    """A checkpoint's interval calibration, of whichever method wrote it."""
    if not d:
        return None
    return METHODS[d.get("method", "conformal")].from_dict(d)


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
    return QuantileCorrection(list(levels), np.stack(correction), len(actual), len(ordered))


def nested(bounds: list[tuple[torch.Tensor, torch.Tensor]]) -> list:
    """Bounds of ascending levels made to nest on every row: each level's band contains the
    narrower ones' (a quantile correction or an adaptation per level could cross them)."""
    out = []
    for lower, upper in bounds:
        if out:
            lower, upper = torch.minimum(lower, out[-1][0]), torch.maximum(upper, out[-1][1])
        out.append((lower, upper))
    return out


def scores_needed(level: float) -> int:
    """The fewest conformity scores whose split-conformal quantile supports `level` percent:
    the k-th smallest of m with k = ceil((m + 1) level) must exist (k <= m); with fewer, the
    bound is only the largest score seen and the coverage may fall short."""
    m = max(1, math.floor(level / (100 - level)) - 1)
    while math.ceil((m + 1) * level / 100) > m:  # as `Calibration.share` counts
        m += 1
    return m


def unsupported_levels(calibration: Intervals, steps: int) -> list[str]:
    """One sentence per level the calibration has too few scores for."""
    pooled = calibration.samples
    if not pooled:
        return []
    out = []
    for level in calibration.levels:
        need = scores_needed(level)
        if pooled < need:
            out.append(
                f"model.levels: {level:g}% needs at least {need} calibration scores (val "
                f"windows x {steps} horizon step(s): {math.ceil(need / steps)} windows), and "
                f"the val part gives {pooled} ({calibration.windows} windows), so its bound is "
                "the largest error seen there and its coverage may fall short; use a lower "
                "level or a longer val part"
            )
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
    rms = calibration.rms[:steps]
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
        half = np.stack([calibration.quantile_at(share) for share in shares]) * rms * spread[i]
        half = np.maximum.accumulate(half, axis=0)
        halves[:, i] = half
        outside = (actual[i] < predicted[i] - half) | (actual[i] > predicted[i] + half)
        missed[:, i] = np.where(np.isfinite(actual[i]), outside, np.nan)
    return {level: (predicted - halves[k], predicted + halves[k]) for k, level in enumerate(levels)}


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
