"""Splits, window anchors, batches and the choice of usable series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from lstmcli.config.data_section import DataConfig
from lstmcli.config.edit import validate_config
from lstmcli.data.table import Table
from lstmcli.data.windows import (
    WindowSet,
    keep_series,
    series_anchors,
    split_table,
    target_offsets,
    training_series,
    window_anchors,
)
from lstmcli.errors import LstmcliError


def data_cfg(**data: object) -> DataConfig:
    return validate_config({"data": {"time_column": None, "target": "y", **data}}).data


def oracle_anchors(
    part_starts: np.ndarray,
    stops: np.ndarray,
    series_starts: np.ndarray,
    lookback: int,
    horizon: int,
    task: str,
) -> list[int]:
    """The definition, one row at a time: t is an anchor when the window's inputs start inside
    its series and all its targets lie inside the part [part_start, stop)."""
    anchors = []
    for series_start, part_start, stop in zip(series_starts, part_starts, stops, strict=True):
        for t in range(series_start, stop):
            targets = range(t + 1, t + horizon + 1) if task == "forecast" else [t]
            inputs_inside = t - lookback + 1 >= series_start
            if inputs_inside and min(targets) >= part_start and max(targets) < stop:
                anchors.append(t)
    return anchors


def test_forecast_windows_by_hand() -> None:
    # 10 rows, lookback 3, horizon 2: train rows 0..6, test rows 7..9.
    assert window_anchors(0, 7, 3, 2, "forecast").tolist() == [2, 3, 4]  # targets up to row 6
    assert window_anchors(7, 10, 3, 2, "forecast").tolist() == [6, 7]  # targets 7-8 and 8-9
    assert window_anchors(0, 4, 3, 2, "forecast").tolist() == []


def test_regress_windows_by_hand() -> None:
    assert window_anchors(0, 7, 3, 1, "regress").tolist() == [2, 3, 4, 5, 6]
    assert window_anchors(7, 10, 3, 1, "regress").tolist() == [7, 8, 9]


@pytest.mark.parametrize(("task", "horizon"), [("forecast", 1), ("forecast", 3), ("regress", 1)])
def test_vectorized_anchors_equal_the_definition(task: str, horizon: int) -> None:
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 40, size=200)
    series_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    part_starts = series_starts + (lengths * 0.6).astype(int)
    stops = series_starts + lengths
    fast = series_anchors(part_starts, stops, series_starts, 5, horizon, task)
    expected = oracle_anchors(part_starts, stops, series_starts, 5, horizon, task)
    assert len(expected) > 500
    assert fast.tolist() == expected


@pytest.mark.parametrize("task", ["forecast", "regress"])
@pytest.mark.parametrize(
    ("n", "lookback", "horizon"), [(50, 5, 1), (50, 7, 4), (23, 3, 2), (200, 24, 12)]
)
def test_each_part_holds_exactly_the_windows_whose_targets_lie_in_it(
    task: str, n: int, lookback: int, horizon: int
) -> None:
    if task == "regress":
        horizon = 1
    cfg = data_cfg(
        task=task,
        features=["x"],
        lookback=lookback,
        horizon=horizon,
        split={"train": 0.6, "val": 0.2, "test": 0.2},
    )
    split = split_table(n, cfg)
    starts = {name: int(bounds[0][0]) for name, bounds in split.bounds.items()}
    assert starts == {"train": 0, "val": int(n * 0.6), "test": int(n * 0.6) + int(n * 0.2)}
    assert split.bounds["test"][1].tolist() == [n]
    for name, ([start], [stop]) in split.bounds.items():
        expected = oracle_anchors([start], [stop], [0], lookback, horizon, task)
        assert split.anchors[name].tolist() == expected


def test_window_batches_gather_the_right_rows() -> None:
    rows = torch.arange(10, dtype=torch.float32)
    inputs = torch.stack([rows, rows * 10, rows * 100], dim=1)  # (10, 3)
    targets = (rows + 1000).unsqueeze(1)  # (10, 1)
    windows = WindowSet(inputs, targets, np.array([2, 3, 4]), 3, target_offsets(2, "forecast"))
    x, future, y = windows.batch(torch.tensor([0, 2]))
    assert future is None
    assert x.shape == (2, 3, 3) and y.shape == (2, 2, 1)
    assert x[0, :, 0].tolist() == [0, 1, 2] and x[1, :, 1].tolist() == [20, 30, 40]
    assert y[0, :, 0].tolist() == [1003, 1004] and y[1, :, 0].tolist() == [1005, 1006]
    # the known-ahead columns (the last one here) are gathered at the target rows
    known = WindowSet(inputs, targets, np.array([2]), 3, target_offsets(2, "forecast"), slice(2, 3))
    _, future, _ = known.batch(torch.tensor([0]))
    assert future.tolist() == [[[300.0], [400.0]]]
    regress = WindowSet(inputs, targets, np.array([5]), 3, target_offsets(1, "regress"))
    x, _, y = regress.batch(torch.tensor([0]))
    assert x[0, :, 0].tolist() == [3, 4, 5] and y.flatten().tolist() == [1005]


def test_too_few_rows_for_a_window_says_how_many_are_needed() -> None:
    cfg = data_cfg(lookback=24, horizon=6, split={"train": 0.7, "val": 0.1, "test": 0.2})
    with pytest.raises(LstmcliError) as info:
        split_table(40, cfg)
    assert str(info.value) == (
        "the train part has 28 of 40 rows, too few for one window: lookback 24 and horizon 6 "
        "need at least 30 rows there; use more data or change data.split, data.lookback or "
        "data.horizon"
    )
    with pytest.raises(LstmcliError, match="the val part has 4 of 45 rows"):
        split_table(
            45, data_cfg(lookback=3, horizon=6, split={"train": 0.7, "val": 0.1, "test": 0.2})
        )


def panel_table(lengths: list[int]) -> Table:
    n = sum(lengths)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return Table(
        np.zeros((n, 1), np.float32),
        np.zeros((n, 1)),
        ["y"],
        ["y"],
        pd.Series(np.concatenate([np.arange(k) for k in lengths]).astype(np.int64)),
        offsets,
        [f"s{k}" for k in range(len(lengths))],
    )


def test_keep_series_warns_once_naming_the_skipped_and_fails_when_none_is_left() -> None:
    table = panel_table([5, 30, 2, 40])
    warnings: list[str] = []
    kept = keep_series(table, np.array([False, True, False, True]), "odd", "f.csv", warnings.append)
    assert kept.ids == ["s1", "s3"] and kept.lengths.tolist() == [30, 40]
    assert warnings == ["skipped 2 of 4 series odd: s0, s2"]
    with pytest.raises(LstmcliError, match=r"^every series in f.csv \(4\) is odd$"):
        keep_series(table, np.zeros(4, bool), "odd", "f.csv", warnings.append)
    assert keep_series(table, np.ones(4, bool), "odd", "f.csv", warnings.append) is table
    assert len(warnings) == 1


def test_training_series_are_those_with_a_window_and_a_training_row() -> None:
    table = panel_table([5, 30, 12, 40])
    warnings: list[str] = []
    cfg = data_cfg(id_column="id", time_column="t", lookback=10, split={"train": 0.5, "test": 0.5})
    kept = training_series(table, cfg, warnings.append)
    assert kept.ids == ["s1", "s2", "s3"]
    assert warnings == [
        "skipped 1 of 4 series shorter than one window (lookback 10 and horizon 1 need 11 rows): s0"
    ]
    # per-series scalers also need a training row: cut at t=20, series of 12 rows have none
    cfg = data_cfg(
        id_column="id",
        time_column="t",
        lookback=3,
        scale_by="series",
        split={"val_start": 25, "test_start": 30},
    )
    warnings.clear()
    table = panel_table([40, 35, 12])
    table.time = pd.Series(np.concatenate([np.arange(40), np.arange(35), np.arange(28, 40)]))
    kept = training_series(table, cfg, warnings.append)
    assert kept.ids == ["s0", "s1"]
    assert warnings[0].startswith(
        "skipped 1 of 3 series without a training row to fit its scaler on (data.scale_by: series)"
    )
