"""What every interval method shares: the scale-free unit of a window's residuals, bounds
kept nested across levels, level names and how many scores a level needs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


SPREAD_FLOOR = 1e-6  # a flat window (scaled units) must not give zero-width bounds


# What a window's residuals are divided by: "naive" (its mean absolute seasonal change);
# calibrations written before it divided by the target's standard deviation ("spread"), and a
# quantile correction by nothing ("none"); each keeps the scale it was fitted in.
SCALES = ("naive", "spread", "none")


def level_name(level: float) -> str:
    """80 -> "80", 97.5 -> "97.5": as in the output's column names."""
    return f"{level:g}"


@dataclass(frozen=True)
class ScaledOutputs:
    """A forecaster's outputs over windows in scaled units: the point forecast (after the
    blend), each window's scale (windows, 1, targets: see window_scale), and the quantile
    head's outputs (windows, steps, targets, 2 x levels + 1) when it has one."""

    point: torch.Tensor
    spread: torch.Tensor
    quantiles: torch.Tensor | None = None


def nested(bounds: list[tuple[torch.Tensor, torch.Tensor]]) -> list:
    """Bounds of ascending levels made to nest on every row: each level's band contains the
    narrower ones' (a quantile correction or an adaptation per level could cross them)."""
    import torch

    out = []
    for lower, upper in bounds:
        if out:
            lower, upper = torch.minimum(lower, out[-1][0]), torch.maximum(upper, out[-1][1])
        out.append((lower, upper))
    return out


def scores_needed(level: float) -> int:
    """The fewest conformity scores whose split-conformal quantile supports `level` percent:
    the k-th smallest of m with k = ceil((m + 1) level) must exist (k <= m); with fewer, the
    bound is only the largest score seen and the coverage may fall short."""
    m = max(1, math.floor(level / (100 - level)) - 1)
    while math.ceil((m + 1) * level / 100) > m:  # as `Calibration.share` counts
        m += 1
    return m


def window_scale(
    inputs: torch.Tensor, target_index: list[int], kind: str, season: int | None = None
) -> torch.Tensor:
    """(batch, 1, targets): what each window's residuals are divided by (see SCALES): its
    mean absolute change of the target from one season to the next ("naive"; from row to row
    without a season or a window longer than one), its standard deviation ("spread", older
    calibrations) or 1 ("none")."""
    import torch

    values = inputs[..., target_index].float()
    if kind == "none":
        return torch.ones_like(values[:, :1])
    if kind == "spread":
        return values.std(dim=1, unbiased=False, keepdim=True).clamp_min(SPREAD_FLOOR)
    lag = season if season and values.shape[1] > season else 1
    change = (values[:, lag:] - values[:, :-lag]).abs().mean(dim=1, keepdim=True)
    return change.clamp_min(SPREAD_FLOOR)


def baseline_quantiles(residuals: np.ndarray, levels: list[float]) -> dict[str, list]:
    """Empirical quantiles of a baseline's own residuals (windows, steps, targets) on the
    training rows, per level: the seasonal-naive baseline's intervals."""
    lower, upper = [], []
    for level in levels:
        alpha = 1 - level / 100
        lower.append(np.nanquantile(residuals, alpha / 2, axis=0))
        upper.append(np.nanquantile(residuals, 1 - alpha / 2, axis=0))
    return {
        "levels": list(levels),
        "lower": np.stack(lower).tolist(),
        "upper": np.stack(upper).tolist(),
    }
