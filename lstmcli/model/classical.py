"""Classical forecasts of a series' whole history: what a network is combined with (one
from a prior; one trained from scratch on one target without features, series up to
run/fitting.py's CLASSICAL_ROWS).

`classical` (what new runs use) is the mean of statsforecast's AutoETS and AutoTheta.
Combined with the network in equal thirds it is more accurate than the network and Theta in
halves, and than each of them alone (measured on M3, the development set, and checked on M1
and Tourism: benchmarks/README.md). AutoARIMA is left out: as a fourth member it cost three
to ten times the seconds per series for 1% on M3 scratch runs, and nothing or worse where a
prior starts the network (benchmarks/README.md). `theta` is the numpy Theta of
`model/theta.py`, which runs before this one combined with: their checkpoints forecast as
they did.

A forecast is a function of the history alone, whichever command asks (the run's test part,
`predict`, `predict --rolling`, `evaluate`): each model is chosen and fitted on the whole
history up to WHOLE_ROWS rows; on a longer one, on the longest start of the history whose
length is on a fixed grid (GROWTH apart), then run forward over the whole history
(parameters kept, states recomputed). A long backtest's origins of one series thus share a
handful of fits instead of one each, and no origin's parameters see a value after it.

statsforecast's `ets` and `theta` modules are imported, not `statsforecast.models` (which
pulls in statsmodels' whole API, a second more of start-up), and only when a forecast is
asked for.
"""

from __future__ import annotations

import bisect
import warnings
from collections import OrderedDict

import numpy as np

from lstmcli.model.theta import seasonal_indices, seasonal_strength, theta_forecast

# The forecasts of a series' history a network combines with. `classical-2` is `classical`
# as format-4 checkpoints made it (every history fitted on the grid from 3 rows), and
# `classical-1` as earlier ones did (AutoETS fitting any season itself, too): their files
# still forecast as they did.
KINDS = ("classical", "classical-2", "classical-1", "theta")
# What `classical` in a checkpoint of format (at most) N means now, oldest first.
LEGACY = ((3, "classical-1"), (4, "classical-2"))
MODELS = ("ets", "theta")  # classical's members: statsforecast's AutoETS and AutoTheta
# each kind's member count, for equal shares: AutoETS and AutoTheta, or the numpy Theta
MEMBERS = {kind: len(MODELS) for kind in KINDS if kind != "theta"} | {"theta": 1}
# A history up to WHOLE_ROWS rows is fitted whole: fitted without its last value, then run
# forward over it, AutoETS and AutoTheta forecast M3's yearly and quarterly series 3%
# worse (benchmarks/README.md). Longer ones are fitted on their start up to the last length
# WHOLE_ROWS * GROWTH ** k, which a backtest's origins share.
WHOLE_ROWS = 200
GROWTH = 1.1


def _grid(first: int) -> list[int]:
    """Fit lengths from `first`, growing by GROWTH (as integers, each once)."""
    return sorted({int(first * GROWTH**k) for k in range(200)})


FIT_LENGTHS = _grid(WHOLE_ROWS)  # 200, 220, 242, ...
LEGACY_LENGTHS = _grid(3)  # 3, 4, 5, ..., 5e8: earlier formats' grid, from 3 rows
# AutoETS fits a season of up to 12 itself (quarterly, monthly: measured on M3). Longer ones
# (hourly 24, half-hourly 48, weekly 52) have too many seasonal states for its optimizer: on
# load-like data it often fits them worse than none, picks no season and forecasts a flat
# line. Beyond 12 it forecasts the seasonally adjusted series (benchmarks/README.md, #36).
ETS_SEASON = 12
CACHE_SIZE = 512  # fitted models kept, for the next origins of the same series
_fits: OrderedDict[tuple, object] = OrderedDict()


def history_forecast(kind: str, history: np.ndarray, steps: int, season: int | None) -> np.ndarray:
    """The next `steps` values of a series from its history (oldest first; NaNs left out) by
    the classical forecast `kind` (one of KINDS)."""
    x = np.asarray(history, np.float64)
    x = x[np.isfinite(x)]
    if kind == "theta":
        return theta_forecast(x, steps, season)
    ets_season = None if kind == "classical-1" else ETS_SEASON
    return _classical(x, steps, season, ets_season, fit_length(len(x), kind))


def history_forecasts(
    kind: str, histories: list[np.ndarray], steps: int, season: int | None
) -> np.ndarray:
    """The forecasts (histories, steps) of several histories, each on its own."""
    out = np.empty((len(histories), steps))
    for k, history in enumerate(histories):
        out[k] = history_forecast(kind, history, steps, season)
    return out


def seasonal_history(kind: str, season: int | None) -> int | None:
    """The fewest rows of history from which the forecast `kind` follows a season (two
    seasons in the values fitted on, which beyond WHOLE_ROWS lie on the fit grid); None
    without a season."""
    if not season or season < 2:
        return None
    if kind == "theta":
        return 2 * season
    return min(n for n in range(2 * season, 4 * season) if fit_length(n, kind) >= 2 * season)


