"""One-file checkpoints: weights, fitted scalers, config and columns, as tensors and plain types.

The file loads with `torch.load(weights_only=True)`, which refuses anything that would run code,
and carries a format version so an incompatible file is refused with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lstmcli import __version__
from lstmcli.config.edit import validate_config
from lstmcli.config.schema import Config
from lstmcli.data.scaling import Scaler
from lstmcli.errors import ConfigError, LstmcliError
from lstmcli.files import atomic_path
from lstmcli.model.classical import legacy_kind
from lstmcli.model.intervals import load_calibration
from lstmcli.model.spec import ModelSpec

if TYPE_CHECKING:
    import torch

    from lstmcli.model.fitted import FittedForecaster
    from lstmcli.model.forecaster import Forecaster

FORMAT_NAME = "lstmcli-checkpoint"
# 6: AutoTheta forecasts the adjusted series where its test misses a season (classical.py);
# 5: `classical` fits a history up to 200 rows whole; 4: it adjusts seasons over 12 for
# AutoETS (classical.py); 3: the combination beside the spec; 2: series ids, per-series
# scalers
FORMAT_VERSION = 6
READABLE_VERSIONS = (1, 2, 3, 4, 5, 6)  # version 1 files are single-series checkpoints
CHECKPOINT_FILE = "model.pt"
LAST_FILE = "last.pt"  # the latest weights and the training state, for --resume


@dataclass
class Checkpoint:
    config: Config
    spec: ModelSpec
    state_dict: dict[str, torch.Tensor]
    input_columns: list[str]
    target_columns: list[str]
    input_scaler: Scaler
    target_scaler: Scaler
    mase_scales: list[float | None]
    trained_on: str = "cpu"
    time_freq: str | None = None  # the training data's frequency alias, for future timestamps
    time_step: float | None = None  # the same for a numeric time column
    time_zone: str | None = None  # the training times' zone (e.g. UTC); None: naive or numbers
    data_rows: int | None = None  # rows of the training data, to notice it changed on resume
    train_state: dict[str, Any] | None = None  # last.pt only
    series_ids: list[str] | None = None  # the training series (id_column), as text
    series_mase_scales: list[list[float | None]] | None = None  # per series, per target
    calibration: dict[str, Any] | None = None  # prediction intervals (intervals.Calibration)
    baseline_intervals: dict[str, Any] | None = None  # the seasonal-naive baseline's
    blend: dict[str, Any] | None = None  # the combination (blend.Blend.to_dict); None: none

    def series_rows(self, ids: list[str]) -> np.ndarray:
        """Each id's row among the training series (its scalers and MASE scales); -1 for an id
        the model was not trained on."""
        known = {name: k for k, name in enumerate(self.series_ids or [])}
        return np.array([known.get(name, -1) for name in ids], dtype=np.int64)

    def series_mase_scales_of(self, ids: list[str]) -> np.ndarray:
        """The training MASE scales of these series (series, targets); NaN where unknown."""
        scales = np.full((len(ids), len(self.target_columns)), np.nan)
        trained = np.array(self.series_mase_scales or [], dtype=np.float64)
        rows = self.series_rows(ids)
        if len(trained):
            scales[rows >= 0] = trained[rows[rows >= 0]]
        return scales

    def build_network(self, device: torch.device | str = "cpu") -> torch.nn.Module:
        """The network(s) with their weights; weights that do not fit the stored shape are
        refused."""
        weights = self.state_dict
        if any(k.startswith("network.") for k in weights):  # a blended model of before #22
            weights = {k.removeprefix("network."): v for k, v in weights.items()}
        try:
            network = self.spec.build()
            network.load_state_dict(weights)
        except (RuntimeError, TypeError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise LstmcliError(f"the checkpoint's weights do not fit its model ({first})") from None
        return network.to(device).eval()

    def forecaster(self, device: torch.device | str = "cpu") -> Forecaster:
        """The torch forecaster: network, scalers, combination and calibration."""
        from lstmcli.model.blend import Blend
        from lstmcli.model.forecaster import Forecaster

        forecaster = Forecaster(
            self.spec,
            self.build_network(device),
            self.input_scaler,
            self.target_scaler,
            load_calibration(self.calibration),
            self.config.model.adaptive,
            Blend.from_dict(self.blend),
        )
        return forecaster.to(device).eval()

    def fitted(
        self, device: torch.device | str = "cpu", forecaster: Forecaster | None = None
    ) -> FittedForecaster:
        """The fitted forecaster on torch: table rows in, forecasts in original units out
        (around `forecaster` when given: training's, before model.pt is read back)."""
        from lstmcli.model.fitted import FittedForecaster
        from lstmcli.model.forecaster import RawUnits, TorchBackend

        data = self.config.data
        future = list(range(len(self.input_columns)))[data.layout.future]
        forecaster = forecaster if forecaster is not None else self.forecaster(device)
        module = RawUnits(forecaster, self.input_scaler.per_series,
                          future if data.layout.n_future else [])  # fmt: skip
        return FittedForecaster(self, TorchBackend(module.to(device)))


def save_checkpoint(checkpoint: Checkpoint, path: Path) -> None:
    import torch

    payload = checkpoint_payload(checkpoint)
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        torch.save(payload, file)  # to a file object: a full disk is an OSError, not a
        # RuntimeError about zip positions


def checkpoint_payload(checkpoint: Checkpoint, weights: bool = True) -> dict[str, Any]:
    """What model.pt holds; without `weights` only plain values (for an ONNX file's
    metadata, where the weights live in the graph)."""
    import torch

    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "lstmcli_version": __version__,
        "torch_version": str(torch.__version__),  # TorchVersion is not a plain str
        "config": checkpoint.config.model_dump(mode="json"),
        "model_args": checkpoint.spec.to_dict(),
        "blend": checkpoint.blend,
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
        "time_zone": checkpoint.time_zone,
        "data_rows": checkpoint.data_rows,
        "train_state": checkpoint.train_state,
        "series_ids": checkpoint.series_ids,
        "series_mase_scales": checkpoint.series_mase_scales,
        "calibration": checkpoint.calibration,
        "baseline_intervals": checkpoint.baseline_intervals,
    }
    if not weights:
        payload["state_dict"], payload["train_state"] = {}, None
    return payload


