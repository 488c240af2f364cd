"""The `lstmcli` command line: parse options, call one core function, report, pick the exit code.

Only this module prints, exits, or touches signals. Heavy libraries (torch, pandas, scikit-learn)
are imported inside the commands, so `lstmcli --help` starts instantly.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lstmcli import __version__
from lstmcli.errors import ConfigError, LstmcliError, TrainingInterrupted

if TYPE_CHECKING:  # heavy libraries load inside the commands, so --help starts fast
    import pandas as pd
    from matplotlib.figure import Figure
    from rich.console import Console

    from lstmcli.auto import Choice
    from lstmcli.config import Config
    from lstmcli.predict import Predictor

EXIT_ERROR = 1
EXIT_SIGINT = 130
EXIT_SIGTERM = 143

app = typer.Typer(
    name="lstmcli",
    help="Train LSTM forecasting models on CSV time series, and use them.\n\n"
    "Start with `lstmcli train --config configs/quickstart.yaml`, or `lstmcli init` "
    "to write a commented config.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _stderr() -> Console:
    """stderr as rich sees it; written to a file or pipe, it is wide enough for every table
    (rich would otherwise assume 80 columns and cut names short)."""
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, 160)
    return console


def _say(console: Console, text: str) -> None:
    """One plain message line: no markup parsing, no hard wrapping (scripts grep logs)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _fail(error: LstmcliError, code: int = EXIT_ERROR) -> typer.Exit:
    """Print an expected error as `Error: ...` lines (one per config problem) and exit."""
    console = _stderr()
    lines = error.lines if isinstance(error, ConfigError) else [str(error)]
    for line in lines:
        _say(console, f"Error: {line}")
    return typer.Exit(code)


class StopRequest:
    """Set by SIGINT/SIGTERM; training checks it after every batch and stops cleanly.

    A second Ctrl-C while stopping raises KeyboardInterrupt at once, for the impatient.
    """

    def __init__(self) -> None:
        self.signal: int | None = None

    def __call__(self) -> bool:
        return self.signal is not None

    def _handle(self, signum: int, frame: object) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum

    @contextmanager
    def installed(self) -> Iterator[StopRequest]:
        previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    @property
    def exit_code(self) -> int:
        return EXIT_SIGTERM if self.signal == signal.SIGTERM else EXIT_SIGINT