def input_name(kind: str) -> str:
    """The name a kind has in files (an exported model's input): the one it was written
    with, `classical` for its legacy kinds too."""
    return "classical" if kind.startswith("classical") else kind


def legacy_kind(kind: str, version: int) -> str:
    """What a combination's kind, as a checkpoint of format `version` names it, means now."""
    if kind != "classical":
        return kind
    return next((then for last, then in LEGACY if version <= last), kind)


def combined_share(kind: str) -> float:
    """The network's share of its combination with `kind`: one member's."""
    return 1.0 / (1 + MEMBERS[kind])


def fit_length(n: int, kind: str = "classical") -> int:
    """How many of a history's first values the models of `kind` are fitted on: all of them
    up to WHOLE_ROWS, beyond that the largest length on the grid up to n (legacy kinds: on
    their grid from 3 rows)."""
    lengths = FIT_LENGTHS if kind == "classical" else LEGACY_LENGTHS
    if n < lengths[0]:
        return n
    return lengths[bisect.bisect_right(lengths, n) - 1]


def _classical(
    x: np.ndarray, steps: int, season: int | None, ets_season: int | None, fitted_on: int
) -> np.ndarray:
    """The mean of AutoETS's and AutoTheta's forecasts, fitted on the first `fitted_on`
    values (AutoETS on the seasonally adjusted series above a season of `ets_season`); the
    last value for fewer than three values or a constant series, and a member that cannot
    fit leaves the other alone."""
    n = len(x)
    if n == 0:
        return np.full(steps, np.nan)
    if n < 3 or np.ptp(x) == 0:
        return np.full(steps, x[-1])
    start = x[:fitted_on]
    m = season if season and season > 1 and len(start) >= 2 * season else 1
    members = (
        _adjusted_ets(x, start, steps, m)
        if name == "ets" and ets_season and m > ets_season
        else _member(name, x, start, steps, m)
        for name in MODELS
    )
    forecasts = [f for f in members if f is not None]
    if not forecasts:
        return theta_forecast(x, steps, season)
    return np.mean(forecasts, axis=0)


def _adjusted_ets(x: np.ndarray, start: np.ndarray, steps: int, m: int) -> np.ndarray | None:
    """AutoETS for a season longer than ETS_SEASON: fitted without a season on the series
    seasonally adjusted by classical indices of `start` (as AutoTheta adjusts its own), the
    indices put back on the forecast."""
    # Ratios or differences, whichever explains more of the season (ratios need positive
    # values): ratios on an additive cycle with a trend leave part of it in the series.
    ratios = seasonal_strength(start, m, True) if (x > 0).all() else -np.inf
    multiplicative = bool(ratios >= seasonal_strength(start, m, False))
    indices = seasonal_indices(start, m, multiplicative)
    if indices is None:
        return _member("ets", x, start, steps, 1)
    at = indices[np.arange(len(x)) % m]
    adjusted = x / at if multiplicative else x - at
    forecast = _member("ets", adjusted, adjusted[: len(start)], steps, 1)
    if forecast is None:
        return None
    ahead = indices[(len(x) + np.arange(steps)) % m]
    return forecast * ahead if multiplicative else forecast + ahead


def _member(name: str, x: np.ndarray, start: np.ndarray, steps: int, m: int) -> np.ndarray | None:
    """One statsforecast model's forecast of `x`, fitted on `start` (x's first values) and run
    forward over x; None where no model fits."""
    fit, forward, forecast = _functions(name)
    key = (name, m, start.tobytes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if key not in _fits:
            _fits[key] = _quietly(lambda: fit(start, m))
            if len(_fits) > CACHE_SIZE:
                _fits.popitem(last=False)
        _fits.move_to_end(key)
        model = _fits[key]
        if model is None:
            return None
        if len(start) == len(x):
            return _quietly(lambda: forecast(model, steps)["mean"])
        ahead = _quietly(lambda: forecast(forward(model, x), steps)["mean"])
        if ahead is None:  # the later values rule the model out (a zero, for a ratio)
            ahead = _quietly(lambda: forecast(fit(x, m), steps)["mean"])
        return ahead


def _functions(name: str) -> tuple:
    """(fit, forward, forecast) of a statsforecast model, imported when first asked for."""
    if name == "ets":
        from statsforecast.ets import ets_f, forecast_ets, forward_ets

        return (lambda x, m: ets_f(x, m=m)), forward_ets, (lambda f, h: forecast_ets(f, h=h))
    from statsforecast.theta import auto_theta, forecast_theta, forward_theta

    return (lambda x, m: auto_theta(x, m=m)), forward_theta, forecast_theta


def _quietly(call):
    """What `call` returns (finite values, when an array), or None where it fails: a
    history with no admissible model."""
    try:
        result = call()
    except Exception:  # noqa: BLE001 - statsforecast raises several kinds
        return None
    if isinstance(result, np.ndarray):
        result = np.asarray(result, np.float64)
        return result if np.isfinite(result).all() else None
    return result
