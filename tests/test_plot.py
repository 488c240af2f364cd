from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from lstmcli.config.edit import validate_config
from lstmcli.run.pipeline import train_run
from lstmcli.use.figures import loss_figure
from lstmcli.use.plot import plot_predictions, plot_run
from tests.conftest import seasonal_frame, tiny_config
from tests.helpers import run


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("plot")
    csv = folder / "series.csv"
    seasonal_frame().to_csv(csv, index=False)
    config = validate_config(tiny_config(csv, data={"horizon": 2}, training={"epochs": 4}))
    return {"csv": csv, "run": train_run(config, folder / "run").run_dir}


def lines(figure: Figure) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    ax = figure.axes[0]
    return {line.get_label(): (line.get_xdata(), line.get_ydata()) for line in ax.lines}


def test_run_figures_are_images_of_the_run_data(trained: dict[str, Path], tmp_path: Path) -> None:
    written = dict((p.name, f) for p, f in plot_run(trained["run"], tmp_path, "png", 1, True))
    assert set(written) == {"loss.png", "forecast_y.png", "residuals_y.png"}
    for name in written:
        image = imread(tmp_path / name)
        assert image.shape[0] > 500 and image.shape[1] > 900  # about 10x6 in at 120 dpi

    saved = pd.read_csv(trained["run"] / "test_predictions.csv", parse_dates=["origin", "date"])
    step1 = saved[saved["step"] == 1]
    forecast = lines(written["forecast_y.png"])
    assert set(forecast) == {"history", "actual", "forecast", "naive"}
    np.testing.assert_array_equal(forecast["forecast"][1], step1["y"])
    np.testing.assert_array_equal(forecast["actual"][1], step1["y_actual"])
    assert list(pd.to_datetime(forecast["forecast"][0])) == list(step1["date"])
    data = pd.read_csv(trained["csv"], parse_dates=["date"]).set_index("date")["y"]
    tail = data[data.index < step1["date"].min()].iloc[-len(step1) :]
    np.testing.assert_array_equal(forecast["history"][1], tail.to_numpy())
    np.testing.assert_array_equal(forecast["naive"][1], data.loc[step1["origin"]].to_numpy())

    history = pd.read_csv(trained["run"] / "history.csv")
    loss = written["loss.png"]
    curves = lines(loss)
    np.testing.assert_array_equal(curves["train"][1], history["train_loss"])
    np.testing.assert_array_equal(curves["validation"][1], history["val_loss"])
    best = json.loads((trained["run"] / "metrics.json").read_text())["best_epoch"]
    assert curves[f"best epoch ({best})"][0][0] == best
    assert loss.axes[0].get_yscale() == "log"
    assert loss.axes[0].get_ylabel() == "loss (MSE, scaled units)"

    residuals = written["residuals_y.png"]
    residual = step1["y_actual"] - step1["y"]
    np.testing.assert_allclose(residuals.axes[0].lines[0].get_ydata(), residual)
    rmse = np.sqrt(np.mean(residual**2))
    assert f"RMSE {rmse:.4g}" in residuals.get_suptitle()


@pytest.mark.slow
def test_another_step_and_vector_formats(trained: dict[str, Path], tmp_path: Path) -> None:
    written = plot_run(trained["run"], tmp_path, "svg", 2, False)
    names = sorted(p.name for p, _ in written)
    assert names == ["forecast_y_step2.svg", "loss.svg", "residuals_y_step2.svg"]
    assert (tmp_path / "loss.svg").read_text().lstrip().startswith("<?xml")
    saved = pd.read_csv(trained["run"] / "test_predictions.csv")
    forecast = lines(dict((p.name, f) for p, f in written)["forecast_y_step2.svg"])
    np.testing.assert_array_equal(forecast["forecast"][1], saved[saved["step"] == 2]["y"])
    assert "naive" not in forecast
    pdf = plot_run(trained["run"], tmp_path, "pdf", 1, False)[0][0]
    assert pdf.read_bytes().startswith(b"%PDF")


def test_cli_prints_one_path_per_line_into_the_run_folder(trained: dict[str, Path]) -> None:
    result = run("plot", str(trained["run"]))
    assert result.exit_code == 0, result.stderr
    paths = [Path(line) for line in result.stdout.splitlines()]
    assert [p.name for p in paths] == ["loss.png", "forecast_y.png", "residuals_y.png"]
    assert all(p.parent == trained["run"] and p.is_file() for p in paths)


