"""Starting from another model's network (`model.init`): a prior learned on many series.

A short series gives a network a handful of windows; a network that has already learned on
thousands of series (the builtin priors, trained on the M3 competition's series by
`scripts/build_priors.py`, or any run folder of the user's own) starts from what such series
do, and the new run fine-tunes it, or uses it as is. Only the network is taken: the scalers
and every statistic are the new run's own. With window normalization a network sees each
window in its own units, so a prior learned on series of any size serves a series of any size.

A prior serves a horizon up to its own (the first steps of its output) and any lookback (the
LSTM reads any length; its linear skip keeps the weights of the most recent rows).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from lstmcli.config.fields import BUILTIN_PREFIX, is_auto
from lstmcli.config.schema import Config
from lstmcli.errors import LstmcliError

if TYPE_CHECKING:  # torch is imported where a checkpoint is read: `lstmcli init` needs none
    import torch

    from lstmcli.model.checkpoint import Checkpoint
    from lstmcli.model.conformal import Calibration
    from lstmcli.model.spec import ModelSpec

# The builtin priors, one per kind of season, and those `init: auto` tries for a season, in
# order (the first whose horizon and inputs fit the run).
BUILTIN = ("m3-yearly", "m3-yearly-8", "m3-quarterly", "m3-monthly", "m3-monthly-24", "m3-other")
AUTO_BY_SEASON = {
    None: ("m3-yearly", "m3-yearly-8", "m3-other"),
    1: ("m3-yearly", "m3-yearly-8", "m3-other"),
    4: ("m3-quarterly",),
    12: ("m3-monthly", "m3-monthly-24"),
}
# Tried for yearly times only: 8 steps ahead, m3-yearly-8 beats m3-other on M3 yearly (MASE
# 3.41 against 3.52) but not on M3's "other" series, seasonless and not yearly (1.91 against
# 1.88).
YEARLY_ONLY = ("m3-yearly-8",)
AUTO_MAX_WINDOWS = 150  # `init: auto` uses a prior below this many training windows
NETWORK_KEYS = ("hidden_size", "num_layers", "head", "linear_skip")  # model keys a prior sets


@dataclass(frozen=True)
class Init:
    """model.init as a run uses it: where the network starts, read once when the run is
    planned. From scratch (`model`: None) it sets nothing and gives nothing; from a model
    (a builtin prior, a run folder) it supplies the settings `auto` takes, the starting
    weights, its own errors for the intervals, and lets the training and val parts go
    without windows (nothing to fine-tune: the model as is)."""

    name: str = "none"  # model.init as it runs: none, builtin:NAME or a path
    model: Checkpoint | None = None

    @classmethod
    def load(cls, name: str) -> Init:
        return cls(name, load_prior(name)) if is_prior(name) else cls(name)

    @property
    def from_model(self) -> bool:
        return self.model is not None

    def settings(self) -> dict[str, object]:
        """The config values a run takes where it says `auto` (network shape, lookback,
        window normalization)."""
        return prior_settings(self.model) if self.model is not None else {}

    def weights(self, spec: ModelSpec) -> list[dict[str, torch.Tensor]] | None:
        """Each member's starting weights for a network of `spec`; None: random ones."""
        return adapted_weights(self.model, spec) if self.model is not None else None

    def errors(self) -> Calibration | None:
        """The model's own errors, to pool into a run's conformal calibration."""
        return prior_errors(self.model) if self.model is not None else None

    @property
    def windowless(self) -> tuple[str, ...]:
        """The split's parts that may have no window."""
        return ("train", "val") if self.model is not None else ()


SCRATCH = Init()


def builtin_priors() -> list[str]:
    return sorted(BUILTIN)


def is_prior(init: str) -> bool:
    """Whether `model.init` names a model to start from (not `none` or `auto`)."""
    return init not in ("none", "auto")


def windowless_parts(init: str) -> tuple[str, ...]:
    """The split's parts that may have no window: starting from a prior, none in the training
    part (nothing to fine-tune: the prior as is) or the val part (nothing to choose)."""
    return ("train", "val") if is_prior(init) else ()


def load_prior(init: str) -> Checkpoint:
    """The checkpoint `model.init` names: builtin:NAME, a run folder or a model.pt."""
    if init.startswith(BUILTIN_PREFIX):
        name = init.removeprefix(BUILTIN_PREFIX)
        if name not in BUILTIN:
            raise LstmcliError(
                f"model.init: unknown builtin prior {name!r}; available: "
                f"{', '.join(f'builtin:{n}' for n in builtin_priors())}"
            )
        return _builtin(name)
    path = Path(init)
    if not path.exists():
        raise LstmcliError(f"model.init: {init} not found (give a run folder, its model.pt or "
                           "builtin:NAME)")  # fmt: skip
    from lstmcli.model.checkpoint import load_checkpoint

    return load_checkpoint(path)


@functools.cache
def _builtin(name: str) -> Checkpoint:
    """A builtin prior, read once per process (resolve and fitting both need it; callers
    only read it: adapted_weights copies)."""
    from lstmcli.model.checkpoint import load_checkpoint

    return load_checkpoint(Path(str(resources.files("lstmcli") / "priors" / f"{name}.pt")))


def prior_errors(prior: Checkpoint) -> Calibration | None:
    """What the prior knows about its own errors, to pool into a run's interval calibration:
    its conformal calibration in scale-free units (a builtin's: its errors, combined with
    Theta, at each M3 series' val origin; see scripts/build_priors.py). None when it has none
    in those units (a calibration written before they were used, or quantile intervals)."""
    from lstmcli.model.conformal import Calibration
    from lstmcli.model.intervals import load_calibration

    calibration = load_calibration(prior.calibration)
    if isinstance(calibration, Calibration) and calibration.scale == "naive":
        return calibration
    return None


