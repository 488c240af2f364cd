"""Prediction intervals behind one interface: the methods `model.intervals` names, and a
checkpoint's calibration read back as the method that wrote it.

Each method (conformal.py's `Calibration`, quantile_intervals.py's `QuantileCorrection`) has
`fit`, `tensors`, `scaled_bounds` and `to_dict`/`from_dict`, and says what it needs
(`needs_val_part`, `from_quantiles`) and whether its bounds adapt in backtests (`adapts`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from lstmcli.model.bands import scores_needed
from lstmcli.model.conformal import Calibration
from lstmcli.model.quantile_intervals import QuantileCorrection

if TYPE_CHECKING:
    pass


Intervals = Calibration | QuantileCorrection


METHODS: dict[str, type[Intervals]] = {"conformal": Calibration, "quantile": QuantileCorrection}


def load_calibration(d: dict[str, Any] | None) -> Intervals | None:
    """A checkpoint's interval calibration, of whichever method wrote it."""
    if not d:
        return None
    return METHODS[d.get("method", "conformal")].from_dict(d)


def unsupported_levels(calibration: Intervals, steps: int) -> list[str]:
    """One sentence per level the calibration has too few scores for."""
    pooled = calibration.samples
    if not pooled:
        return []
    out = []
    for level in calibration.levels:
        need = scores_needed(level)
        if pooled < need:
            out.append(
                f"model.levels: {level:g}% needs at least {need} calibration scores (val "
                f"windows x {steps} horizon step(s): {math.ceil(need / steps)} windows), and "
                f"the val part gives {pooled} ({calibration.windows} windows), so its bound is "
                "the largest error seen there and its coverage may fall short; use a lower "
                "level or a longer val part"
            )
    return out
