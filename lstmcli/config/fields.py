"""Shared pieces of the config schema: the `auto` marker, whole-number-or-auto fields and the
base section that rejects unknown keys.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
)

BUILTIN_PREFIX = "builtin:"


# Calendar features and their cycle lengths; each becomes a _sin and a _cos input column.
CALENDAR_FEATURES = (
    "minute",
    "hour",
    "dayofweek",
    "dayofmonth",
    "dayofyear",
    "weekofyear",
    "month",
    "quarter",
)


DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


AUTO = "auto"  # chosen from the data (see config/resolve.py); the run saves the number


def auto_or_int(value: Any, minimum: int) -> Any:
    """`auto`, or a whole number of at least `minimum` (one message for both kinds)."""
    if value == AUTO:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"must be a whole number of at least {minimum} or 'auto', got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(
            f"must be a whole number of at least {minimum} or 'auto', got {value!r}"
        ) from None
    if not number.is_integer() or number < minimum:
        raise ValueError(f"must be a whole number of at least {minimum} or 'auto', got {value!r}")
    return int(number)


def optional_auto_or_int(value: Any, minimum: int) -> Any:
    """`auto_or_int`, or null for a key where null means "none" (no season, full batch)."""
    return value if value is None else auto_or_int(value, minimum)


def is_auto(value: Any) -> bool:
    return isinstance(value, str) and value == AUTO


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


SCALAR = (type(None), bool, int, float, str)


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def has_val_part(split: Any) -> bool:
    """Whether a split (typed, or as a mapping) names a val part: the one rule for it."""
    values = split.model_dump() if isinstance(split, BaseModel) else dict(split)
    return values.get("val", 0) > 0 or values.get("val_start") is not None
