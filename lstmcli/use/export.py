"""`lstmcli export`: the whole forecaster as one ONNX file, and running such a file.

The graph takes raw windows (original units, the model's input columns in checkpoint order,
float64) and returns forecasts in original units: the global scaling, the window
normalization, the LSTM(s) and head, the blend with the naive forecast, the ensemble mean and
the inverse scaling are all inside, and so are the interval bounds of a model with levels (the
calibrated bounds; the adaptive ones of a rolling backtest need the actuals as they arrive, which
is `lstmcli predict`'s business). With `data.scale_by: series` the scalers' statistics of each
window's series are inputs (in the metadata, per series id), since the graph cannot know ids.

The file's metadata holds the column names, lookback, horizon, frequency, versions and the
checkpoint without its weights, so `lstmcli predict model.onnx` gives what the run folder gives.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn

from lstmcli import __version__
from lstmcli.errors import LstmcliError
from lstmcli.files import atomic_path
from lstmcli.model.checkpoint import Checkpoint, checkpoint_from_payload, checkpoint_payload
from lstmcli.model.intervals import QuantileCorrection, load_calibration, window_scale

EXPORT_FORMAT = "lstmcli-onnx"
EXPORT_VERSION = 1
OPSET = 18


def require_onnx() -> tuple[Any, Any]:
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise LstmcliError(
            "ONNX export and prediction need onnx, onnxscript and onnxruntime, which are not "
            "installed; install them with `pip install 'lstmcli[onnx]'`"
        ) from None
    return onnx, onnxruntime


class ExportedForecaster(nn.Module):
    """A checkpoint's forecaster between raw windows and forecasts in original units: the
    global scaling (or the series' statistics given as inputs) around the forecaster, which
    does the rest (window normalization, network, blend, ensemble mean, interval bounds)."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        super().__init__()
        self.forecaster = checkpoint.forecaster("cpu")
        data = checkpoint.config.data
        self.per_series = checkpoint.input_scaler.per_series
        n_inputs = len(checkpoint.input_columns)
        self.future_columns = (
            list(range(n_inputs))[data.layout.future] if data.layout.n_future else []
        )
        if not self.per_series:
            for name, scaler in (("input", checkpoint.input_scaler),
                                 ("target", checkpoint.target_scaler)):  # fmt: skip
                self.register_buffer(
                    f"{name}_center", torch.tensor(scaler.center, dtype=torch.float64)
                )
                self.register_buffer(
                    f"{name}_scale", torch.tensor(scaler.scale, dtype=torch.float64)
                )

    def forward(self, inputs: torch.Tensor, *extra: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """inputs (batch, lookback, inputs) and, in this order when the model has them:
        future (batch, horizon, known-ahead inputs); the per-series statistics input_center,
        input_scale (batch, inputs), target_center, target_scale (batch, targets). All float64,
        in original units. Returns the forecast (batch, horizon, targets) and, per level, the
        lower and upper bounds."""
        extra = list(extra)
        future = extra.pop(0) if self.future_columns else None
        if self.per_series:
            in_center, in_scale, t_center, t_scale = (e.unsqueeze(1) for e in extra)
        else:
            in_center, in_scale = self.input_center, self.input_scale
            t_center, t_scale = self.target_center, self.target_scale
        window = ((inputs - in_center) / in_scale).float()
        ahead = None
        if future is not None:
            columns = self.future_columns
            ahead = ((future - in_center[..., columns]) / in_scale[..., columns]).float()
        point, bounds, _, _ = self.forecaster(window, ahead)

        def unscale(values: torch.Tensor) -> torch.Tensor:
            return values.double() * t_scale + t_center

        outputs = [unscale(point)]
        for lower, upper in bounds:
            outputs += [unscale(lower), unscale(upper)]
        return tuple(outputs)


def input_names(checkpoint: Checkpoint) -> list[str]:
    names = ["inputs"]
    if checkpoint.config.data.layout.n_future:
        names.append("future")
    if checkpoint.input_scaler.per_series:
        names += ["input_center", "input_scale", "target_center", "target_scale"]
    return names


def output_names(checkpoint: Checkpoint) -> list[str]:
    calibration = load_calibration(checkpoint.calibration)
    names = ["forecast"]
    for level in calibration.levels if calibration is not None else []:
        names += [f"lo_{level:g}", f"hi_{level:g}"]
    return names


def example_inputs(checkpoint: Checkpoint, batch: int = 2) -> tuple[torch.Tensor, ...]:
    data = checkpoint.config.data
    n_in, n_t = len(checkpoint.input_columns), len(checkpoint.target_columns)
    generator = torch.Generator().manual_seed(0)
    out = [torch.randn(batch, data.lookback, n_in, dtype=torch.float64, generator=generator)]
    if data.layout.n_future:
        out.append(torch.randn(batch, data.horizon, data.layout.n_future, dtype=torch.float64))
    if checkpoint.input_scaler.per_series:
        out += [torch.zeros(batch, n_in, dtype=torch.float64),
                torch.ones(batch, n_in, dtype=torch.float64),
                torch.zeros(batch, n_t, dtype=torch.float64),
                torch.ones(batch, n_t, dtype=torch.float64)]  # fmt: skip
    return tuple(out)


def metadata(checkpoint: Checkpoint) -> dict[str, str]:
    """The file's metadata_props: what a consumer needs, and the checkpoint without weights."""
    data = checkpoint.config.data
    calibration = load_calibration(checkpoint.calibration)
    return {
        "format": EXPORT_FORMAT,
        "format_version": str(EXPORT_VERSION),
        "lstmcli_version": __version__,
        "torch_version": str(torch.__version__),
        "input_columns": json.dumps(checkpoint.input_columns),
        # every column of the `future` input, in order: known features, then calendar sin/cos
        "future_columns": json.dumps(data.layout.inputs[data.layout.future]),
        "target_columns": json.dumps(checkpoint.target_columns),
        "lookback": str(data.lookback),
        "horizon": str(data.horizon),
        "frequency": checkpoint.time_freq or "",
        "levels": json.dumps(list(calibration.levels) if calibration is not None else []),
        "series_statistics": json.dumps(_series_statistics(checkpoint)),
        "inputs": json.dumps(input_names(checkpoint)),
        "outputs": json.dumps(output_names(checkpoint)),
        "checkpoint": json.dumps(checkpoint_payload(checkpoint, weights=False)),
    }


def _series_statistics(checkpoint: Checkpoint) -> dict | None:
    if not checkpoint.input_scaler.per_series:
        return None
    i, t = checkpoint.input_scaler, checkpoint.target_scaler
    return {
        name: {"input_center": i.center[k].tolist(), "input_scale": i.scale[k].tolist(),
               "target_center": t.center[k].tolist(), "target_scale": t.scale[k].tolist()}
        for k, name in enumerate(checkpoint.series_ids or [])
    }  # fmt: skip


def export_onnx(checkpoint: Checkpoint, path: Path, dynamo: bool = True) -> Path:
    """Write the forecaster to `path` (atomically) with torch's recommended exporter (the
    torch.export-based one; `dynamo=False`: the older TorchScript one)."""
    onnx, _ = require_onnx()
    spec = checkpoint.spec
    if spec.blend_weight != 1.0 and spec.blend_baseline == "theta":
        raise LstmcliError(
            f"this model blends its forecast with the Theta forecast of each series' whole "
            f"history (model.blend chose theta x {1 - spec.blend_weight:g}), which a graph of "
            "windows cannot compute; `lstmcli predict` runs it, or export a model trained with "
            "model.blend: none"
        )
    module = ExportedForecaster(checkpoint).eval()
    inputs = example_inputs(checkpoint)
    names = input_names(checkpoint)
    batch = torch.export.Dim("batch")
    outputs = output_names(checkpoint)
    kwargs: dict[str, Any] = {"input_names": names, "output_names": outputs,
                              "opset_version": OPSET, "dynamo": dynamo}  # fmt: skip
    if dynamo:
        # forward(inputs, *extra): the batch of each, in that structure
        extra = tuple({0: batch} for _ in names[1:])
        kwargs["dynamic_shapes"] = ({0: batch}, extra) if extra else ({0: batch},)
        kwargs["verbose"] = False
    else:
        kwargs["dynamic_axes"] = {name: {0: "batch"} for name in names + outputs}
    quiet = logging.getLogger("torch.onnx")  # the exporter's notes (torchvision absent, ...)
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), atomic_path(path) as tmp:
            warnings.simplefilter("ignore")
            try:
                if dynamo:
                    torch.onnx.export(module, inputs, **kwargs).save(str(tmp))
                else:
                    torch.onnx.export(module, inputs, str(tmp), **kwargs)
            except Exception as e:  # the exporters raise many kinds
                raise LstmcliError(f"ONNX export failed: {type(e).__name__}: {_first(e)}") from None
            model = onnx.load(str(tmp))
            for key, value in metadata(checkpoint).items():
                entry = model.metadata_props.add()
                entry.key, entry.value = key, value
            onnx.save(model, str(tmp))
    finally:
        quiet.setLevel(level)
    return path


def _first(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


class OnnxSession:
    """An exported file run by onnxruntime, with the checkpoint its metadata holds."""

    def __init__(self, path: Path) -> None:
        onnx, runtime = require_onnx()
        try:
            self.session = runtime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as e:
            raise LstmcliError(f"{path} is not a loadable ONNX file: {_first(e)}") from None
        props = self.session.get_modelmeta().custom_metadata_map
        if props.get("format") != EXPORT_FORMAT:
            raise LstmcliError(f"{path} is an ONNX file, but not one `lstmcli export` wrote")
        if props.get("format_version") != str(EXPORT_VERSION):
            raise LstmcliError(f"{path} has export format version {props.get('format_version')}; "
                               f"this lstmcli reads version {EXPORT_VERSION}")  # fmt: skip
        self.checkpoint = checkpoint_from_payload(json.loads(props["checkpoint"]), path)
        self.names = json.loads(props["inputs"])

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        feed = {
            name: np.ascontiguousarray(x, dtype=np.float64)
            for name, x in zip(self.names, inputs, strict=True)
        }
        return self.session.run(None, feed)


class OnnxNetwork(nn.Module):
    """The exported graph where predict expects the network: scaled windows in, scaled
    forecasts out. The scaling inside the graph is undone around it (a per-series graph gets
    identity statistics), so everything predict does around the network stays as it is."""

    def __init__(self, session: OnnxSession) -> None:
        super().__init__()
        self.onnx = session
        checkpoint = session.checkpoint
        self.steps = checkpoint.config.data.horizon
        self.n_targets = len(checkpoint.target_columns)
        self.quantile_levels = checkpoint.spec.quantile_levels
        self.input_scaler, self.target_scaler = checkpoint.input_scaler, checkpoint.target_scaler
        self.future = checkpoint.config.data.layout.future
        self.lookback = checkpoint.config.data.lookback
        self.lstm = SimpleNamespace(hidden_size=checkpoint.spec.hidden_size)  # batch sizing
        calibration = load_calibration(checkpoint.calibration)
        self.correction = (  # a quantile model's widening, taken off again (predict adds it)
            torch.tensor(calibration.correction, dtype=torch.float32)
            if isinstance(calibration, QuantileCorrection)
            else None
        )
        self.correction_scale = getattr(calibration, "scale", "none")
        self.targets, self.season = checkpoint.spec.target_columns, checkpoint.spec.season

    def _raw(self, window: torch.Tensor, future: torch.Tensor | None) -> list[np.ndarray]:
        window = window.double().numpy()
        if self.input_scaler.per_series:  # identity statistics: the graph sees scaled values
            n_in, n_t = window.shape[-1], self.n_targets
            batch = len(window)
            feeds = [window] + ([future.double().numpy()] if future is not None else [])
            return feeds + [np.zeros((batch, n_in)), np.ones((batch, n_in)),
                            np.zeros((batch, n_t)), np.ones((batch, n_t))]  # fmt: skip
        center, scale = self.input_scaler.center, self.input_scaler.scale
        feeds = [window * scale + center]
        if future is not None:
            columns = self.future
            feeds.append(future.double().numpy() * scale[columns] + center[columns])
        return feeds

    def _scaled(self, values: np.ndarray) -> torch.Tensor:
        if not self.target_scaler.per_series:
            values = (values - self.target_scaler.center) / self.target_scaler.scale
        return torch.from_numpy(values.astype(np.float32))

    def forward(self, window: torch.Tensor, future: torch.Tensor | None = None) -> torch.Tensor:
        return self._scaled(self.onnx.run(*self._raw(window, future))[0])

    def quantile_forward(
        self, window: torch.Tensor, future: torch.Tensor | None = None
    ) -> torch.Tensor:
        """A quantile model's quantiles, from the graph's median and corrected bounds with
        the correction taken off again (predict applies it itself)."""
        outputs = [self._scaled(o) for o in self.onnx.run(*self._raw(window, future))]
        scale = window_scale(window, self.targets, self.correction_scale, self.season)
        correction = self.correction[:, None, None] * scale  # in its window's units
        lows = [outputs[1 + 2 * k] + correction[k] for k in range(len(self.quantile_levels))]
        highs = [outputs[2 + 2 * k] - correction[k] for k in range(len(self.quantile_levels))]
        return torch.stack([*reversed(lows), outputs[0], *highs], dim=-1)
