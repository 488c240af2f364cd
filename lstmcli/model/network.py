"""The network: an LSTM over the window, its last layer's final hidden state into an MLP head."""

from __future__ import annotations

import torch
from torch import nn

from lstmcli.model.spec import ModelSpec, windows_per_batch


class LSTMForecaster(nn.Module):
    """Maps windows (batch, lookback, n_inputs) to predictions (batch, steps, n_targets)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.steps, self.n_targets = spec.steps, spec.n_targets
        self.window_norm = spec.window_norm
        # The last n_future inputs are known ahead: their values at the forecast rows join the
        # LSTM state at the head's input.
        self.n_future = spec.n_future
        self.n_past = spec.n_inputs - spec.n_future
        index = spec.target_index
        self.target_index = list(index) if index is not None else list(range(spec.n_targets))
        self.lstm = nn.LSTM(
            spec.n_inputs,
            spec.hidden_size,
            num_layers=spec.num_layers,
            batch_first=True,
            # torch applies dropout between layers only
            dropout=spec.dropout if spec.num_layers > 1 else 0.0,
        )
        layers: list[nn.Module] = []
        width = spec.hidden_size + spec.steps * spec.n_future
        for next_width in spec.head:
            layers += [nn.Linear(width, next_width), nn.ReLU()]
            width = next_width
        layers.append(nn.Linear(width, spec.steps * spec.n_targets))
        self.head = nn.Sequential(*layers)
        # A linear autoregression over the window's target values, added to the head's output:
        # it can say "the same as one season ago" or "the trend goes on" from the first epoch,
        # and the LSTM learns what a linear map cannot.
        self.skip_rows = spec.linear_skip
        self.skip = (
            nn.Linear(spec.linear_skip * spec.n_targets, spec.steps * spec.n_targets)
            if spec.linear_skip
            else None
        )
        # Quantile forecasts: for each level, how far below and above the median its bounds
        # lie, as sums of positive steps from the inner level outwards: ordered by
        # construction, so they never cross.
        self.quantile_levels = tuple(spec.quantile_levels)
        self.lstm_rows = spec.lstm_rows
        pairs = len(self.quantile_levels)
        self.offsets = nn.Linear(width, spec.steps * spec.n_targets * 2 * pairs) if pairs else None

    def forward(self, windows: torch.Tensor, future: torch.Tensor | None = None) -> torch.Tensor:
        """windows (batch, lookback, n_inputs); future (batch, steps, n_future) when the model
        has known-future inputs. The point forecast (the median of a quantile model)."""
        return self._outputs(windows, future, quantiles=False)[..., 0]

    def quantile_forward(
        self, windows: torch.Tensor, future: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(batch, steps, targets, 2 x levels + 1): the lower bounds from the widest level in,
        the median, the upper bounds from the narrowest level out."""
        return self._outputs(windows, future, quantiles=True)

    def _outputs(
        self, windows: torch.Tensor, future: torch.Tensor | None, quantiles: bool
    ) -> torch.Tensor:
        if self.window_norm == "none":
            return self._network(windows, future, quantiles)
        # Each window in its own units: a level the model never saw in training (a trend
        # leaving the training range) looks like any other window. Known-future columns stay
        # as they are, so their window and future values keep one scale.
        past = windows[..., : self.n_past]
        center, scale = window_stats(past, self.window_norm)
        normalized = torch.cat([(past - center) / scale, windows[..., self.n_past :]], dim=-1)
        out = self._network(normalized, future, quantiles)
        index = self.target_index
        # a flat window forecasts its level exactly (an all-zero series zeros, not +-1e-7)
        spread = torch.where(scale > MIN_WINDOW_SCALE, scale, torch.zeros_like(scale))
        return out * spread[..., index].unsqueeze(-1) + center[..., index].unsqueeze(-1)

    def _network(
        self, windows: torch.Tensor, future: torch.Tensor | None, quantiles: bool = False
    ) -> torch.Tensor:
        # A long window's far rows reach the output through the linear skip only: the
        # recurrence, whose cost grows with its length, reads the last lstm_rows.
        lstm_input = windows[:, -self.lstm_rows :] if self.lstm_rows else windows
        _, (h_n, _) = self.lstm(lstm_input)
        # h_n is (num_layers, batch, hidden): the last layer's state, whatever the depth.
        state = h_n[-1]
        if self.n_future:
            if future is None:
                raise ValueError("this model needs the future values of its known inputs")
            state = torch.cat([state, future.flatten(1).to(state.dtype)], dim=1)
        hidden = self.head[:-1](state)
        out = self.head[-1](hidden)
        if self.skip is not None:
            recent = windows[:, -self.skip_rows :, self.target_index]
            out = out + self.skip(recent.flatten(1).to(out.dtype))  # flatten: no fixed batch
        median = out.view(-1, self.steps, self.n_targets, 1)
        if not quantiles or self.offsets is None:
            return median
        pairs = len(self.quantile_levels)
        steps = nn.functional.softplus(self.offsets(hidden))
        steps = steps.view(-1, self.steps, self.n_targets, 2, pairs).cumsum(dim=-1)
        lower = median - steps[..., 0, :].flip(-1)  # widest first
        upper = median + steps[..., 1, :]
        return torch.cat([lower, median, upper], dim=-1)


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

    @property
    def quantile_levels(self) -> tuple[float, ...]:
        return self.members[0].quantile_levels

    def quantile_forward(
        self, windows: torch.Tensor, future: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The members' quantiles averaged (still ordered: a mean of ordered values is)."""
        outputs = [member.quantile_forward(windows, future) for member in self.members]
        return torch.stack(outputs).mean(dim=0)


MIN_WINDOW_SCALE = 1e-6  # scaled units: a window with less spread is flat


def window_stats(windows: torch.Tensor, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per window and column (batch, 1, columns): the center and scale of data.window_norm.

    last: the window's last value (scale 1); standard: mean and standard deviation; robust:
    median and interquartile range. The scale is at least MIN_WINDOW_SCALE, and a flat window
    forecasts its own level exactly (_outputs): a floor of 1, one training spread, let the
    network's typical move of a training window drift a constant history far off.
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
    return center, scale.clamp_min(MIN_WINDOW_SCALE)


NETWORKS: dict[str, type[nn.Module]] = {"lstm": LSTMForecaster}  # ModelSpec.network -> class


def member(spec: ModelSpec) -> nn.Module:
    """One network of the kind the spec names (a checkpoint naming another kind is refused
    when it loads, by ModelSpec.from_dict)."""
    return NETWORKS[spec.network](spec)


def inference_batch(model: nn.Module, lookback: int) -> int:
    """Windows per inference batch of this network (see spec.windows_per_batch)."""
    return windows_per_batch(model.lstm.hidden_size, lookback)
