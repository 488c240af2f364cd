"""The `lstmcli` command line: parse options, call one core function, report, pick the exit code.

Only this package prints, exits, or touches signals; the core never does. Every command runs
inside one error boundary (`common.command`): an `LstmcliError` from the core becomes
`Error:` lines on stderr and exit 1. Heavy libraries (torch, pandas, matplotlib) are imported
inside the commands, so `lstmcli --help` starts instantly. Commands live by what they do:
`training` (train, tune), `using` (predict, evaluate, plot, export), `setup` (init, check),
`comparing` (runs); `launch` runs `train --nproc` under torchrun.
"""

from __future__ import annotations

import sys

from lstmcli.cli.common import app
from lstmcli.cli.launch import EXIT_SIGINT

# Importing the command modules registers their commands, in --help's order.
# isort: off
from lstmcli.cli import training  # noqa: F401, E402
from lstmcli.cli import using  # noqa: F401, E402
from lstmcli.cli import setup  # noqa: F401, E402
from lstmcli.cli import comparing  # noqa: F401, E402
# isort: on

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `lstmcli` script and `python -m lstmcli`."""
    try:
        app(args=argv, prog_name="lstmcli")
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        sys.exit(EXIT_SIGINT)
