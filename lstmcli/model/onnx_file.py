"""An `lstmcli export` file as the fitted forecaster's backend: onnxruntime, numpy, no torch.

The file's metadata holds the checkpoint without its weights (config, columns, scalers,
calibration, series ids), so `lstmcli predict model.onnx` gives what the run folder gives,
on a machine with onnxruntime and without torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from lstmcli.errors import LstmcliError
from lstmcli.model.checkpoint import checkpoint_from_payload
from lstmcli.model.fitted import FittedForecaster, input_names, output_names

EXPORT_FORMAT = "lstmcli-onnx"
EXPORT_VERSION = 2  # 2: a history forecast input; the window scale, the scaled forecast out
ONNX_EXTRA = "install them with `pip install 'lstmcli[onnx]'`"


def require_runtime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise LstmcliError(
            f"running an ONNX file needs onnxruntime, which is not installed; {ONNX_EXTRA}"
        ) from None
    return onnxruntime


class OnnxBackend:
    """`fitted.Backend` on onnxruntime (CPU)."""

    def __init__(self, session: Any, names: list[str]) -> None:
        self.session, self.names = session, names

    def run(self, feeds: list[np.ndarray]) -> list[np.ndarray]:
        arrays = (np.ascontiguousarray(x, dtype=np.float64) for x in feeds)
        return self.session.run(None, dict(zip(self.names, arrays, strict=True)))


def load_onnx(path: Path) -> FittedForecaster:
    """The fitted forecaster of an exported file, refusing files lstmcli did not write."""
    runtime = require_runtime()
    try:
        session = runtime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own kinds for unreadable files
        raise LstmcliError(f"{path} is not a loadable ONNX file: {first_line(e)}") from None
    props = session.get_modelmeta().custom_metadata_map
    if props.get("format") != EXPORT_FORMAT:
        raise LstmcliError(f"{path} is an ONNX file, but not one `lstmcli export` wrote")
    if props.get("format_version") != str(EXPORT_VERSION):
        raise LstmcliError(
            f"{path} has export format version {props.get('format_version')}; this lstmcli "
            f"reads version {EXPORT_VERSION} (export the run again)"
        )
    try:
        payload = json.loads(props["checkpoint"])
    except (KeyError, ValueError):  # ValueError: json's own error
        raise LstmcliError(
            f"{path} is a damaged lstmcli ONNX file (its checkpoint metadata)"
        ) from None
    checkpoint = checkpoint_from_payload(payload, path)
    names = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    if names != input_names(checkpoint) or outputs != output_names(checkpoint):
        raise LstmcliError(f"{path} is a damaged lstmcli ONNX file (its inputs or outputs)")
    return FittedForecaster(checkpoint, OnnxBackend(session, names))


def first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
