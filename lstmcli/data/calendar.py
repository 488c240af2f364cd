"""Calendar inputs derived from the time column, known for any future row by construction.

Each feature is a position in its cycle (hour of the day, month of the year, ...) encoded as a
sine and a cosine, so that December sits next to January instead of eleven steps away.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lstmcli.errors import LstmcliError


def _cycle_position(time: pd.Series, name: str) -> np.ndarray:
    """Where each time sits in the feature's cycle, as a fraction in [0, 1)."""
    t = time.dt
    if name == "minute":
        return t.minute.to_numpy() / 60
    if name == "hour":
        return t.hour.to_numpy() / 24
    if name == "dayofweek":
        return t.day_of_week.to_numpy() / 7
    if name == "dayofmonth":
        return (t.day.to_numpy() - 1) / t.days_in_month.to_numpy()
    if name == "dayofyear":
        return (t.day_of_year.to_numpy() - 1) / (365 + t.is_leap_year.to_numpy())
    if name == "weekofyear":
        return (t.isocalendar().week.to_numpy(dtype=np.float64) - 1) / 52.1775
    if name == "month":
        return (t.month.to_numpy() - 1) / 12
    if name == "quarter":
        return (t.quarter.to_numpy() - 1) / 4
    raise ValueError(f"unknown calendar feature {name!r}")


def calendar_values(time: pd.Series | None, names: list[str], label: str) -> np.ndarray:
    """(rows, 2 * len(names)) float32: sin and cos of each feature's cycle position."""
    if time is None or not pd.api.types.is_datetime64_any_dtype(time):
        raise LstmcliError(
            f"data.calendar needs dates in the time column of {label}; it holds numbers"
        )
    time = pd.Series(time).reset_index(drop=True)
    out = np.empty((len(time), 2 * len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        angle = 2 * np.pi * _cycle_position(time, name).astype(np.float64)
        out[:, 2 * j], out[:, 2 * j + 1] = np.sin(angle), np.cos(angle)
    return out
