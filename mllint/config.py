"""Settings from ``[tool.mllint]`` of pyproject.toml, merged with the command line."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


class ConfigError(Exception):
    """A configuration problem the user must fix; the message names the file and the key."""


@dataclass(frozen=True)
class Settings:
    select: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    extend_exclude: tuple[str, ...] = ()
    per_file_ignores: dict[str, tuple[str, ...]] = field(default_factory=dict)
    respect_gitignore: bool = True
    #: apply the exclusions to files named on the command line too (pre-commit passes every file)
    force_exclude: bool = False
    #: where the cache lives (default: ``.mllint_cache`` beside the settings file, or in the root)
    cache_dir: Path | None = None
    #: the folder patterns and per-file ignores are relative to
    root: Path = field(default_factory=Path.cwd)
    #: the file the settings came from, for messages
    source: Path | None = None
    #: ``[tool.mllint.confirm]``: how ``--confirm`` runs models (it is never turned on from here)
    confirm_factories: dict[str, str] = field(default_factory=dict)
    confirm_timeout: float | None = None
    confirm_memory_mb: int | None = None


_LIST_KEYS = {"select", "extend-select", "ignore", "exclude", "extend-exclude"}
_BOOL_KEYS = {"respect-gitignore", "force-exclude"}
_KNOWN_KEYS = _LIST_KEYS | _BOOL_KEYS | {"per-file-ignores", "cache-dir", "confirm"}
_CONFIRM_KEYS = {"factories", "timeout", "memory-mb"}


def _string_list(value: Any, key: str, source: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{source}: `tool.mllint.{key}` must be a list of strings, got {value!r}")
    return tuple(value)


def parse_table(table: dict[str, Any], source: Path) -> Settings:
    """Validate a ``[tool.mllint]`` table and turn it into settings."""
    unknown = sorted(set(table) - _KNOWN_KEYS)
    if unknown:
        known = ", ".join(sorted(_KNOWN_KEYS))
        raise ConfigError(f"{source}: unknown key `tool.mllint.{unknown[0]}` (known keys: {known})")
    values: dict[str, Any] = {"root": source.parent.resolve(), "source": source}
    for key in _LIST_KEYS & set(table):
        values[key.replace("-", "_")] = _string_list(table[key], key, source)
    for key in _BOOL_KEYS & set(table):
        if not isinstance(table[key], bool):
            raise ConfigError(f"{source}: `tool.mllint.{key}` must be true or false, got {table[key]!r}")
        values[key.replace("-", "_")] = table[key]
    if "cache-dir" in table:
        if not isinstance(table["cache-dir"], str):
            raise ConfigError(f"{source}: `tool.mllint.cache-dir` must be a string (a folder)")
        values["cache_dir"] = source.parent.resolve() / table["cache-dir"]
    if "per-file-ignores" in table:
        ignores = table["per-file-ignores"]
        if not isinstance(ignores, dict):
            raise ConfigError(f"{source}: `tool.mllint.per-file-ignores` must be a table of pattern = [codes]")
        values["per_file_ignores"] = {
            pattern: _string_list(codes, f"per-file-ignores.{pattern}", source) for pattern, codes in ignores.items()
        }
    if "confirm" in table:
        values.update(_confirm_table(table["confirm"], source))
    return Settings(**values)


def _confirm_table(table: Any, source: Path) -> dict[str, Any]:
    """``factories`` (model qualname = "module:function"), ``timeout`` (seconds), ``memory-mb``.
    There is deliberately no key that turns ``--confirm`` on: linting a cloned repository must
    never run its code."""
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: `tool.mllint.confirm` must be a table")
    unknown = sorted(set(table) - _CONFIRM_KEYS)
    if unknown:
        known = ", ".join(sorted(_CONFIRM_KEYS))
        raise ConfigError(f"{source}: unknown key `tool.mllint.confirm.{unknown[0]}` (known keys: {known})")
    values: dict[str, Any] = {}
    factories = table.get("factories", {})
    if not isinstance(factories, dict) or not all(
        isinstance(value, str) and ":" in value for value in factories.values()
    ):
        raise ConfigError(f'{source}: `tool.mllint.confirm.factories` must map model names to "module:function"')
    values["confirm_factories"] = dict(factories)
    for key, kind in (("timeout", (int, float)), ("memory-mb", (int,))):
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
                raise ConfigError(f"{source}: `tool.mllint.confirm.{key}` must be a positive number, got {value!r}")
            values[f"confirm_{key.replace('-', '_')}"] = value
    return values


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from error


def load_file(path: Path) -> Settings:
    """Settings from an explicit file: a pyproject.toml or a bare mllint.toml table."""
    document = read_toml(path)
    if path.name == "pyproject.toml":
        table = document.get("tool", {}).get("mllint", {})
    else:
        table = document.get("tool", {}).get("mllint", document)
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: `tool.mllint` must be a table")
    return parse_table(table, path)


def find_config(start: Path) -> Path | None:
    """The nearest pyproject.toml with a ``[tool.mllint]`` table, from ``start`` upward."""
    start = start.resolve()
    folder = start if start.is_dir() else start.parent
    for candidate in (folder, *folder.parents):
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file():
            document = read_toml(pyproject)
            if "mllint" in document.get("tool", {}):
                return pyproject
    return None


def discover(start: Path, explicit: Path | None = None) -> Settings:
    if explicit is not None:
        return load_file(explicit)
    found = find_config(start)
    return load_file(found) if found is not None else Settings()


def override(settings: Settings, **changes: Any) -> Settings:
    """Command-line values replace the file's; ``None`` means "not given"."""
    known = {item.name for item in fields(Settings)}
    return replace(settings, **{key: value for key, value in changes.items() if key in known and value is not None})
