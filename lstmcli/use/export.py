"""`lstmcli export`: the fitted forecaster's torch backend traced into one ONNX file.

The graph takes raw windows (original units, the model's input columns in checkpoint order,
float64) and returns forecasts in original units: the global scaling, the window
normalization, the LSTM(s) and head, the combination with a naive forecast, the ensemble mean
and the inverse scaling are all inside, and so are the interval bounds of a model with levels
(the calibrated bounds; the adaptive ones of a rolling backtest need the actuals as they
arrive, which is `lstmcli predict`'s business, from the `scale` and `forecast_scaled`
outputs). With `data.scale_by: series` the scalers' statistics of each window's series are
inputs (in the metadata, per series id), since the graph cannot know ids; a model combined
with a classical forecast takes that forecast of each window's series as the input named by
its kind, `classical` (or `theta`; computed beside the graph: `model/classical.py`).

The file's metadata holds the column names, lookback, horizon, frequency, versions and the
checkpoint without its weights, so `lstmcli predict model.onnx` (`model/onnx_file.py`) gives
what the run folder gives, without torch.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import torch

from lstmcli import __version__
from lstmcli.errors import LstmcliError
from lstmcli.files import atomic_path
from lstmcli.model.checkpoint import Checkpoint, checkpoint_payload
from lstmcli.model.fitted import input_names, output_names, reads_history
from lstmcli.model.intervals import load_calibration
from lstmcli.model.onnx_file import EXPORT_FORMAT, EXPORT_VERSION, ONNX_EXTRA, first_line

OPSET = 18


def require_onnx() -> Any:
    try:
        import onnx
        import onnxscript  # noqa: F401  (the exporter torch recommends needs it)
    except ImportError:
        raise LstmcliError(
            f"ONNX export needs onnx and onnxscript, which are not installed; {ONNX_EXTRA}"
        ) from None
    return onnx


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
    if reads_history(checkpoint):
        out.append(torch.randn(batch, data.horizon, 1, dtype=torch.float64))
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
    onnx = require_onnx()
    module = checkpoint.fitted("cpu").backend.module
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
                raise LstmcliError(
                    f"ONNX export failed: {type(e).__name__}: {first_line(e)}"
                ) from None
            model = onnx.load(str(tmp))
            for key, value in metadata(checkpoint).items():
                entry = model.metadata_props.add()
                entry.key, entry.value = key, value
            onnx.save(model, str(tmp))
    finally:
        quiet.setLevel(level)
    return path
