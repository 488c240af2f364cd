"""What the core raises for problems a user can fix, and how it words and reports them.

`LstmcliError` (and its `ConfigError`) becomes `Error: <message>` and exit 1 in the CLI;
`TrainingInterrupted` exits 130. Warnings are not exceptions: core functions take a `warn`
callback and call it with one sentence per warning, so every command reports them one way.
"""

from __future__ import annotations

from collections.abc import Callable

Warn = Callable[[str], None]


def ignore_warning(message: str) -> None:
    """The default `warn` of library calls that nobody watches."""


def first_names(names: list[str], limit: int = 5) -> str:
    """The first few of many names for a message: `a, b, c, d, e, ...`."""
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


def plural(count: int, noun: str) -> str:
    """`1 row`, `2 rows`."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


class LstmcliError(Exception):
    """An expected, user-facing error: str() is the whole message, shown as `Error: <message>`."""

    exit_code = 1  # a bad command line exits 2, as Click's own usage errors do


class ConfigError(LstmcliError):
    """An invalid config: one message per problem, each naming the key path, and where each
    came from (the config file, `--set`, or a checkpoint)."""

    def __init__(
        self,
        problems: list[str],
        source: str = "config",
        sources: list[str] | None = None,  # each problem's own, when they differ
        exit_code: int = 1,  # 2: the command line itself is malformed
    ) -> None:
        self.problems, self.exit_code = problems, exit_code
        self.sources = sources or [source] * len(problems)
        super().__init__("; ".join(self.lines))

    @property
    def lines(self) -> list[str]:
        return [f"{source}: {p}" for source, p in zip(self.sources, self.problems, strict=True)]


class TrainingInterrupted(Exception):
    """Ctrl-C (or SIGTERM) arrived before anything worth saving existed; exits 130."""