def auto_priors(season: int | None, yearly: bool = False) -> list[str]:
    """The builtin priors `init: auto` tries for a season (and for yearly times or not), in
    order, those whose file ships (the caller checks that one fits the run and that the data
    is short)."""
    names = [n for n in AUTO_BY_SEASON.get(season, ()) if yearly or n not in YEARLY_ONLY]
    shipped = resources.files("lstmcli") / "priors"
    return [f"{BUILTIN_PREFIX}{n}" for n in names if (shipped / f"{n}.pt").is_file()]


def check_fits(prior: Checkpoint, config: Config, init: str) -> None:
    """One error naming what differs when the run cannot start from the prior."""
    problems = mismatches(prior, config)
    if problems:
        raise LstmcliError(f"model.init: {init} needs {'; '.join(problems)}")


def mismatches(prior: Checkpoint, config: Config) -> list[str]:
    """What keeps the run from starting from the prior: inputs, targets, task, a horizon
    beyond the prior's, a quantile head it lacks, a network key set to another value."""
    spec, data, model = prior.spec, config.data, config.model
    layout = data.layout
    problems = []
    if data.task != "forecast":
        problems.append("the forecast task (data.task)")
    if len(layout.inputs) != spec.n_inputs or len(layout.targets) != spec.n_targets:
        problems.append(
            f"{spec.n_inputs} input and {spec.n_targets} target column(s) "
            f"({prior.input_columns}; this run has {layout.inputs})"
        )
    if layout.n_future != spec.n_future:
        problems.append(f"{spec.n_future} known-ahead input(s) (this run has {layout.n_future})")
    if data.horizon > spec.steps:
        problems.append(f"a horizon of at most {spec.steps} (data.horizon is {data.horizon})")
    theirs, mine = _season(prior.config.data.season), _season(data.season)
    if mine != "auto" and theirs != mine:  # what a season's lags mean does not transfer
        problems.append(
            f"series with {_seasons(theirs)} ({prior.time_freq or 'numbered'} rows), as it was "
            f"trained on (this run has {_seasons(mine)})"
        )
    if model.interval_method.from_quantiles and not spec.quantile_levels:
        problems.append("a quantile head, which it lacks (use model.intervals: conformal)")
    for key in NETWORK_KEYS:
        mine, theirs = getattr(model, key), _prior_value(prior, key)
        if not is_auto(mine) and _normal(mine) != _normal(theirs):
            problems.append(f"model.{key} {theirs} (this config sets {mine}; leave it auto)")
    norm = data.window_norm
    if not is_auto(norm) and norm != spec.window_norm:
        problems.append(f"data.window_norm {spec.window_norm} (this config sets {norm})")
    return problems


def _season(season: object) -> object:
    """A season as priors compare them: none and 1 row alike."""
    return None if season in (None, 1) else season


def _seasons(season: object) -> str:
    return "no season" if season is None else f"a season of {season} rows"


def prior_settings(prior: Checkpoint) -> dict[str, object]:
    """The config values a run starting from the prior takes where it says `auto`."""
    return {
        "data.lookback": prior.config.data.lookback,
        "data.window_norm": prior.spec.window_norm,
        **{f"model.{key}": _prior_value(prior, key) for key in NETWORK_KEYS},
    }


def _prior_value(prior: Checkpoint, key: str) -> object:
    spec = prior.spec
    return {
        "hidden_size": spec.hidden_size,
        "num_layers": spec.num_layers,
        "head": list(spec.head),
        "linear_skip": spec.linear_skip > 0,
    }[key]


def _normal(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def adapted_weights(prior: Checkpoint, spec: ModelSpec) -> list[dict[str, torch.Tensor]]:
    """The prior's weights for a network of `spec` (one dict per member of the prior): its
    output and linear skip cut to the first `spec.steps` steps, the skip's inputs to the
    most recent `spec.linear_skip` rows (rows older than the prior's lookback get zero)."""
    weights = prior.state_dict
    members = prior.spec.members
    if members > 1:
        parts = [
            {k.split(".", 2)[2]: v for k, v in weights.items() if k.startswith(f"members.{i}.")}
            for i in range(members)
        ]
    else:
        parts = [{k.removeprefix("network."): v for k, v in weights.items()}]
    return [_adapt(part, prior.spec, spec) for part in parts]


def _adapt(weights: dict, old: ModelSpec, new: ModelSpec) -> dict[str, torch.Tensor]:
    out = dict(weights)
    outputs = new.steps * new.n_targets
    last = f"head.{2 * len(old.head)}"  # the head's output layer (Linear, ReLU, ..., Linear)
    out[f"{last}.weight"] = weights[f"{last}.weight"][:outputs].clone()
    out[f"{last}.bias"] = weights[f"{last}.bias"][:outputs].clone()
    if old.linear_skip:
        skip = weights["skip.weight"][:outputs]
        columns = new.linear_skip * new.n_targets
        if columns <= skip.shape[1]:
            skip = skip[:, skip.shape[1] - columns :]
        else:  # a longer lookback than the prior's: the older rows start at zero weight
            import torch

            skip = torch.cat([skip.new_zeros(outputs, columns - skip.shape[1]), skip], dim=1)
        out["skip.weight"] = skip.clone()
        out["skip.bias"] = weights["skip.bias"][:outputs].clone()
    return out
