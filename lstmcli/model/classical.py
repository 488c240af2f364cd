"""Classical forecasts of a series' whole history: what a network is combined with (one
from a prior; one trained from scratch on one target without features, series up to
run/fitting.py's CLASSICAL_ROWS).

`classical` (what new runs use) is the mean of statsforecast's AutoETS and AutoTheta.
AutoTheta decomposes a season only where the autocorrelation at the season is significant,
a test that misses clean seasons over two to four cycles (the autocorrelations below the
season widen its limit): where it misses a season that the seasonal strength finds, AutoTheta
forecasts the series seasonally adjusted as AutoETS does for long seasons (below).
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
from dataclasses import dataclass

import numpy as np

from lstmcli.model.theta import (
    MIN_FREEDOM,
    autocorrelated_season,
    seasonal_indices,
    seasonal_strength,
    theta_forecast,
)

# The forecasts of a series' history a network combines with. `classical-3` is `classical`
# as format-5 checkpoints made it (AutoTheta deciding every season itself), `classical-2` as
# format 4 did (every history fitted on the grid from 3 rows, too), and `classical-1` as
# earlier ones did (AutoETS fitting any season itself, too): their files still forecast as
# they did.
# `last_season` is seasonal naive read off the history (the last season, repeated): the
# runaway guard's candidate where a network's window is shorter than the season.
KINDS = ("classical", "classical-3", "classical-2", "classical-1", "theta", "last_season")
# What `classical` in a checkpoint of format (at most) N means now, oldest first.
LEGACY = ((3, "classical-1"), (4, "classical-2"), (5, "classical-3"))
MODELS = ("ets", "theta")  # classical's members: statsforecast's AutoETS and AutoTheta
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


@dataclass(frozen=True)
class Recipe:
    """How a classical kind fits: AutoETS's own seasons (up to ets_season; None: any), the
    fit lengths, and whether AutoTheta forecasts the adjusted series where its own test
    misses a season."""

    ets_season: int | None
    lengths: list[int]
    theta_adjusts: bool


RECIPES = {
    "classical": Recipe(ETS_SEASON, FIT_LENGTHS, theta_adjusts=True),
    "classical-3": Recipe(ETS_SEASON, FIT_LENGTHS, theta_adjusts=False),
    "classical-2": Recipe(ETS_SEASON, LEGACY_LENGTHS, theta_adjusts=False),
    "classical-1": Recipe(None, LEGACY_LENGTHS, theta_adjusts=False),
}
# the member count of the kinds a network combines with, for equal shares: AutoETS and
# AutoTheta, or the numpy Theta
MEMBERS = {kind: len(MODELS) for kind in RECIPES} | {"theta": 1}
CACHE_SIZE = 512  # fitted models kept, for the next origins of the same series
_fits: OrderedDict[tuple, object] = OrderedDict()


def history_forecast(kind: str, history: np.ndarray, steps: int, season: int | None) -> np.ndarray:
    """The next `steps` values of a series from its history (oldest first; NaNs left out) by
    the classical forecast `kind` (one of KINDS)."""
    x = np.asarray(history, np.float64)
    x = x[np.isfinite(x)]
    if kind == "theta":
        return theta_forecast(x, steps, season)
    if kind == "last_season":
        return last_season(x, steps, season)
    return _classical(x, steps, season, RECIPES[kind], fit_length(len(x), kind))


def history_forecasts(
    kind: str, histories: list[np.ndarray], steps: int, season: int | None
) -> np.ndarray:
    """The forecasts (histories, steps) of several histories, each on its own."""
    out = np.empty((len(histories), steps))
    for k, history in enumerate(histories):
        out[k] = history_forecast(kind, history, steps, season)
    return out


def rows_read(kind: str, season: int | None) -> int | None:
    """How many of a history's last rows the forecast `kind` reads (None: all of them):
    seasonal naive reads one season, so a long backtest need not copy each origin's whole
    history (the classical kinds fit series up to run/fitting.py's CLASSICAL_ROWS)."""
    return max(season or 1, 1) if kind == "last_season" else None


def last_season(x: np.ndarray, steps: int, season: int | None) -> np.ndarray:
    """Seasonal naive: the value a whole number of seasons before each step (the last value
    for a history shorter than one season, or none)."""
    if len(x) == 0:
        return np.full(steps, np.nan)
    if not season or season < 2 or len(x) < season:
        return np.full(steps, x[-1])
    return np.resize(x[-season:], steps)


def seasonal_history(kind: str, season: int | None) -> int | None:
    """The fewest rows of history from which the forecast `kind` follows a season (one
    season for seasonal naive; for the others two seasons and MIN_FREEDOM values in the
    values fitted on, which beyond WHOLE_ROWS lie on the fit grid: the fewest from which the
    seasonal strength can find a season, where the autocorrelation test seldom does); None
    without a season."""
    if not season or season < 2:
        return None
    if kind == "last_season":
        return season
    fitted = 2 * season + MIN_FREEDOM
    if kind == "theta":
        return fitted
    return min(n for n in range(fitted, 4 * fitted) if fit_length(n, kind) >= fitted)


def too_short_for_the_season(kind: str, season: int) -> str:
    """Why a history shorter than seasonal_history gives a worse forecast, for a warning."""
    if kind == "last_season":
        return (f"seasonal naive, which the model forecasts with, needs one season ({season} "
                "rows) and forecasts the last value without it")  # fmt: skip
    return (f"the classical forecast the model combines with needs two seasons and "
            f"{MIN_FREEDOM} rows to follow the season ({season} rows) at all, and follows "
            "it poorly from fewer than about four seasons")  # fmt: skip


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
    lengths = RECIPES[kind].lengths
    if n < lengths[0]:
        return n
    return lengths[bisect.bisect_right(lengths, n) - 1]


def _classical(
    x: np.ndarray, steps: int, season: int | None, recipe: Recipe, fitted_on: int
) -> np.ndarray:
    """The mean of AutoETS's and AutoTheta's forecasts, fitted on the first `fitted_on`
    values as `recipe` says (which member forecasts the seasonally adjusted series); the
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
        _adjusted(name, x, start, steps, m)
        if _adjusts(name, recipe, start, m)
        else _member(name, x, start, steps, m)
        for name in MODELS
    )
    forecasts = [f for f in members if f is not None]
    if not forecasts:
        return theta_forecast(x, steps, season)
    return np.mean(forecasts, axis=0)


def _adjusts(name: str, recipe: Recipe, start: np.ndarray, m: int) -> bool:
    """Whether member `name` forecasts the seasonally adjusted series (see _adjusted): AutoETS
    above the recipe's own seasons; AutoTheta where its own test (the autocorrelation at the
    season, for m >= 4) misses the season, on recipes that say so."""
    if name == "ets":
        return recipe.ets_season is not None and m > recipe.ets_season
    return recipe.theta_adjusts and m >= 4 and not autocorrelated_season(start, m)


def _adjusted(name: str, x: np.ndarray, start: np.ndarray, steps: int, m: int) -> np.ndarray | None:
    """Member `name` fitted without a season on the series seasonally adjusted by classical
    indices of `start` (as AutoTheta adjusts its own), the indices put back on the forecast;
    the member on the series as it is where `start` shows no season."""
    # Ratios or differences, whichever explains more of the season (ratios need positive
    # values): ratios on an additive cycle with a trend leave part of it in the series.
    ratios = seasonal_strength(start, m, True) if (x > 0).all() else -np.inf
    multiplicative = bool(ratios >= seasonal_strength(start, m, False))
    indices = seasonal_indices(start, m, multiplicative)
    if indices is None:
        return _member(name, x, start, steps, 1 if name == "ets" else m)
    at = indices[np.arange(len(x)) % m]
    adjusted = x / at if multiplicative else x - at
    forecast = _member(name, adjusted, adjusted[: len(start)], steps, 1)
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
