"""What shapes the network, as plain numbers (no torch): the checkpoint and an exported ONNX
file store it, so a model is rebuilt, or an ONNX file run, from the file alone."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from lstmcli.config.plan import PlannedData, PlannedModel


@dataclass(frozen=True)
class ModelSpec:
    """Everything that shapes the network, as plain numbers: the checkpoint stores it next to
    the weights, so the model is rebuilt from the file alone."""

    n_inputs: int
    n_targets: int
    steps: int
    hidden_size: int
    num_layers: int
    dropout: float
    head: tuple[int, ...]
    window_norm: str = "none"
    target_index: tuple[int, ...] | None = None  # each target's input column (forecasting)
    n_future: int = 0  # the last n_future inputs are known at the forecast rows too
    members: int = 1  # an ensemble of this many networks
    linear_skip: int = 0  # > 0: a linear map from the targets' last rows to the output
    season: int | None = None  # a blend's seasonal naive forecast; the intervals' unit
    quantile_levels: tuple[float, ...] = ()  # interval levels the head forecasts quantiles for
    lstm_rows: int = 0  # > 0: the LSTM reads only the window's last lstm_rows rows
    network: str = "lstm"  # the kind of network (network.NETWORKS), one per member

    @classmethod
    def for_config(cls, data: PlannedData, model: PlannedModel) -> ModelSpec:
        """The spec of a planned config's model."""
        layout = data.layout
        steps = data.horizon if data.task == "forecast" else 1
        index = layout.target_index
        return cls(
            n_inputs=len(layout.inputs),
            n_targets=len(layout.targets),
            steps=steps,
            hidden_size=model.hidden_size,
            num_layers=model.num_layers,
            dropout=model.dropout,
            head=tuple(model.head),
            window_norm=data.window_norm,
            target_index=tuple(index) if index is not None else None,
            n_future=layout.n_future,
            linear_skip=data.lookback if model.linear_skip and data.task == "forecast" else 0,
            quantile_levels=tuple(model.levels) if model.interval_method.from_quantiles else (),
            season=data.season,
            lstm_rows=_lstm_rows(model.lstm_rows, data.lookback),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain types for the checkpoint (lists, not tuples: torch's safe loader reads both)."""
        out = asdict(self)
        out["head"] = list(self.head)
        out["target_index"] = list(self.target_index) if self.target_index is not None else None
        out["quantile_levels"] = list(self.quantile_levels)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k not in BLEND_ARGS}  # a file's combination (<= v2)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown model arguments {unknown}")
        values = dict(d)
        if values.get("network", "lstm") not in NETWORK_KINDS:
            raise ValueError(f"a network of kind {values['network']!r}, unknown to this lstmcli")
        values["head"] = tuple(values["head"])
        values["quantile_levels"] = tuple(values.get("quantile_levels", ()))
        if values.get("target_index") is not None:
            values["target_index"] = tuple(values["target_index"])
        return cls(**values)

    def build(self) -> nn.Module:
        """One network of its kind, or an Ensemble of `members` of them (the combination
        and the intervals are the forecaster's, see forecaster.py)."""
        from lstmcli.model.network import Ensemble, member

        if self.members > 1:
            return Ensemble([member(self) for _ in range(self.members)])
        return member(self)

    @property
    def target_columns(self) -> list[int]:
        """Each target's input column (the first input for regression, which has none)."""
        return list(self.target_index) if self.target_index is not None else [0]


def _lstm_rows(rows: int | None, lookback: int) -> int:
    """model.lstm_rows as the spec keeps it: 0 (the whole window) unless it cuts the window."""
    return 0 if rows is None or rows >= lookback else rows


NETWORK_KINDS = ("lstm",)  # the networks model/network.py builds (its NETWORKS)
BLEND_ARGS = ("blend_weight", "blend_baseline")  # where checkpoints before v3 kept the blend

INFERENCE_MEMORY = 64 * 2**20  # bytes of LSTM activations per inference batch


def windows_per_batch(hidden_size: int, lookback: int) -> int:
    """Windows per inference batch. The LSTM keeps its gates and outputs for every time step
    (5 x hidden floats a step), so a fixed batch that is quick for short windows would take
    gigabytes for long ones; this keeps a batch's activations near INFERENCE_MEMORY."""
    per_window = 4 * lookback * 5 * hidden_size
    return max(32, min(8192, INFERENCE_MEMORY // per_window))
