"""Scalers fitted on training rows only, kept as plain numbers: one for all series or one per
series (statistics per id, so a series in the thousands and one near zero look alike).

The statistics are scikit-learn's (MinMaxScaler, StandardScaler, RobustScaler; the tests
compare against them), computed here with numpy in float64: importing scikit-learn's
preprocessing costs more than half a second on every run, for a few lines of arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lstmcli.errors import LstmcliError, Warn, first_names

if TYPE_CHECKING:
    from lstmcli.data.table import Table

# A column whose spread is below this fraction of its largest magnitude is constant: scaling
# it would only magnify rounding noise. Relative, so that units never matter.
CONSTANT_SPREAD = 1e-10
SCALE_SPREAD = 1000  # series whose spreads lie this many times apart do not share one scaler
BLOCK_ROWS = 1 << 20  # rows scaled at a time


@dataclass
class Scaler:
    """An affine map fitted on training rows, kept as plain numbers.

    scaled = (x - center) / scale. With `scale_by: series`, center and scale hold one row per
    series, and `series` says which row applies to each value's first axis.
    """

    kind: str
    center: np.ndarray
    scale: np.ndarray

    @property
    def per_series(self) -> bool:
        return self.center.ndim == 2

    def _stats(self, series: np.ndarray | None, ndim: int, dtype: type) -> tuple:
        center, scale = self.center.astype(dtype), self.scale.astype(dtype)
        if not self.per_series:
            return center, scale
        if series is None:
            raise ValueError("a per-series scaler needs the series of each row")
        series = np.asarray(series)
        shape = (len(series),) + (1,) * (ndim - 2) + (center.shape[1],)
        return center[series].reshape(shape), scale[series].reshape(shape)

    def transform(
        self,
        values: np.ndarray,
        series: np.ndarray | None = None,
        names: list[str] | None = None,
    ) -> np.ndarray:
        """The scaled values as float32, the model's precision. The center is subtracted in
        float64 first, so 1e9 + a small signal keeps its detail; rows go a block at a time, so
        a large series never has a whole float64 temporary. A value beyond float32's range
        even after scaling (e.g. 3.8e39 with `scaler: none`) is an error naming its column."""
        out = np.empty(values.shape, dtype=np.float32)
        for start in range(0, len(values), BLOCK_ROWS):
            block = slice(start, start + BLOCK_ROWS)
            rows = series[block] if series is not None and self.per_series else None
            center, scale = self._stats(rows, values.ndim, np.float64)
            with np.errstate(over="ignore", invalid="ignore"):
                out[block] = (values[block] - center) / scale
        if not np.isfinite(out).all() and np.isfinite(values).all():
            column = int(np.flatnonzero(~np.isfinite(out).reshape(-1, out.shape[-1]).all(0))[0])
            name = names[column] if names is not None else f"#{column + 1}"
            largest = float(np.abs(values[..., column]).max())
            raise LstmcliError(
                f"column {name!r} holds values beyond float32's range after scaling (up to "
                f"{largest:g}); use data.scaler minmax, standard or robust"
            )
        return out

    def inverse(self, values: np.ndarray, series: np.ndarray | None = None) -> np.ndarray:
        center, scale = self._stats(series, values.ndim, np.float64)
        return values * scale + center

    def columns(self, index: list[int]) -> Scaler:
        """The map of some columns only."""
        return Scaler(self.kind, self.center[..., index], self.scale[..., index])

    def without_scaling(self, columns: slice | list[int]) -> Scaler:
        """The same map, leaving some columns as they are (calendar sin/cos are in [-1, 1])."""
        center, scale = self.center.copy(), self.scale.copy()
        center[..., columns], scale[..., columns] = 0.0, 1.0
        return Scaler(self.kind, center, scale)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "center": self.center.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scaler:
        return cls(
            d["kind"], np.asarray(d["center"], np.float64), np.asarray(d["scale"], np.float64)
        )


def fit_scaler(
    kind: str, rows: np.ndarray, series: np.ndarray | None = None, n_series: int = 1
) -> Scaler:
    """Fit a scaler on training rows (rows, columns): one for all rows, or with `series` (each
    row's series index) one per series, each on that series' rows only.

    minmax: min and range; standard: mean and population standard deviation; robust: median
    and interquartile range (linear interpolation). A constant column gets scale 1, as in
    scikit-learn, so nothing divides by zero; a series without rows gets NaN statistics.
    """
    if kind not in ("minmax", "standard", "robust", "none"):
        raise LstmcliError(f"unknown scaler {kind!r}")
    n_columns = rows.shape[1]
    shape = (n_series, n_columns) if series is not None else (n_columns,)
    if kind == "none" or n_columns == 0:
        return Scaler(kind, np.zeros(shape), np.ones(shape))
    if series is None:
        center, scale, peak = _statistics(kind, rows)
    else:
        center, scale, peak = _series_statistics(kind, rows, series, n_series)
    constant = ~(scale > CONSTANT_SPREAD * peak)  # also where there were no rows (NaN)
    scale = np.where(constant, 1.0, scale)
    return Scaler(kind, np.asarray(center, np.float64), np.asarray(scale, np.float64))


def _statistics(kind: str, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Center, spread and largest magnitude of each column, in float64, a column at a time
    (a float64 copy of a large float32 part would double its memory)."""
    n_columns = rows.shape[1]
    center, scale, peak = np.empty(n_columns), np.empty(n_columns), np.empty(n_columns)
    for j in range(n_columns):
        column = rows[:, j].astype(np.float64)
        low, high = column.min(), column.max()
        peak[j] = max(abs(low), abs(high))
        if kind == "minmax":
            center[j], scale[j] = low, high - low
        elif kind == "standard":
            center[j] = column.mean()
            scale[j] = np.sqrt(np.mean((column - center[j]) ** 2))
        else:
            q25, q50, q75 = np.quantile(column, [0.25, 0.5, 0.75])
            center[j], scale[j] = q50, q75 - q25
    return center, scale, peak


def _series_statistics(
    kind: str, rows: np.ndarray, series: np.ndarray, n_series: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_statistics` of every series at once (grouped, no loop over series); NaN for a series
    without rows."""
    import pandas as pd

    groups = pd.DataFrame(rows.astype(np.float64)).groupby(series)
    low, high = groups.min(), groups.max()
    peak = np.maximum(low.abs(), high.abs())
    if kind == "minmax":
        center, scale = low, high - low
    elif kind == "standard":
        center, scale = groups.mean(), groups.std(ddof=0)
    else:
        center = groups.median()
        scale = groups.quantile(0.75) - groups.quantile(0.25)
    every = range(n_series)
    return tuple(
        frame.reindex(every).to_numpy(np.float64, copy=True) for frame in (center, scale, peak)
    )


def warn_constant_columns(rows: np.ndarray, names: list[str], warn: Warn) -> None:
    """Warn about input columns that do not change over the training rows (one row shows no
    change either way: nothing to say)."""
    if len(rows) < 2:
        return
    constant = [
        name for name, column in zip(names, rows.T, strict=True) if column.min() == column.max()
    ]
    if constant:
        warn(f"column(s) {constant} are constant in the training rows; they carry no signal")


def warn_series_scales(
    table: Table, rows: np.ndarray, series: np.ndarray, shared: bool, warn: Warn
) -> None:
    """Per series, over its training target `rows` (`series`: each row's): warn about series
    whose targets do not change (the pooled column does, so warn_constant_columns misses
    them, and without a naive error they have no MASE); and, when one scaler is `shared`
    (data.scale_by: global), about spreads (max - min) more than SCALE_SPREAD times apart:
    in the panel's units the small series are nearly flat (float32 keeps about 7 digits),
    so the network forecasts them in the large ones' units."""
    ids = table.id_labels()
    _, ranges, _ = _series_statistics("minmax", rows, series, table.n_series)
    counts = np.bincount(series, minlength=table.n_series)
    flat = [ids[k] for k in range(table.n_series) if counts[k] > 1 and (ranges[k] == 0).any()]
    if flat:
        warn(
            f"{len(flat)} series with constant targets in their training rows: "
            f"{first_names(flat)}; they carry no signal and have no MASE (the per-series "
            "table's `beats` still shows how the model does there)"
        )
    for j, name in enumerate(table.target_columns if shared else []):
        varying = np.flatnonzero(ranges[:, j] > 0)  # NaN (no rows) and flat left out
        if len(varying) < 2:
            continue
        low = varying[np.argmin(ranges[varying, j])]
        high = varying[np.argmax(ranges[varying, j])]
        ratio = ranges[high, j] / ranges[low, j]
        if ratio > SCALE_SPREAD:
            warn(
                f"data.scale_by: global fits one scaler to series whose {name!r} spreads differ "
                f"{ratio:.3g}x ({ids[low]!r}: {ranges[low, j]:.3g}, {ids[high]!r}: "
                f"{ranges[high, j]:.3g}); the small series will be forecast in the large ones' "
                "units: use data.scale_by: series (the default with an id_column)"
            )