# Options shared by several commands, declared once.
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML config; keys left out take their defaults (see `lstmcli init`).",
        dir_okay=False,
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        help="Override a config key, e.g. --set training.epochs=5 (repeatable; value is YAML).",
        metavar="KEY=VALUE",
    ),
]
DeviceOption = Annotated[
    str | None,
    typer.Option(
        "--device", help="cpu, cuda, cuda:N, mps, auto; default: where it trained, if here."
    ),
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No tables, warnings or messages on stderr.")
]
RunArgument = Annotated[
    Path, typer.Argument(help="A run folder (from `lstmcli train`) or its model.pt.")
]
IdOption = Annotated[
    list[str] | None,
    typer.Option(
        "--id",
        help="Only this series (models trained with data.id_column; repeatable).",
        metavar="ID",
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lstmcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Train LSTM forecasting models on CSV time series, and use them."""


@app.command()
def train(
    config: ConfigOption = None,
    set_: SetOption = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Run folder; overrides output.dir.", file_okay=False),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the files of an existing run folder.")
    ] = False,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the resolved config as YAML and exit.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress or results table on stderr.")
    ] = False,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            help="Continue the run in this folder from its last.pt (after Ctrl-C, a kill or to "
            "train longer with --set training.epochs=N).",
            file_okay=False,
        ),
    ] = None,
    nproc: Annotated[
        int | None,
        typer.Option(
            "--nproc",
            min=1,
            help="Train with N processes on this machine (torchrun --standalone "
            "--nproc_per_node N): one GPU each, or CPU shares.",
        ),
    ] = None,
) -> None:
    """Train a model and write a run folder.

    The data is split in time order, scalers are fitted on the training rows only, and the
    model is evaluated on the test rows against naive and seasonal-naive baselines.

    The run folder holds model.pt (weights, scalers, config, columns), config.yaml,
    history.csv, metrics.json and test_predictions.csv, all in the data's own units.
    Its path is printed on stdout; progress and the results table go to stderr.

    Examples:

      lstmcli train --config configs/quickstart.yaml

      lstmcli train -c run.yaml --set training.epochs=5 --set data.lookback=48 -o runs/try

      lstmcli train --resume runs/try --set training.epochs=50

      torchrun --nproc_per_node 4 -m lstmcli train -c run.yaml   (or: --nproc 4)
    """
    from lstmcli.config import config_to_yaml, load_config, with_output_dir
    from lstmcli.distributed import from_environment

    if nproc is not None and nproc > 1:
        _relaunch_under_torchrun(nproc)
    try:
        dist = from_environment()
    except LstmcliError as e:
        raise _fail(e) from None
    if not dist.main:  # rank 0 alone prints; the others only train
        quiet, print_config = True, False

    if resume is not None and (config is not None or output is not None or overwrite):
        raise typer.BadParameter("--resume continues a run folder: no --config, -o or --overwrite")
    last = None
    try:
        if resume is not None:
            from lstmcli.pipeline import prepare_resume

            last, resolved = prepare_resume(resume, set_ or [])
        else:
            resolved = load_config(config, set_ or [])
    except LstmcliError as e:
        if not dist.main:  # every rank finds the same problem; rank 0 says it
            raise typer.Exit(EXIT_ERROR) from None
        raise _fail(e) from None
    if resume or output:  # the resolved config is what runs: its folder included
        resolved = with_output_dir(resolved, resume or output)
    console = _stderr()
    if print_config:  # with every `auto` chosen from the data, as train would
        from lstmcli.pipeline import resolved_config

        try:
            resolved, _ = resolved_config(resolved, _warner(console, quiet=True))
        except LstmcliError as e:
            raise _fail(e) from None
        typer.echo(config_to_yaml(resolved), nl=False)
        return

    from lstmcli.display import EpochReporter, intervals_table, results_tables, series_table
    from lstmcli.pipeline import train_run

    run_dir = Path(resolved.output.dir)
    stop = StopRequest()
    done = last.train_state["epoch"] if last is not None else 0
    reporter = EpochReporter(console, quiet=quiet, done=done)

    def resolved_here(config: Config, choices: list[Choice]) -> None:
        nonlocal resolved
        resolved = config
        if choices and not quiet:
            _say(console, "Chosen from the data: " + "; ".join(map(str, choices)))
        reporter.plan(config.training.epochs, config.training.ensemble)

    try:
        with stop.installed(), reporter:
            result = train_run(
                resolved,
                run_dir,
                overwrite=overwrite,
                on_epoch=reporter,
                should_stop=stop,
                warn=_warner(console) if dist.main else (lambda _: None),
                resume=last,
                on_resolved=resolved_here,
            )
    except LstmcliError as e:
        if not dist.main:
            raise typer.Exit(EXIT_ERROR) from None
        raise _fail(e) from None
    except (TrainingInterrupted, KeyboardInterrupt) as e:
        if dist.main:
            _say(console, f"Interrupted: {e or 'stopped'}")
        raise typer.Exit(stop.exit_code) from None
    if not dist.main:
        raise typer.Exit(stop.exit_code if result.training.interrupted else 0)
    if not quiet:
        for table in results_tables(result.metrics):
            console.print(table)
        if "intervals" in result.metrics:
            console.print(intervals_table(result.metrics["intervals"]))
        if "series" in result.metrics:
            console.print(series_table(result.metrics["series"]))
    typer.echo(str(run_dir))
    if result.training.interrupted:
        resumable = resolved.training.ensemble == 1
        _say(
            console,
            f"Interrupted after {result.training.epochs_run} complete epoch(s); the best model "
            f"so far (epoch {result.training.best_epoch}) is saved in {run_dir}"
            + (f"; continue with `lstmcli train --resume {run_dir}`" if resumable else ""),
        )
        raise typer.Exit(stop.exit_code)


def _relaunch_under_torchrun(nproc: int) -> None:
    """`train --nproc N`: this same command line under torchrun on this machine, exiting as
    a one-process train would: 0, 1, or 130 / 143 after Ctrl-C / SIGTERM (each rank saves and
    stops after the same batch). torchrun runs in its own process group, so the signal reaches
    it once, passed on from here; its own log lines and the traceback it prints for a signal
    are left out of stderr (the workers' lines pass through)."""
    import subprocess
    import threading

    args = list(sys.argv[1:])
    for k, arg in enumerate(args):
        if arg == "--nproc":
            del args[k : k + 2]
            break
        if arg.startswith("--nproc="):
            del args[k]
            break
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", "-m", "lstmcli", *args]  # fmt: skip
    env = {**os.environ}
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    child = subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    received: list[int] = []

    def forward(signum: int, frame: object) -> None:
        received.append(signum)
        if len(received) == 1:
            child.send_signal(signum)

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, forward)
    relay = threading.Thread(target=_relay_worker_lines, args=(child.stderr,), daemon=True)
    relay.start()
    code = child.wait()
    relay.join(timeout=5)
    if received:
        raise typer.Exit(EXIT_SIGTERM if received[0] == signal.SIGTERM else EXIT_SIGINT)
    raise typer.Exit(0 if code == 0 else EXIT_ERROR)


TORCHRUN_LOG = ("torch/distributed/elastic", "torch.distributed.elastic")


def _relay_worker_lines(stream: object) -> None:
    """Copy the workers' stderr lines, leaving out torchrun's log lines, the traceback it
    prints for a signal it received and its failure summary between two rules of `=` (the
    worker said what failed in its `Error:` line; a traceback of anything else is kept)."""
    held: list[str] = []
    in_summary = False
    for line in stream:  # type: ignore[attr-defined]
        if set(line.strip()) == {"="}:
            in_summary = not in_summary
            continue
        if in_summary:
            continue
        if held:
            held.append(line)
            if not line.startswith((" ", "\t", "Traceback")):  # the exception's own line
                if "SignalException" not in line and "ChildFailedError" not in line:
                    sys.stderr.writelines(held)
                held = []
            continue
        if line.startswith("Traceback (most recent call last)"):
            held = [line]
        elif not any(mark in line for mark in TORCHRUN_LOG):
            sys.stderr.write(line)
            sys.stderr.flush()
    sys.stderr.writelines(held)


@app.command()
def tune(
    config: ConfigOption = None,
    set_: SetOption = None,
    trials: Annotated[
        int | None,
        typer.Option(
            "--trials",
            "-n",
            min=1,
            help="Trials in the study, all runs together "
            "(default tune.trials); a continued study runs only the missing ones.",
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", min=0.001, help="Seconds after which no new trial starts."),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="Database URL of the study (default: sqlite in the "
            "study folder); share one to tune on many machines.",
            metavar="URL",
        ),
    ] = None,
    study: Annotated[
        str | None, typer.Option("--study", help="Study name in the storage (default lstmcli).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Study folder (default: output.dir + '-tune').", file_okay=False
        ),
    ] = None,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            help="Trials run at once, each in its own process "
            "sharing the study (threads split between them).",
        ),
    ] = 1,
    quiet: QuietOption = False,
) -> None:
    """Search hyper-parameters with Optuna, choosing on the validation part only.

    Each trial trains the config with the trial's values of the `tune.space` keys (or the
    default space) and is scored on the val part; the test rows are never scored during the
    search. The study lives in a database (study.db in the study folder): run the same
    command again to continue it after Ctrl-C or a kill. At the end the best config is
    written to best.yaml, trained once more into the `best` run folder and scored on the
    test part like `train`. The folder also holds trials.csv and history.png (and
    importance.png). Its path is printed on stdout.

    Examples:

      lstmcli tune -c run.yaml --trials 30

      lstmcli tune -c run.yaml --jobs 2 --timeout 600 -o runs/study

      lstmcli tune -c run.yaml --storage postgresql://user@db/optuna --study sales
    """
    from lstmcli.config import load_config

    try:
        resolved = load_config(config, set_ or [])
    except LstmcliError as e:
        raise _fail(e) from None
    folder = output or Path(resolved.output.dir + "-tune")
    console = _stderr()
    from lstmcli.display import EpochReporter, TrialReporter, results_tables, trials_table
    from lstmcli.tune import tune_run

    stop = StopRequest()
    reporter = TrialReporter(console, quiet=quiet)

    def planned(plan, notes: list[str], done: int) -> None:  # noqa: ANN001
        if not quiet:
            for note in notes:
                _say(console, note)
            left = max(0, plan.trials - done)
            _say(console, f"study {plan.study_name!r} in {plan.storage}: {done} trial(s) done, "
                 f"{left} to run, chosen by {plan.metric}")  # fmt: skip
        reporter.plan(plan.trials, plan.metric, done)

    def best_chosen(chosen: Config) -> None:
        if not quiet:
            _say(console, f"training the best config into {chosen.output.dir}")

    try:
        with stop.installed(), reporter:
            result = tune_run(
                resolved,
                folder,
                trials=trials,
                timeout=timeout,
                storage=storage,
                study_name=study,
                jobs=jobs,
                should_stop=stop,
                warn=_warner(console, quiet),
                on_plan=planned,
                on_trial=reporter,
                on_best=best_chosen,
                on_epoch=EpochReporter(console, quiet=True),
                source=str(config) if config is not None else "config",
            )
    except LstmcliError as e:
        raise _fail(e) from None
    except (TrainingInterrupted, KeyboardInterrupt) as e:
        _say(console, f"Interrupted: {e or 'stopped'}; run the same command to continue")
        raise typer.Exit(stop.exit_code) from None
    if not quiet:
        keys = [k for k in result.trials.columns if "." in k]
        console.print(trials_table(result.trials, result.metric, keys))
        if result.run is not None:
            for table in results_tables(result.run.metrics, "test metrics of the best config"):
                console.print(table)
    typer.echo(str(folder))
    if result.run is None:
        _say(console, f"Interrupted; trials so far are in {folder}; run the same command to "
             "continue the study")  # fmt: skip
        raise typer.Exit(stop.exit_code)


@app.command()
def check(
    config: ConfigOption = None,
    set_: SetOption = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="The run folder train would write.", file_okay=False),
    ] = None,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="Only the problems (Error: lines) and the exit code."),
    ] = False,
) -> None:
    """Check a config and its data without training, and say whether training would fail.

    Reports rows and time range, the inferred frequency and irregular gaps, missing values per
    column, rows and windows per split, and the device; then every problem found (as `Error:`
    lines) and warnings. Exits 1 when `train` with this config would fail: run it in CI
    before a long run.

    Example:

      lstmcli check --config run.yaml && lstmcli train --config run.yaml
    """
    from lstmcli import check as core
    from lstmcli.config import load_config

    try:
        resolved = load_config(config, set_ or [])
    except LstmcliError as e:
        raise _fail(e) from None
    report = core.check(resolved, output or Path(resolved.output.dir))
    console = _stderr()
    if not quiet:
        for key, value in report.facts:
            typer.echo(f"{key + ':':<16}{value}")
        for message in report.warnings:
            _say(console, f"Warning: {message}")
    for message in report.problems:
        _say(console, f"Error: {message}")
    if not report.ok:
        if not quiet:
            typer.echo(f"{len(report.problems)} problem(s): training would fail")
        raise typer.Exit(EXIT_ERROR)
    if not quiet:
        typer.echo("ok: training would start")


