"""Reading cdk.json values by key path, so that every error names the key, the value and what is allowed."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value that would not deploy; the message names the key, the value and the fix."""


class Node:
    """A mapping read from cdk.json that knows its own key path, for error messages."""

    def __init__(self, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected an object, got {value!r}")
        self.value, self.path = value, path

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, value: Any, allowed: str) -> ConfigError:
        return ConfigError(f"{self.key(name)}: {value!r} is not allowed; expected {allowed}")

    def child(self, name: str, default: Any = None) -> Node:
        return Node(self.value.get(name, default if default is not None else {}), self.key(name))

    def get(self, name: str, kind: type[T], default: T | None = None) -> T:
        if name not in self.value:
            if default is None:
                raise ConfigError(f"{self.key(name)}: required key is missing")
            return default
        value = self.value[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(name, value, f"a {kind.__name__}")
        return value

    def number(self, name: str, kind: type[T], default: T, low: float, high: float) -> T:
        value = self.get(name, kind, default)
        if not low <= value <= high:  # type: ignore[operator]
            raise self.fail(name, value, f"a value between {low:g} and {high:g}")
        return value

    def choice(self, name: str, allowed: Collection[str], default: str | None = None) -> str:
        value = self.get(name, str, default)
        if value not in allowed:
            raise self.fail(name, value, f"one of {sorted(allowed)}")
        return value

    def optional(self, name: str, parse: Callable[[str], T]) -> T | None:
        return None if self.value.get(name) is None else parse(name)

    def matching(self, name: str, pattern: re.Pattern[str], form: str, default: str | None = None) -> str:
        value = self.get(name, str, default)
        if not pattern.match(value):
            raise self.fail(name, value, form)
        return value

    def refuse(self, refused: Mapping[str, str]) -> None:
        """Refuse the keys of ``refused`` that are present, each with its fix."""
        for key, fix in refused.items():
            if key in self.value:
                raise ConfigError(f"{self.key(key)}: {fix}")
