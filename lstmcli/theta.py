"""The Theta method (Assimakopoulos & Nikolopoulos 2000, as Hyndman & Billah 2003 state it),
in numpy: a blend candidate for forecasts from a prior.

Theta won the M3 competition and is still among the best forecasts of short series. It reads
the whole history of a series, not a window: simple exponential smoothing of the
(deseasonalized) series plus half the slope of its linear trend. Mixed with a network's
forecast it makes a combination that is better than either on short series (measured on M3,
see benchmarks/README.md).
"""

from __future__ import annotations

import numpy as np

ALPHAS = np.linspace(0.05, 1.0, 40)  # smoothing weights searched for the smallest in-sample error
SEASON_TEST = 1.645  # the autocorrelation at the season must exceed this many standard errors


def theta_forecast(history: np.ndarray, horizon: int, season: int | None) -> np.ndarray:
    """The next `horizon` values of a series from its history (oldest first), NaNs left out.

    Seasonal (classical multiplicative decomposition) when the series holds two seasons,
    is positive and its autocorrelation at the season is significant (90%); flat at the last
    value for fewer than three values."""
    x = np.asarray(history, np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    if n < 3:
        return np.full(horizon, x[-1] if n else np.nan)
    indices = None
    if season and season > 1 and n >= 2 * season and (x > 0).all() and _seasonal(x, season):
        indices = _seasonal_indices(x, season)
        x = x / indices[np.arange(n) % season]
    slope = np.polyfit(np.arange(n), x, 1)[0] if np.ptp(x) > 0 else 0.0
    alpha, level = _smoothed(x)
    forecast = level + 0.5 * slope * (np.arange(horizon) + (1 - (1 - alpha) ** n) / alpha)
    if indices is not None:
        forecast = forecast * indices[(n + np.arange(horizon)) % season]
    return forecast


def _smoothed(x: np.ndarray) -> tuple[float, float]:
    """The smoothing weight with the smallest sum of squared one-step errors, and the last
    level it gives (every weight of the grid at once)."""
    level = np.full(len(ALPHAS), x[0])
    squared = np.zeros(len(ALPHAS))
    for value in x[1:]:
        squared += (value - level) ** 2
        level = ALPHAS * value + (1 - ALPHAS) * level
    best = int(np.argmin(squared))
    return float(ALPHAS[best]), float(level[best])


def _autocorrelation(x: np.ndarray, lags: int) -> np.ndarray:
    centred = x - x.mean()
    total = float(np.sum(centred * centred)) or 1.0
    return np.array([np.sum(centred[k:] * centred[:-k]) / total for k in range(1, lags + 1)])


def _seasonal(x: np.ndarray, season: int) -> bool:
    r = _autocorrelation(x, season)
    limit = SEASON_TEST * np.sqrt((1 + 2 * np.sum(r[:-1] ** 2)) / len(x))
    return bool(abs(r[-1]) > limit)


def _seasonal_indices(x: np.ndarray, season: int) -> np.ndarray:
    """Classical multiplicative seasonal indices (one per position in the season, aligned to
    the first value), from the ratios to a centred moving average; they average to 1."""
    if season % 2 == 0:
        weights = np.r_[0.5, np.ones(season - 1), 0.5] / season
    else:
        weights = np.ones(season) / season
    trend = np.convolve(x, weights, mode="valid")
    shift = (len(weights) - 1) // 2
    ratios = x[shift : shift + len(trend)] / trend
    indices = np.array([np.mean(ratios[(k - shift) % season :: season]) for k in range(season)])
    return indices / indices.mean()
