"""``-c env=NAME`` selects the environments whose stacks the app builds."""

from __future__ import annotations

import re
from typing import Any

import aws_cdk as cdk
import pytest

import app
from creative_scoring.config import ConfigError


def test_selecting_a_declared_environment_builds_only_its_stack(context: dict[str, Any]) -> None:
    stacks = app.build_app(cdk.App(context={**context, "env": "dev"}), nag=False)
    assert [stack.stack_name for stack in stacks] == ["CreativeScoring-dev"]


@pytest.mark.parametrize("selected", ["staging", ["dev"], {"dev": True}])
def test_selecting_anything_but_a_declared_environment_is_a_configuration_error(
    context: dict[str, Any], selected: Any
) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"-c env={selected!r}: no such environment; declared: ['dev'")):
        app.build_app(cdk.App(context={**context, "env": selected}), nag=False)
