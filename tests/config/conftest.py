"""Helpers of the configuration tests: a context to change, parsed or refused."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import pytest

from creative_scoring.config import BaseEndpointConfig, ConfigError, parse_environments

MODELS = ["creative-scorer-v1", "creative-scorer-v2", "creative-scorer-social-v1"]
DEV_SERVERLESS = "creative-scoring-dev-serverless"
DEV_ASYNC = "creative-scoring-dev-async"
PROD_ASYNC = "creative-scoring-prod-async"
GPU_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6.0-gpu-py312-cu124-ubuntu22.04-sagemaker"
SERVERLESS, ASYNC = "serverless", "async"  # hosting modes as cdk.json names them
E = TypeVar("E", bound=BaseEndpointConfig)


def endpoint_in(context: dict[str, Any], env: str, name: str | None = None) -> dict[str, Any]:
    """The first endpoint of ``env``, or the one called ``name``."""
    endpoints: list[dict[str, Any]] = context["creative-scoring"]["environments"][env]["endpoints"]
    return next(e for e in endpoints if name in (None, e["name"]))


def parse(context: dict[str, Any]) -> None:
    parse_environments(context["creative-scoring"], MODELS)


def parse_endpoint(context: dict[str, Any], env: str, name: str, kind: type[E]) -> E:
    """The endpoint called ``name``, parsed; it must be of its hosting mode's type ``kind``."""
    environments = parse_environments(context["creative-scoring"], MODELS)
    endpoint = next(e for e in environments[env].endpoints if e.name == name)
    assert isinstance(endpoint, kind)
    return endpoint


def refused(context: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse(context)
