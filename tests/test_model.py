from __future__ import annotations

import pytest
import torch

from lstmcli.config.edit import validate_config
from lstmcli.model.network import LSTMForecaster
from lstmcli.model.spec import ModelSpec


@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_output_shape_for_any_depth(num_layers: int) -> None:
    """The tutorial's hn.view(-1, hidden) broke past one layer; use the last layer's state."""
    model = LSTMForecaster(ModelSpec(4, 2, 5, 6, num_layers, dropout=0.1, head=(7,)))
    assert model(torch.randn(3, 10, 4)).shape == (3, 5, 2)


def test_the_tutorial_layout_is_expressible() -> None:
    cfg = validate_config(
        {
            "data": {
                "task": "regress",
                "target": "y",
                "features": ["a", "b"],
                "lookback": 1,
                "window_norm": "none",
                "season": None,
            },
            "model": {
                "hidden_size": 2,
                "num_layers": 1,
                "head": [256, 256, 128],
                "lstm_rows": None,
            },
        }
    )
    spec = ModelSpec.for_config(cfg.data, cfg.model)
    assert (spec.n_inputs, spec.n_targets, spec.steps, spec.target_index) == (2, 1, 1, None)
    model = LSTMForecaster(spec)
    linear_widths = [
        (m.in_features, m.out_features) for m in model.head if isinstance(m, torch.nn.Linear)
    ]
    assert linear_widths == [(2, 256), (256, 256), (256, 128), (128, 1)]
    assert model.lstm.hidden_size == 2 and model.lstm.num_layers == 1
    assert model(torch.randn(8, 1, 2)).shape == (8, 1, 1)


def test_empty_head_is_one_linear_layer() -> None:
    model = LSTMForecaster(ModelSpec(1, 1, 3, hidden_size=4, num_layers=1, dropout=0.0, head=()))
    assert [type(m) for m in model.head] == [torch.nn.Linear]


@pytest.mark.parametrize("kind", ["last", "standard", "robust"])
def test_window_normalization_round_trip(kind: str) -> None:
    from lstmcli.model.network import window_stats

    windows = torch.randn(5, 12, 3) * 10 + 50
    center, scale = window_stats(windows, kind)
    normalized = (windows - center) / scale
    torch.testing.assert_close(normalized * scale + center, windows)
    if kind == "standard":
        torch.testing.assert_close(normalized.mean(dim=1), torch.zeros(5, 3), atol=1e-5, rtol=0)
    flat = torch.full((1, 4, 1), 7.0)
    expected = 1.0 if kind == "last" else 1e-6  # no division by zero
    assert window_stats(flat, kind)[1].item() == pytest.approx(expected)


@pytest.mark.parametrize("kind", ["standard", "robust"])
def test_a_flat_window_forecasts_its_own_level(kind: str) -> None:
    """A constant history forecasts that constant, exactly, as one with the smallest spread
    nearly does: the network's typical move of a training window (here a bias) is not added
    at full scale."""
    torch.manual_seed(0)
    model = LSTMForecaster(ModelSpec(1, 1, 4, 8, 1, 0.0, (8,), kind, target_index=(0,)))
    with torch.no_grad():
        model.head[-1].bias.fill_(3.0)  # a move of 3 window spreads at every step
        flat = model(torch.full((1, 12, 1), 5.0))
        jitter = torch.tensor([0.0, 1e-7] * 6).reshape(1, 12, 1)
        nearly = model(torch.full((1, 12, 1), 5.0) + jitter)
        zeros = model(torch.zeros(1, 12, 1))  # a panel's all-zero series
    assert flat.flatten().tolist() == [5.0] * 4  # exactly: not 5 + 3e-6
    assert zeros.flatten().tolist() == [0.0] * 4  # not +-1e-7, a 200% sMAPE
    assert nearly.flatten().tolist() == pytest.approx([5.0] * 4, abs=1e-4)


def test_last_value_norm_makes_forecasts_follow_a_shift() -> None:
    """A series shifted by a constant gives the same forecasts, shifted by that constant."""
    model = LSTMForecaster(ModelSpec(2, 1, 3, 8, 2, 0.0, (4,), "last", target_index=(0,)))
    windows = torch.randn(6, 10, 2)
    shift = torch.tensor([100.0, -3.0])
    with torch.no_grad():
        torch.testing.assert_close(model(windows + shift), model(windows) + 100.0)
    standard = LSTMForecaster(ModelSpec(1, 1, 2, 8, 1, 0.0, (), "standard", target_index=(0,)))
    with torch.no_grad():  # and a scaled series gives scaled forecasts
        torch.testing.assert_close(standard(windows[..., :1] * 5), standard(windows[..., :1]) * 5)


