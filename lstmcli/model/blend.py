"""The network's forecast blended with the better naive forecast, the weight chosen on the
validation part (or combined with classical forecasts of the series' history: a network
from a prior, or from scratch on one target, see classical.py and run/fitting.py).

On small or noisy series a network can lose to "the same as last time" or "the same as one
season ago". After training, the validation windows (never the test part) show which naive
forecast is better there and how much of it to mix in: model weight 1 (the network alone),
0.75, 0.5, 0.25 or 0 (the naive forecast alone). The blend is part of the forecaster, so
predict, evaluate and export apply it the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from lstmcli.model.classical import KINDS, combined_share, input_name

WEIGHTS = (1.0, 0.75, 0.5, 0.25, 0.0)  # the network's share; a short list keeps the choice stable
# A prior's forecast is combined with the classical forecasts in equal shares; the val part
# overrules that only for one candidate alone (naive, seasonal naive, the classical forecast,
# the network) at least this many times better (RMSE) than the combination: a runaway's
# margin, since a short series' few origins choose between candidates by chance (measured on
# M3 and synthetic series, see benchmarks/README.md).
RUNAWAY_MARGIN = 2.0


def naive_in_window(
    windows: torch.Tensor, kind: str, season: int | None, steps: int, target_index: list[int]
) -> torch.Tensor:
    """The naive forecast (batch, steps, targets) read off scaled windows: the last value, or
    the value a whole number of seasons before each step (`seasonal`)."""
    targets = windows[..., target_index]
    if kind == "naive":
        return targets[:, -1:, :].expand(-1, steps, -1)
    lookback = windows.shape[1]
    rows = [lookback - 1 + h - season * -(-h // season) for h in range(1, steps + 1)]
    return targets[:, rows, :]


@dataclass(frozen=True)
class Blend:
    """weight x network + (1 - weight) x naive forecast, in scaled units. With an inner
    blend (inner_weight below 1) the network's forecast is first blended with the naive
    forecast `inner_kind` (a scratch network combined in thirds, see choose_blend)."""

    weight: float
    kind: str  # naive, seasonal, or a forecast of the series' history (classical.KINDS)
    season: int | None
    inner_weight: float = 1.0
    inner_kind: str = "naive"

    def to_dict(self) -> dict:
        out = {"weight": self.weight, "kind": self.kind, "season": self.season}
        if self.inner_weight != 1.0:
            out |= {"inner_weight": self.inner_weight, "inner_kind": self.inner_kind}
        return out

    @classmethod
    def from_dict(cls, d: dict | None) -> Blend | None:
        """A stored combination (None, or the network alone: no Blend)."""
        if not d or d["weight"] == 1.0:
            return None
        inner = float(d.get("inner_weight", 1.0)), str(d.get("inner_kind", "naive"))
        return cls(float(d["weight"]), str(d["kind"]), d.get("season"), *inner)

    @property
    def reads_history(self) -> bool:
        """Whether the mixed-in forecast needs the series' whole history, not the window."""
        return self.weight != 1.0 and self.kind in KINDS

    def apply(
        self,
        point: torch.Tensor,
        windows: torch.Tensor,
        target_index: list[int],
        history_forecast: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The blend of `point` (scaled units) with the naive forecast read off the windows,
        or with `history_forecast` (the classical forecast of each window's history)."""
        if self.weight == 1.0:
            return point
        if self.inner_weight != 1.0:
            naive = naive_in_window(windows, self.inner_kind, self.season, point.shape[1],
                                    target_index)  # fmt: skip
            point = self.inner_weight * point + (1 - self.inner_weight) * naive.to(point.dtype)
        if self.reads_history:
            other = history_forecast
        else:
            other = naive_in_window(windows, self.kind, self.season, point.shape[1], target_index)
        return self.weight * point + (1 - self.weight) * other.to(point.dtype)

    def report(self, scores: dict[str, float], part: str | None = "val") -> dict:
        """What metrics.json says about the choice, and the part whose windows chose it
        (`train` for a prior used as is without a val part; None: nothing to judge on)."""
        out = {
            "baseline": {"seasonal": "seasonal_naive"}.get(self.kind, self.kind),
            "model_weight": self.weight,
            "chosen_on": part,
            "val_rmse_scaled": scores,
        }
        if self.inner_weight != 1.0:  # the network's part, itself blended with a naive one
            inner = {"seasonal": "seasonal_naive"}.get(self.inner_kind, self.inner_kind)
            out["network_part"] = {"baseline": inner, "model_weight": self.inner_weight}
        return out


Batches = Callable[[], object]  # yields (inputs, future, targets) batches of the val windows


def choose_blend(
    network: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    batches: Batches,
    season: int | None,
    target_index: list[int],
    others: dict[str, torch.Tensor] | None = None,
    combine: str | None = None,
    inner: bool = False,
    network_alone: bool = True,
) -> tuple[Blend, dict[str, float]]:
    """The forecast to mix in and the network's weight with the lowest validation MSE, and
    the validation RMSE (scaled units) of each candidate, for metrics.json. Candidates: the
    naive forecasts read off the windows, and `others` (a forecast per validation window, in
    scaled units: `classical`, or `last_season`, seasonal naive read off each window's
    history where the window is shorter than the season).

    With `combine` (a kind of `others`, one of classical.KINDS) the forecast is the network's
    and that one's in equal shares (classical.combined_share), unless one candidate alone is
    far better on the val part (by RUNAWAY_MARGIN): a naive forecast, `combine` alone or the
    network alone. A short series' few val windows choose a weight worse than equal shares
    do (the forecast combination puzzle; measured on M3, see benchmarks/README.md), but
    still show a runaway.

    With `inner` (a network trained from scratch, often poor on the short val parts that
    keep the thirds) the network's part is first blended with the better naive forecast at
    the weight the val part chooses, then combined (measured on M3, benchmarks/README.md).

    Without `network_alone` (origins the network trained on: its errors there flatter it)
    the network alone is no candidate of the guard."""
    predicted, naive, seasonal, actual = [], [], [], []
    kinds = None
    with torch.inference_mode():
        for inputs, future, targets in batches():
            if kinds is None:
                kinds = ["naive"] + (["seasonal"] if season and inputs.shape[1] >= season else [])
            out = network(inputs, future)
            predicted.append(out)
            actual.append(targets)
            naive.append(naive_in_window(inputs, "naive", season, out.shape[1], target_index))
            if "seasonal" in kinds:
                seasonal.append(
                    naive_in_window(inputs, "seasonal", season, out.shape[1], target_index)
                )
    model, truth = torch.cat(predicted).float(), torch.cat(actual).float()
    baselines = {"naive": torch.cat(naive).float()}
    if seasonal:
        baselines["seasonal"] = torch.cat(seasonal).float()
    for kind, values in (others or {}).items():
        baselines[kind] = values.to(model.device).float()
    scores: dict[str, float] = {}
    best = ("naive", 1.0, float("inf"))
    for kind, values in baselines.items():
        for weight in WEIGHTS:
            mse = ((weight * model + (1 - weight) * values - truth) ** 2).mean().item()
            scores[f"{kind} x {1 - weight:g}"] = mse**0.5
            if mse < best[2] - 1e-12:
                best = (kind, weight, mse)
    if combine is not None:
        share = combined_share(combine)
        part, inner_weight, inner_kind = model, 1.0, "naive"  # the network's part
        if inner:
            naive_best = min((scores[f"{kind} x {1 - w:g}"], kind, w)
                             for kind in ("naive", "seasonal") if kind in baselines
                             for w in WEIGHTS)  # fmt: skip
            _, inner_kind, inner_weight = naive_best
            part = inner_weight * model + (1 - inner_weight) * baselines[inner_kind]
        mse = ((share * part + (1 - share) * baselines[combine] - truth) ** 2).mean().item()
        combination = scores[f"{combine} x {1 - share:.3g}"] = mse**0.5
        alone = {kind: scores[f"{kind} x 1"] for kind in baselines}  # weight 0
        if network_alone:  # the network's part
            alone["network"] = ((part - truth) ** 2).mean().item() ** 0.5
        alone = {kind: rmse * RUNAWAY_MARGIN for kind, rmse in alone.items()}
        rmse, kind = min((value, kind) for kind, value in alone.items())
        if rmse >= combination:
            return Blend(share, combine, season, inner_weight, inner_kind), scores
        if kind == "network" and inner_weight != 1.0:
            return Blend(inner_weight, inner_kind, season), scores
        if kind == "network":
            return Blend(1.0, combine, season), scores
        return Blend(0.0, kind, season), scores
    return Blend(best[1], best[0], season), scores


# How a run's summary names what a network is combined with (metrics.json's `baseline`).
FORECAST_NAMES = {
    "naive": "naive",
    "seasonal_naive": "seasonal naive",
    "classical": "AutoETS and AutoTheta",
    "last_season": "seasonal naive of the history",
    "theta": "Theta",
}


def describe_chosen(report: dict | None) -> str:
    """The forecast a run kept, in words, from its metrics.json `blend` (None: the network
    alone): the train command's last line says it, since a combination may weigh the network
    at 0 and the model is then a baseline."""
    if not report or report["model_weight"] == 1.0:
        return "the network alone"
    kind = input_name(report["baseline"])  # `classical` for its legacy kinds too
    name = FORECAST_NAMES.get(kind, kind)
    part = {"val": "the val part", "train": "the training part's last origins"}.get(
        report.get("chosen_on"), "no part: the default"
    )
    weight = report["model_weight"]
    if weight == 0.0:
        return f"{name} alone, the network weighed 0 (chosen on {part})"
    inner = report.get("network_part")
    network = "the network"
    if inner is not None:
        inner_name = FORECAST_NAMES.get(inner["baseline"], inner["baseline"])
        network = f"the network ({inner['model_weight']:.0%} of its share; the rest {inner_name})"
    return f"{weight:.0%} {network}, {1 - weight:.0%} {name} (chosen on {part})"
