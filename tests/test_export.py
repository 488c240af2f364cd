"""`lstmcli export`: the whole forecaster in one ONNX file, equal to the PyTorch path.

Tolerance: the graph computes in float32 like the model (scaling and its inverse in float64),
and onnxruntime orders some float32 sums differently from torch: forecasts agree to 1e-5 of
the series' scale (a few float32 ulps through the network), far below any forecast error."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from lstmcli.model.checkpoint import load_checkpoint

from .conftest import seasonal_frame, tiny_config
from .helpers import run as cli

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def three_columns(n: int = 160) -> pd.DataFrame:
    frame = seasonal_frame(n)
    return frame.assign(z=(frame["y"] * 3 + frame["x"] + 100).round(4))


def panel(n: int = 90) -> pd.DataFrame:
    parts = []
    for k, level in enumerate((5.0, 500.0, 50000.0)):
        one = seasonal_frame(n, seed=k)
        parts.append(one.assign(id=f"s{k}", y=one["y"] * level))
    return pd.concat(parts, ignore_index=True)


CASES = {
    "two layers, robust norm, minmax, two targets, known-ahead input, intervals": (
        three_columns,
        {"data": {"target": ["y", "z"], "known_features": ["x"], "window_norm": "robust",
                  "scaler": "minmax", "horizon": 3},
         "model": {"num_layers": 2, "levels": [80]}},
    ),
    "ensemble of 2, standard norm, blend": (
        seasonal_frame,
        {"data": {"window_norm": "standard", "horizon": 4},
         "model": {"blend": "auto", "linear_skip": True},
         "training": {"ensemble": 2}},
    ),
    "per-series scalers, last-value norm, quantile intervals": (
        panel,
        {"data": {"id_column": "id", "scale_by": "series", "window_norm": "last", "horizon": 2},
         "model": {"levels": [80, 95], "intervals": "quantile"}},
    ),
}  # fmt: skip


def trained(tmp_path: Path, make: object, sections: dict) -> tuple[Path, Path]:
    csv = tmp_path / "data.csv"
    make().to_csv(csv, index=False)
    config = tiny_config(csv)
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    run = tmp_path / "run"
    result = cli("train", "-c", str(tmp_path / "run.yaml"), "-o", str(run), "-q")
    assert result.exit_code == 0, result.output
    return run, csv


def same_numbers(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """The same rows and text; numbers within 1e-5 of each column's scale (float32 sums)."""
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    numbers = a.select_dtypes("number").columns
    pd.testing.assert_frame_equal(a.drop(columns=numbers), b.drop(columns=numbers))
    scale = a[numbers].abs().max()
    assert ((a[numbers] - b[numbers]).abs() <= 1e-5 * scale + 1e-9).all().all()


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.slow
def test_the_onnx_file_forecasts_what_the_run_folder_forecasts(tmp_path: Path, case: str) -> None:
    run, csv = trained(tmp_path, *CASES[case])
    exported = cli("export", str(run), "-q")
    assert exported.exit_code == 0, exported.output
    onnx_file = Path(exported.stdout.strip())
    assert onnx_file == run / "model.onnx"
    # `predict` with the file: the same rows, columns and formats as with the run folder.
    for extra in ([], ["--rolling"]):
        torch_out = cli("predict", str(run), str(csv), "-q", *extra)
        onnx_out = cli("predict", str(onnx_file), str(csv), "-q", *extra)
        if torch_out.exit_code:  # e.g. no rows to forecast: the same refusal, word for word
            assert onnx_out.exit_code == torch_out.exit_code
            assert onnx_out.stderr == torch_out.stderr.replace(str(run), str(onnx_file))
            continue
        assert onnx_out.exit_code == 0, onnx_out.output
        same_numbers(*(pd.read_csv(io.StringIO(r.stdout)) for r in (torch_out, onnx_out)))


