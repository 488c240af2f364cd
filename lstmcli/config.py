"""The run config: a typed schema (data, model, training, output, tune), YAML, overrides.

Every key has a default and a description; unknown keys, wrong types and out-of-range values are
reported together, one line per problem, each naming its key path.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from lstmcli.errors import ConfigError
from lstmcli.layout import ColumnLayout, calendar_columns

BUILTIN_PREFIX = "builtin:"
# Calendar features and their cycle lengths; each becomes a _sin and a _cos input column.
CALENDAR_FEATURES = (
    "minute",
    "hour",
    "dayofweek",
    "dayofmonth",
    "dayofyear",
    "weekofyear",
    "month",
    "quarter",
)
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
AUTO = "auto"  # a value lstmcli chooses from the data (see auto.py); the run saves the number


def auto_or_int(value: Any, minimum: int) -> Any:
    """`auto`, or a whole number of at least `minimum` (one message for both kinds)."""
    if value == AUTO:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"must be a whole number of at least {minimum} or 'auto', got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(
            f"must be a whole number of at least {minimum} or 'auto', got {value!r}"
        ) from None
    if not number.is_integer() or number < minimum:
        raise ValueError(f"must be a whole number of at least {minimum} or 'auto', got {value!r}")
    return int(number)


def optional_auto_or_int(value: Any, minimum: int) -> Any:
    """`auto_or_int`, or null for a key where null means "none" (no season, full batch)."""
    return value if value is None else auto_or_int(value, minimum)


def is_auto(value: Any) -> bool:
    return isinstance(value, str) and value == AUTO


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class SplitFractions(_Section):
    """Train / validation / test fractions of the rows, in time order."""

    train: float = Field(0.7, gt=0, lt=1, description="fraction of rows for training")
    val: float = Field(0.0, ge=0, lt=1, description="fraction of rows for validation")
    test: float = Field(0.3, gt=0, lt=1, description="fraction of rows for testing")

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitFractions:
        total = self.train + self.val + self.test
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"train + val + test must add up to 1, got {total:g}")
        return self


class SplitDates(_Section):
    """Split at times: rows before val_start train, rows from test_start test."""

    val_start: str | float | None = Field(None, description="first time of the val part")
    test_start: str | float = Field(description="first time of the test part")


def _split_kind(value: Any) -> str:
    keys = value.keys() if isinstance(value, dict) else vars(value).keys()
    return "dates" if {"val_start", "test_start"} & set(keys) else "fractions"


Split = Annotated[
    Annotated[SplitFractions, Tag("fractions")] | Annotated[SplitDates, Tag("dates")],
    Discriminator(_split_kind),
]


class DataConfig(_Section):
    path: str = Field(
        "builtin:co2_weekly",
        description="CSV file (relative to the config file's folder) or builtin:NAME",
    )
    time_column: str | None = Field(
        "date", description="column parsed as time; rows are sorted by it (null: file order)"
    )
    time_format: str | None = Field(
        None,
        description="strptime format of the time column, e.g. '%d.%m.%Y' (null: ISO 8601, "
        "else guessed from the first row; every row must share it)",
    )
    target: list[str] = Field(["co2_ppmv"], description="column(s) to predict", min_length=1)
    features: list[str] = Field(
        [], description="past covariates: input columns known up to the window's last row"
    )
    known_features: list[str] = Field(
        [],
        description="known-future covariates (prices, holidays): their values at the forecast "
        "rows are fed to the model too (forecast task)",
    )
    calendar: list[Literal[CALENDAR_FEATURES]] = Field(  # type: ignore[valid-type]
        [],
        description="calendar inputs from the time column, sin/cos encoded: "
        + ", ".join(CALENDAR_FEATURES),
    )
    id_column: str | None = Field(
        None, description="series id column of a long-format file of many series (null: one)"
    )
    scale_by: Literal["global", "series", "auto"] = Field(
        AUTO,
        description="one scaler for all series, or one per series (on its training rows); "
        "auto: series with an id_column, else global",
    )
    task: Literal["forecast", "regress"] = Field(
        "forecast",
        description="forecast: targets at t+1..t+horizon from rows up to t; "
        "regress: target at row t from the feature rows up to t",
    )
    lookback: int | Literal["auto"] = Field(
        AUTO, description="window length in rows; auto: from the season, horizon and rows"
    )
    horizon: int = Field(1, ge=1, description="steps predicted at once (forecast task)")
    season: int | Literal["auto"] | None = Field(
        AUTO,
        description="season length in rows (seasonal-naive baseline, MASE, lookback); auto: "
        "from the time column's frequency; null: none",
    )
    split: Split = Field(
        SplitFractions(),
        description="train fraction (rest is test), {train, val, test} fractions, or "
        "{val_start, test_start} times; always in time order",
    )
    missing: Literal["error", "drop", "ffill", "interpolate"] = Field(
        "error", description="empty cells in used columns: error, or drop rows, ffill, interpolate"
    )
    window_norm: Literal["auto", "none", "last", "standard", "robust"] = Field(
        AUTO,
        description="normalize each input window by its own last value, mean/std or "
        "median/IQR (forecast task), on top of the scaler; auto: standard for forecasting",
    )
    validation: Literal["auto", "none"] = Field(
        AUTO,
        description="when data.split has no val part: auto carves one from the end of the "
        "training part (early stopping, best epoch) if there are enough windows; none: no val",
    )
    min_history: int | Literal["auto"] | None = Field(
        AUTO,
        description="fewest real rows a window needs: a shorter history is padded with its "
        "first value up to the lookback (null: the whole lookback); auto: null, or 3 when the "
        "model starts from a prior",
    )
    scaler: Literal["minmax", "standard", "robust", "none"] = Field(
        "minmax", description="fit on the training rows only; one for inputs, one for targets"
    )

    @field_validator("target", mode="before")
    @classmethod
    def _one_name_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("lookback", mode="before")
    @classmethod
    def _lookback(cls, value: Any) -> Any:
        return auto_or_int(value, 1)

    @field_validator("season", mode="before")
    @classmethod
    def _season(cls, value: Any) -> Any:
        return optional_auto_or_int(value, 1)

    @field_validator("min_history", mode="before")
    @classmethod
    def _min_history(cls, value: Any) -> Any:
        return optional_auto_or_int(value, 1)

    @property
    def history_rows(self) -> int:
        """Real rows a window needs (the lookback unless min_history pads shorter ones)."""
        lookback = self.lookback if isinstance(self.lookback, int) else 1
        if isinstance(self.min_history, int):
            return min(self.min_history, lookback)
        return lookback

    @field_validator("split", mode="before")
    @classmethod
    def _fraction_means_train_and_test(cls, value: Any) -> Any:
        """`split: 0.7` is the tutorial's meaning: 70% train, the rest test."""
        if isinstance(value, bool) or not isinstance(
            value, (int, float, dict, SplitFractions, SplitDates)
        ):
            raise ValueError(
                f"must be a train fraction, {{train, val, test}} or {{val_start, test_start}}, "
                f"got {value!r}"
            )
        if isinstance(value, (int, float)):
            if not 0 < value < 1:
                raise ValueError(f"a train fraction must be between 0 and 1, got {value:g}")
            return {"train": value, "val": 0.0, "test": 1.0 - value}
        return value

    @model_validator(mode="after")
    def _columns_make_sense(self) -> DataConfig:
        if len(set(self.calendar)) < len(self.calendar):
            raise ValueError(f"calendar lists a feature twice: {self.calendar}")
        names = [*self.target, *self.features, *self.known_features]
        names += calendar_columns(self.calendar)
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(
                f"columns listed twice in target/features/known_features/calendar: {repeated}"
            )
        for key in ("time_column", "id_column"):
            column = getattr(self, key)
            if column is not None and column in names:
                raise ValueError(f"{key} {column!r} cannot also be a target or feature")
        if self.id_column is not None and self.id_column == self.time_column:
            raise ValueError("id_column and time_column must be different columns")
        if self.scale_by == "series" and self.id_column is None:
            raise ValueError("scale_by 'series' needs an id_column")
        if self.calendar and self.time_column is None:
            raise ValueError("calendar features are computed from the time_column; set one")
        if self.task == "regress" and self.known_features:
            raise ValueError(
                "known_features need the forecast task; a regress window already holds row t, "
                "so list them in features"
            )
        if self.task == "regress" and not self.features:
            raise ValueError("task 'regress' needs at least one column in features")
        if isinstance(self.split, SplitDates) and self.time_column is None:
            raise ValueError("a split by {val_start, test_start} needs a time_column")
        if self.task == "regress" and self.window_norm not in ("none", AUTO):
            raise ValueError("window_norm needs the forecast task (targets must be inputs)")
        if self.task == "regress" and self.horizon != 1:
            raise ValueError("horizon applies to the forecast task; regress predicts row t only")
        return self

    @property
    def has_val_part(self) -> bool:
        """Whether data.split names a val part (`validation: auto` may still carve one)."""
        return has_val_part(self.split)

    @property
    def layout(self) -> ColumnLayout:
        """The model's input columns in their order (see layout.py)."""
        return ColumnLayout.of(
            self.task, self.target, self.features, self.known_features, self.calendar
        )


