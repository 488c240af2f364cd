"""`lstmcli predict`, `evaluate`, `plot` and `export`: commands that use a trained model."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from lstmcli.cli.common import (
    DeviceOption,
    IdOption,
    QuietOption,
    RunArgument,
    command,
    say,
    stderr,
    warner,
)
from lstmcli.errors import LstmcliError


@command
def predict(
    run: RunArgument,
    input_path: Annotated[
        str | None,
        typer.Argument(
            metavar="[INPUT]",
            help="CSV with the model's input columns (or builtin:NAME); '-' or omitted: stdin.",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write here (whole or not at all) instead of stdout."),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(
            "--steps",
            min=1,
            help="Rows to forecast after the input; beyond the horizon the model's own "
            "predictions are fed back (only when every input column is a target).",
        ),
    ] = None,
    rolling: Annotated[
        bool,
        typer.Option(
            "--rolling", help="A forecast from every complete window of the input, with actuals."
        ),
    ] = False,
    output_format: Annotated[
        str, typer.Option("--format", help="csv, or json (JSON lines).", case_sensitive=False)
    ] = "csv",
    device: DeviceOption = None,
    series_ids: IdOption = None,
    quiet: QuietOption = False,
) -> None:
    """Predict with a trained model, in the data's own units.

    Everything comes from the checkpoint: columns (matched by name; extra ones are ignored),
    fitted scalers and weights. Forecast models predict the next horizon rows after the
    input's last row, with their future times; --rolling backtests every window instead.
    Regress models predict every row that has a full window.

    Models of many series (data.id_column) forecast every series in the input, each after its
    own last row, with the id in the output. Models with known_features need the rows to
    forecast in the input: rows at the end of each series with empty targets and the known
    values filled in.

    Examples:

      lstmcli predict runs/quickstart new.csv

      (head -n 1 live.csv; tail -n 200 live.csv) | lstmcli predict runs/x > next.csv

      lstmcli predict runs/x new.csv --rolling --format json -o backtest.jsonl

      lstmcli predict runs/stores recent.csv --id store_7 --id store_9
    """
    output_format = output_format.lower()
    if output_format not in ("csv", "json"):
        raise typer.BadParameter("must be csv or json", param_hint="--format")
    if rolling and steps is not None:
        raise typer.BadParameter("--steps forecasts after the input; --rolling backtests within it")
    from lstmcli.files import frame_text, write_frame
    from lstmcli.use import predict as core

    console = stderr()
    warn = warner(console, quiet)
    predictor, frame, label = core.load_input(run, input_path, device, series_ids or [], sys.stdin)
    if predictor.data.task == "regress" and steps is not None:
        raise LstmcliError("--steps is for forecast models; a regress model predicts each row")
    if predictor.data.task == "regress" or rolling:
        result = core.rolling(predictor, frame, label, warn)
    else:
        result = core.forecast_next(predictor, frame, label, steps, warn)
    if output is not None:
        write_frame(output, result, output_format)
    else:
        _to_stdout(frame_text(result, output_format))
    if not quiet:
        where = f" to {output}" if output else ""
        say(console, f"{len(result)} prediction row(s){where}")


def _to_stdout(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. `| head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None


@command
def evaluate(
    run: RunArgument,
    input_path: Annotated[
        str,
        typer.Argument(metavar="INPUT", help="CSV holding the inputs and the targets; '-': stdin."),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the full result as JSON on stdout.")
    ] = False,
    device: DeviceOption = None,
    series_ids: IdOption = None,
    quiet: QuietOption = False,
) -> None:
    """Score a trained model on new data against the naive baselines.

    Rolling forecasts over every complete window of INPUT, scored like the run's metrics.json:
    mae, rmse, smape, mase, r2 (and mape), per target and per horizon step, for the model and
    the naive and seasonal-naive baselines on exactly the same targets, with the model's skill.
    For many series: also each series' metrics and their mean and median over series, and the
    share of series where the model beats each baseline.

    Examples:

      lstmcli evaluate runs/quickstart recent.csv

      lstmcli evaluate runs/x recent.csv --json | jq .skill

      lstmcli evaluate runs/stores recent.csv --json | jq '.series.aggregate.beats'
    """
    from lstmcli.cli.display import print_results
    from lstmcli.use import predict as core
    from lstmcli.use.backtest import skipped_windows

    console = stderr()
    predictor, frame, label = core.load_input(run, input_path, device, series_ids or [], sys.stdin)
    result = core.evaluate(predictor, frame, label, warner(console, quiet))
    if not quiet and not as_json:  # with --json the result is on stdout; no second copy
        print_results(console, result, title=f"{label}, {result['windows']} windows")
    if result["windows_skipped"] and not quiet:
        say(console, skipped_windows(result))
    if as_json:
        import json

        from lstmcli.use.metrics import json_safe

        typer.echo(json.dumps(json_safe(result), indent=2))


@command
def plot(
    run: Annotated[
        Path | None,
        typer.Argument(help="A run folder (or its model.pt); not needed with --predictions."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Folder for the figures (default: the run folder).",
            file_okay=False,
        ),
    ] = None,
    image_format: Annotated[
        str, typer.Option("--format", help="png, svg or pdf.", case_sensitive=False)
    ] = "png",
    step: Annotated[
        int, typer.Option("--step", min=1, help="Which horizon step to plot (forecast runs).")
    ] = 1,
    baseline: Annotated[
        bool, typer.Option("--baseline", help="Add the naive forecast to forecast vs actual.")
    ] = False,
    predictions: Annotated[
        Path | None,
        typer.Option(
            "--predictions",
            help="Plot a `lstmcli predict` output instead of a run.",
            dir_okay=False,
        ),
    ] = None,
    history: Annotated[
        Path | None,
        typer.Option(
            "--history",
            help="With --predictions: the input CSV, drawn before the forecast.",
            dir_okay=False,
        ),
    ] = None,
    show: Annotated[
        bool,
        typer.Option("--show", help="Also open the figures in a window, if there is a display."),
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Draw forecast vs actual, learning curves and residuals, and print the file paths.

    For a run folder: forecast vs actual over the test part per target (with the end of the
    training data in grey), the train/validation loss per epoch (log scale, best epoch
    marked), and the residuals over time with their histogram.

    Examples:

      lstmcli plot runs/quickstart

      lstmcli plot runs/x --step 3 --baseline --format svg -o figures

      lstmcli predict runs/x new.csv > next.csv

      lstmcli plot --predictions next.csv --history new.csv
    """
    image_format = image_format.lower()
    if image_format not in ("png", "svg", "pdf"):
        raise typer.BadParameter("must be png, svg or pdf", param_hint="--format")
    if (run is None) == (predictions is None):
        raise typer.BadParameter("give a RUN folder or --predictions FILE (one of the two)")
    if history is not None and predictions is None:
        raise typer.BadParameter("--history goes with --predictions")
    if baseline and predictions is not None:
        raise typer.BadParameter("--baseline draws the naive forecast from a run's data: give RUN")
    from lstmcli.run.lock import refuse_busy
    from lstmcli.use import plot as core

    if predictions is not None:
        written = core.plot_predictions(predictions, output, image_format, step, history)
    else:
        refuse_busy(run)  # a run still training has no test predictions or final metrics yet
        written = core.plot_run(run, output, image_format, step, baseline)
    for path, _ in written:
        typer.echo(str(path))
    if show and not core.show_figures([figure for _, figure in written]) and not quiet:
        say(stderr(), "Warning: no display found; --show skipped (the files are written)")