@pytest.mark.slow
def test_the_graph_takes_raw_windows_and_any_batch(tmp_path: Path) -> None:
    """Fed directly by onnxruntime, as a service would: raw windows of 1 and 1,000 rows in
    original units give the forecasts (and bounds) of the PyTorch forecaster."""
    import onnxruntime

    run, _ = trained(tmp_path, *CASES[list(CASES)[0]])
    assert cli("export", str(run), "-q").exit_code == 0
    session = onnxruntime.InferenceSession(str(run / "model.onnx"))
    meta = session.get_modelmeta().custom_metadata_map
    for key in ("input_columns", "target_columns", "future_columns", "lookback", "horizon",
                "frequency", "lstmcli_version", "format_version", "levels", "inputs"):  # fmt: skip
        assert key in meta, key
    assert json.loads(meta["input_columns"]) == ["y", "z", "x"]
    assert json.loads(meta["target_columns"]) == ["y", "z"]
    assert (meta["lookback"], meta["horizon"], meta["frequency"]) == ("12", "3", "MS")
    outputs = ["forecast", "lo_80", "hi_80", "scale", "forecast_scaled"]
    assert [o.name for o in session.get_outputs()] == outputs
    forecaster = load_checkpoint(run).fitted("cpu").backend.module
    rng = np.random.default_rng(0)
    for batch in (1, 1000):
        inputs = 10 + rng.normal(0, 1, (batch, 12, 3))
        inputs[..., 1] += 100
        future = rng.normal(0, 1, (batch, 3, 1))
        got = session.run(None, {"inputs": inputs, "future": future})
        with torch.inference_mode():
            expected = forecaster(torch.from_numpy(inputs), torch.from_numpy(future))
        assert got[0].shape == (batch, 3, 2)
        for g, e in zip(got, expected, strict=True):
            np.testing.assert_allclose(g, e.numpy(), rtol=1e-5, atol=1e-5)
        assert (got[1] <= got[0]).all() and (got[0] <= got[2]).all()


def test_export_needs_the_extra_and_a_run(tmp_path: Path, monkeypatch) -> None:
    run, _ = trained(tmp_path, *CASES[list(CASES)[1]])
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    result = cli("export", str(run))
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: ONNX export needs onnx and onnxscript, which are not installed; install them "
        "with `pip install 'lstmcli[onnx]'`"
    )
    assert not (run / "model.onnx").exists()
    monkeypatch.undo()
    assert cli("export", str(run), "-q").exit_code == 0
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    result = cli("predict", str(run / "model.onnx"), str(tmp_path / "data.csv"))
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: running an ONNX file needs onnxruntime, which is not installed; install them "
        "with `pip install 'lstmcli[onnx]'`"
    )
    monkeypatch.undo()
    blocked = tmp_path / "file"
    blocked.write_text("a file, not a folder")
    nowhere = cli("export", str(run), "-o", str(blocked / "model.onnx"))
    assert nowhere.exit_code == 1
    assert nowhere.stderr.strip().splitlines() == [
        f"Error: cannot write {blocked / 'model.onnx'}: {blocked} is a file, not a folder"
    ]
    missing = cli("export", str(tmp_path / "nothing"))
    assert missing.exit_code == 1 and missing.stderr.startswith("Error: checkpoint not found")
    for key, value in (("checkpoint", "{not json"), ("checkpoint", None)):
        import onnx

        model = onnx.load(str(run / "model.onnx"))
        kept = [p for p in model.metadata_props if p.key != key]
        del model.metadata_props[:]
        model.metadata_props.extend(kept)
        if value is not None:
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(model, str(tmp_path / "damaged.onnx"))
        damaged = cli("predict", str(tmp_path / "damaged.onnx"), str(tmp_path / "data.csv"))
        assert damaged.exit_code == 1, damaged.output
        assert damaged.stderr.strip() == (
            f"Error: {tmp_path / 'damaged.onnx'} is a damaged lstmcli ONNX file (its "
            "checkpoint metadata)"
        )
    gpu = cli("predict", str(run / "model.onnx"), str(tmp_path / "data.csv"), "--device", "cuda")
    assert gpu.exit_code == 1 and gpu.stderr.startswith("Error: --device cuda: an ONNX file runs")
    (tmp_path / "other.onnx").write_bytes(b"not onnx")
    bad = cli("predict", str(tmp_path / "other.onnx"), str(tmp_path / "data.csv"))
    assert bad.exit_code == 1 and bad.stderr.startswith("Error: ")
    assert len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_the_metadata_names_every_column_of_the_future_input(tmp_path: Path) -> None:
    """A calendar makes a `future` input even without known features: its columns (the sin
    and cos of the forecast rows) are named, in order, so a client can build it."""
    import onnxruntime

    sections = {"data": {"known_features": ["x"], "calendar": ["month"], "horizon": 2}}
    run, _ = trained(tmp_path, seasonal_frame, sections)
    assert cli("export", str(run), "-q").exit_code == 0
    session = onnxruntime.InferenceSession(str(run / "model.onnx"))
    meta = session.get_modelmeta().custom_metadata_map
    future = json.loads(meta["future_columns"])
    assert future == ["x", "month_sin", "month_cos"]
    assert json.loads(meta["input_columns"])[-3:] == future  # the same columns, in order
    shapes = {i.name: i.shape for i in session.get_inputs()}
    assert shapes["future"][1:] == [2, 3]


