"""The run plan: the config `train` runs, every `auto` resolved to a value of the type the
code below reads, what was chosen and why, and where the network starts (model.init).

`resolve` (config/resolve.py) makes a Plan from a Config and the data; fitting, the run folder
and a tune trial take one, so nothing below asks again whether a value is still `auto`, and
the model it starts from is read once (model/prior.py's `Init`). Its reasons travel with it
into metrics.json and manifest.json, where `--resume`, `--again` and `lstmcli runs` read them
instead of re-deriving them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from lstmcli.config.data_section import DataConfig
from lstmcli.config.schema import Config, ModelConfig, TrainingConfig
from lstmcli.errors import LstmcliError
from lstmcli.model.prior import SCRATCH, Init

if TYPE_CHECKING:
    pass


class PlannedData(DataConfig):
    """The data section with its `auto` values chosen."""

    lookback: int
    season: int | None
    min_history: int | None
    window_norm: Literal["none", "last", "standard", "robust"]
    scale_by: Literal["global", "series"]


class PlannedModel(ModelConfig):
    """The model section with its `auto` values chosen (`blend: auto` is a strategy, kept:
    the val part chooses the weight while fitting)."""

    hidden_size: int
    num_layers: int
    head: list[int]
    lstm_rows: int | None


class PlannedTraining(TrainingConfig):
    """The training section with its `auto` values chosen."""

    epochs: int
    batch_size: int | None
    scheduler: Literal["none", "plateau", "cosine"]
    cycles: int
    ensemble: int
    workers: int


class PlannedConfig(Config):
    """A config with nothing left to choose: what config.yaml and model.pt hold."""

    data: PlannedData
    model: PlannedModel
    training: PlannedTraining


@dataclass(frozen=True)
class Choice:
    key: str
    value: Any
    why: str

    def __str__(self) -> str:
        value = self.value
        if isinstance(value, dict):  # a split: train 0.631, val 0.069, test 0.3
            value = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                              for k, v in value.items())  # fmt: skip
        return f"{self.key} = {value} ({self.why})"


def choices_record(choices: list[Choice]) -> dict[str, dict[str, Any]]:
    """The choices as metrics.json and manifest.json keep them: key -> {value, why}."""
    return {c.key: {"value": c.value, "why": c.why} for c in choices}


def carried_choices(
    before: dict[str, dict[str, Any]] | None, config: Config, choices: list[Choice]
) -> list[Choice]:
    """What an earlier run chose (a resumed run's first session, the run `--again` repeats)
    and why, where its config still holds that value, then this session's own choices: a
    resolved config has no `auto` left, so re-resolving it would forget the reasons."""
    if not before:
        return choices
    dumped = config.model_dump(mode="json")
    mine = {c.key for c in choices}
    kept = []
    for key, record in before.items():
        section, _, name = key.partition(".")
        if key not in mine and dumped.get(section, {}).get(name) == record.get("value"):
            kept.append(Choice(key, record["value"], record.get("why", "")))
    return kept + choices


@dataclass(frozen=True)
class Plan:
    """What a run does: its planned config, the reasons for what was chosen, and where its
    network starts (model.init, its model loaded once)."""

    config: PlannedConfig
    choices: tuple[Choice, ...] = ()
    init: Init = SCRATCH

    @classmethod
    def of(
        cls, config: Config, choices: list[Choice] | tuple[Choice, ...] = (),
        init: Init = SCRATCH,
    ) -> Plan:  # fmt: skip
        """The plan of a resolved config; a value still `auto` is named (a resolver's bug)."""
        return cls(planned(config), tuple(choices), init)

    def with_choices(self, choices: list[Choice]) -> Plan:
        """The same plan, its reasons as the run records them (see carried_choices)."""
        return replace(self, choices=tuple(choices))


def planned(config: Config) -> PlannedConfig:
    """`config` as a PlannedConfig (it is one already when read from a run's files)."""
    if isinstance(config, PlannedConfig):
        return config
    try:
        return PlannedConfig.model_validate(config.model_dump())
    except ValidationError as e:
        keys = sorted({".".join(map(str, err["loc"][:2])) for err in e.errors()})
        raise LstmcliError(f"no value was chosen for {', '.join(keys)}") from None
