"""The `data:` section: the file, columns, window geometry, split, missing values and scaling."""

from __future__ import annotations

import datetime
import math
from typing import Annotated, Any, Literal

from pydantic import (
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from lstmcli.config.fields import (
    AUTO,
    CALENDAR_FEATURES,
    Section,
    auto_or_int,
    has_val_part,
    optional_auto_or_int,
)
from lstmcli.config.layout import ColumnLayout, calendar_columns


class SplitFractions(Section):
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


class SplitDates(Section):
    """Split at times: rows before val_start train, rows from test_start test."""

    val_start: str | float | None = Field(None, description="first time of the val part")
    test_start: str | float = Field(description="first time of the test part")

    @field_validator("val_start", "test_start", mode="before")
    @classmethod
    def _date_as_text(cls, value: Any) -> Any:
        """YAML reads an unquoted 2018-10-01 as a date: the same time as the text."""
        return value.isoformat() if isinstance(value, datetime.date) else value


def split_kind(value: Any) -> str:
    keys = value.keys() if isinstance(value, dict) else vars(value).keys()
    return "dates" if {"val_start", "test_start"} & set(keys) else "fractions"


Split = Annotated[
    Annotated[SplitFractions, Tag("fractions")] | Annotated[SplitDates, Tag("dates")],
    Discriminator(split_kind),
]


class DataConfig(Section):
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
        "else guessed from the first row, the file's rows settling day-first or month-first; "
        "every row must share it)",
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