@app.command()
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
    from lstmcli import predict as core

    console = _stderr()
    warn = _warner(console, quiet)
    try:
        predictor, frame, label = _model_and_input(run, input_path, device, series_ids)
        if predictor.data.task == "regress" and steps is not None:
            raise LstmcliError("--steps is for forecast models; a regress model predicts each row")
        if predictor.data.task == "regress" or rolling:
            result = core.rolling(predictor, frame, label, warn)
        else:
            result = core.forecast_next(predictor, frame, label, steps, warn)
        _write_frame(result, output, output_format)
    except LstmcliError as e:
        raise _fail(e) from None
    if not quiet:
        where = f" to {output}" if output else ""
        _say(console, f"{len(result)} prediction row(s){where}")


@app.command()
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
    from lstmcli import predict as core
    from lstmcli.display import intervals_table, results_tables, series_table

    console = _stderr()
    try:
        predictor, frame, label = _model_and_input(run, input_path, device, series_ids)
        result = core.evaluate(predictor, frame, label, _warner(console, quiet))
    except LstmcliError as e:
        raise _fail(e) from None
    if not quiet and not as_json:  # with --json the result is on stdout; no second copy
        for table in results_tables(result, title=f"{label}, {result['windows']} windows"):
            console.print(table)
        if "intervals" in result:
            console.print(intervals_table(result["intervals"]))
        if "series" in result:
            console.print(series_table(result["series"]))
    if result["windows_skipped"] and not quiet:
        _say(
            console,
            f"{result['windows_skipped']} early window(s) skipped: the baselines need more "
            "history before them",
        )
    if as_json:
        import json

        from lstmcli.metrics import json_safe

        typer.echo(json.dumps(json_safe(result), indent=2))


