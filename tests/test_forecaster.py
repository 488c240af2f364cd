"""The forecaster: windows in, points and bounds in original units out, one path for all."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import torch

from lstmcli.config.edit import validate_config
from lstmcli.data.reading import read_csv
from lstmcli.data.scaling import Scaler
from lstmcli.data.table import prepare_table
from lstmcli.data.windows import WindowSet, target_offsets
from lstmcli.model.blend import Blend
from lstmcli.model.checkpoint import load_checkpoint
from lstmcli.model.conformal import Calibration, calibrate
from lstmcli.model.forecaster import Forecaster, scaled_windows
from lstmcli.model.network import LSTMForecaster
from lstmcli.model.spec import ModelSpec
from lstmcli.run.pipeline import train_run

from .conftest import tiny_config

SPEC = ModelSpec(1, 1, 3, 4, 1, 0.0, (), "none", (0,))


def windows_over(values: np.ndarray, lookback: int = 8, horizon: int = 3) -> WindowSet:
    series = torch.from_numpy(values.astype(np.float32)).reshape(-1, 1)
    anchors = np.arange(lookback - 1, len(values) - horizon)
    return WindowSet(series, series, anchors, lookback, target_offsets(horizon, "forecast"))


def scalers(center: float, scale: float) -> tuple[Scaler, Scaler]:
    return (Scaler("standard", np.array([center]), np.array([scale])),) * 2


def test_points_are_the_network_output_in_original_units() -> None:
    network = LSTMForecaster(SPEC).eval()
    forecaster = Forecaster(SPEC, network, *scalers(100.0, 5.0))
    windows = windows_over(np.sin(np.arange(40) / 3))
    forecast = forecaster.predict(windows)
    inputs, _, _ = windows.batch(torch.arange(len(windows)))
    with torch.no_grad():
        expected = network(inputs).double().numpy() * 5.0 + 100.0
    np.testing.assert_allclose(forecast.points, expected)
    assert forecast.bounds is None


def test_a_blend_mixes_the_naive_forecast_in_scaled_units() -> None:
    network = LSTMForecaster(SPEC).eval()
    alone = Forecaster(SPEC, network, *scalers(0.0, 2.0))
    blended = alone.with_blend(Blend(0.25, "naive", None))
    assert blended.blend.weight == 0.25 and alone.blend is None  # a new value
    windows = windows_over(np.cos(np.arange(40) / 4))
    inputs, _, _ = windows.batch(torch.arange(len(windows)))
    naive = inputs[:, -1:, :].expand(-1, 3, -1).double().numpy() * 2.0
    np.testing.assert_allclose(
        blended.predict(windows).points,
        0.25 * alone.predict(windows).points + 0.75 * naive,
        rtol=1e-6,
    )


def test_conformal_bounds_are_centred_nested_and_scaled_back() -> None:
    rng = np.random.default_rng(0)
    calibration = calibrate(rng.normal(0, 1, (200, 3, 1)), [80, 95])
    network = LSTMForecaster(SPEC).eval()
    forecaster = Forecaster(SPEC, network, *scalers(10.0, 3.0), calibration)
    windows = windows_over(np.sin(np.arange(60) / 5))
    forecast = forecaster.predict(windows)
    (lo80, hi80), (lo95, hi95) = forecast.bounds[80], forecast.bounds[95]
    np.testing.assert_allclose(forecast.points - lo80, hi80 - forecast.points, rtol=1e-9)
    assert ((lo95 < lo80) & (hi80 < hi95)).all()
    # half width = calibrated quantile x the step's size x the window's scale, in data units
    inputs, _, _ = windows.batch(torch.arange(len(windows)))
    spread = (inputs[:, 1:] - inputs[:, :-1]).abs().mean(dim=1, keepdim=True).double().numpy()
    half = calibration.quantile(calibration.share(80))[None, :] * calibration.size
    np.testing.assert_allclose(hi80 - forecast.points, 3.0 * half[None] * spread, rtol=1e-6)


@dataclass
class FixedWidth:
    """An interval method written only here: the forecaster needs no change to carry it."""

    levels: list[float]
    width: np.ndarray  # (levels,) in scaled units
    from_quantiles: ClassVar[bool] = False
    adapts: ClassVar[bool] = False
    scale: ClassVar[str] = "none"  # what its widths are in units of (intervals.SCALES)

    def tensors(self) -> dict[str, np.ndarray]:
        return {"width": self.width}

    def scaled_bounds(self, point, spread, quantiles, tensors):  # noqa: ANN001, ANN201
        return [(point - w, point + w) for w in tensors["width"].to(point.dtype)]


def test_a_new_interval_method_plugs_into_the_forecaster() -> None:
    method = FixedWidth([50, 90], np.array([0.5, 1.0]))
    forecaster = Forecaster(SPEC, LSTMForecaster(SPEC), *scalers(0.0, 4.0), method)
    forecast = forecaster.predict(windows_over(np.arange(30.0)))
    np.testing.assert_allclose(forecast.bounds[90][1] - forecast.points, 4.0)
    np.testing.assert_allclose(forecast.points - forecast.bounds[50][0], 2.0)


def test_the_checkpoint_rebuilds_the_fitted_forecaster(tmp_path: Path, csv_path: Path) -> None:
    """The forecaster train scored its test part with predicts the same from model.pt:
    network, scalers, blend and calibration all travel in the file."""
    raw = tiny_config(csv_path, model={"levels": [80], "blend": "auto", "adaptive": False},
                      training={"ensemble": 2, "epochs": 2})  # fmt: skip
    train_run(validate_config(raw), tmp_path / "run")
    checkpoint = load_checkpoint(tmp_path / "run")
    forecaster = checkpoint.forecaster()
    assert isinstance(forecaster.calibration, Calibration) and forecaster.spec.members == 2
    cfg = checkpoint.config.data
    table = prepare_table(read_csv(cfg.path), cfg, cfg.path)
    saved = pd.read_csv(tmp_path / "run" / "test_predictions.csv")
    anchors = np.flatnonzero(table.time.isin(pd.to_datetime(saved["origin"])).to_numpy())
    windows = scaled_windows(
        table, {"test": anchors}, cfg, checkpoint.input_scaler, None, None, torch.device("cpu")
    )["test"]
    forecast = forecaster.predict(windows)
    np.testing.assert_allclose(forecast.points.ravel(), saved["y"], rtol=1e-9)
    np.testing.assert_allclose(forecast.bounds[80][0].ravel(), saved["y_lo_80"], rtol=1e-9)
