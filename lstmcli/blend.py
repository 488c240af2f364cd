"""The network's forecast blended with the better naive forecast, the weight chosen on the
validation part.

On small or noisy series a network can lose to "the same as last time" or "the same as one
season ago". After training, the validation windows (never the test part) show which naive
forecast is better there and how much of it to mix in: model weight 1 (the network alone),
0.75, 0.5, 0.25 or 0 (the naive forecast alone). The blend lives in the model, so predict,
evaluate and every later step apply it the same way.
"""

from __future__ import annotations

import torch
from torch import nn

WEIGHTS = (1.0, 0.75, 0.5, 0.25, 0.0)  # the network's share; a short list keeps the choice stable


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


class Blended(nn.Module):
    """weight x network + (1 - weight) x naive forecast, in scaled units."""

    def __init__(
        self,
        network: nn.Module,
        weight: float,
        kind: str,
        season: int | None,
        target_index: list[int],
    ) -> None:
        super().__init__()
        self.network, self.weight, self.kind = network, weight, kind
        self.season, self.target_index = season, target_index
        self.steps, self.n_targets = network.steps, network.n_targets

    @property
    def lstm(self) -> nn.LSTM:
        return self.network.lstm

    def forward(self, windows: torch.Tensor, future: torch.Tensor | None = None) -> torch.Tensor:
        out = self.network(windows, future)
        if self.weight == 1.0:
            return out
        naive = naive_in_window(windows, self.kind, self.season, self.steps, self.target_index)
        return self.weight * out + (1 - self.weight) * naive.to(out.dtype)


def choose_blend(
    network: nn.Module,
    windows: object,
    season: int | None,
    target_index: list[int],
) -> tuple[str, float, dict[str, float]]:
    """The naive forecast and the network's weight with the lowest validation MSE, and the
    validation RMSE (scaled units) of each candidate, for metrics.json."""
    from lstmcli.model import inference_batch

    network.eval()
    predicted, naive, seasonal, actual = [], [], [], []
    lookback = len(windows.input_offsets)
    kinds = ["naive"] + (["seasonal"] if season and lookback >= season else [])
    with torch.inference_mode():
        positions = torch.arange(len(windows), device=windows.anchors.device)
        for chunk in positions.split(inference_batch(network, lookback)):
            inputs, future, targets = windows.batch(chunk)
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
    scores: dict[str, float] = {}
    best = ("naive", 1.0, float("inf"))
    for kind, values in baselines.items():
        for weight in WEIGHTS:
            mse = ((weight * model + (1 - weight) * values - truth) ** 2).mean().item()
            scores[f"{kind} x {1 - weight:g}"] = mse**0.5
            if mse < best[2] - 1e-12:
                best = (kind, weight, mse)
    return best[0], best[1], scores