@command
def export(
    run: RunArgument,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="The ONNX file (default: model.onnx in the run folder).",
            dir_okay=False,
        ),
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Write the whole forecaster as one ONNX file that any ONNX runtime can serve.

    The graph takes raw windows (original units, float64: the input columns in the
    metadata's order, lookback rows; the known-ahead values of the horizon when the model has
    them; the series' scaler statistics with data.scale_by: series) and returns forecasts in
    original units, and the interval bounds of a model with levels. Scaling, window
    normalization, the network(s), blend and ensemble mean are inside. Needs the `onnx` extra.
    `lstmcli predict model.onnx INPUT` runs it with onnxruntime. Its path is printed on stdout.

    Examples:

      lstmcli export runs/quickstart

      lstmcli export runs/quickstart -o forecaster.onnx
    """
    from lstmcli.files import make_parents
    from lstmcli.model.checkpoint import load_checkpoint
    from lstmcli.run.lock import refuse_busy
    from lstmcli.use.export import export_onnx

    refuse_busy(run)  # as predict: a run still training has no final model.pt yet
    checkpoint = load_checkpoint(run)
    path = output or (run if run.is_dir() else run.parent) / "model.onnx"
    make_parents(path)  # as train -o and predict -o do
    export_onnx(checkpoint, path)
    if not quiet:
        say(stderr(), f"exported {run} to {path}")
    typer.echo(str(path))
