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
# ... or the season must explain this share of the detrended series' variance (the seasonal
# strength of Wang, Smith & Hyndman 2006): the autocorrelation test's standard error grows
# with every lag below the season, so a clean season of two or three years never passes it.
SEASON_STRENGTH = 0.64
MIN_FREEDOM = 4  # detrended values beyond one per position in the season, for that share


def theta_forecast(history: np.ndarray, horizon: int, season: int | None) -> np.ndarray:
    """The next `horizon` values of a series from its history (oldest first), NaNs left out.

    Seasonal when the series holds two seasons and its season is significant (the
    autocorrelation at the season, 90%, or a strong season: see SEASON_STRENGTH): a classical
    multiplicative decomposition for a positive series, an additive one where a zero or a
    negative value makes ratios meaningless (as statsmodels' ThetaModel falls back). Flat at
    the last value for fewer than three values."""
    x = np.asarray(history, np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    if n < 3:
        return np.full(horizon, x[-1] if n else np.nan)
    multiplicative = bool((x > 0).all())
    seasonal = seasonal_indices(x, season, multiplicative)
    if seasonal is not None:
        position = np.arange(n) % season
        x = x / seasonal[position] if multiplicative else x - seasonal[position]
    slope = np.polyfit(np.arange(n), x, 1)[0] if np.ptp(x) > 0 else 0.0
    alpha, level = _smoothed(x)
    forecast = level + 0.5 * slope * (np.arange(horizon) + (1 - (1 - alpha) ** n) / alpha)
    if seasonal is not None:
        ahead = seasonal[(n + np.arange(horizon)) % season]
        forecast = forecast * ahead if multiplicative else forecast + ahead
    return forecast


def seasonal_indices(x: np.ndarray, season: int | None, multiplicative: bool) -> np.ndarray | None:
    """The classical seasonal indices of x (one per position in the season, aligned to its
    first value: ratios averaging 1, or differences averaging 0), or None where x holds fewer
    than two seasons or its season is not significant (see theta_forecast)."""
    if not season or season < 2 or len(x) < 2 * season:
        return None
    if not _seasonal(x, season, multiplicative):
        return None
    return _seasonal_indices(x, season, multiplicative)


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


def _seasonal(x: np.ndarray, season: int, multiplicative: bool) -> bool:
    return (
        autocorrelated_season(x, season)
        or seasonal_strength(x, season, multiplicative) > SEASON_STRENGTH
    )


def autocorrelated_season(x: np.ndarray, season: int) -> bool:
    """Whether the autocorrelation at the season exceeds SEASON_TEST standard errors: the
    test statsforecast's AutoTheta decomposes by."""
    r = _autocorrelation(x, season)
    limit = SEASON_TEST * np.sqrt((1 + 2 * np.sum(r[:-1] ** 2)) / len(x))
    return bool(abs(r[-1]) > limit)


def _detrended(x: np.ndarray, season: int, multiplicative: bool) -> tuple[np.ndarray, int]:
    """The series over (or less) its centred moving average of one season, and the position
    in the season of its first value."""
    if season % 2 == 0:
        weights = np.r_[0.5, np.ones(season - 1), 0.5] / season
    else:
        weights = np.ones(season) / season
    trend = np.convolve(x, weights, mode="valid")
    shift = (len(weights) - 1) // 2
    inner = x[shift : shift + len(trend)]
    return (inner / trend if multiplicative else inner - trend), shift


def _seasonal_indices(x: np.ndarray, season: int, multiplicative: bool) -> np.ndarray:
    """Classical seasonal indices (one per position in the season, aligned to the first
    value) from the detrended series: ratios averaging to 1, or differences to 0."""
    detrended, shift = _detrended(x, season, multiplicative)
    indices = _position_means(detrended, shift, season)
    return indices / indices.mean() if multiplicative else indices - indices.mean()


def seasonal_strength(x: np.ndarray, season: int, multiplicative: bool) -> float:
    """1 - var(remainder) / var(detrended series), each variance over its degrees of freedom
    (an adjusted R^2, so that a few years of noise do not look seasonal): near 1 for a clean
    season, 0 or below for none."""
    detrended, shift = _detrended(x, season, multiplicative)
    if multiplicative and not (np.isfinite(detrended).all() and (detrended > 0).all()):
        return 0.0
    values = np.log(detrended) if multiplicative else detrended
    freedom = len(values) - season  # the indices are `season` values fitted to these
    if freedom < MIN_FREEDOM:
        return 0.0
    indices = _position_means(values, shift, season)
    position = (np.arange(len(values)) + shift) % season
    remainder = float(np.sum((values - indices[position]) ** 2)) / freedom
    spread = float(np.var(values, ddof=1))
    return 1.0 - remainder / spread if spread > 0 else 0.0


def _position_means(values: np.ndarray, shift: int, season: int) -> np.ndarray:
    """The mean of each position in the season (values[0] sits at position `shift`)."""
    return np.array([np.mean(values[(k - shift) % season :: season]) for k in range(season)])
