"""One-file checkpoints: weights, fitted scalers, config and columns, as tensors and plain types.

The file loads with `torch.load(weights_only=True)`, which refuses anything that would run code,
and carries a format version so an incompatible file is refused with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lstmcli import __version__
from lstmcli.config import Config, validate_config
from lstmcli.data import Scaler
from lstmcli.errors import ConfigError, LstmcliError
from lstmcli.files import atomic_path
from lstmcli.model import LSTMForecaster

FORMAT_NAME = "lstmcli-checkpoint"
FORMAT_VERSION = 1
CHECKPOINT_FILE = "model.pt"


@dataclass
class Checkpoint:
    config: Config
    model_args: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    input_columns: list[str]
    target_columns: list[str]
    input_scaler: Scaler
    target_scaler: Scaler
    mase_scales: list[float | None]
    trained_on: str = "cpu"
    time_freq: str | None = None  # the training data's frequency alias, for future timestamps
    time_step: float | None = None  # the same for a numeric time column

    def build_model(self, device: torch.device | str = "cpu") -> LSTMForecaster:
        model = LSTMForecaster(**self.model_args)
        model.load_state_dict(self.state_dict)
        return model.to(device).eval()


def save_checkpoint(checkpoint: Checkpoint, path: Path) -> None:
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "lstmcli_version": __version__,
        "torch_version": str(torch.__version__),  # TorchVersion is not a plain str
        "config": checkpoint.config.model_dump(mode="json"),
        "model_args": checkpoint.model_args,
        # CPU copies, so a GPU-trained checkpoint loads on a machine without one.
        "state_dict": {k: v.detach().cpu() for k, v in checkpoint.state_dict.items()},
        "input_columns": checkpoint.input_columns,
        "target_columns": checkpoint.target_columns,
        "input_scaler": checkpoint.input_scaler.to_dict(),
        "target_scaler": checkpoint.target_scaler.to_dict(),
        "mase_scales": checkpoint.mase_scales,
        "trained_on": checkpoint.trained_on,
        "time_freq": checkpoint.time_freq,
        "time_step": checkpoint.time_step,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path) -> Checkpoint:
    """Load a model.pt (or the one in a run folder), refusing anything that is not ours."""
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    if not path.is_file():
        raise LstmcliError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt, truncated or unsafe files
        raise LstmcliError(f"{path} is not a loadable lstmcli checkpoint ({_reason(e)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise LstmcliError(f"{path} is not an lstmcli checkpoint")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise LstmcliError(
            f"{path} has checkpoint format version {version}; this lstmcli ({__version__}) reads "
            f"version {FORMAT_VERSION}"
        )
    try:
        config = validate_config(payload["config"], str(path))
        return Checkpoint(
            config=config,
            model_args=dict(payload["model_args"]),
            state_dict=dict(payload["state_dict"]),
            input_columns=list(payload["input_columns"]),
            target_columns=list(payload["target_columns"]),
            input_scaler=Scaler.from_dict(payload["input_scaler"]),
            target_scaler=Scaler.from_dict(payload["target_scaler"]),
            mase_scales=list(payload["mase_scales"]),
            trained_on=str(payload.get("trained_on", "cpu")),
            time_freq=payload.get("time_freq"),
            time_step=payload.get("time_step"),
        )
    except (KeyError, TypeError, ValueError, ConfigError) as e:
        raise LstmcliError(f"{path} is a damaged lstmcli checkpoint ({e})") from None


def _reason(error: Exception) -> str:
    """The informative line of a torch.load error (torch's own are paragraphs long)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if line.startswith("WeightsUnpickler error:"):
            return line.removeprefix("WeightsUnpickler error:").strip().split(". ")[0]
    return lines[0][:200] if lines else type(error).__name__
