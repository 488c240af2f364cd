"""The bad-input battery: every case through the real CLI gives one `Error:` line on stderr, a
non-zero exit, no traceback, and no partial output."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import seasonal_frame, tiny_config
from tests.helpers import run as cli


def write_csv(folder: Path, frame: pd.DataFrame | None = None, name: str = "data.csv") -> Path:
    (frame if frame is not None else seasonal_frame()).to_csv(folder / name, index=False)
    return Path(name)  # relative: commands run inside `folder`, and messages name it so


def write_config(folder: Path, raw: object, name: str = "run.yaml") -> Path:
    (folder / name).write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw))
    return Path(name)


def config_for(
    folder: Path, frame: pd.DataFrame | None = None, **sections: dict[str, object]
) -> Path:
    return write_config(folder, tiny_config(write_csv(folder, frame), **sections))


def with_values(column: str, row: int, value: object) -> pd.DataFrame:
    frame = seasonal_frame().astype({column: object})
    frame.loc[row, column] = value
    return frame


def trained_run(folder: Path) -> Path:
    result = cli("train", "-c", str(config_for(folder)), "-o", "trained", "-q", cwd=folder)
    assert result.exit_code == 0, result.stderr
    return folder / "trained"


# Each case: (id, setup(tmp) -> argv, expected start of the one error line)
TRAIN_CASES: list[tuple[str, Callable[[Path], list[str]], str]] = [
    ("missing config", lambda t: ["-c", "nope.yaml"], "Error: nope.yaml: file not found"),
    (
        "unreadable config",
        lambda t: ["-c", _binary(t)],
        "Error: bin.yaml: cannot read: not UTF-8 text",
    ),
    (
        "yaml syntax",
        lambda t: ["-c", str(write_config(t, "data:\n  target: [y\n"))],
        "Error: run.yaml: YAML syntax error at line 3, column 1",
    ),
    (
        "config is a list",
        lambda t: ["-c", str(write_config(t, "- a\n- b\n"))],
        "Error: run.yaml: expected a mapping",
    ),
    (
        "config is a scalar",
        lambda t: ["-c", str(write_config(t, "42\n"))],
        "Error: run.yaml: expected a mapping with sections data, model, training, output, tune; "
        "got a number",
    ),
    (
        "unknown key",
        lambda t: ["-c", str(config_for(t, model={"hiden_size": 3}))],
        "Error: run.yaml: model.hiden_size: unknown key; did you mean 'hidden_size'?",
    ),
    (
        "wrong type",
        lambda t: ["-c", str(config_for(t, training={"batch_size": "big"}))],
        "Error: run.yaml: training.batch_size: must be a whole number of at least 1 or 'auto', "
        "got 'big'",
    ),
    (
        "negative size",
        lambda t: ["-c", str(config_for(t, model={"hidden_size": -4}))],
        "Error: run.yaml: model.hidden_size: must be a whole number of at least 1 or 'auto', "
        "got -4",
    ),
    (
        "zero size",
        lambda t: ["-c", str(config_for(t, data={"lookback": 0}))],
        "Error: run.yaml: data.lookback: must be a whole number of at least 1 or 'auto', got 0",
    ),
    (
        "split does not add up",
        lambda t: [
            "-c",
            str(config_for(t, data={"split": {"train": 0.6, "val": 0.3, "test": 0.3}})),
        ],
        "Error: run.yaml: data.split: train + val + test must add up to 1, got 1.2",
    ),
    (
        "missing csv",
        lambda t: ["-c", str(write_config(t, {"data": {"path": "gone.csv", "target": "y"}}))],
        "Error: data file not found: ",
    ),
    (
        "unreadable csv",
        lambda t: [
            "-c",
            str(write_config(t, {"data": {"path": _binary(t, "bin.csv"), "target": "y"}})),
        ],
        "Error: cannot read CSV ",
    ),
    ("empty csv", lambda t: ["-c", str(_with_text(t, ""))], "Error: data file is empty: "),
    (
        "header only",
        lambda t: ["-c", str(_with_text(t, "date,y\n"))],
        "Error: data file has a header but no rows: ",
    ),
    (
        "unknown target",
        lambda t: ["-c", str(config_for(t, data={"target": "sales"}))],
        "Error: column(s) ['sales'] not found in ",
    ),
    (
        "unknown feature",
        lambda t: ["-c", str(config_for(t, data={"features": ["price"]}))],
        "Error: column(s) ['price'] not found in ",
    ),
    (
        "unknown time column",
        lambda t: ["-c", str(config_for(t, data={"time_column": "when"}))],
        "Error: column(s) ['when'] not found in ",
    ),
    (
        "non-numeric value",
        lambda t: ["-c", str(config_for(t, with_values("y", 5, "12,5")))],
        "Error: column 'y' in ",
    ),
    (
        "nan value",
        lambda t: ["-c", str(config_for(t, with_values("y", 9, np.nan)))],
        "Error: column 'y' in ",
    ),
    (
        "inf value",
        lambda t: ["-c", str(config_for(t, with_values("y", 9, np.inf)))],
        "Error: column 'y' in ",
    ),
    (
        "unparseable time",
        lambda t: ["-c", str(config_for(t, with_values("date", 3, "someday")))],
        "Error: time column 'date' in ",
    ),
    (
        "duplicate time",
        lambda t: ["-c", str(config_for(t, with_values("date", 3, "2000-01-01")))],
        "Error: time column 'date' in ",
    ),
    (
        "too few rows",
        lambda t: ["-c", str(config_for(t, seasonal_frame(12)))],
        "Error: the train part has 8 of 12 rows, too few for one window",
    ),
    (
        "empty series id",
        lambda t: [
            "-c",
            str(
                config_for(
                    t,
                    with_values("x", 0, 1.0)
                    .assign(shop="a")
                    .astype({"shop": object})
                    .pipe(lambda f: f.assign(shop=f["shop"].where(f.index != 4))),
                    data={"id_column": "shop"},
                )
            ),
        ],
        "Error: id column 'shop' in ",
    ),
    (
        "every series too short",
        lambda t: [
            "-c",
            str(
                config_for(
                    t,
                    seasonal_frame().assign(shop=[f"s{i // 10}" for i in range(160)]),
                    data={"id_column": "shop"},
                )
            ),
        ],
        "Error: every series in ",
    ),
    (
        "calendar of numbers",
        lambda t: [
            "-c",
            str(
                config_for(
                    t, seasonal_frame().assign(date=range(160)), data={"calendar": ["month"]}
                )
            ),
        ],
        "Error: data.calendar needs dates in the time column of ",
    ),
    (
        "absent device",
        lambda t: ["-c", str(config_for(t, training={"device": "cuda"}))],
        "Error: device 'cuda' is not available",
    ),
    (
        "output under a file",
        lambda t: ["-c", str(config_for(t)), "-o", str(_with_text(t, "x", "file.txt") / "run")],
        "Error: cannot create run folder ",
    ),
]


def _binary(folder: Path, name: str = "bin.yaml") -> str:
    path = folder / name
    path.write_bytes(b"\xff\xfe\x00\x81garbage\x00")
    return name


def _with_text(folder: Path, text: str, name: str = "data.csv") -> Path:
    (folder / name).write_text(text)
    if name.endswith(".csv"):
        return write_config(folder, {"data": {"path": name, "target": "y"}})
    return Path(name)


@pytest.mark.parametrize(("case", "setup", "message"), TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES])
def test_train_bad_input(
    tmp_path: Path, case: str, setup: Callable[[Path], list[str]], message: str
) -> None:
    if case == "absent device" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    args = setup(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = cli("train", *args, *([] if "-o" in args else ["-o", "out"]), cwd=tmp_path)
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit)  # no traceback
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_constant_column_trains_with_a_warning(tmp_path: Path) -> None:
    frame = seasonal_frame().assign(x=1.0)
    config = config_for(tmp_path, frame, data={"features": ["x"]})
    result = cli("train", "-c", str(config), "-o", "out", cwd=tmp_path)
    assert result.exit_code == 0
    assert (
        "Warning: column(s) ['x'] are constant in the training rows; they carry no signal\n"
    ) in result.stderr
    quiet = cli("train", "-c", str(config), "-o", "out", "-q", "--overwrite", cwd=tmp_path)
    assert quiet.exit_code == 0 and quiet.stderr == ""  # -q: no warnings
    assert np.isfinite(pd.read_csv(tmp_path / "out" / "test_predictions.csv")["y"]).all()


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody can write into: chmod for users, the immutable flag for root."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = False
    if os.access(folder, os.W_OK):  # root ignores modes
        immutable = (
            subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
        )
        if not immutable:
            pytest.skip("cannot make a read-only folder here")
    yield folder
    if immutable:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    folder.chmod(0o755)


def test_read_only_output_folders(tmp_path: Path, read_only_folder: Path) -> None:
    config = config_for(tmp_path)
    inside = cli("train", "-c", str(config), "-o", str(read_only_folder / "run"), cwd=tmp_path)
    assert inside.exit_code == 1
    assert inside.stderr.startswith("Error: cannot create run folder ")
    itself = cli("train", "-c", str(config), "-o", str(read_only_folder), cwd=tmp_path)
    assert itself.exit_code == 1
    assert itself.stderr.startswith(f"Error: run folder {read_only_folder} is not writable")
    run = trained_run(tmp_path)
    out = read_only_folder / "next.csv"
    result = cli("predict", str(run), "data.csv", "-o", str(out), cwd=tmp_path)
    assert result.exit_code == 1 and result.stderr.startswith(f"Error: cannot write {out}")
    assert list(read_only_folder.iterdir()) == []


def test_predict_bad_input(tmp_path: Path) -> None:
    run = trained_run(tmp_path)
    csv = tmp_path / "data.csv"
    frame = pd.read_csv(csv)

    def predict(args: list[str], stdin: str | None = None):
        return cli("predict", *args, stdin=stdin, cwd=tmp_path)

    out = tmp_path / "next.csv"
    missing_column = predict([str(run), "-", "-o", str(out)], frame.drop(columns="y").to_csv())
    assert missing_column.stderr.startswith("Error: column(s) ['y'] not found in <stdin>")

    checkpoint = (run / "model.pt").read_bytes()
    broken = tmp_path / "broken"
    broken.mkdir()
    cases = {
        "garbage": (b"\x00" * 100, "is not a loadable lstmcli checkpoint"),
        "truncated": (checkpoint[: len(checkpoint) // 3], "is not a loadable lstmcli checkpoint"),
    }
    for name, (content, message) in cases.items():
        (broken / "model.pt").write_bytes(content)
        result = predict([str(broken), str(csv), "-o", str(out)])
        assert result.exit_code == 1 and message in result.stderr, name
        assert len(result.stderr.splitlines()) == 1
    torch.save({"state": torch.zeros(1)}, broken / "model.pt")
    assert predict([str(broken), str(csv)]).stderr.endswith("is not an lstmcli checkpoint\n")
    payload = torch.load(run / "model.pt", weights_only=True)
    torch.save({**payload, "format_version": 99}, broken / "model.pt")
    assert "has checkpoint format version 99" in predict([str(broken), str(csv)]).stderr
    payload["state_dict"]["head.0.weight"] = torch.zeros(3, 3)  # weights of another shape
    torch.save(payload, broken / "model.pt")
    result = predict([str(broken), str(csv)])
    assert result.stderr.startswith("Error: the checkpoint's weights do not fit its model")
    below_a_file = predict([str(run), str(csv), "-o", str(csv / "next.csv")])
    assert below_a_file.exit_code == 1
    assert below_a_file.stderr == (
        f"Error: cannot write {csv / 'next.csv'}: {csv} is a file, not a folder\n"
    )
    assert not out.exists()


# Property: whatever the config and the CSV, train succeeds or fails with Error: lines only.
def mostly(valid: st.SearchStrategy, invalid: st.SearchStrategy) -> st.SearchStrategy:
    """Valid nine times out of ten, so that both outcomes are explored."""
    return st.integers(0, 9).flatmap(lambda i: invalid if i == 0 else valid)


bad_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from(["", "abc", "1e3", " 2 "]),
)


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    rows = draw(mostly(st.integers(20, 60), st.integers(0, 19)))
    start = draw(st.sampled_from(["2020-01-01", "1999-12-31"]))
    dates = pd.date_range(start, periods=rows, freq=draw(st.sampled_from(["D", "MS"])))
    dates = [str(d.date()) for d in dates]
    y = list(np.sin(np.arange(rows) / 3.0))
    if rows and draw(st.integers(0, 3)) == 0:
        dates[draw(st.integers(0, rows - 1))] = draw(st.sampled_from([dates[0], "not a date"]))
    if rows and draw(st.booleans()):
        for _ in range(draw(st.integers(1, 3))):
            y[draw(st.integers(0, rows - 1))] = draw(bad_values)
    x = draw(st.sampled_from([np.cos(np.arange(rows)), np.ones(rows)]))
    layout = draw(st.sampled_from(["one", "blocks", "random"]))
    if layout == "one":
        shop = ["a"] * rows
    elif layout == "blocks":
        shop = ["a" if i < rows // 2 else "b" for i in range(rows)]
    else:
        shop = [draw(st.sampled_from(["a", "b", "c"])) for _ in range(rows)]
    if rows and draw(st.integers(0, 5)) == 0:
        shop[draw(st.integers(0, rows - 1))] = None
    return pd.DataFrame({"shop": shop, "date": dates, "y": y, "x": x})


configs = st.fixed_dictionaries(
    {
        "data": st.fixed_dictionaries(
            {
                "target": mostly(st.just("y"), st.sampled_from(["z", ["y", "x"]])),
                "features": mostly(st.just(["x"]), st.just([])),
                "task": st.sampled_from(["forecast", "regress"]),
                "lookback": mostly(st.integers(1, 8), st.integers(-1, 40)),
                "horizon": st.integers(1, 3),
                "season": st.sampled_from([None, 2, 7, 50]),
                "split": mostly(
                    st.one_of(
                        st.floats(0.4, 0.8), st.just({"train": 0.6, "val": 0.2, "test": 0.2})
                    ),
                    st.floats(-1, 2),
                ),
                "scaler": mostly(
                    st.sampled_from(["minmax", "standard", "robust", "none"]), st.just("log")
                ),
                "missing": st.sampled_from(["error", "drop", "ffill", "interpolate"]),
                "id_column": st.sampled_from([None, "shop"]),
                "scale_by": mostly(st.just("global"), st.just("series")),
                "known_features": mostly(st.just([]), st.just(["x"])),
                "calendar": mostly(st.just([]), st.sampled_from([["month"], ["dayofweek"]])),
            }
        ),
        "model": st.fixed_dictionaries(
            {
                "hidden_size": mostly(st.integers(1, 4), st.integers(-1, 0)),
                "num_layers": st.integers(1, 2),
                "head": mostly(st.sampled_from([[], [3]]), st.just([0])),
            }
        ),
        "training": st.fixed_dictionaries(
            {
                "epochs": st.integers(1, 2),
                "batch_size": st.sampled_from([None, 1, 8, "8"]),
                "learning_rate": mostly(st.just(0.01), st.sampled_from([0, "fast"])),
                "device": st.just("cpu"),
                "checkpoint_every": st.sampled_from([None, 1]),
            }
        ),
    }
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frame=frames(), config=configs)
@pytest.mark.slow
def test_any_config_and_csv_succeed_or_fail_cleanly(
    tmp_path_factory: pytest.TempPathFactory, frame: pd.DataFrame, config: dict
) -> None:
    folder = tmp_path_factory.mktemp("prop")
    frame.to_csv(folder / "data.csv", index=False)
    config["data"]["path"] = "data.csv"
    write_config(folder, config)
    result = cli("train", "-c", "run.yaml", "-o", "out", "-q", cwd=folder)
    assert isinstance(result.exception, SystemExit) or result.exception is None, result.exception
    event(f"exit {result.exit_code}")
    if result.exit_code == 0:
        assert (folder / "out" / "model.pt").is_file()
    else:
        assert result.exit_code == 1
        lines = result.stderr.splitlines()
        assert lines and all(line.startswith(("Error: ", "Warning: ")) for line in lines)
        assert any(line.startswith("Error: ") for line in lines)
        assert not (folder / "out" / "model.pt").exists()
