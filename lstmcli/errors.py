"""The one exception type the core raises for problems a user can fix."""

from __future__ import annotations


def some(names: list[str], limit: int = 5) -> str:
    """The first few of many names for a message: `a, b, c, ...`."""
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


class LstmcliError(Exception):
    """An expected, user-facing error: str() is the whole message, shown as `Error: <message>`."""


class ConfigError(LstmcliError):
    """An invalid config: one message per problem, each naming the key path."""

    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = problems
        self.source = source
        super().__init__("; ".join(f"{source}: {p}" for p in problems))


class TrainingInterrupted(Exception):
    """Ctrl-C (or SIGTERM) arrived before anything worth saving existed; exits 130."""
