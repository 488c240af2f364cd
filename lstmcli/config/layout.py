"""Where each column sits among the model's inputs: one rule, one owner.

The order is: the targets' own past (forecast task), past features, then the columns known in
advance: known features, then calendar inputs. Known-ahead columns come last so that a
window's future part is one slice, the same in training, in predict and inside the model.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ColumnLayout:
    """The model's input columns by kind, and the slices and indices derived from them."""

    targets: tuple[str, ...]
    past: tuple[str, ...]  # read from the file, known up to a window's last row
    known: tuple[str, ...]  # read from the file, known ahead (known_features)
    calendar: tuple[str, ...]  # computed from the time column, known ahead
    forecast: bool = True  # forecasting: the targets' past is among the inputs

    @classmethod
    def of(
        cls,
        task: str,
        targets: list[str],
        features: list[str],
        known: list[str],
        calendar: list[str],
    ) -> ColumnLayout:
        forecast = task == "forecast"
        past = [*targets, *features] if forecast else list(features)
        computed = calendar_columns(calendar)
        return cls(tuple(targets), tuple(past), tuple(known), tuple(computed), forecast)

    @property
    def inputs(self) -> list[str]:
        """Every input column of the model, in order."""
        return [*self.past, *self.known, *self.calendar]

    @property
    def file_inputs(self) -> list[str]:
        """The input columns read from the file (all but the calendar's)."""
        return [*self.past, *self.known]

    @property
    def n_future(self) -> int:
        """How many inputs (the last ones) are known at the forecast rows too."""
        return len(self.known) + len(self.calendar) if self.forecast else 0

    @property
    def future(self) -> slice:
        """The known-ahead inputs, as a slice of the input columns."""
        n = len(self.inputs)
        return slice(n - self.n_future, n)

    @property
    def calendar_slice(self) -> slice:
        n = len(self.inputs)
        return slice(n - len(self.calendar), n)

    @property
    def target_index(self) -> list[int] | None:
        """Where each target sits among the inputs (forecasting), else None."""
        return [self.inputs.index(t) for t in self.targets] if self.forecast else None


def calendar_columns(features: list[str]) -> list[str]:
    """Each calendar feature becomes two inputs: its cycle position's sine and cosine."""
    return [f"{name}_{part}" for name in features for part in ("sin", "cos")]