# `lstmcli` in a process where any import of torch fails, as where it is not installed
WITHOUT_TORCH = """
import sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ImportError("torch is blocked in this test")

sys.meta_path.insert(0, NoTorch())
from lstmcli.cli import main
sys.argv = ["lstmcli"] + sys.argv[1:]
main()
"""


def without_torch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_TORCH, *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "combined",
    [
        {"weight": 1 / 3, "kind": "classical"},
        # a scratch network's part is itself blended with a naive forecast first
        {"weight": 1 / 3, "kind": "classical", "inner_weight": 0.5, "inner_kind": "seasonal"},
        # seasonal naive read off the history (a window shorter than the season)
        {"weight": 0.25, "kind": "last_season"},
    ],
)
def test_a_model_combined_with_classical_forecasts_is_exported_and_forecasts_the_same(
    tmp_path: Path, combined: dict
) -> None:
    """The classical forecast reads each series' whole history, which statsforecast (or
    numpy, for seasonal naive) forecasts beside the graph (its input named after the kind):
    the file forecasts, rolls and recurses past the horizon as torch does."""
    from lstmcli.model.checkpoint import save_checkpoint

    run, csv = trained(tmp_path, seasonal_frame, {"data": {"horizon": 3}})
    alone = pd.read_csv(io.StringIO(cli("predict", str(run), str(csv), "-q").stdout))
    checkpoint = load_checkpoint(run)
    checkpoint.blend = {**combined, "season": checkpoint.spec.season}
    save_checkpoint(checkpoint, run / "model.pt")
    assert cli("export", str(run), "-q").exit_code == 0
    session_inputs = json.loads(
        __import__("onnxruntime")
        .InferenceSession(str(run / "model.onnx"))
        .get_modelmeta()
        .custom_metadata_map["inputs"]
    )
    assert session_inputs[-1] == combined["kind"]
    for extra in ([], ["--rolling"], ["--steps", "7"]):
        torch_out = cli("predict", str(run), str(csv), "-q", *extra)
        onnx_out = cli("predict", str(run / "model.onnx"), str(csv), "-q", *extra)
        assert torch_out.exit_code == 0 and onnx_out.exit_code == 0, onnx_out.output
        a, b = (pd.read_csv(io.StringIO(r.stdout)) for r in (torch_out, onnx_out))
        same_numbers(a, b)
        if not extra:  # the classical share is in the file's forecast: not the network's
            assert (b["y"] - alone["y"]).abs().max() > 1e-3 * alone["y"].abs().max()
    # statsforecast, not torch, computes the classical input
    no_torch = without_torch("predict", str(run / "model.onnx"), str(csv), "-q")
    assert no_torch.returncode == 0, no_torch.stderr
    with_torch = cli("predict", str(run), str(csv), "-q")
    same_numbers(*(pd.read_csv(io.StringIO(r.stdout)) for r in (with_torch, no_torch)))


@pytest.mark.slow
def test_predict_with_an_onnx_file_never_imports_torch(tmp_path: Path) -> None:
    """`predict model.onnx` (next, rolling) and `evaluate model.onnx` in a process where
    `import torch` fails: the same numbers as the run folder's torch forecaster."""
    run, csv = trained(tmp_path, *CASES[list(CASES)[2]])
    assert cli("export", str(run), "-q").exit_code == 0
    for command in (["predict"], ["predict", "--rolling"], ["evaluate", "--json"]):
        args = [*command[:1], str(run / "model.onnx"), str(csv), *command[1:], "-q"]
        alone = without_torch(*args)
        assert alone.returncode == 0, alone.stderr
        with_torch = cli(*[a if a != str(run / "model.onnx") else str(run) for a in args])
        assert with_torch.exit_code == 0
        if command[0] == "evaluate":
            a, b = json.loads(with_torch.stdout), json.loads(alone.stdout)
            assert a["model"]["rmse"] == pytest.approx(b["model"]["rmse"], rel=1e-5)
            assert a["baselines"] == b["baselines"]
        else:
            same_numbers(*(pd.read_csv(io.StringIO(t)) for t in (with_torch.stdout, alone.stdout)))