def test_spec_round_trips_through_plain_types_and_builds_an_ensemble() -> None:
    cfg = validate_config(
        {
            "data": {
                "target": ["y", "z"],
                "features": ["a"],
                "known_features": ["k"],
                "calendar": ["month"],
                "horizon": 3,
                "lookback": 10,
                "window_norm": "standard",
                "season": None,
            },
            "model": {"hidden_size": 5, "num_layers": 2, "head": [4], "lstm_rows": None},
        }
    )
    spec = ModelSpec.for_config(cfg.data, cfg.model)
    # targets first, then past features, then known features and the calendar's sin/cos
    assert (spec.n_inputs, spec.n_future, spec.target_index, spec.steps) == (6, 3, (0, 1), 3)
    assert spec.linear_skip == 10  # a linear map from the targets' whole window
    model = spec.build()
    out = model(torch.randn(4, 10, 6), torch.randn(4, 3, 3))
    assert out.shape == (4, 3, 2) and model.skip.in_features == 20
    plain = spec.to_dict()
    assert all(type(v) in (int, float, str, list, type(None)) for v in plain.values())
    assert ModelSpec.from_dict(plain) == spec
    ensemble = ModelSpec.from_dict({**plain, "members": 3}).build()
    assert len(ensemble.members) == 3
    with pytest.raises(ValueError, match="unknown model arguments"):
        ModelSpec.from_dict({**plain, "width": 3})


def test_the_linear_skip_alone_can_be_the_seasonal_naive_forecast() -> None:
    """With the head silenced and the skip set to pick the value one season back, the model
    forecasts 'the same as a season ago' exactly: the skip reaches the output unchanged."""
    spec = ModelSpec(1, 1, 3, 4, 1, 0.0, (), "none", (0,), linear_skip=6)
    model = LSTMForecaster(spec)
    with torch.no_grad():
        for p in model.head.parameters():
            p.zero_()
        model.skip.weight.zero_()
        model.skip.bias.zero_()
        for h in range(3):  # season 4: step h+1 is row t+h+1-4, index 6-4+h of the window
            model.skip.weight[h, 2 + h] = 1.0
        windows = torch.randn(5, 6, 1)
        torch.testing.assert_close(model(windows)[:, :, 0], windows[:, 2:5, 0])


def test_the_lstm_reads_only_the_last_lstm_rows_and_the_skip_reads_them_all() -> None:
    """A long window's far rows reach the forecast through the linear skip alone."""
    spec = ModelSpec(1, 1, 2, 4, 1, 0.0, (), "none", (0,), linear_skip=20, lstm_rows=5)
    model = LSTMForecaster(spec)
    windows = torch.randn(3, 20, 1)
    far_changed = windows.clone()
    far_changed[:, :15] += 1.0
    with torch.no_grad():
        weights = model.skip.weight.clone()
        model.skip.weight.zero_()
        torch.testing.assert_close(model(windows), model(far_changed), rtol=0, atol=0)
        model.skip.weight.copy_(weights)
        assert not torch.allclose(model(windows), model(far_changed))
        whole = LSTMForecaster(ModelSpec(1, 1, 2, 4, 1, 0.0, (), "none", (0,), linear_skip=20))
        whole.skip.weight.zero_()
        assert not torch.allclose(whole(windows), whole(far_changed))  # all 20 rows: recurred


def test_the_spec_names_its_network_and_a_file_of_another_kind_is_refused(
    tmp_path, csv_path
) -> None:
    """Every kind a spec may name is built (network.NETWORKS); a checkpoint naming a kind
    this lstmcli does not know is one clear error, not a wrong network."""
    from lstmcli.errors import LstmcliError
    from lstmcli.model.checkpoint import load_checkpoint
    from lstmcli.model.network import NETWORKS
    from lstmcli.model.spec import NETWORK_KINDS
    from lstmcli.run.pipeline import train_run
    from tests.conftest import tiny_config

    assert tuple(NETWORKS) == NETWORK_KINDS
    run = train_run(validate_config(tiny_config(csv_path)), tmp_path / "run").run_dir
    assert load_checkpoint(run).spec.network == "lstm"
    payload = torch.load(run / "model.pt", weights_only=True)
    payload["model_args"]["network"] = "transformer"
    torch.save(payload, tmp_path / "other.pt")
    with pytest.raises(LstmcliError, match="a network of kind 'transformer', unknown"):
        load_checkpoint(tmp_path / "other.pt")
