from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lstmcli.config.edit import validate_config
from lstmcli.data.reading import read_csv
from lstmcli.data.table import prepare_table
from lstmcli.data.windows import WindowSet, target_offsets
from lstmcli.errors import LstmcliError
from lstmcli.model.checkpoint import FORMAT_VERSION, load_checkpoint
from lstmcli.model.classical import legacy_kind
from lstmcli.model.fitted import input_names
from lstmcli.run.pipeline import train_run
from lstmcli.use.predict import forecast_next, load_predictor
from tests.conftest import tiny_config


@pytest.fixture
def trained_run(tmp_path: Path, csv_path: Path) -> Path:
    cfg = validate_config(tiny_config(csv_path, data={"horizon": 2}))
    return train_run(cfg, tmp_path / "run").run_dir


def test_round_trip_gives_the_same_predictions(trained_run: Path) -> None:
    checkpoint = load_checkpoint(trained_run)
    cfg = checkpoint.config.data
    table = prepare_table(read_csv(cfg.path), cfg, cfg.path)
    inputs = torch.from_numpy(checkpoint.input_scaler.transform(table.inputs))
    targets = torch.from_numpy(checkpoint.target_scaler.transform(table.targets))
    import pandas as pd

    saved = pd.read_csv(trained_run / "test_predictions.csv")
    anchors = np.flatnonzero(table.time.isin(pd.to_datetime(saved["origin"])).to_numpy())
    windows = WindowSet(
        inputs, targets, anchors, cfg.lookback, target_offsets(cfg.horizon, cfg.task)
    )
    predicted = checkpoint.forecaster().predict(windows).points
    np.testing.assert_allclose(predicted.reshape(-1), saved["y"].to_numpy(), rtol=1e-6)
    # the fitted forecaster (rows in, original units out) computes exactly that
    rows = checkpoint.fitted().backtest(table, anchors, None).points
    np.testing.assert_array_equal(rows, predicted)
    np.testing.assert_allclose(
        table.targets[anchors[:, None] + np.array([1, 2])].reshape(-1), saved["y_actual"]
    )


def test_checkpoint_holds_only_plain_types(trained_run: Path) -> None:
    payload = torch.load(trained_run / "model.pt", weights_only=True)
    assert payload["format_version"] == FORMAT_VERSION
    assert payload["input_columns"] == ["y"] and payload["target_columns"] == ["y"]
    assert payload["input_scaler"]["kind"] == "standard"
    assert isinstance(payload["input_scaler"]["center"][0], float)
    assert payload["config"]["data"]["horizon"] == 2


class _RunsCode:
    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = _RunsCode()
    evil.marker = marker
    path = tmp_path / "model.pt"
    torch.save({"format": "lstmcli-checkpoint", "x": evil}, path, pickle_module=pickle)
    with pytest.raises(LstmcliError, match="it holds objects that could run code when loaded"):
        load_checkpoint(path)
    assert not marker.exists()


def test_foreign_damaged_and_newer_files_are_refused(tmp_path: Path, trained_run: Path) -> None:
    path = tmp_path / "x.pt"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(LstmcliError, match="is not a loadable lstmcli checkpoint"):
        load_checkpoint(path)
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(LstmcliError, match="is not an lstmcli checkpoint$"):
        load_checkpoint(path)
    payload = torch.load(trained_run / "model.pt", weights_only=True)
    torch.save({**payload, "format_version": FORMAT_VERSION + 1}, path)
    with pytest.raises(LstmcliError, match=f"has checkpoint format version {FORMAT_VERSION + 1}; "):
        load_checkpoint(path)
    truncated = (trained_run / "model.pt").read_bytes()
    path.write_bytes(truncated[: len(truncated) // 2])
    with pytest.raises(LstmcliError, match="the file is damaged \\(truncated or corrupt\\)$"):
        load_checkpoint(path)
    with pytest.raises(LstmcliError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing")


def test_a_version_1_checkpoint_still_predicts(trained_run: Path, tmp_path: Path) -> None:
    """Files written before many-series support: no ids, no known-future inputs."""
    payload = torch.load(trained_run / "model.pt", weights_only=True)
    old = {k: v for k, v in payload.items() if k not in ("series_ids", "series_mase_scales")}
    old["format_version"] = 1
    old["model_args"] = {k: v for k, v in payload["model_args"].items() if k != "n_future"}
    for key in ("known_features", "calendar", "id_column", "scale_by"):
        del old["config"]["data"][key]
    (tmp_path / "old").mkdir()
    torch.save(old, tmp_path / "old" / "model.pt")
    frame = pd.read_csv(load_checkpoint(trained_run).config.data.path)
    new = forecast_next(load_predictor(trained_run), frame, "x", None)
    old_forecast = forecast_next(load_predictor(tmp_path / "old"), frame, "x", None)
    pd.testing.assert_frame_equal(old_forecast, new)


def test_a_version_2_checkpoint_keeps_its_combination(tmp_path: Path, csv_path: Path) -> None:
    """Before version 3 the combination lived among the model arguments: read from there,
    the forecast is the one the file's run made."""
    cfg = validate_config(tiny_config(csv_path, data={"horizon": 2}, model={"blend": "auto"}))
    run_dir = train_run(cfg, tmp_path / "run").run_dir
    payload = torch.load(run_dir / "model.pt", weights_only=True)
    blend = payload["blend"]
    assert blend is not None and blend["weight"] < 1.0  # the val part chose to combine
    old = {k: v for k, v in payload.items() if k != "blend"} | {"format_version": 2}
    old["model_args"] = payload["model_args"] | {
        "blend_weight": blend["weight"],
        "blend_baseline": blend["kind"],
    }
    (tmp_path / "old").mkdir()
    torch.save(old, tmp_path / "old" / "model.pt")
    legacy = legacy_kind(blend["kind"], 2)  # what the kind meant then
    assert load_checkpoint(tmp_path / "old").blend == {**blend, "kind": legacy}
    # the same file written now, naming that kind: the same forecast
    (tmp_path / "now").mkdir()
    torch.save({**payload, "blend": {**blend, "kind": legacy}}, tmp_path / "now" / "model.pt")
    frame = pd.read_csv(csv_path)
    now = forecast_next(load_predictor(tmp_path / "now"), frame, "x", None)
    pd.testing.assert_frame_equal(
        forecast_next(load_predictor(tmp_path / "old"), frame, "x", None), now
    )


def test_a_version_3_classical_combination_forecasts_as_it_did(
    trained_run: Path, tmp_path: Path
) -> None:
    """Version 4 changed what `classical` computes for seasons over 12, version 5 how short
    histories are fitted, version 6 AutoTheta's seasons (classical.py): a file from before
    names the legacy kind, so its
    forecasts stay the ones its run made."""
    payload = torch.load(trained_run / "model.pt", weights_only=True)
    combined = {"weight": 1 / 3, "kind": "classical", "season": 24}
    for version, kind in (
        (3, "classical-1"),
        (4, "classical-2"),
        (5, "classical-3"),
        (FORMAT_VERSION, "classical"),
    ):
        folder = tmp_path / f"v{version}"
        folder.mkdir()
        torch.save({**payload, "blend": combined, "format_version": version}, folder / "model.pt")
        checkpoint = load_checkpoint(folder)
        assert checkpoint.blend == {**combined, "kind": kind}
        # an exported file's input keeps the name it was written with (old exports load)
        assert input_names(checkpoint)[-1] == "classical"