def test_predict_output_with_history(trained: dict[str, Path], tmp_path: Path) -> None:
    frame = pd.read_csv(trained["csv"]).iloc[-30:]
    history = tmp_path / "recent.csv"
    frame.to_csv(history, index=False)
    out = run("predict", str(trained["run"]), str(history))
    future = tmp_path / "next.csv"
    future.write_text(out.stdout)
    result = run("plot", "--predictions", str(future), "--history", str(history))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{tmp_path / 'next_y.png'}\n"
    [(path, figure)] = plot_predictions(future, tmp_path, "png", 1, history)
    drawn = lines(figure)
    np.testing.assert_array_equal(drawn["history"][1], frame["y"])
    np.testing.assert_array_equal(drawn["forecast"][1], pd.read_csv(future)["y"])
    assert "actual" not in drawn and figure.axes[0].get_title() == "y: forecast"


def test_rolling_predict_output_is_forecast_vs_actual(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    rolled = run("predict", str(trained["run"]), str(trained["csv"]), "--rolling").stdout
    path = tmp_path / "backtest.csv"
    path.write_text(rolled)
    written = plot_predictions(path, None, "png", 2, None)
    # --step 2 files are named for the step, so they never replace the step-1 figures
    assert [p.name for p, _ in written] == [
        "backtest_y_step2.png",
        "backtest_residuals_y_step2.png",
    ]
    frame = pd.read_csv(io.StringIO(rolled))
    drawn = lines(written[0][1])
    np.testing.assert_array_equal(drawn["actual"][1], frame[frame["step"] == 2]["y_actual"])


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["plot"], 2, "give a RUN folder or --predictions FILE"),
        (["plot", "x", "--format", "gif"], 2, "must be png, svg or pdf"),
        (["plot", "--predictions", "nope.csv"], 1, "Error: predictions file not found: nope.csv"),
    ],
)
def test_bad_plot_command_lines(args: list[str], code: int, message: str) -> None:
    result = run(*args)
    assert result.exit_code == code and message in result.stderr


def test_missing_run_files_are_named(trained: dict[str, Path], tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "model.pt").write_bytes((trained["run"] / "model.pt").read_bytes())
    result = run("plot", str(partial))
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"Error: {partial} has no test_predictions.csv; is it a finished run folder?\n"
    )
    result = run("plot", str(trained["run"]), "--step", "5")
    assert result.stderr == "Error: --step 5: the predictions hold steps 1..2\n"


def test_show_without_a_display_only_warns(trained: dict[str, Path], tmp_path: Path) -> None:
    result = run("plot", str(trained["run"]), "-o", str(tmp_path), "--show", env={"DISPLAY": ""})
    assert result.exit_code == 0
    assert "no display found" in result.stderr and len(result.stdout.splitlines()) == 3


@pytest.mark.slow
def test_a_single_forecast_is_drawn_over_its_whole_horizon(tmp_path: Path) -> None:
    csv = tmp_path / "s.csv"
    seasonal_frame(100).to_csv(csv, index=False)
    split = {"test_start": "2007-05-01"}  # the last 12 months: one window of horizon 12
    config = tiny_config(csv, data={"horizon": 12, "split": split, "window_norm": "standard"})
    run_dir = train_run(validate_config(config), tmp_path / "run").run_dir
    written = dict((p.name, f) for p, f in plot_run(run_dir, None, "png", 1, False))
    drawn = lines(written["forecast_y.png"])
    saved = pd.read_csv(run_dir / "test_predictions.csv")
    assert saved["origin"].nunique() == 1 and len(drawn["forecast"][1]) == 12
    np.testing.assert_array_equal(drawn["actual"][1], saved["y_actual"])


def test_the_loss_axis_names_the_configured_loss() -> None:
    history = pd.DataFrame({"epoch": [1, 2], "train_loss": [0.5, 0.4], "val_loss": [0.6, 0.5]})
    for loss, name in (("huber", "Huber"), ("mae", "MAE")):
        figure = loss_figure(history, 2, loss)
        assert figure.axes[0].get_ylabel() == f"loss ({name}, scaled units)"