@app.command()
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
    from lstmcli import plot as core

    try:
        if predictions is not None:
            written = core.plot_predictions(predictions, output, image_format, step, history)
        else:
            written = core.plot_run(run, output, image_format, step, baseline)
    except LstmcliError as e:
        raise _fail(e) from None
    for path, _ in written:
        typer.echo(str(path))
    if show:
        _show([figure for _, figure in written], quiet)


def _show(figures: list[Figure], quiet: bool = False) -> None:
    """Open the figures in windows when a display exists; otherwise say why not."""
    has_display = sys.platform in ("darwin", "win32") or any(
        os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY")
    )
    if not has_display:
        if not quiet:
            _say(_stderr(), "Warning: no display found; --show skipped (the files are written)")
        return
    import io

    import matplotlib.pyplot as plt

    for figure in figures:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", bbox_inches="tight")
        buffer.seek(0)
        window = plt.figure(figsize=figure.get_size_inches())
        window.figimage(plt.imread(buffer), resize=True)
    plt.show()


def _warner(console: Console, quiet: bool = False) -> Callable[[str], None]:
    """The `warn` callback of the core: one `Warning:` line on stderr per warning."""

    def warn(message: str) -> None:
        if not quiet:
            _say(console, f"Warning: {message}")

    return warn


