"""The run config: a typed schema (data, model, training, output, tune), YAML, overrides.

Every key has a default and a description; unknown keys, wrong types and out-of-range values are
reported together, one line per problem, each naming its key path.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from lstmcli.config.data_section import DataConfig
from lstmcli.config.fields import (
    AUTO,
    DEVICE_PATTERN,
    SCALAR,
    Section,
    article,
    auto_or_int,
    optional_auto_or_int,
)

if TYPE_CHECKING:  # numpy's import stays out of reading a config
    from lstmcli.model.intervals import Intervals


class ModelConfig(Section):
    hidden_size: int | Literal["auto"] = Field(
        AUTO, description="LSTM hidden units per layer; auto: sized to the training windows"
    )
    num_layers: int | Literal["auto"] = Field(
        AUTO, description="stacked LSTM layers; auto: sized to the training windows"
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout between LSTM layers")
    levels: list[float] = Field(
        [],
        description="prediction interval levels in percent, e.g. [80, 95]; [] = points only",
    )
    intervals: Literal["conformal", "quantile"] = Field(
        "conformal",
        description="conformal: split-conformal bounds calibrated on the val part's forecast "
        "origins (pooled with a prior's own errors when starting from one); "
        "quantile: the network forecasts the bounds' quantiles (pinball loss)",
    )
    conformalize: bool = Field(
        True,
        description="quantile intervals: widen or narrow them by the val part's misses "
        "(conformalized quantile regression) so that the stated coverage holds",
    )
    adaptive: bool = Field(
        True,
        description="intervals of rolling backtests (test part, predict --rolling, evaluate) "
        "adapt their level to misses as actuals arrive (adaptive conformal inference)",
    )
    blend: Literal["auto", "none"] = Field(
        AUTO,
        description="auto: mix the better naive forecast into the network's, at the weight "
        "(1, 0.75, 0.5, 0.25 or 0) the validation part prefers (forecast task, with a val "
        "part); a network started from a prior, or from scratch on one target without "
        "features (series up to 2,000 rows) whose val part holds at most two horizons of "
        "origins per series, is combined with statsforecast's AutoETS and AutoTheta in equal "
        "thirds instead, unless the val part (without one, the training part's last "
        "origins) finds one candidate far better (a longer val part chooses among naive, "
        "seasonal naive and that classical forecast); seasonal naive is read off the "
        "history where the window is shorter than the season",
    )
    init: str = Field(
        AUTO,
        description="start from another model's network: a run folder, its model.pt or "
        "builtin:NAME (a prior shipped with lstmcli), fine-tuned or, with training.epochs 0, "
        "as is; none: from scratch; auto: a builtin prior for short series it fits",
    )
    linear_skip: bool = Field(
        True,
        description="add a linear map from the window's target values to the forecast "
        "(forecast task): a linear autoregression beside the LSTM",
    )
    head: list[int] | Literal["auto"] = Field(
        AUTO,
        description="MLP widths (ReLU) after the LSTM; [] = one linear layer; auto: sized to "
        "the training windows",
    )
    lstm_rows: int | Literal["auto"] | None = Field(
        AUTO,
        description="at most this many of the window's last rows go through the LSTM (the "
        "linear skip and the window's normalization still see the whole lookback); null: "
        "all; auto: all up to 104 rows (or two horizons), so a long season's lags reach the "
        "forecast through the linear skip instead of a recurrence hundreds of steps long",
    )

    @property
    def interval_method(self) -> type[Intervals]:
        """The class that owns model.intervals: what it needs and how it calibrates."""
        from lstmcli.model.intervals import METHODS

        return METHODS[self.intervals]

    @property
    def needs_val_part(self) -> bool:
        """Whether the interval method calibrates on a val part (it says)."""
        return bool(self.levels) and self.interval_method.needs_val_part(self.conformalize)

    @field_validator("levels")
    @classmethod
    def _levels(cls, value: list[float]) -> list[float]:
        if any(not 0 < v < 100 for v in value):
            raise ValueError(f"interval levels are percents between 0 and 100, got {value}")
        if len(set(value)) < len(value):
            raise ValueError(f"an interval level is listed twice: {value}")
        return sorted(value)

    @field_validator("hidden_size", "num_layers", mode="before")
    @classmethod
    def _sizes(cls, value: Any) -> Any:
        return auto_or_int(value, 1)

    @field_validator("lstm_rows", mode="before")
    @classmethod
    def _lstm_rows(cls, value: Any) -> Any:
        return value if value is None else auto_or_int(value, 1)

    @field_validator("head", mode="before")
    @classmethod
    def _head_kind(cls, value: Any) -> Any:
        """`auto`, or a list of whole widths of at least 1: one message for any other value."""
        if value == AUTO:
            return value
        if isinstance(value, list) and all(
            isinstance(w, int) and not isinstance(w, bool) for w in value
        ):
            if any(w < 1 for w in value):
                raise ValueError(f"every head width must be at least 1, got {value}")
            return value
        raise ValueError(f"must be a list of widths such as [64] (or [] or 'auto'), got {value!r}")


class TrainingConfig(Section):
    epochs: int | Literal["auto"] = Field(
        AUTO,
        description="passes over the training windows (the most, with early stopping); 0: "
        "model.init's network as is; auto: from the amount of data",
    )
    batch_size: int | Literal["auto"] | None = Field(
        AUTO, description="windows per step; null = full batch; auto: from the training windows"
    )
    learning_rate: float = Field(0.003, gt=0, description="Adam learning rate")
    weight_decay: float = Field(0.0, ge=0, description="Adam weight decay")
    loss: Literal["mse", "mae", "huber"] = Field(
        "mse", description="training and validation loss on scaled targets"
    )
    scheduler: Literal["auto", "none", "plateau", "cosine"] = Field(
        AUTO,
        description="learning-rate schedule after the warm-up; auto: cosine for a small "
        "network trained from scratch (under 2,000 training windows), none otherwise",
    )
    cycles: int | Literal["auto"] = Field(
        AUTO,
        description="with the cosine schedule, the most cycles of `epochs` epochs: a cycle "
        "still learning when its rate reaches zero (its last val loss its best, 5% below the "
        "loss three quarters through; a later cycle: its best 5% below the best before) is "
        "followed by another from the top; auto: as many as fit in 150 epochs for a small "
        "network trained from scratch with epochs auto, else 1",
    )
    warmup_epochs: int = Field(0, ge=0, description="epochs of linear learning-rate warm-up")
    patience: int | None = Field(
        20, ge=1, description="early stopping after this many epochs without a better val loss"
    )
    grad_clip: float | None = Field(1.0, gt=0, description="max gradient norm; null = off")
    ensemble: int | Literal["auto"] = Field(
        AUTO,
        description="train this many seeds (seed, seed+1, ...) and average them; auto: more "
        "members for less data",
    )
    max_steps: int | None = Field(
        None, ge=1, description="stop after this many optimizer steps; null = no cap"
    )
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N | mps")
    precision: Literal["32", "bf16"] = Field(
        "32", description="32 (float32) or bf16 (bfloat16 autocast, for recent GPUs)"
    )
    threads: int | None = Field(
        None,
        ge=1,
        description="CPU threads for torch's operations; null: the cores shared among the "
        "members training at once (training.workers)",
    )
    workers: int | Literal["auto"] = Field(
        AUTO,
        description="ensemble members trained at the same time, each in its own thread; auto: "
        "one per CPU core, up to the ensemble's size (one when training draws random numbers: "
        "dropout, or under torchrun)",
    )
    seed: int = Field(42, ge=0, description="seed for weights and batch order")
    checkpoint_every: int | None = Field(
        10, ge=1, description="save last.pt and model.pt every N epochs; null = at the end only"
    )

    @field_validator("epochs", mode="before")
    @classmethod
    def _epochs(cls, value: Any) -> Any:
        return auto_or_int(value, 0)

    @field_validator("cycles", mode="before")
    @classmethod
    def _cycles(cls, value: Any) -> Any:
        return auto_or_int(value, 1)

    @field_validator("workers", mode="before")
    @classmethod
    def _workers(cls, value: Any) -> Any:
        return auto_or_int(value, 1)

    @field_validator("ensemble", mode="before")
    @classmethod
    def _members(cls, value: Any) -> Any:
        return auto_or_int(value, 1)

    @field_validator("batch_size", mode="before")
    @classmethod
    def _batch(cls, value: Any) -> Any:
        return optional_auto_or_int(value, 1)

    @field_validator("precision", mode="before")
    @classmethod
    def _number_is_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if not DEVICE_PATTERN.match(value):
            raise ValueError(f"must be auto, cpu, cuda, cuda:N or mps, got {value!r}")
        return value


class OutputConfig(Section):
    dir: str = Field("runs/quickstart", description="run folder (relative to the current folder)")
    track: Literal["none", "mlflow"] = Field(
        "none",
        description="also log the run to a tracker: none | mlflow (needs lstmcli[mlflow])",
    )
    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI; null: MLFLOW_TRACKING_URI, else MLflow's default "
        "(sqlite:///mlflow.db in the current folder)",
    )
    experiment: str = Field("lstmcli", min_length=1, description="MLflow experiment name")


class SearchRange(Section):
    """One searched key of `tune.space`: a range of numbers or a list of choices."""

    type: Literal["int", "float", "choice"] = Field(description="int | float | choice")
    low: float | None = Field(None, description="smallest value (int, float)")
    high: float | None = Field(None, description="largest value, included (int, float)")
    step: float | None = Field(None, gt=0, description="spacing of values; int default 1")
    log: bool = Field(False, description="sample on a log scale (low > 0)")
    values: list[Any] | None = Field(None, description="the choices (choice)")

    @model_validator(mode="after")
    def _consistent(self) -> SearchRange:
        if self.type == "choice":
            if not self.values:
                raise ValueError("a choice needs a non-empty list of values")
            if any(not isinstance(v, SCALAR) for v in self.values):
                raise ValueError("choice values must be numbers, text, true/false or null")
            if self.low is not None or self.high is not None or self.step or self.log:
                raise ValueError("a choice takes values only (no low, high, step or log)")
            return self
        if self.values is not None:
            raise ValueError(
                f"{article(self.type)} {self.type} range takes low and high, not values"
            )
        if self.low is None or self.high is None:
            raise ValueError(f"{article(self.type)} {self.type} range needs low and high")
        if self.low > self.high:
            raise ValueError(f"low ({self.low:g}) is above high ({self.high:g})")
        if self.log and (self.low <= 0 or self.step is not None):
            raise ValueError("log needs low above 0 and no step")
        if self.type == "int":
            whole = [self.low, self.high, self.step or 1]
            if any(not float(v).is_integer() for v in whole):
                raise ValueError("an int range needs whole low, high and step")
        return self

    def grid(self) -> list[Any] | None:
        """Every value, for the grid sampler; None for a continuous range."""
        if self.type == "choice":
            return list(self.values or [])
        if self.type == "float" and self.step is None:
            return None
        step = self.step or 1
        count = int(math.floor((self.high - self.low) / step + 1e-9)) + 1
        values = [self.low + k * step for k in range(count)]
        return [int(v) for v in values] if self.type == "int" else values


class TuneConfig(Section):
    metric: Literal["auto", "val_loss", "val_rmse", "val_mae", "val_mase"] = Field(
        "auto",
        description="what trials are chosen by, on the val part; auto: val_rmse (one series, "
        "one target) or val_mase (several series or targets)",
    )
    trials: int = Field(30, ge=1, description="trials in the study (all runs together)")
    timeout: float | None = Field(
        None, gt=0, description="seconds after which no new trial starts; null = no limit"
    )
    sampler: Literal["tpe", "random", "grid"] = Field("tpe", description="tpe | random | grid")
    pruner: Literal["median", "none"] = Field(
        "median", description="stop trials whose epoch val losses trail the median; none = off"
    )
    seed: int = Field(0, ge=0, description="seed of the sampler")
    folds: int = Field(
        1, ge=1, description="validation cuts each trial is scored on (their mean decides)"
    )
    space: dict[str, SearchRange] | None = Field(
        None, description="dotted config keys to search; null = the default space"
    )


class Config(Section):
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    tune: TuneConfig = Field(default_factory=TuneConfig)

    @model_validator(mode="after")
    def _intervals_need_a_val_part(self) -> Config:
        if self.model.needs_val_part and not self.data.has_val_part:
            # (a prior's own errors calibrate conformal intervals: see config/resolve.py)
            pooled = not self.model.interval_method.from_quantiles  # a prior's errors serve
            alone = self.model.init != "none" and pooled
            if self.data.validation == "none" and not alone:
                raise ValueError(no_val_part_for_intervals(self.model, "data.validation is none"))
        return self

    @model_validator(mode="after")
    def _as_is_needs_a_model(self) -> Config:
        if self.training.epochs == 0 and self.model.init == "none":
            raise ValueError(
                "training.epochs: 0 uses model.init's network as is, and model.init is none; "
                "name a run folder or builtin:NAME"
            )
        return self


def no_val_part_for_intervals(model: ModelConfig, why: str, validation: str = "none") -> str:
    """The one message for intervals that need a val part and get none, with `why` (the
    advice to set data.validation: auto only where it is not already)."""
    quantiles = model.interval_method.from_quantiles
    alternative = " (or model.conformalize: false)" if quantiles else ""
    auto = " set data.validation: auto," if validation != AUTO else ""
    return (
        f"model.levels: {model.intervals} intervals are calibrated on a val part, and {why}; "
        f"give data.split one (e.g. {{train: 0.7, val: 0.1, test: 0.2}}),{auto} use more data "
        f"or leave model.levels out{alternative}"
    )
