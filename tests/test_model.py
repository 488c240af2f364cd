from __future__ import annotations

import pytest
import torch

from lstmcli.config import validate_config
from lstmcli.model import LSTMForecaster, model_arguments


@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_output_shape_for_any_depth(num_layers: int) -> None:
    """The tutorial's hn.view(-1, hidden) broke past one layer; use the last layer's state."""
    model = LSTMForecaster(4, 2, 5, hidden_size=6, num_layers=num_layers, dropout=0.1, head=[7])
    assert model(torch.randn(3, 10, 4)).shape == (3, 5, 2)


def test_the_tutorial_layout_is_expressible() -> None:
    cfg = validate_config(
        {
            "data": {"task": "regress", "target": "y", "features": ["a", "b"], "lookback": 1},
            "model": {"hidden_size": 2, "num_layers": 1, "head": [256, 256, 128]},
        }
    )
    model = LSTMForecaster(**model_arguments(2, 1, 1, cfg.model))
    linear_widths = [
        (m.in_features, m.out_features) for m in model.head if isinstance(m, torch.nn.Linear)
    ]
    assert linear_widths == [(2, 256), (256, 256), (256, 128), (128, 1)]
    assert model.lstm.hidden_size == 2 and model.lstm.num_layers == 1
    assert model(torch.randn(8, 1, 2)).shape == (8, 1, 1)


def test_empty_head_is_one_linear_layer() -> None:
    model = LSTMForecaster(1, 1, 3, hidden_size=4, num_layers=1, dropout=0.0, head=[])
    assert [type(m) for m in model.head] == [torch.nn.Linear]