def _model_and_input(
    run: Path, input_path: str | None, device: str | None, ids: list[str] | None
) -> tuple[Predictor, pd.DataFrame, str]:
    """What predict and evaluate start from: the model, the input rows (of `--id` series
    only) and the input's name for messages."""
    from lstmcli.predict import keep_ids, load_predictor

    predictor = load_predictor(run, device)
    frame, label = _read_input(input_path, predictor.data.id_column)
    return predictor, keep_ids(frame, predictor.data, ids or [], label), label


def _read_input(input_path: str | None, id_column: str | None) -> tuple[pd.DataFrame, str]:
    """The input CSV (file, builtin:NAME or stdin) and its name for messages; ids as text."""
    from lstmcli.data import read_csv

    if input_path in (None, "-"):
        if sys.stdin is None or sys.stdin.isatty():  # closed (<&-) or a terminal
            raise LstmcliError("no input: give a CSV file or pipe one in on stdin")
        return read_csv(sys.stdin, "<stdin>", text=[id_column]), "<stdin>"
    source = input_path if input_path.startswith("builtin:") else Path(input_path)
    return read_csv(source, input_path, text=[id_column]), input_path


def _write_frame(frame: pd.DataFrame, output: Path | None, output_format: str) -> None:
    """CSV or JSON lines to stdout, or atomically to a file (no partial file on failure);
    a file named *.parquet is written as Parquet."""
    from lstmcli.files import csv_text, json_lines_text, write_parquet, write_text

    if output is not None and output.suffix.lower() in (".parquet", ".pq"):
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            write_parquet(output, frame)
        except OSError as e:
            raise LstmcliError(f"cannot write {output}: {e.strerror or e}") from None
        return
    text = json_lines_text(frame) if output_format == "json" else csv_text(frame)
    if output is None:
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:  # e.g. `| head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        return
    if output.parent.exists() and not output.parent.is_dir():
        raise LstmcliError(f"cannot write {output}: {output.parent} is a file, not a folder")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)  # as train -o and plot -o do
        write_text(output, text)
    except OSError as e:
        raise LstmcliError(f"cannot write {output}: {e.strerror or e}") from None


