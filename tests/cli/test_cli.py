"""The one command: help at every level, usage errors as exit code 2 with a message naming the problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from creative_scoring.cli import app
from creative_scoring.paths import ROOT

COMMAND = typer.main.get_command(app)


def _paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, sub in getattr(command, "commands", {}).items():  # a group
        paths += _paths(sub, (*prefix, name))
    return paths


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "creative_scoring", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_every_group_and_command_is_reached_by_the_help_walk() -> None:
    assert {" ".join(p) for p in _paths(COMMAND)} >= {
        "serve",
        "model-server",
        "transform",
        "sagemaker",
        "sagemaker transform",
        "train",
        "train build",
        "train samples",
    }


@pytest.mark.parametrize("path", _paths(COMMAND), ids=lambda p: " ".join(p) or "creative-scoring")
def test_help_at_every_level_exits_0_with_its_usage(path: tuple[str, ...]) -> None:
    result = _run(*path, "--help")
    assert result.returncode == 0, result.stderr
    assert f"creative-scoring {' '.join(path)}".strip() in " ".join(result.stdout.split())


def test_an_unknown_model_to_build_is_a_usage_error_naming_the_known_ones() -> None:
    result = _run("train", "build", "--only", "creative-scorer-v9")
    assert result.returncode == 2
    assert "unknown model(s) ['creative-scorer-v9']" in " ".join(result.stderr.split())


def test_serving_an_undeclared_environment_is_an_invalid_configuration(tmp_path: Path) -> None:
    result = _run("serve", "--env", "staging", "--port", "0")
    assert result.returncode == 2
    assert "invalid configuration: environment 'staging'" in result.stderr
    assert "Traceback" not in result.stderr
