"""`lstmcli init` and `lstmcli check`: commands that prepare a run without training."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lstmcli.cli.common import (
    ConfigOption,
    QuietOption,
    SetOption,
    command,
    load_config,
    say,
    stderr,
)
from lstmcli.cli.launch import EXIT_ERROR
from lstmcli.errors import LstmcliError


@command
def check(
    config: ConfigOption = None,
    set_: SetOption = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="The run folder train would write.", file_okay=False),
    ] = None,
    against: Annotated[
        Path | None,
        typer.Option(
            "--against",
            help="A run folder: say whether the data file is the one it was trained on "
            "(SHA-256 in its manifest.json); without --config, check that run's own config.",
            file_okay=False,
            metavar="RUN",
        ),
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Check a config and its data without training, and say whether training would fail.

    Reports rows and time range, the inferred frequency and irregular gaps, missing values per
    column, rows and windows per split, and the device; then every problem found (as `Error:`
    lines) and warnings. Exits 1 when `train` with this config would fail: run it in CI
    before a long run. With --against RUN it also exits 1 when the data file is not,
    byte for byte, the one RUN was trained on.

    Examples:

      lstmcli check --config run.yaml && lstmcli train --config run.yaml

      lstmcli check --against runs/old --set data.path=new.csv
    """
    from lstmcli.run import check as core

    if config is None and against is not None:
        config = against / "config.yaml"  # the run's own resolved config
    resolved = load_config(config, set_)
    folder = output or (Path(resolved.output.dir) if against is None else None)
    report = core.check(resolved, folder)  # --against alone: the run is not rewritten
    differs = None
    if against is not None:
        trained, differs = core.compare_data(resolved.data.path, against)
        report.facts.append(("trained on", trained))
        if differs is None:
            report.facts.append(("against", f"same data as {against} (byte for byte)"))
    console = stderr()
    if not quiet:
        for key, value in report.facts:
            typer.echo(f"{key + ':':<16}{value}")
        for message in report.warnings:
            say(console, f"Warning: {message}")
    for message in [*report.problems, *([differs] if differs else [])]:
        say(console, f"Error: {message}")
    if not report.ok:
        if not quiet:
            typer.echo(f"{len(report.problems)} problem(s): training would fail")
        raise typer.Exit(EXIT_ERROR)
    if differs:
        if not quiet:
            typer.echo(f"not the data {against} was trained on")
        raise typer.Exit(EXIT_ERROR)
    if not quiet:
        typer.echo("ok: training would start")


@command
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
    from lstmcli.config.io import commented_defaults
    from lstmcli.files import make_parents, write_text

    if target is not None and data is None:
        raise typer.BadParameter("--target goes with --data")
    to_stdout = str(path) == "-"
    config = None
    if data is not None:
        from lstmcli.config.starter import starter_config

        folder = None if to_stdout else path.resolve().parent
        config, notes = starter_config(data, target, folder)
        console = stderr()
        for note in notes:
            say(console, note)
    text = commented_defaults(config)
    if to_stdout:
        typer.echo(text, nl=False)
        return
    if path.exists() and not force:
        raise LstmcliError(f"{path} already exists; pass --force to replace it")
    make_parents(path)
    write_text(path, text)
    typer.echo(str(path))