class ModelConfig(_Section):
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
        "part); a network started from a prior is combined with the Theta forecast in equal "
        "parts instead, unless the val part finds a naive forecast far better",
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
    def needs_val_part(self) -> bool:
        """Intervals calibrated on a val part: conformal ones, and conformalized quantiles."""
        return bool(self.levels) and (self.intervals == "conformal" or self.conformalize)

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


class TrainingConfig(_Section):
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
    scheduler: Literal["none", "plateau", "cosine"] = Field(
        "none", description="learning-rate schedule after the warm-up"
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


class OutputConfig(_Section):
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


SCALAR = (type(None), bool, int, float, str)


class SearchRange(_Section):
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
                f"{_article(self.type)} {self.type} range takes low and high, not values"
            )
        if self.low is None or self.high is None:
            raise ValueError(f"{_article(self.type)} {self.type} range needs low and high")
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


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


class TuneConfig(_Section):
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


class Config(_Section):
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    tune: TuneConfig = Field(default_factory=TuneConfig)

    @model_validator(mode="after")
    def _intervals_need_a_val_part(self) -> Config:
        if self.model.needs_val_part and not self.data.has_val_part:
            # (a prior's own errors calibrate conformal intervals: see auto.resolve)
            alone = self.model.init != "none" and self.model.intervals == "conformal"
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


