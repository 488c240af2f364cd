"""The `lstmcli` command line: parse options, call one core function, report, pick the exit code.

Only this module prints, exits, or touches signals. Heavy libraries (torch, pandas, scikit-learn)
are imported inside the commands, so `lstmcli --help` starts instantly.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

from lstmcli import __version__
from lstmcli.errors import ConfigError, LstmcliError, TrainingInterrupted

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


def _stderr():  # noqa: ANN202 - rich is imported lazily
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _fail(error: LstmcliError, code: int = EXIT_ERROR) -> typer.Exit:
    """Print an expected error as `Error: ...` lines (one per config problem) and exit."""
    console = _stderr()
    lines = (
        [f"{error.source}: {p}" for p in error.problems]
        if isinstance(error, ConfigError)
        else [str(error)]
    )
    for line in lines:
        console.print(f"Error: {line}", markup=False, soft_wrap=True)
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


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lstmcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    """Train LSTM forecasting models on CSV time series, and use them."""


@app.command()
def train(
    config: Annotated[
        Optional[Path],
        typer.Option(
            "--config",
            "-c",
            help="YAML config; keys left out take their defaults (see `lstmcli init`).",
            dir_okay=False,
        ),
    ] = None,
    set_: Annotated[
        Optional[list[str]],
        typer.Option(
            "--set",
            "-s",
            help="Override a config key, e.g. --set training.epochs=5 (repeatable; value is YAML).",
            metavar="KEY=VALUE",
        ),
    ] = None,
    output: Annotated[
        Optional[Path],
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
    """
    from lstmcli.config import config_to_yaml, load_config

    try:
        resolved = load_config(config, set_ or [])
    except LstmcliError as e:
        raise _fail(e) from None
    if print_config:
        typer.echo(config_to_yaml(resolved), nl=False)
        return

    from lstmcli.display import EpochReporter, results_table
    from lstmcli.pipeline import train_run

    console = _stderr()
    run_dir = output or Path(resolved.output.dir)
    stop = StopRequest()
    try:
        with stop.installed(), EpochReporter(console, resolved.training.epochs, quiet) as reporter:
            result = train_run(
                resolved,
                run_dir,
                overwrite=overwrite,
                on_epoch=reporter,
                should_stop=stop,
                on_warning=lambda m: console.print(f"Warning: {m}", markup=False),
            )
    except LstmcliError as e:
        raise _fail(e) from None
    except (TrainingInterrupted, KeyboardInterrupt) as e:
        console.print(f"Interrupted: {e or 'stopped'}", markup=False)
        raise typer.Exit(stop.exit_code) from None
    if not quiet:
        console.print(results_table(result.metrics))
    typer.echo(str(run_dir))
    if result.training.interrupted:
        console.print(
            f"Interrupted after epoch {result.training.epochs_run}; the best model so far "
            f"(epoch {result.training.best_epoch}) is saved in {run_dir}",
            markup=False,
        )
        raise typer.Exit(stop.exit_code)


@app.command()
def init(
    path: Annotated[
        Path, typer.Argument(help="Where to write the config.", dir_okay=False)
    ] = Path("lstmcli.yaml"),
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
) -> None:
    """Write a starter config: every key with its default and a one-line description.

    The defaults train on the bundled Mauna Loa CO2 series (data.path: builtin:co2_weekly),
    so the file works as it is; point data.path at your CSV and set the columns.

    Example:

      lstmcli init run.yaml && lstmcli train --config run.yaml
    """
    from lstmcli.config import commented_defaults
    from lstmcli.files import write_text

    if path.exists() and not force:
        raise _fail(LstmcliError(f"{path} already exists; pass --force to replace it"))
    try:
        write_text(path, commented_defaults())
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
