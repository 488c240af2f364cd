"""The fitted forecaster: windows in, points and interval bounds in original units out.

One value holds everything that turns a window into a forecast: the network(s), the fitted
scalers, the window normalization (inside the network), the blend with a naive forecast and
the interval calibration. Training scores its val and test parts with it, `predict` and
`evaluate` run it on new rows, and `export` traces it into an ONNX graph, so a forecast is
made, unscaled and bounded by this code alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from lstmcli.config.data_section import DataConfig
from lstmcli.data.scaling import Scaler
from lstmcli.data.table import Table
from lstmcli.data.windows import WindowSet, target_offsets
from lstmcli.model.bands import ScaledOutputs, nested, window_scale
from lstmcli.model.blend import Blend
from lstmcli.model.classical import history_forecasts, rows_read
from lstmcli.model.fitted import Forecast
from lstmcli.model.intervals import Intervals
from lstmcli.model.network import inference_batch
from lstmcli.model.spec import ModelSpec


class Forecaster(nn.Module):
    """The network(s), scalers, blend and interval calibration of a trained model.

    `forward` works in scaled units on torch tensors (what an ONNX export traces); `predict`
    takes windows and returns a `Forecast` in original units. A forecaster is a value: the
    blend and calibration chosen after training make new ones (`with_blend`,
    `with_calibration`) around the same network."""

    def __init__(
        self,
        spec: ModelSpec,
        network: nn.Module,
        input_scaler: Scaler,
        target_scaler: Scaler,
        calibration: Intervals | None = None,
        adaptive: bool = True,
        blend: Blend | None = None,
    ) -> None:
        super().__init__()
        self.spec, self.network = spec, network
        self.input_scaler, self.target_scaler = input_scaler, target_scaler
        self.calibration, self.adaptive = calibration, adaptive
        self.target_index = spec.target_columns
        self.blend = blend if blend is not None and blend.weight != 1.0 else None
        device = next(network.parameters(), torch.empty(0)).device
        self._interval_names = []
        for name, value in (calibration.tensors() if calibration is not None else {}).items():
            tensor = torch.as_tensor(np.asarray(value, np.float64), device=device)
            self.register_buffer(f"interval_{name}", tensor)
            self._interval_names.append(name)

    @property
    def scale(self) -> str:
        """What the calibration divides a window's residuals by (a new one: "naive")."""
        return self.calibration.scale if self.calibration is not None else "naive"

    @property
    def levels(self) -> list[float]:
        return list(self.calibration.levels) if self.calibration is not None else []

    def with_blend(self, blend: Blend) -> Forecaster:
        """The same network combined with a naive or classical forecast (the checkpoint stores
        the combination beside the network's spec)."""
        if blend.weight == 1.0:
            return self
        return Forecaster(self.spec, self.network, self.input_scaler, self.target_scaler,
                          self.calibration, self.adaptive, blend)  # fmt: skip

    def with_calibration(self, calibration: Intervals) -> Forecaster:
        return Forecaster(self.spec, self.network, self.input_scaler, self.target_scaler,
                          calibration, self.adaptive, self.blend)  # fmt: skip

    def forward(
        self,
        window: torch.Tensor,
        future: torch.Tensor | None = None,
        dtype: torch.dtype = None,
        history_forecast: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor, torch.Tensor]:
        """Scaled windows (batch, lookback, inputs) and known-ahead inputs in; the point
        forecast (after the blend; a quantile model's median), each level's (lower, upper)
        bounds in `dtype` (default: the network's; nested: a wider level's band holds the
        narrower ones'), each window's scale (what the calibration divides its residuals by:
        see intervals.window_scale) and the quantile head's outputs
        (None without one) out, all in scaled units. A blend with a classical forecast takes it
        as `history_forecast` (it reads the series' whole history, not the window)."""
        quantiles = None
        if self.spec.quantile_levels:
            quantiles = self.network.quantile_forward(window, future)
            point = quantiles[..., len(self.spec.quantile_levels)]
        else:
            point = self.network(window, future)
            if self.blend is not None:
                point = self.blend.apply(point, window, self.target_index, history_forecast)
        spread = window_scale(window, self.target_index, self.scale, self.spec.season)
        bounds = []
        if self.calibration is not None:
            dtype = dtype or point.dtype
            tensors = {name: getattr(self, f"interval_{name}") for name in self._interval_names}
            bounds = nested(
                self.calibration.scaled_bounds(
                    point.to(dtype),
                    spread.to(dtype),
                    quantiles.to(dtype) if quantiles is not None else None,
                    tensors,
                )
            )
        return point, bounds, spread, quantiles

    def scaled_outputs(
        self, windows: WindowSet, scaler_rows: np.ndarray | None = None
    ) -> tuple[ScaledOutputs, torch.Tensor | None]:
        """Every window's scaled outputs (float32, on the device) and targets: what the
        blend, the calibration and the validation scores are chosen from."""
        self.eval()
        points, spreads, quantiles, targets = [], [], [], []
        with torch.inference_mode():
            for positions, (inputs, future, target) in self.batches(windows):
                history = self._history_forecast(windows, positions, scaler_rows, inputs)
                point, _, spread, quantile = self(inputs, future, None, history)
                points.append(point)
                spreads.append(spread)
                quantiles.append(quantile)
                targets.append(target)
        if not points:
            empty = torch.empty(0, self.spec.steps, self.spec.n_targets)
            return ScaledOutputs(empty, torch.empty(0, 1, self.spec.n_targets)), None
        outputs = ScaledOutputs(
            torch.cat(points),
            torch.cat(spreads),
            torch.cat(quantiles) if quantiles[0] is not None else None,
        )
        return outputs, torch.cat(targets) if targets[0] is not None else None

    def predict(
        self,
        windows: WindowSet,
        scaler_rows: np.ndarray | None = None,
        *,
        actual: np.ndarray | None = None,
        series: np.ndarray | None = None,
    ) -> Forecast:
        """Forecasts and bounds of every window, in original units. `scaler_rows`: each
        window's row in per-series scalers (None with global ones). With the `actual` values
        (original units, NaN where unknown) of a rolling backtest and each window's `series`,
        the bounds of a calibration that adapts follow the misses as actuals arrive (when
        the model's config asks for it)."""
        self.eval()
        points, spreads, bound_parts = [], [], []
        with torch.inference_mode():
            for positions, (inputs, future, _) in self.batches(windows):
                history = self._history_forecast(windows, positions, scaler_rows, inputs)
                point, bounds, spread, _ = self(inputs, future, torch.float64, history)
                points.append(point.double())
                spreads.append(spread.double())
                bound_parts.append(bounds)
        if not points:
            empty = np.empty((0, self.spec.steps, self.spec.n_targets))
            return Forecast(empty, {level: (empty, empty) for level in self.levels} or None)
        point = torch.cat(points).cpu().numpy()
        bounds = [
            tuple(torch.cat([part[k][side] for part in bound_parts]).cpu().numpy()
                  for side in (0, 1))
            for k in range(len(self.levels))
        ]  # fmt: skip
        if bounds and actual is not None and self.adaptive and self.calibration.adapts:
            spread = torch.cat(spreads).cpu().numpy()
            actual_scaled = self.target_scaler.transform(actual, scaler_rows).astype(np.float64)
            bounds = self.calibration.adaptive_bounds(point, spread, actual_scaled, series)
        return self._original_units(point, bounds, scaler_rows)

    def _original_units(
        self, point: np.ndarray, bounds: list, scaler_rows: np.ndarray | None
    ) -> Forecast:
        unscale = self.target_scaler.inverse
        return Forecast(
            unscale(point, scaler_rows),
            {level: (unscale(lo, scaler_rows), unscale(hi, scaler_rows))
             for level, (lo, hi) in zip(self.levels, bounds, strict=True)} or None,
        )  # fmt: skip

    def batches(self, windows: WindowSet) -> Iterator[tuple]:
        """The windows in chunks sized to keep the LSTM's activations bounded: each chunk's
        positions and its batch (inputs, future, targets)."""
        size = inference_batch(self.network, len(windows.input_offsets))
        positions = torch.arange(len(windows), device=windows.anchors.device)
        for chunk in positions.split(size):
            yield chunk, windows.batch(chunk)

    def _history_forecast(
        self,
        windows: WindowSet,
        positions: torch.Tensor,
        scaler_rows: np.ndarray | None,
        inputs: torch.Tensor,
    ) -> torch.Tensor | None:
        """The classical forecast of some windows (scaled units, on the inputs' device) when
        the blend reads histories."""
        if not self.reads_history:
            return None
        chunk = positions.cpu().numpy()
        histories = windows.histories(chunk, self.target_index[0])
        rows = scaler_rows[chunk] if scaler_rows is not None else None
        blend = self.blend
        forecasts = self.history_forecasts(histories, rows, blend.season, blend.kind)
        return forecasts.to(inputs.device)

    @property
    def reads_history(self) -> bool:
        """Whether a forecast needs each series' whole history (a classical blend), not only
        its window."""
        return self.blend is not None and self.blend.reads_history

    def history_forecasts(
        self,
        histories: list[np.ndarray],
        scaler_rows: np.ndarray | None,
        season: int | None,
        kind: str,
    ) -> torch.Tensor:
        """The classical forecast `kind` (classical.KINDS) of each history (scaled values of
        the target's input column), in the target's scaled units (windows, steps, 1):
        computed in the data's units, as multiplicative seasons and errors read ratios."""
        as_input = self.input_scaler.columns([self.target_index[0]])
        need = rows_read(kind, season)
        values = []
        for i, history in enumerate(histories):
            history = history if need is None else history[-need:]  # what the forecast reads
            row = scaler_rows[i] if scaler_rows is not None else None
            values.append(as_input.inverse(history[:, None], _repeated(row, len(history)))[:, 0])
        forecasts = history_forecasts(kind, values, self.spec.steps, season)
        out = np.empty((len(histories), self.spec.steps, 1), dtype=np.float32)
        for i, forecast in enumerate(forecasts):
            row = scaler_rows[i] if scaler_rows is not None else None
            out[i] = self.target_scaler.transform(forecast[:, None], _repeated(row, len(forecast)))
        return torch.from_numpy(out)