def has_val_part(split: Any) -> bool:
    """Whether a split (typed, or as a mapping) names a val part: the one rule for it."""
    values = split.model_dump() if isinstance(split, BaseModel) else dict(split)
    return values.get("val", 0) > 0 or values.get("val_start") is not None


def no_val_part_for_intervals(model: ModelConfig, why: str, validation: str = "none") -> str:
    """The one message for intervals that need a val part and get none, with `why` (the
    advice to set data.validation: auto only where it is not already)."""
    alternative = " (or model.conformalize: false)" if model.intervals == "quantile" else ""
    auto = " set data.validation: auto," if validation != AUTO else ""
    return (
        f"model.levels: {model.intervals} intervals are calibrated on a val part, and {why}; "
        f"give data.split one (e.g. {{train: 0.7, val: 0.1, test: 0.2}}),{auto} use more data "
        f"or leave model.levels out{alternative}"
    )


def validate_config(
    raw: dict[str, Any], source: str = "config", overridden: list[str] = (), by: str = "--set"
) -> Config:
    """The typed config; each problem is attributed to `by` (`--set`) when it is about a key
    that an override set (or a section holding one), else to `source`."""
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        problems, sources = [], []
        for err in e.errors():
            where, text = _describe(err)
            problems.append(f"{where}: {text}" if where else text)
            sources.append(by if set_by_override(where, overridden) else source)
        raise ConfigError(problems, source, sources) from None


def set_by_override(where: str, overridden: list[str]) -> bool:
    """Whether an override of one of `overridden` set the key path `where` (or a section
    holding it, or a key inside it)."""
    return any(
        where == key or where.startswith(key + ".") or key.startswith(where + ".")
        for key in overridden
    )


def edit_config(
    base: Config | dict[str, Any],
    values: dict[str, Any],
    source: str = "config",
    *,
    by: str | None = None,
    allowed: set[str] | None = None,
) -> Config:
    """A copy of `base` (a config, or a raw mapping read from YAML) with dotted keys set
    (`{"training.epochs": 5}`), validated: the one way any code edits a config by key
    (overrides, resume, auto, tune trials and folds, the run folder). With `by`, problems
    about the edited keys are attributed to `by` (e.g. `--set`); with `allowed`, any other
    key is refused."""
    raw = base.model_dump(mode="json") if isinstance(base, Config) else copy.deepcopy(base)
    label = by or source
    for key, value in values.items():
        if allowed is not None and key not in allowed:
            raise ConfigError(
                [f"{key} cannot change here; only {', '.join(sorted(allowed))} can"], label
            )
        _set_key(raw, key, value, label)
    return validate_config(raw, source, list(values) if by else [], by or "--set")


def config_value(config: Config, key: str) -> Any:
    """The value at a dotted key (as YAML would show it), or None when there is none."""
    node: Any = config.model_dump(mode="json")
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _set_key(raw: dict[str, Any], key: str, value: Any, source: str) -> None:
    parts = key.split(".")
    node = raw
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            where = ".".join(parts[: depth + 1])
            raise ConfigError([f"--set {key}: {where} is not a section"], source)
        node = child
    node[parts[-1]] = value


def _describe(err: dict[str, Any]) -> tuple[str, str]:
    """One pydantic error as (key path, message), with a suggestion for a misspelt key."""
    loc = [str(p) for p in err["loc"] if p not in ("fractions", "dates")]  # union tags
    where = ".".join(loc)  # empty for a rule across sections: its message names the keys
    if err["type"] == "extra_forbidden":
        message = "unknown key"
        known = _known_keys(loc[:-1])
        close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
        if close:
            message += f"; did you mean {close[0]!r}?"
        elif known:
            message += f"; expected one of: {', '.join(known)}"
        return where, message
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] not in ("value_error", "missing") and "input" in err:
        message += f" (got {err['input']!r})"
    return where, message


def _known_keys(loc: list[str]) -> list[str]:
    model: Any = Config
    for part in loc:
        field = model.model_fields.get(part)
        if field is None:
            return []
        model = field.annotation
        if part == "split":  # either form of the union
            return [*SplitFractions.model_fields, *SplitDates.model_fields]
    return (
        list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []
    )
