"""Turning raw YAML and `--set` overrides into a typed Config, one line per problem, each
naming its key path (and `--set` when an override caused it).
"""

from __future__ import annotations

import copy
import difflib
from typing import Any

from pydantic import (
    BaseModel,
    ValidationError,
)

from lstmcli.config.data_section import SplitDates, SplitFractions
from lstmcli.config.schema import Config
from lstmcli.errors import ConfigError


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