@app.command()
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
    from lstmcli.checkpoint import load_checkpoint
    from lstmcli.export import export_onnx

    try:
        checkpoint = load_checkpoint(run)
        folder = run if run.is_dir() else run.parent
        path = output or folder / "model.onnx"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)  # as train -o and predict -o do
        except OSError as e:
            raise LstmcliError(f"cannot write {path}: {e.strerror or e}") from None
        export_onnx(checkpoint, path)
    except LstmcliError as e:
        raise _fail(e) from None
    if not quiet:
        _say(_stderr(), f"exported {run} to {path}")
    typer.echo(str(path))


@app.command()
def init(
    path: Annotated[
        Path, typer.Argument(help="Where to write the config; '-' for stdout.", dir_okay=False)
    ] = Path("lstmcli.yaml"),
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="A CSV to write the config for: its time column, a target, the season "
            "inferred from its times and a horizon of one season.",
            metavar="CSV",
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target", help="With --data: the column to forecast (default: the first numeric one)."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
) -> None:
    """Write a starter config: every key with its value and a one-line description.

    Without --data the defaults train on the bundled Mauna Loa CO2 series (data.path:
    builtin:co2_weekly), so the file works as it is. With --data FILE the config is written
    for that file, ready to train; every `auto` value is chosen from the data when training
    starts (see `lstmcli train --print-config`).

    Examples:

      lstmcli init run.yaml && lstmcli train --config run.yaml

      lstmcli init --data sales.csv --target units sales.yaml

      lstmcli init - | less
    """
    from lstmcli.config import commented_defaults
    from lstmcli.files import write_text

    if target is not None and data is None:
        raise typer.BadParameter("--target goes with --data")
    console = _stderr()
    config = None
    if data is not None:
        from lstmcli.auto import starter_config

        written = data
        if not data.startswith("builtin:"):  # config paths resolve against the config's folder
            folder = Path.cwd() if str(path) == "-" else path.resolve().parent
            written = os.path.relpath(Path(data).resolve(), folder)
            if str(path) == "-":
                written = str(Path(data).resolve())
        try:
            config, notes = starter_config(data, target, written)
        except LstmcliError as e:
            raise _fail(e) from None
        for note in notes:
            _say(console, note)
    text = commented_defaults(config)
    if str(path) == "-":
        typer.echo(text, nl=False)
        return
    if path.exists() and not force:
        raise _fail(LstmcliError(f"{path} already exists; pass --force to replace it"))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, text)
    except OSError as e:
        raise _fail(LstmcliError(f"cannot write {path}: {e.strerror or e}")) from None
    typer.echo(str(path))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `lstmcli` script and `python -m lstmcli`."""
    try:
        app(args=argv, prog_name="lstmcli")
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        sys.exit(EXIT_SIGINT)