def _repeated(row: int | None, count: int) -> np.ndarray | None:
    """A per-series scaler's row for each of `count` values of one series (None: global)."""
    return None if row is None else np.full(count, row)


def scaled_windows(
    table: Table,
    anchors: dict[str, np.ndarray],
    cfg: DataConfig,
    input_scaler: Scaler,
    target_scaler: Scaler | None,
    scaler_rows: np.ndarray | None,
    device: torch.device,
) -> dict[str, WindowSet]:
    """Windows over the table's scaled series (float32 tensors on the device), one set per
    entry of `anchors`; with the scaled targets when `target_scaler` is given. `scaler_rows`:
    each table row's row in per-series scalers (None with global ones)."""
    scaled = input_scaler.transform(table.inputs, scaler_rows, table.input_columns)
    inputs = torch.from_numpy(scaled).to(device)
    targets = None
    if target_scaler is not None:
        scaled = target_scaler.transform(table.targets, scaler_rows, table.target_columns)
        targets = torch.from_numpy(scaled).to(device)
    offsets = target_offsets(cfg.horizon, cfg.task)
    future = cfg.layout.future
    return {
        name: WindowSet(inputs, targets, part, cfg.lookback, offsets, future,
                        table.offsets[table.series_of(part)])
        for name, part in anchors.items()
    }  # fmt: skip


