"""The network: an LSTM over the window, its last layer's final hidden state into an MLP head."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class LSTMForecaster(nn.Module):
    """Maps windows (batch, lookback, n_inputs) to predictions (batch, steps, n_targets).

    The constructor takes plain numbers only, so a checkpoint can store them next to the weights
    and rebuild the model from the file alone.
    """

    def __init__(
        self,
        n_inputs: int,
        n_targets: int,
        steps: int,
        hidden_size: int,
        num_layers: int,
        dropout: float,
        head: list[int],
        window_norm: str = "none",
        target_index: list[int] | None = None,
        n_future: int = 0,
    ) -> None:
        super().__init__()
        self.steps, self.n_targets = steps, n_targets
        self.window_norm = window_norm
        # The last n_future inputs are known ahead: their values at the forecast rows join the
        # LSTM state at the head's input.
        self.n_future = n_future
        self.n_past = n_inputs - n_future
        # Where each target sits among the inputs (forecasting: targets come first).
        self.target_index = list(target_index if target_index is not None else range(n_targets))
        self.lstm = nn.LSTM(
            n_inputs,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,  # torch applies it between layers only
        )
        layers: list[nn.Module] = []
        width = hidden_size + steps * n_future
        for next_width in head:
            layers += [nn.Linear(width, next_width), nn.ReLU()]
            width = next_width
        layers.append(nn.Linear(width, steps * n_targets))
        self.head = nn.Sequential(*layers)

    def forward(self, windows: torch.Tensor, future: torch.Tensor | None = None) -> torch.Tensor:
        """windows (batch, lookback, n_inputs); future (batch, steps, n_future) when the model
        has known-future inputs."""
        if self.window_norm == "none":
            return self._network(windows, future)
        # Each window in its own units: a level the model never saw in training (a trend
        # leaving the training range) looks like any other window. Known-future columns stay
        # as they are, so their window and future values keep one scale.
        past = windows[..., : self.n_past]
        center, scale = window_stats(past, self.window_norm)
        normalized = torch.cat([(past - center) / scale, windows[..., self.n_past :]], dim=-1)
        out = self._network(normalized, future)
        index = self.target_index
        return out * scale[..., index] + center[..., index]

    def _network(self, windows: torch.Tensor, future: torch.Tensor | None) -> torch.Tensor:
        _, (h_n, _) = self.lstm(windows)
        # h_n is (num_layers, batch, hidden): the last layer's state, whatever the depth.
        state = h_n[-1]
        if self.n_future:
            if future is None:
                raise ValueError("this model needs the future values of its known inputs")
            state = torch.cat([state, future.reshape(len(state), -1).to(state.dtype)], dim=1)
        return self.head(state).view(-1, self.steps, self.n_targets)


class Ensemble(nn.Module):
    """Members trained from different seeds; the forecast is their mean."""

    def __init__(self, members: list[LSTMForecaster]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.steps, self.n_targets = members[0].steps, members[0].n_targets

    @property
    def lstm(self) -> nn.LSTM:
        """The first member's, for sizing inference batches."""
        return self.members[0].lstm

    def forward(self, windows: torch.Tensor, future: torch.Tensor | None = None) -> torch.Tensor:
        return torch.stack([member(windows, future) for member in self.members]).mean(dim=0)


def make_model(args: dict[str, Any]) -> nn.Module:
    """A model from checkpoint arguments: one LSTMForecaster, or an Ensemble of `members`."""
    args = dict(args)
    members = args.pop("members", 1)
    if members > 1:
        return Ensemble([LSTMForecaster(**args) for _ in range(members)])
    return LSTMForecaster(**args)


def window_stats(windows: torch.Tensor, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per window and column (batch, 1, columns): the center and scale of data.window_norm.

    last: the window's last value (scale 1); standard: mean and standard deviation; robust:
    median and interquartile range. A zero scale (a flat window) becomes 1.
    """
    if kind == "last":
        center = windows[:, -1:, :]
        return center, torch.ones_like(center)
    if kind == "standard":
        center = windows.mean(dim=1, keepdim=True)
        scale = windows.std(dim=1, keepdim=True, unbiased=False)
    elif kind == "robust":
        quartiles = torch.quantile(
            windows.float(), torch.tensor([0.25, 0.5, 0.75], device=windows.device), dim=1
        ).to(windows.dtype)
        center, scale = quartiles[1].unsqueeze(1), (quartiles[2] - quartiles[0]).unsqueeze(1)
    else:
        raise ValueError(f"unknown window_norm {kind!r}")
    return center, torch.where(scale > 1e-6, scale, torch.ones_like(scale))


def model_arguments(
    n_inputs: int,
    n_targets: int,
    steps: int,
    model_cfg: Any,
    window_norm: str = "none",
    target_index: list[int] | None = None,
    n_future: int = 0,
) -> dict[str, Any]:
    """The constructor arguments for a model config, as plain types a checkpoint can hold."""
    return {
        "n_future": n_future,
        "window_norm": window_norm,
        "target_index": list(target_index) if target_index is not None else None,
        "n_inputs": n_inputs,
        "n_targets": n_targets,
        "steps": steps,
        "hidden_size": model_cfg.hidden_size,
        "num_layers": model_cfg.num_layers,
        "dropout": model_cfg.dropout,
        "head": list(model_cfg.head),
    }


INFERENCE_MEMORY = 64 * 2**20  # bytes of LSTM activations per inference batch


def inference_batch(model: LSTMForecaster, lookback: int) -> int:
    """Windows per inference batch. The LSTM keeps its gates and outputs for every time step
    (5 x hidden floats a step), so a fixed batch that is quick for short windows would take
    gigabytes for long ones; this keeps a batch's activations near INFERENCE_MEMORY."""
    per_window = 4 * lookback * 5 * model.lstm.hidden_size
    return max(32, min(8192, INFERENCE_MEMORY // per_window))


def predict_windows(model: LSTMForecaster, windows: Any) -> torch.Tensor:
    """Scaled predictions (windows, steps, n_targets) for every window, in bounded chunks."""
    model.eval()
    outputs = []
    batch_size = inference_batch(model, len(windows.input_offsets))
    with torch.inference_mode():
        positions = torch.arange(len(windows), device=windows.anchors.device)
        for chunk in positions.split(batch_size):
            inputs, future, _ = windows.batch(chunk)
            outputs.append(model(inputs, future))
    if not outputs:
        return torch.empty(0, model.steps, model.n_targets)
    return torch.cat(outputs)