def load_checkpoint(path: Path, file: str = CHECKPOINT_FILE) -> Checkpoint:
    """Load a checkpoint file (or `file` in a run folder), refusing anything that is not ours."""
    import torch

    if path.is_dir():
        path = path / file
    if not path.is_file():
        raise LstmcliError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt, truncated or unsafe files
        raise LstmcliError(f"{path} {_why_unloadable(path, e)}") from None
    checkpoint = checkpoint_from_payload(payload, path)
    _check_consistent(checkpoint, path)
    return checkpoint


def _config_as_run(payload: dict) -> dict:
    """The stored config, with `model.lstm_rows` as its network reads: a config written
    before that key existed would take `auto` and, resumed, cut a long window its network
    was trained on whole."""
    config = dict(payload["config"])
    model = dict(config.get("model") or {})
    if "lstm_rows" not in model:
        model["lstm_rows"] = dict(payload["model_args"]).get("lstm_rows") or None
        config["model"] = model
    return config


def checkpoint_from_payload(payload: Any, path: Path) -> Checkpoint:
    """A checkpoint from what `checkpoint_payload` made (refusing anything else)."""
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise LstmcliError(f"{path} is not an lstmcli checkpoint")
    version = payload.get("format_version")
    if version not in READABLE_VERSIONS:
        raise LstmcliError(
            f"{path} has checkpoint format version {version}; this lstmcli ({__version__}) reads "
            f"versions {READABLE_VERSIONS[0]} to {READABLE_VERSIONS[-1]}"
        )
    try:
        config = validate_config(_config_as_run(payload), str(path))
        checkpoint = Checkpoint(
            config=config,
            spec=ModelSpec.from_dict(dict(payload["model_args"])),
            blend=_stored_blend(payload, version),
            state_dict=dict(payload["state_dict"]),
            input_columns=list(payload["input_columns"]),
            target_columns=list(payload["target_columns"]),
            input_scaler=Scaler.from_dict(payload["input_scaler"]),
            target_scaler=Scaler.from_dict(payload["target_scaler"]),
            mase_scales=list(payload["mase_scales"]),
            trained_on=str(payload.get("trained_on", "cpu")),
            time_freq=payload.get("time_freq"),
            time_step=payload.get("time_step"),
            time_zone=payload.get("time_zone"),
            data_rows=payload.get("data_rows"),
            train_state=payload.get("train_state"),
            series_ids=payload.get("series_ids"),
            series_mase_scales=payload.get("series_mase_scales"),
            calibration=payload.get("calibration"),
            baseline_intervals=payload.get("baseline_intervals"),
        )
    except (KeyError, TypeError, ValueError, ConfigError) as e:
        raise LstmcliError(f"{path} is a damaged lstmcli checkpoint ({e})") from None
    return checkpoint


