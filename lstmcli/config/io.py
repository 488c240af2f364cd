"""Config files and command-line overrides: YAML in and out, `--set key=value`.

The schema and the one way to edit a config by dotted key live in schema.py and edit.py; this module
reads what a person wrote (a file, `--set` items) and writes configs back as YAML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lstmcli.config.edit import edit_config
from lstmcli.config.fields import BUILTIN_PREFIX
from lstmcli.config.schema import Config
from lstmcli.errors import ConfigError


def load_config(path: Path | None, overrides: list[str] = ()) -> Config:
    """Read a YAML config (or start from the defaults), apply `key.path=value` overrides, validate.

    Relative data paths in the file resolve against the file's folder; those given as overrides
    resolve against the current folder, as any other command-line path would.
    """
    raw: dict[str, Any] = {}
    source = "config"
    if path is not None:
        source = str(path)
        raw = _read_yaml(path)
        for section, key in PATH_KEYS:
            value = raw.get(section, {}).get(key) if isinstance(raw.get(section), dict) else None
            if isinstance(value, str):
                raw[section][key] = resolve_data_path(value, path.parent)
    values = parse_overrides(overrides)
    for section, key in PATH_KEYS:
        if isinstance(values.get(f"{section}.{key}"), str):
            values[f"{section}.{key}"] = resolve_data_path(values[f"{section}.{key}"], Path.cwd())
    return edit_config(raw, values, source, by="--set")


def override_config(
    config: Config, overrides: list[str], allowed: set[str] | None = None, source: str = "--set"
) -> Config:
    """A copy of a config with `key.path=value` overrides applied and validated (only the
    `allowed` keys, when given)."""
    return edit_config(config, parse_overrides(overrides), source, allowed=allowed)


def with_output_dir(config: Config, folder: Path) -> Config:
    """The config with its run folder set (by `-o`, or the folder a run resumes in)."""
    return edit_config(config, {"output.dir": str(folder)})


PATH_KEYS = (("data", "path"), ("model", "init"))  # paths relative to the config's folder
NOT_PATHS = ("auto", "none")


def resolve_data_path(value: str, base: Path) -> str:
    if value.startswith(BUILTIN_PREFIX) or value in NOT_PATHS:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`--set` items as {dotted key: value}, in order (a key given twice: the last wins)."""
    return dict(parse_override(item) for item in items)


def parse_override(item: str) -> tuple[str, Any]:
    """`training.epochs=5` -> ("training.epochs", 5); the value is read as YAML."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        problem = f"override {item!r} must look like section.key=value"
        raise ConfigError([problem], "--set", exit_code=2)
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    return key, value


def config_to_yaml(config: Config) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def config_from_yaml(text: str, source: str, values: dict[str, Any] | None = None) -> Config:
    """A config written by `config_to_yaml` (a run's config.yaml, a study's best.yaml), with
    some keys set."""
    return edit_config(yaml.safe_load(text), values or {}, source)


def commented_defaults(config: Config | None = None) -> str:
    """A config (the defaults when None) as YAML with each key's description as a comment
    (`lstmcli init`)."""
    lines = []
    defaults = config or Config()
    for section_name, section_field in Config.model_fields.items():
        section_model = section_field.annotation
        lines.append(f"{section_name}:")
        values = getattr(defaults, section_name).model_dump(mode="json")
        for key, field in section_model.model_fields.items():
            dumped = yaml.safe_dump(
                {key: values[key]}, default_flow_style=True, width=1000, sort_keys=False
            )
            lines.append(f"  {dumped.strip()[1:-1]:<34} # {field.description}")
    return "\n".join(lines) + "\n"


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(["file not found"], str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError(["cannot read: not UTF-8 text"], str(path)) from None
    except OSError as e:
        raise ConfigError([f"cannot read: {e.strerror or e}"], str(path)) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise ConfigError([f"YAML syntax error{where}: {problem}"], str(path)) from None
    if raw is None:
        raise ConfigError(["the file is empty; see `lstmcli init` for a starting point"], str(path))
    if not isinstance(raw, dict):
        kinds = {list: "a list", str: "a string", int: "a number", float: "a number",
                 bool: "a boolean"}  # fmt: skip
        kind = kinds.get(type(raw), type(raw).__name__)
        raise ConfigError(
            [f"expected a mapping with sections data, model, training, output, tune; got {kind}"],
            str(path),
        )
    return raw