class RawUnits(nn.Module):
    """A forecaster between windows and forecasts in original units (the contract of
    `fitted.Backend`, and what `lstmcli export` traces): the global scaling (or each window's
    series statistics, given as inputs) around the forecaster, which does the rest (window
    normalization, network, combination, ensemble mean, interval bounds)."""

    def __init__(self, forecaster: Forecaster, per_series: bool, future_columns: list[int]) -> None:
        super().__init__()
        self.forecaster = forecaster
        self.per_series, self.future_columns = per_series, future_columns
        if not per_series:
            for name, scaler in (("input", forecaster.input_scaler),
                                 ("target", forecaster.target_scaler)):  # fmt: skip
                self.register_buffer(f"{name}_center", _float64(scaler.center, forecaster))
                self.register_buffer(f"{name}_scale", _float64(scaler.scale, forecaster))

    def forward(self, inputs: torch.Tensor, *extra: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """inputs (batch, lookback, inputs) and, in this order when the model has them: future
        (batch, horizon, known-ahead inputs); the per-series statistics input_center,
        input_scale (batch, inputs), target_center, target_scale (batch, targets); the history
        forecast (batch, horizon, 1): the classical forecast of each window's series. All
        float64, in original units. Returns the forecast (batch, horizon, targets), per level
        the lower and upper bounds, each window's scale and the forecast in scaled units."""
        extra = list(extra)
        future = extra.pop(0) if self.future_columns else None
        if self.per_series:
            in_center, in_scale, t_center, t_scale = (extra.pop(0).unsqueeze(1) for _ in range(4))
        else:
            in_center, in_scale = self.input_center, self.input_scale
            t_center, t_scale = self.target_center, self.target_scale
        theta = None
        if self.forecaster.reads_history:
            theta = ((extra.pop(0) - t_center[..., :1]) / t_scale[..., :1]).float()
        window = ((inputs - in_center) / in_scale).float()
        ahead = None
        if future is not None:
            columns = self.future_columns
            ahead = ((future - in_center[..., columns]) / in_scale[..., columns]).float()
        point, bounds, spread, _ = self.forecaster(window, ahead, torch.float64, theta)

        def unscale(values: torch.Tensor) -> torch.Tensor:
            return values.double() * t_scale + t_center

        outputs = [unscale(point)]
        for lower, upper in bounds:
            outputs += [unscale(lower), unscale(upper)]
        return (*outputs, spread, point)


def _float64(values: np.ndarray, module: nn.Module) -> torch.Tensor:
    device = next(module.parameters(), torch.empty(0)).device
    return torch.tensor(values, dtype=torch.float64, device=device)


class TorchBackend:
    """`fitted.Backend` on torch: the forecaster module on its device."""

    def __init__(self, module: RawUnits) -> None:
        self.module = module.eval()
        self.device = next(module.parameters(), torch.empty(0)).device

    def run(self, feeds: list[np.ndarray]) -> list[np.ndarray]:
        with torch.inference_mode():
            tensors = [torch.from_numpy(np.ascontiguousarray(f)).to(self.device) for f in feeds]
            return [out.cpu().numpy() for out in self.module(*tensors)]
