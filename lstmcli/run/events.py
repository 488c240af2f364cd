"""What fitting tells the world while it runs, as typed events: fitting writes nothing.

`fit_forecaster` and its members emit these to one listener; the run folder (run/folder.py)
turns them into checkpoints and MLflow losses, the CLI into progress, a tune trial into
pruning. A listener is called on the emitting thread (an ensemble member's own, under the
members' lock for checkpoints), so a state it is handed is consistent while it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lstmcli.model.forecaster import Forecaster
    from lstmcli.model.spec import ModelSpec
    from lstmcli.run.loop import EpochStats


@dataclass(frozen=True)
class EpochEnded:
    """A member finished an epoch (its 1-based number in `stats.member`)."""

    stats: EpochStats


@dataclass(frozen=True)
class CheckpointDue:
    """Every started member's resumable state (TrainState.to_dict each): last.pt's content,
    and model.pt's best weights so far."""

    spec: ModelSpec
    members: list[dict]


@dataclass(frozen=True)
class ForecasterReady:
    """The fitted forecaster (network, blend, calibration): model.pt's content."""

    forecaster: Forecaster


Event = EpochEnded | CheckpointDue | ForecasterReady
Listener = Callable[[Event], None]


def ignore_event(event: Event) -> None:
    """The listener of a fit nobody records (another rank's under torchrun)."""


def each(*listeners: Listener | None) -> Listener:
    """One listener that hands each event to every given one in turn."""
    present = [listener for listener in listeners if listener is not None]

    def call(event: Event) -> None:
        for listener in present:
            listener(event)

    return call


def on_epochs(listener: Callable[[EpochStats], None] | None) -> Listener | None:
    """A listener for the epochs only (progress, pruning): the others pass it by."""
    if listener is None:
        return None

    def call(event: Event) -> None:
        if isinstance(event, EpochEnded):
            listener(event.stats)

    return call
