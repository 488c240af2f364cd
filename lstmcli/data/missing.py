"""Missing and non-numeric values: each column read as numbers, gaps filled by data.missing, and
one message naming the file line of what cannot be used.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lstmcli.data.reading import at_row
from lstmcli.errors import LstmcliError, Warn, ignore_warning


def numeric_column(
    frame: pd.DataFrame, name: str, label: str, dtype: type = np.float64
) -> np.ndarray:
    """One column as floats (rows in file order); an error names the first value that is not a
    number (empty cells stay NaN for `fill_missing`; infinities are refused here)."""
    column = frame[name]
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        out = column.to_numpy(dtype, na_value=np.nan)  # fast path: nothing to parse
    else:
        numbers = pd.to_numeric(column, errors="coerce")
        not_numeric = numbers.isna() & column.notna()
        if not_numeric.any():
            row = int(np.flatnonzero(not_numeric.to_numpy())[0])
            raise LstmcliError(
                f"column {name!r} in {label} has a non-numeric value {column.iloc[row]!r} "
                f"{at_row(row)}"
            )
        out = numbers.to_numpy(dtype, na_value=np.nan)
    infinite = np.isinf(out)
    if infinite.any():
        row = int(np.flatnonzero(infinite)[0])
        raise LstmcliError(f"column {name!r} in {label} has the value {out[row]} {at_row(row)}")
    return out


def fill_missing(
    values: dict[str, np.ndarray],
    checked: list[str],
    rows: np.ndarray,
    policy: str,
    label: str,
    series: np.ndarray | None = None,
    warn: Warn = ignore_warning,
    advice: str = "",
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Apply data.missing to empty cells of the `checked` columns of time-ordered values.

    error: refuse; drop: drop rows that have one; ffill: carry the last value forward;
    interpolate: linear between neighbours (the last value after the end). Filling never
    crosses from one series (`series`: each row's) into the next, and a gap at the start of
    a series has nothing to fill from, so it stays an error. `rows` are the file rows, for
    messages. Returns the values and the kept row mask (None when all are kept); what was done
    goes to `warn`. `advice` ends the message about an empty cell under `error`.
    """
    empty = {name: np.isnan(values[name]) for name in checked}
    counts = {name: int(mask.sum()) for name, mask in empty.items()}
    if not any(counts.values()):
        return values, None
    if policy == "drop":
        kept = ~np.logical_or.reduce([empty[name] for name in checked])
        if not kept.any():
            raise LstmcliError(f"{label}: every row has a missing value; nothing is left to use")
        warn(f"{label}: dropped {int((~kept).sum())} row(s) with missing values")
        return {name: column[kept] for name, column in values.items()}, kept
    if policy in ("ffill", "interpolate"):
        filled = dict(values)
        for name in checked:
            if counts[name]:
                filled[name] = _fill(values[name], policy, series)
        left = {name: np.isnan(filled[name]) for name in checked}
        advice = f" with no earlier value to fill it from (data.missing: {policy})"
        refuse_empty(left, rows, label, advice)
        done = ", ".join(f"{n} in {name!r}" for name, n in counts.items() if n)
        warn(f"{label}: filled {done} missing value(s) ({policy})")
        return filled, None
    refuse_empty(empty, rows, label, advice or MISSING_ADVICE)
    raise AssertionError("unreachable: there was an empty cell")


MISSING_ADVICE = "; set data.missing to drop, ffill or interpolate to accept gaps"


def _fill(values: np.ndarray, policy: str, series: np.ndarray | None) -> np.ndarray:
    """ffill or interpolate one column within each series; a leading gap stays empty."""
    column = pd.Series(values)
    if series is None or series[0] == series[-1]:  # one series
        if policy == "ffill":
            return column.ffill().to_numpy(values.dtype)
        return column.interpolate(limit_direction="forward").to_numpy(values.dtype)
    groups = column.groupby(series)
    carried = groups.ffill()
    if policy == "ffill":
        return carried.to_numpy(values.dtype)
    # Interpolating the whole column is right inside a series (both neighbours are its own);
    # after a series' last value, carry it; before its first, leave the gap.
    inside = carried.notna() & groups.bfill().notna()
    across = column.interpolate(limit_direction="forward")
    return np.where(inside, across, carried).astype(values.dtype)


def refuse_empty(
    empty: dict[str, np.ndarray],
    rows: np.ndarray,
    label: str,
    advice: str,
    every_row: bool = False,
) -> None:
    """Name the first column with an empty cell, and its first line in the file (or, with
    `every_row`, up to ten of its lines)."""
    for name, mask in empty.items():
        if mask.any():
            lines = np.sort(rows[mask]) + 2
            if every_row:
                shown = ", ".join(map(str, lines[:10])) + (", ..." if len(lines) > 10 else "")
                where = f"at line{'s' if len(lines) > 1 else ''} {shown}"
            else:
                where = at_row(int(lines[0]) - 2)
            raise LstmcliError(f"column {name!r} in {label} has a missing value {where}{advice}")
