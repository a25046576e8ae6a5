"""The one place that reads cdk.json: its context, and the environments declared under ``creative-scoring``."""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

from creative_scoring.config.model import EnvironmentConfig
from creative_scoring.config.parse import parse_environments

CONTEXT_KEY = "creative-scoring"


def read_context(cdk_json: Path) -> dict[str, Any]:
    """The ``context`` object of ``cdk_json`` (empty if it has none)."""
    context: dict[str, Any] = json.loads(cdk_json.read_text(encoding="utf-8")).get("context", {})
    return context


def load_environments(cdk_json: Path, known_models: Collection[str]) -> dict[str, EnvironmentConfig]:
    """The environments that ``cdk_json`` declares, parsed; `ConfigError` names what is wrong."""
    return parse_environments(read_context(cdk_json).get(CONTEXT_KEY), known_models)
