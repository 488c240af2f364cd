"""What every command shares: the app, the one error boundary, console helpers, Ctrl-C
handling and the option declarations."""

from __future__ import annotations

import enum
import functools
import logging
import os
import signal
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lstmcli import __version__
from lstmcli.cli.launch import EXIT_SIGINT, EXIT_SIGTERM
from lstmcli.errors import ConfigError, LstmcliError

if TYPE_CHECKING:  # heavy libraries load inside the commands, so --help starts fast
    from rich.console import Console

    from lstmcli.config.schema import Config

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


def stderr() -> Console:
    """stderr as rich sees it; written to a file or pipe, it is wide enough for every table
    (rich would otherwise assume 80 columns and cut names short)."""
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, 160)
    return console


def say(console: Console, text: str) -> None:
    """One plain message line: no markup parsing, no hard wrapping (scripts grep logs)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def warner(console: Console, quiet: bool = False) -> Callable[[str], None]:
    """The `warn` callback of the core: one `Warning:` line on stderr per warning."""

    def warn(message: str) -> None:
        if not quiet:
            say(console, f"Warning: {message}")

    return warn


@contextmanager
def quieted(quiet: bool) -> Iterator[None]:
    """Under -q, also the warnings that do not come through `warner`: Python's `warnings`
    (torch's, numpy's, pandas'), libraries' log records below ERROR (MLflow's), and those of
    the processes a command starts (tune --jobs workers, train --nproc ranks), which read
    PYTHONWARNINGS. Errors still print."""
    if not quiet:
        yield
        return
    variable = os.environ.get("PYTHONWARNINGS")
    disabled = logging.root.manager.disable
    os.environ["PYTHONWARNINGS"] = "ignore"
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(disabled)
        if variable is None:
            os.environ.pop("PYTHONWARNINGS", None)
        else:
            os.environ["PYTHONWARNINGS"] = variable


OTHER_RANKS_GRACE_S = 3  # an error every rank meets is reported by rank 0 within this


def main_rank() -> bool:
    """Whether this process speaks: the only one, or rank 0 under torchrun."""
    return os.environ.get("RANK", "0") == "0"


def command(function: Callable[..., None]) -> Callable[..., None]:
    """Register a command inside the one error boundary: an expected error becomes one
    `Error:` line per problem on stderr (from rank 0 only, under torchrun) and exit 1. A
    command's -q silences every warning while it runs (see `quieted`)."""

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> None:
        try:
            with quieted(kwargs.get("quiet") is True):
                function(*args, **kwargs)
        except LstmcliError as error:
            if main_rank():
                lines = error.lines if isinstance(error, ConfigError) else [str(error)]
                console = stderr()
                for line in lines:
                    say(console, f"Error: {line}")
            else:  # torchrun stops every rank when one exits: let rank 0 say it first
                time.sleep(OTHER_RANKS_GRACE_S)
            raise typer.Exit(error.exit_code) from None

    return app.command()(guarded)


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
    bool,
    typer.Option(
        "--quiet", "-q", help="Only errors on stderr: no progress, tables, notes or warnings."
    ),
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


class Tracking(str, enum.Enum):
    mlflow = "mlflow"
    none = "none"


TrackOption = Annotated[
    Tracking | None,
    typer.Option(
        "--track",
        help="Also log to MLflow (sets output.track; needs the lstmcli[mlflow] extra; the "
        "store is MLFLOW_TRACKING_URI or output.tracking_uri).",
    ),
]
OutputFolderOption = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Run folder; overrides output.dir.", file_okay=False),
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


def load_config(config: Path | None, overrides: list[str] | None) -> Config:
    from lstmcli.config.io import load_config

    return load_config(config, overrides or [])


def invocation(context: typer.Context) -> list[str]:
    """The running command as a list of words a shell can run again (`shlex.join`): the
    options given on the command line, each as parsed, in the command's order. Built from
    the parsed parameters, so it is the same under torchrun, `python -m` and tests."""
    words = ["lstmcli", context.info_name or ""]
    for param in context.command.params:
        source = context.get_parameter_source(param.name)
        if source is None or source.name != "COMMANDLINE":
            continue
        value = context.params[param.name]
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        texts = [str(v.value if isinstance(v, enum.Enum) else v) for v in values]
        if param.param_type_name == "argument":
            words += texts
        elif getattr(param, "is_flag", False):
            if value or param.secondary_opts:  # --x, or --no-x of a --x/--no-x pair
                words.append(param.opts[0] if value else param.secondary_opts[0])
        else:
            for text in texts:
                words += [param.opts[0], text]
    return words
