"""Time columns: parsing them in one format, their frequency and step.

Times are labels of rows: they order each series, name forecast rows and give the season;
the model itself reads rows. A time that could be read two ways is read the way the file's
other rows settle (reading_format), else it is an error, never a guess.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from lstmcli.data.reading import at_row
from lstmcli.errors import LstmcliError


def parse_time(
    column: pd.Series, name: str, label: str, time_format: str | None = None
) -> pd.Series:
    """The times of a column (see read_times)."""
    return read_times(column, name, label, time_format)[0]


def read_times(
    column: pd.Series, name: str, label: str, time_format: str | None = None
) -> tuple[pd.Series, str | None]:
    """Numbers stay numbers (years, epochs); text must be times, all in one format. Returns the
    times and the format they were read in where the file's own rows decided between a
    day-first and a month-first reading (day_month_format), for the run to keep: a later file
    of the same series is then read the same way.

    The format is `time_format` (strptime codes) when given, else ISO 8601 when the first
    value is ISO, else the format pandas guesses from the first value (see reading_format).
    A value in another format is an error that names its line: parsing each value on its own
    would read `01/09/1960` in an ISO file as 9 January and sort it there without a word.
    Times whose UTC offsets differ (daylight saving) are read in UTC, the one order they
    share.
    """
    if pd.api.types.is_bool_dtype(column):
        pass  # neither numbers nor times: refused below
    elif pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column):
        return _refuse_empty_times(column, name, label), None
    text = column.astype("string")
    first = text.dropna().iloc[0] if text.notna().any() else None
    fmt, parsed = time_format, None
    if fmt is None and first is not None:
        fmt, parsed = reading_format(text, first, name, label)
    try:
        parsed = _to_datetime(column, fmt) if parsed is None else parsed
    except ValueError as e:  # a format pandas cannot use: '%Q', a stray '%'
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LstmcliError(
            f"time column {name!r} in {label}: data.time_format {fmt!r} is not a strptime "
            f"format ({detail}); use codes such as '%d/%m/%Y %H:%M'"
        ) from None
    bad = (parsed.isna() & text.notna()).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = column.iloc[row]
        where = f"{at_row(row)}"
        if time_format is None and _parses(str(value), "mixed"):
            described = "ISO 8601" if fmt == "ISO8601" else repr(fmt)
            raise LstmcliError(
                f"time column {name!r} in {label}: {value!r} {where} is not in the format of "
                f"the first row ({first!r}, {described}); write every time in one format, or "
                "set data.time_format"
            )
        expected = f" (data.time_format {time_format!r})" if time_format is not None else ""
        if time_format is not None and "%" not in time_format:
            where += "; data.time_format takes strptime codes such as '%d/%m/%Y'"
        raise LstmcliError(
            f"time column {name!r} in {label}: cannot parse {value!r} as a time{expected} {where}"
        )
    decided = fmt if time_format is None and day_month_format(fmt) else None
    return _refuse_empty_times(parsed, name, label), decided


def reading_format(
    text: pd.Series, first: str, name: str, label: str
) -> tuple[str, pd.Series | None]:
    """The format of a time column without data.time_format, and the times where deciding it
    read them already: ISO 8601 when the first value is ISO, else the one pandas guesses from
    it. Where its day and month could swap (`01/02/2015`: pandas reads month-first, most of
    the world writes day-first), the reading under which every row parses (a `13/02/2015`
    row rules month-first out, unless it alone keeps the other reading from being regular: a
    typo); where both do, the one whose times are regular (monthly `01/MM/YYYY` read
    month-first is the first twelve days of each January); where both are, an error, never a
    guess."""
    if _parses(first, "ISO8601"):
        return "ISO8601", None
    month_first = _guess_format(first)
    if month_first is None:
        raise LstmcliError(
            f"time column {name!r} in {label}: cannot tell the time format of {first!r}; "
            "set data.time_format (e.g. '%d.%m.%Y %H:%M')"
        )
    day_first = _guess_format(first, dayfirst=True)
    if not day_month_format(month_first) or day_first in (None, month_first):
        return month_first, None
    readings = {fmt: _to_datetime(text, fmt) for fmt in (month_first, day_first)}
    failed = {fmt: (times.isna() & text.notna()).to_numpy() for fmt, times in readings.items()}
    whole = [fmt for fmt in readings if not failed[fmt].any()]
    if not whole:
        return month_first, None  # the error names the first row it cannot read
    if len(whole) == 1:  # one reading reads every row; a typo may be what rules out the other
        fmt, other = whole[0], day_first if whole[0] == month_first else month_first
        if not _regular(readings[fmt]) and _regular(readings[other]):
            row = int(np.flatnonzero(failed[other])[0])
            raise LstmcliError(
                f"time column {name!r} in {label}: {text.iloc[row]!r} {at_row(row)} is not "
                f"{first_field(other)}-first ({other!r}) as the other rows are (read so, their "
                "times are regular; every row reads the other way only as irregular times); "
                "correct it, or set data.time_format"
            )
        return fmt, readings[fmt]
    regular = [fmt for fmt in whole if _regular(readings[fmt])]
    if len(regular) == 1:
        return regular[0], readings[regular[0]]
    raise LstmcliError(
        f"time column {name!r} in {label}: {first!r} could be day-first ({day_first!r}) or "
        f"month-first ({month_first!r}), and every row reads both ways; set data.time_format "
        "to the one the file uses"
    )


def first_field(fmt: str) -> str:
    """`day` or `month`: which a day_month_format reads first."""
    return "day" if fmt.startswith("%d") else "month"


def day_month_format(fmt: str | None) -> bool:
    """Whether a format starts with a numeric day or month followed by the other (`%d/%m/%Y`,
    `%m-%d-%Y %H:%M`): the formats whose order a first row may not settle."""
    if fmt is None:
        return False
    order = [code for code in ("%d", "%m") if code in fmt]
    return len(order) == 2 and fmt.startswith(("%d", "%m"))


def _regular(times: pd.Series) -> bool:
    """Whether the times a reading could parse are regular (a few unreadable rows left out)."""
    return frequency(_distinct(times)) is not None


def _distinct(times: pd.Series) -> pd.Series:
    """The distinct times in order (a panel's series share them)."""
    return times.dropna().drop_duplicates().sort_values().reset_index(drop=True)


def _to_datetime(column: pd.Series, fmt: str | None) -> pd.Series:
    """Times in one format; in UTC when their offsets differ (NaT where a value does not fit)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parsed = pd.to_datetime(column, errors="coerce", format=fmt)
        except (ValueError, TypeError):  # offsets that change: comparable only in UTC
            return pd.to_datetime(column, errors="coerce", format=fmt, utc=True)
    if not pd.api.types.is_datetime64_any_dtype(parsed):  # mixed offsets left as objects
        return pd.to_datetime(column, errors="coerce", format=fmt, utc=True)
    return parsed


def _parses(value: str, fmt: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pd.notna(pd.to_datetime(value, format=fmt, utc=True))
        except (ValueError, TypeError, OverflowError):
            return False


def _guess_format(value: str, dayfirst: bool = False) -> str | None:
    from pandas.tseries.api import guess_datetime_format

    return guess_datetime_format(value, dayfirst=dayfirst)


def wall_clock(column: pd.Series, time: pd.Series, rows: np.ndarray) -> pd.Series | None:
    """The local wall-clock times of the table's rows (file rows `rows`) when the file's
    times carry UTC offsets that change (daylight saving) and were read in UTC; else None.
    An hour-of-day input must see 9:00 as 9:00 in summer and in winter."""
    if not pd.api.types.is_datetime64_any_dtype(time) or str(time.dt.tz) != "UTC":
        return None
    text = column.iloc[rows].astype(str).reset_index(drop=True)
    offsets = text.str.extract(r"([+-]\d\d:?\d\d|Z)$")[0]
    if offsets.isna().any() or offsets.nunique() < 2:
        return None  # one offset: the times already keep it (or they were UTC)
    local = text.str.slice(0, -offsets.str.len().max())
    return pd.to_datetime(local.str.rstrip(), format="ISO8601", errors="coerce")


def _refuse_empty_times(time: pd.Series, name: str, label: str) -> pd.Series:
    empty = time.isna().to_numpy()
    if empty.any():
        row = int(np.flatnonzero(empty)[0])
        raise LstmcliError(f"time column {name!r} in {label} is empty {at_row(row)}")
    return time


def infer_freq(time: pd.Series) -> str | None:
    """The pandas frequency alias of regular datetimes (e.g. 'W-SAT', 'MS'), else None."""
    if len(time) < 3 or not pd.api.types.is_datetime64_any_dtype(time):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas is changing infer_freq's return type
        try:
            freq = pd.infer_freq(time)
        except (TypeError, ValueError):
            return None
    return to_offset(freq).freqstr if freq is not None else None


MAX_MISSING_SHARE = 0.2  # a regular grid with at most this share of its steps missing


def frequency(time: pd.Series) -> str | None:
    """The frequency of sorted datetimes: pandas' own for regular ones, business days for
    trading days, else the frequency most steps follow when a few rows are missing."""
    return infer_freq(time) or business_days(time) or dominant_freq(time)


def dominant_freq(time: pd.Series) -> str | None:
    """The frequency of datetimes with a few missing rows (a daily file with 5 missing days
    in 400): the one whose grid from the first time holds every time, with at most
    MAX_MISSING_SHARE of the grid's steps absent; None when there is no such frequency."""
    if len(time) < 8 or not pd.api.types.is_datetime64_any_dtype(time):
        return None
    stamps = pd.DatetimeIndex(time)
    votes: dict[str, int] = {}
    starts = np.unique(np.linspace(0, len(stamps) - 5, num=min(25, len(stamps) - 4)).astype(int))
    for start in starts:  # the frequencies of short gap-free stretches
        freq = infer_freq(pd.Series(stamps[start : start + 5]))
        if freq is not None:
            votes[freq] = votes.get(freq, 0) + 1
    for freq in sorted(votes, key=votes.get, reverse=True)[:3]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                grid = pd.date_range(stamps[0], stamps[-1], freq=freq)
            except (ValueError, OverflowError):
                continue
        if len(grid) > len(stamps) / (1 - MAX_MISSING_SHARE):
            continue
        if stamps.isin(grid).all():
            return freq
    return None


def missing_steps(time: pd.Series, freq: str, series: np.ndarray | None = None) -> np.ndarray:
    """For each pair of consecutive rows (of one series), whether they are more than one step
    of `freq` apart: where rows are missing."""
    stamps = pd.DatetimeIndex(time)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)  # offsets without numpy
        expected = np.asarray(stamps[:-1] + to_offset(freq))
    apart = expected < np.asarray(stamps[1:])
    return apart if series is None else apart & (np.diff(series) == 0)


def business_days(time: pd.Series) -> str | None:
    """ "B" for daily data that never falls on a weekend (a stock's trading days, with
    holidays missing, so pandas infers no frequency): its next row is a Monday, not a
    Saturday."""
    if len(time) < 5 or not pd.api.types.is_datetime64_any_dtype(time):
        return None
    daily = time.diff().median() == pd.Timedelta(days=1)
    weekdays = (time.dt.day_of_week < 5).all() and (time.dt.normalize() == time).all()
    return "B" if daily and weekdays else None


def median_step(time: pd.Series) -> float | None:
    """The typical step of a numeric time column (years, epochs), for continuing it."""
    if len(time) < 2 or not pd.api.types.is_numeric_dtype(time):
        return None
    return float(np.median(np.diff(time.to_numpy(dtype=np.float64))))