def _stored_blend(payload: dict, version: int) -> dict | None:
    """The checkpoint's combination, its kind named as this lstmcli names what it ran."""
    blend = payload["blend"] if "blend" in payload else _blend_of(payload["model_args"])
    if blend:
        blend = {**blend, "kind": legacy_kind(blend["kind"], version)}
    return blend


def _blend_of(model_args: dict) -> dict | None:
    """The combination a checkpoint before version 3 kept among its model arguments."""
    weight = float(model_args.get("blend_weight", 1.0))
    if weight == 1.0:
        return None
    kind = model_args.get("blend_baseline", "naive")
    return {"weight": weight, "kind": kind, "season": model_args.get("season")}


def _check_consistent(checkpoint: Checkpoint, path: Path) -> None:
    """Columns, scalers and model sizes must agree, or predictions would be silently wrong."""
    spec, data = checkpoint.spec, checkpoint.config.data
    problems = []
    if checkpoint.input_columns != data.layout.inputs or checkpoint.target_columns != data.target:
        problems.append("its columns differ from its config")
    if checkpoint.input_scaler.center.shape[-1] != len(checkpoint.input_columns):
        problems.append("its input scaler does not match its input columns")
    if checkpoint.target_scaler.center.shape[-1] != len(checkpoint.target_columns):
        problems.append("its target scaler does not match its target columns")
    for scaler in (checkpoint.input_scaler, checkpoint.target_scaler):
        if scaler.per_series and len(scaler.center) != len(checkpoint.series_ids or []):
            problems.append("its per-series scalers do not match its series ids")
            break
    if spec.n_inputs != len(checkpoint.input_columns) or spec.n_targets != len(
        checkpoint.target_columns
    ):
        problems.append("its model sizes do not match its columns")
    if problems:
        raise LstmcliError(f"{path} is inconsistent: {'; '.join(problems)}")


def _why_unloadable(path: Path, error: Exception) -> str:
    """One sentence on what the file is not (torch's own messages are paragraphs of advice
    about its loader, which would only mislead here)."""
    with open(path, "rb") as file:
        zipped = file.read(4) == b"PK\x03\x04"  # torch.save writes a zip archive
    if not zipped:
        return (
            "is not a loadable lstmcli checkpoint: not a file that `lstmcli train` writes "
            "(give a run folder or its model.pt)"
        )
    if any(sign in str(error) for sign in ("WeightsUnpickler", "nsupported GLOBAL", "global")):
        return (
            "is not a loadable lstmcli checkpoint: it holds objects that could run code when "
            "loaded, and lstmcli loads only tensors and plain values"
        )
    return "is not a loadable lstmcli checkpoint: the file is damaged (truncated or corrupt)"
