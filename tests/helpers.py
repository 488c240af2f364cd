"""Running the CLI in-process, for every test file: one way to call `lstmcli`, instead of a
`CliRunner` and a wrapper over it in each file. Fixtures stay in conftest.py; these are
plain functions."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from lstmcli.cli import app

_runner = CliRunner()


def run(
    *args: str,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Result:
    """`lstmcli ARGS`, without colour: `stdin` is the command's input, `env` adds to (or
    overrides) the environment for the call, and `cwd` runs it from that folder. Exceptions
    are caught as the CLI's exit; `result.stdout` and `result.stderr` come apart,
    `result.output` holds both."""
    environment = {"NO_COLOR": "1", **(env or {})}
    if cwd is None:
        return _runner.invoke(app, list(args), input=stdin, env=environment)
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return _runner.invoke(app, list(args), input=stdin, env=environment)
    finally:
        os.chdir(old)


def run_wide(
    *args: str,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Result:
    """`run` on a terminal 120 columns wide, for help, tables and messages that Rich would
    otherwise wrap at the width of whatever terminal runs the tests (80 off one)."""
    return run(*args, stdin=stdin, env={"COLUMNS": "120", **(env or {})}, cwd=cwd)
