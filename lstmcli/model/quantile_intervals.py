"""Quantile intervals: the network's quantile head gives each level's bounds, conformalized
(widened or narrowed by the val part's misses, in scale-free units) so the stated coverage
holds."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from lstmcli.model.bands import ScaledOutputs
from lstmcli.model.conformal import Calibration

if TYPE_CHECKING:
    import torch

    from lstmcli.model.conformal import Calibration


@dataclass
class QuantileCorrection:
    """For a quantile model: how much to widen (or narrow, when negative) each level's
    bounds, per target, in units of each window's naive error (scaled units in checkpoints
    written before: `scale` none): conformalized quantile regression (Romano et al. 2019) on
    the validation windows, every origin and step pooled; zeros when not conformalized."""

    levels: list[float]
    correction: np.ndarray  # (levels, targets)
    windows: int
    samples: int = 0  # conformity scores pooled (windows x steps); 0: not conformalized
    scale: str = "none"  # what the conformity scores are divided by (SCALES)

    from_quantiles: ClassVar[bool] = True
    adapts: ClassVar[bool] = False

    @staticmethod
    def needs_val_part(conformalize: bool) -> bool:
        """The head's quantiles alone need none; conformalizing them reads the val part."""
        return conformalize

    @classmethod
    def fit(
        cls,
        levels: list[float],
        n_targets: int,
        outputs: ScaledOutputs | None,
        actual: torch.Tensor | None,
        prior: Calibration | None = None,
        steps: int | None = None,
    ) -> QuantileCorrection:
        """Conformalized on the val windows; zeros (the quantiles as the head gives them)
        without them. (A prior's errors are a point forecast's: they do not apply.)"""
        if outputs is None or actual is None:
            return cls(list(levels), np.zeros((len(levels), n_targets)), 0, 0, "naive")
        quantiles = outputs.quantiles.float().cpu().numpy()
        scale = outputs.spread.float().cpu().numpy()
        return conformalize(quantiles, actual.float().cpu().numpy(), list(levels), scale)

    def tensors(self) -> dict[str, np.ndarray]:
        return {"correction": self.correction}

    def scaled_bounds(
        self, point: torch.Tensor, spread: torch.Tensor, quantiles: torch.Tensor | None,
        tensors: dict[str, torch.Tensor],
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:  # fmt: skip
        """Each level's quantiles, widened (or narrowed) by its correction times the
        window's naive error."""
        correction = tensors["correction"].to(quantiles.dtype)[:, None, None] * spread[None]
        pairs = quantile_pairs(quantiles, self.levels).values()
        return [(lower - correction[k], upper + correction[k])
                for k, (lower, upper) in enumerate(pairs)]  # fmt: skip

    def report(self) -> dict[str, Any]:
        return {"method": "quantile", "scale": self.scale, "val_origins": self.windows,
                "scores": self.samples}  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "quantile",
            "levels": list(self.levels),
            "correction": self.correction.tolist(),
            "windows": self.windows,
            "samples": self.samples,
            "scale": self.scale,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantileCorrection:
        return cls(
            [float(v) for v in d["levels"]],
            np.asarray(d["correction"], np.float64),
            int(d["windows"]),
            int(d.get("samples", d["windows"])),
            str(d.get("scale", "none")),
        )


def quantile_pairs(quantiles: np.ndarray, levels: list[float]) -> dict:
    """Each level's (lower, upper) from a quantile model's outputs (..., 2 x levels + 1):
    the lower bounds widest first, the median, the upper bounds narrowest first."""
    pairs = len(levels)
    return {
        level: (quantiles[..., pairs - 1 - k], quantiles[..., pairs + 1 + k])
        for k, level in enumerate(levels)
    }


def conformalize(
    quantiles: np.ndarray, actual: np.ndarray, levels: list[float], scale: np.ndarray
) -> QuantileCorrection:
    """Conformity scores max(lower - y, y - upper) of the validation windows in units of
    each window's naive error `scale` (windows, 1, targets), pooled over windows and steps
    per target (a panel's series together); the correction of each level is their quantile
    at the level with split conformal's finite-sample correction."""
    correction = []
    for level, (lower, upper) in quantile_pairs(quantiles, levels).items():
        scores = np.maximum(lower - actual, actual - upper) / scale
        scores = scores.reshape(-1, actual.shape[-1])
        ordered = np.sort(scores, axis=0)
        m = len(ordered)
        k = min(m, math.ceil((m + 1) * level / 100))
        correction.append(ordered[k - 1])
    return QuantileCorrection(
        list(levels), np.stack(correction), len(actual), len(ordered), "naive"
    )
