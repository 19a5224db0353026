"""One way to load settings: defaults < YAML files < environment variables < CLI overrides.

Every deployable describes its settings as a pydantic model with a docstring on each field
and an environment prefix (``QATFLOW_TRAIN_``, ``QATFLOW_SERVE_`` ...). The Helm chart maps
its values onto those variables one to one. Unknown keys fail fast, from any source.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

T = TypeVar("T", bound="Settings")


class SettingsError(ValueError):
    """Settings that cannot be used: an unknown key, a bad value or an unreadable file."""


class Settings(BaseModel):
    """Base class of every settings model: frozen, strict about unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    env_prefix: ClassVar[str] = ""

    @classmethod
    def load(
        cls: type[T],
        *,
        yaml_files: Sequence[str | Path] = (),
        overrides: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> T:
        """Build the settings from every source, highest precedence last (a later YAML file
        beats an earlier one: presets first, then the user's own file)."""
        values: dict[str, Any] = {}
        for yaml_file in yaml_files:
            values.update(_read_yaml(Path(yaml_file), cls))
        values.update(_read_env(cls, os.environ if environ is None else environ))
        for key, value in (overrides or {}).items():
            values[_check_key(cls, key.replace("-", "_"), source="command line")] = value
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise SettingsError(_describe(error, cls)) from None

    @classmethod
    def fields(cls) -> list[str]:
        return list(cls.model_fields)

    @classmethod
    def env_name(cls, key: str) -> str:
        return cls.env_prefix + key.upper()


def parse_assignments(assignments: Iterable[str]) -> dict[str, Any]:
    """Turn ``key=value`` strings from ``--set`` into a dict; values are parsed as YAML scalars."""
    parsed: dict[str, Any] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SettingsError(f"--set expects key=value, got {item!r}")
        parsed[key.strip()] = _yaml_scalar(raw)
    return parsed


def _yaml_scalar(raw: str) -> Any:
    try:
        return yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw


def _check_key(cls: type[Settings], key: str, *, source: str) -> str:
    if key not in cls.fields():
        allowed = ", ".join(sorted(cls.fields()))
        raise SettingsError(f"unknown setting {key!r} ({source}); allowed: {allowed}")
    return key


def _read_yaml(path: Path, cls: type[Settings]) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"config file not found: {path}") from None
    except (OSError, yaml.YAMLError) as error:
        raise SettingsError(f"cannot read config file {path}: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"config file {path} must hold a mapping of key: value")
    return {_check_key(cls, str(key), source=str(path)): value for key, value in data.items()}


def _read_env(cls: type[Settings], environ: Mapping[str, str]) -> dict[str, Any]:
    prefix = cls.env_prefix
    if not prefix:
        return {}
    values: dict[str, Any] = {}
    for name, raw in environ.items():
        # An empty variable counts as unset: Helm renders optional values that way.
        if name.startswith(prefix) and raw.strip():
            key = _check_key(cls, name[len(prefix) :].lower(), source=f"environment {name}")
            values[key] = _yaml_scalar(raw)
    return values


def _describe(error: ValidationError, cls: type[Settings]) -> str:
    problems = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "settings"
        problems.append(f"{key}: {item['msg']}")
    return f"invalid {cls.__name__}: " + "; ".join(problems)


def markdown_table(cls: type[Settings]) -> str:
    """The settings reference in the docs, generated so it cannot drift from the code."""
    rows = ["| key | environment variable | default | meaning |", "|---|---|---|---|"]
    for name, field in cls.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = "—" if default is None else f"`{default}`"
        meaning = " ".join((field.description or "").split()).replace("|", "\\|")
        rows.append(f"| `{name}` | `{cls.env_name(name)}` | {shown} | {meaning} |")
    return "\n".join(rows) + "\n"
