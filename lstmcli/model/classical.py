"""Classical forecasts of a series' whole history: what a network started from a prior is
combined with.

`classical` (what new runs use) is the mean of statsforecast's AutoETS and AutoTheta, each
chosen and fitted on the history it is given. Combined with the network in equal thirds it
is more accurate than the network and Theta in halves, and than each of them alone (measured
on M3, the development set, and checked on M1 and Tourism: benchmarks/README.md). AutoARIMA
is left out: ten times AutoETS's time for a 0.7% smaller error on M3, and the combination is
fitted at every validation and test origin. `theta` is the numpy Theta of
`model/theta.py`, which runs before this one combined with: their checkpoints forecast as they
did.

statsforecast's `ets` and `theta` modules are imported, not `statsforecast.models` (which
pulls in statsmodels' whole API, a second more of start-up), and only when a forecast is
asked for.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict

import numpy as np

from lstmcli.model.theta import theta_forecast

KINDS = ("classical", "theta")  # the forecasts of a series' history a network combines with
MEMBERS = {"classical": 2, "theta": 1}  # forecasts averaged in each, for equal shares
MODELS = ("ets", "theta")  # classical's members: statsforecast's AutoETS and AutoTheta
CACHE_SIZE = 4096  # a history is forecast again by calibration, val scores and the test part
_cache: OrderedDict[tuple, np.ndarray] = OrderedDict()


def history_forecast(kind: str, history: np.ndarray, steps: int, season: int | None) -> np.ndarray:
    """The next `steps` values of a series from its history (oldest first; NaNs left out) by
    the classical forecast `kind` (one of KINDS)."""
    return history_forecasts(kind, [history], steps, season)[0]


def history_forecasts(
    kind: str,
    histories: list[np.ndarray],
    steps: int,
    season: int | None,
    series: np.ndarray | None = None,
) -> np.ndarray:
    """The forecasts (histories, steps) of several histories. Histories with the same label
    in `series` are one series' histories at several origins (a backtest's windows): its
    models are chosen and fitted once, on the shortest history, and run forward on the
    longer ones (parameters kept, states recomputed), as a rolling-origin evaluation with
    fixed parameters does; each origin still sees only the values before it, and AutoETS
    costs a thousandth of a fit per origin. Without `series`, each history is fitted alone."""
    out = np.empty((len(histories), steps))
    labels = np.arange(len(histories)) if series is None else np.asarray(series)
    values = [_finite(h) for h in histories]
    keys = [(kind, steps, season, x.tobytes()) for x in values]
    for label in np.unique(labels):
        members = sorted(np.flatnonzero(labels == label), key=lambda k: len(values[k]))
        fitted: dict[int, dict] = {}  # one model per season used, for this series
        for k in members:
            if keys[k] in _cache:
                _cache.move_to_end(keys[k])
                out[k] = _cache[keys[k]]
                continue
            if kind == "theta":
                out[k] = theta_forecast(values[k], steps, season)
            else:
                out[k] = _classical(values[k], steps, season, fitted)
            _cache[keys[k]] = out[k].copy()
            if len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    return out


def combined_share(kind: str) -> float:
    """The network's share of its combination with `kind`: one member's."""
    return 1.0 / (1 + MEMBERS[kind])


def _classical(
    x: np.ndarray, steps: int, season: int | None, fitted: dict[int, dict]
) -> np.ndarray:
    """The mean of AutoETS's and AutoTheta's forecasts; the last value for fewer than three
    values or a constant series, and a member that cannot fit leaves the other alone.
    `fitted`: the models already fitted to a shorter history of the same series, per season
    (run forward here), filled in where there are none."""
    n = len(x)
    if n == 0:
        return np.full(steps, np.nan)
    if n < 3 or np.ptp(x) == 0:
        return np.full(steps, x[-1])
    m = season if season and season > 1 and n >= 2 * season else 1
    models = fitted.setdefault(m, {})
    forecasts = [
        f for f in (_member(name, x, steps, m, models) for name in MODELS) if f is not None
    ]
    if not forecasts:
        return theta_forecast(x, steps, season)
    return np.mean(forecasts, axis=0)


def _member(name: str, x: np.ndarray, steps: int, m: int, models: dict) -> np.ndarray | None:
    """One statsforecast model's forecast of `x`: run forward when `models` holds its fit to
    a shorter history, else (or when that fails) fitted, and kept there."""
    fit, forward, forecast = _functions(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name in models:
            values = _quietly(lambda: forecast(forward(models[name], x), steps)["mean"])
            if values is not None:
                return values
        model = _quietly(lambda: fit(x, m))
        values = _quietly(lambda: forecast(model, steps)["mean"]) if model is not None else None
    if values is not None:
        models[name] = model
    return values


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


def _functions(name: str) -> tuple:
    """(fit, forward, forecast) of a statsforecast model, imported when first asked for."""
    if name == "ets":
        from statsforecast.ets import ets_f, forecast_ets, forward_ets

        return (lambda x, m: ets_f(x, m=m)), forward_ets, (lambda f, h: forecast_ets(f, h=h))
    from statsforecast.theta import auto_theta, forecast_theta, forward_theta

    return (lambda x, m: auto_theta(x, m=m)), forward_theta, forecast_theta


def _finite(history: np.ndarray) -> np.ndarray:
    x = np.asarray(history, np.float64)
    return x[np.isfinite(x)]
