"""The blend with the better naive forecast: what it computes, how its weight is chosen, and
that a blended model predicts the same after a checkpoint round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from lstmcli.data.windows import WindowSet, target_offsets
from lstmcli.model.blend import Blend, choose_blend, describe_chosen, naive_in_window
from lstmcli.model.checkpoint import load_checkpoint
from lstmcli.model.network import LSTMForecaster
from lstmcli.model.spec import ModelSpec
from tests.helpers import run


def test_the_naive_forecasts_read_off_a_window() -> None:
    windows = torch.arange(10.0).reshape(1, 10, 1)  # rows t-9..t hold 0..9
    assert naive_in_window(windows, "naive", None, 3, [0]).flatten().tolist() == [9, 9, 9]
    # season 4: steps 1..6 take rows t+1-4, t+2-4, t+3-4, t+4-4, t+5-8, t+6-8
    seasonal = naive_in_window(windows, "seasonal", 4, 6, [0]).flatten().tolist()
    assert seasonal == [6, 7, 8, 9, 6, 7]


def test_a_blend_is_the_weighted_mean_of_network_and_naive() -> None:
    network = LSTMForecaster(ModelSpec(1, 1, 3, 4, 1, 0.0, (), "none", (0,)))
    windows = torch.randn(5, 8, 1)
    with torch.no_grad():
        alone = network(windows)
        naive = windows[:, -1:, :].expand(-1, 3, -1)
        for weight in (0.0, 0.25, 1.0):
            blended = Blend(weight, "naive", None).apply(alone, windows, [0])
            torch.testing.assert_close(blended, weight * alone + (1 - weight) * naive)


def test_on_a_random_walk_the_validation_prefers_the_naive_forecast() -> None:
    rng = np.random.default_rng(0)
    walk = torch.from_numpy(np.cumsum(rng.normal(0, 1, 600)).astype(np.float32)).reshape(-1, 1)
    windows = WindowSet(walk, walk, np.arange(20, 590), 12, target_offsets(3, "forecast"))
    untrained = LSTMForecaster(ModelSpec(1, 1, 3, 4, 1, 0.0, (), "none", (0,)))
    positions = torch.arange(len(windows))
    batches = lambda: (windows.batch(chunk) for chunk in positions.split(64))  # noqa: E731
    blend, scores = choose_blend(untrained.eval(), batches, None, [0])
    assert (blend.kind, blend.weight) == ("naive", 0.0)  # an untrained network adds only noise
    assert scores["naive x 1"] == min(scores.values())


def test_a_blended_run_predicts_what_it_scored(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)  # a random walk: the network cannot beat naive
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2000-01-01", periods=300, freq="D").strftime("%Y-%m-%d"),
            "y": np.cumsum(rng.normal(0, 1, 300)).round(4),
        }
    )
    frame.to_csv(tmp_path / "walk.csv", index=False)
    config = {
        "data": {"path": str(tmp_path / "walk.csv"), "target": "y", "horizon": 3},
        "training": {"epochs": 3, "ensemble": 2, "device": "cpu"},
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    command = ["train", "-c", str(tmp_path / "run.yaml"), "-o", str(tmp_path / "r")]
    result = run(*command)
    assert result.exit_code == 0, result.stderr
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    blend = metrics["blend"]
    assert blend["model_weight"] < 1.0 and blend["baseline"] in ("naive", "seasonal_naive")
    checkpoint = load_checkpoint(tmp_path / "r")
    assert checkpoint.blend["weight"] == blend["model_weight"] and checkpoint.spec.members == 2
    saved = pd.read_csv(tmp_path / "r" / "test_predictions.csv")
    rolled = run("predict", str(tmp_path / "r"), str(tmp_path / "walk.csv"), "--rolling", "-q")
    again = pd.read_csv(pd.io.common.StringIO(rolled.stdout))
    again = again[again["origin"].isin(saved["origin"])].reset_index(drop=True)
    np.testing.assert_allclose(again["y"], saved["y"], rtol=1e-6)
    assert metrics["model"]["rmse"] == pytest.approx(
        np.sqrt(np.mean((saved["y"] - saved["y_actual"]) ** 2))
    )


def test_a_scratch_networks_part_is_blended_with_naive_before_the_thirds() -> None:
    """With `inner`, the network's part of the thirds is first blended with the naive forecast
    at the weight the val part chooses; the stored blend applies the same two steps."""
    truth = torch.ones(4, 3, 1)
    windows = torch.full((4, 5, 1), 1.1)  # the last value is off by 0.1
    network = lambda *_: torch.full((4, 3, 1), 1.8)  # noqa: E731 - off by 0.8
    classical = torch.full((4, 3, 1), 1.05)
    batches = lambda: iter([(windows, None, truth)])  # noqa: E731
    blend, scores = choose_blend(network, batches, None, [0], {"classical": classical},
                                 "classical", inner=True)  # fmt: skip
    assert (blend.kind, blend.weight) == ("classical", pytest.approx(1 / 3))
    assert (blend.inner_kind, blend.inner_weight) == ("naive", 0.0)  # naive beat the network
    assert scores["classical x 0.667"] == pytest.approx((1.1 + 2 * 1.05) / 3 - 1.0)
    again = Blend.from_dict(json.loads(json.dumps(blend.to_dict())))
    assert again == blend
    out = again.apply(torch.full((4, 3, 1), 1.8), windows, [0], classical)
    torch.testing.assert_close(out, torch.full((4, 3, 1), (1.1 + 2 * 1.05) / 3))
    assert blend.report(scores)["network_part"] == {"baseline": "naive", "model_weight": 0.0}
    # without `inner` (a prior's network, as before): the raw network's thirds are off by 0.3,
    # so the classical forecast alone (0.05, 2x better) wins the guard
    plain, _ = choose_blend(network, batches, None, [0], {"classical": classical}, "classical")
    assert (plain.kind, plain.weight, plain.inner_weight) == ("classical", 0.0, 1.0)
    assert "inner_weight" not in plain.to_dict()


def test_trains_last_line_says_what_the_forecast_is() -> None:
    """A combination may weigh the network at 0: the forecast is then a baseline, which the
    results table alone does not show; train warns (a 15-minute series of 400 rows got
    seasonal naive alone, with five members trained and nothing said)."""
    import io

    from rich.console import Console

    from lstmcli.cli.display import say_forecast

    thirds = {"baseline": "classical", "model_weight": 1 / 3, "chosen_on": "val"}
    assert describe_chosen(thirds) == (
        "33% the network, 67% AutoETS and AutoTheta (chosen on the val part)"
    )
    inner = {"baseline": "seasonal_naive", "model_weight": 0.5}
    legacy = thirds | {"baseline": "classical-2", "model_weight": 0.25, "network_part": inner}
    assert describe_chosen(legacy) == (
        "25% the network (50% of its share; the rest seasonal naive), 75% AutoETS and AutoTheta "
        "(chosen on the val part)"
    )
    assert describe_chosen(None) == "the network alone"
    alone = {"baseline": "last_season", "model_weight": 0.0, "chosen_on": "train"}
    for quiet, expected in [
        (False, "Warning: the forecast kept is seasonal naive of the history alone, the network "
                "weighed 0 (chosen on the training part's last origins)\n"),
        (True, ""),
    ]:  # fmt: skip
        out = io.StringIO()
        say_forecast(Console(file=out, width=300), alone, quiet)
        assert out.getvalue() == expected
    out = io.StringIO()
    say_forecast(Console(file=out, width=300), thirds, False)
    assert out.getvalue().startswith("forecast: 33% the network")
