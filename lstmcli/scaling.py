"""Scalers fitted on training rows only, kept as plain numbers: one for all series or one per
series (statistics per id, so a series in the thousands and one near zero look alike)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lstmcli.errors import LstmcliError


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
        shape = (len(series),) + (1,) * (ndim - 2) + (center.shape[1],)
        return center[series].reshape(shape), scale[series].reshape(shape)

    def transform(
        self, values: np.ndarray, series: np.ndarray | None = None, inplace: bool = False
    ) -> np.ndarray:
        """float32 throughout, no float64 copy of a large series; `inplace` reuses a float32
        `values` array (training's raw inputs are not needed once scaled)."""
        center, scale = self._stats(series, values.ndim, np.float32)
        if inplace and values.dtype == np.float32:
            values -= center
            values /= scale
            return values
        return (np.asarray(values, dtype=np.float32) - center) / scale

    def inverse(self, values: np.ndarray, series: np.ndarray | None = None) -> np.ndarray:
        center, scale = self._stats(series, values.ndim, np.float64)
        return values * scale + center

    def columns(self, index: list[int]) -> Scaler:
        """The map of some columns only."""
        return Scaler(self.kind, self.center[..., index], self.scale[..., index])

    def without_scaling(self, columns: list[int]) -> Scaler:
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


def fit_scaler(kind: str, rows: np.ndarray) -> Scaler:
    """Fit one scikit-learn scaler on training rows and keep its statistics as plain arrays.

    Constant columns get scale 1 (scikit-learn's rule), so nothing divides by zero.
    """
    n_columns = rows.shape[1]
    if kind == "none" or n_columns == 0:
        return Scaler(kind, np.zeros(n_columns), np.ones(n_columns))
    from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

    values = rows  # float32 inputs stay float32: scikit-learn accumulates in float64 itself
    if kind == "minmax":
        fitted = MinMaxScaler().fit(values)
        center, scale = fitted.data_min_, 1.0 / fitted.scale_
    elif kind == "standard":
        fitted = StandardScaler().fit(values)
        center, scale = fitted.mean_, fitted.scale_
    elif kind == "robust":
        fitted = RobustScaler().fit(values)
        center, scale = fitted.center_, fitted.scale_
    else:
        raise LstmcliError(f"unknown scaler {kind!r}")
    return Scaler(kind, np.asarray(center, np.float64), np.asarray(scale, np.float64))


def fit_series_scaler(kind: str, values: np.ndarray, series: np.ndarray, n_series: int) -> Scaler:
    """One scaler per series, each fitted on that series' training rows only (`values` are the
    training rows, `series` their series index), with scikit-learn's statistics: minmax:
    min and range; standard: mean and population std; robust: median and IQR. A constant
    column gets scale 1, as in scikit-learn."""
    n_columns = values.shape[1]
    if kind == "none" or n_columns == 0:
        return Scaler(kind, np.zeros((n_series, n_columns)), np.ones((n_series, n_columns)))
    groups = pd.DataFrame(values.astype(np.float64)).groupby(series)
    if kind == "minmax":
        center, high = groups.min(), groups.max()
        scale = high - center
    elif kind == "standard":
        center, scale = groups.mean(), groups.std(ddof=0)
    elif kind == "robust":
        center = groups.median()
        scale = groups.quantile(0.75) - groups.quantile(0.25)
    else:
        raise LstmcliError(f"unknown scaler {kind!r}")
    center = center.reindex(range(n_series)).to_numpy(np.float64, copy=True)
    scale = scale.reindex(range(n_series)).to_numpy(np.float64, copy=True)
    scale[~(scale >= 10 * np.finfo(np.float64).eps)] = 1.0  # constant (or one row): as sklearn
    return Scaler(kind, center, scale)


def constant_columns(rows: np.ndarray, names: list[str]) -> list[str]:
    columns = zip(names, rows.T, strict=True)
    return [name for name, column in columns if len(column) and np.ptp(column) == 0]
