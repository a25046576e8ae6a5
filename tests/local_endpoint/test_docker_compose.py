"""docker-compose.yml cannot run here (no Docker engine); its paths and settings are checked against the project."""

from __future__ import annotations

from typing import Any

import typer
import yaml

from creative_scoring.cli import app
from creative_scoring.config.defaults import pytorch_image
from creative_scoring.paths import ROOT

COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVER = COMPOSE["services"]["model-server"]


def _mounts() -> dict[str, str]:
    return {container: host for host, container, *_ in (v.split(":") for v in SERVER["volumes"])}


def test_compose_runs_the_image_the_cdk_app_deploys_for_cpu() -> None:
    assert SERVER["image"] == pytorch_image("us-east-1", gpu=False)
    assert SERVER["command"] == "serve"


def test_compose_runs_multi_model_mode_with_our_handler_on_the_port_it_publishes() -> None:
    environment = SERVER["environment"]
    assert environment["SAGEMAKER_MULTI_MODEL"] == "true"
    assert environment["SAGEMAKER_PROGRAM"] == "inference.py"
    (port,) = SERVER["ports"]
    assert port == f"127.0.0.1:9080:{environment['SAGEMAKER_BIND_TO_PORT']}"


def test_mounted_code_folder_is_the_handler_and_the_models_folder_is_where_the_front_extracts() -> None:
    mounts = _mounts()
    assert (ROOT / mounts["/opt/ml/models/code"] / "inference.py").is_file()
    command, *args = _documented_command().split("creative-scoring ", 1)[1].split()
    options = typer.main.get_command(app).commands[command].make_context(command, args).params  # type: ignore[attr-defined]
    assert options["backend"] == "container"
    assert options["container_url"] == "http://127.0.0.1:9080"
    assert mounts[options["container_models_path"]] == f"./{options['workdir']}/models"
    assert str(options["workdir"]) + "/" in (ROOT / ".gitignore").read_text()


def _documented_command() -> str:
    lines = [line.removeprefix("#").strip() for line in (ROOT / "docker-compose.yml").read_text().splitlines()]
    return " ".join(line.removesuffix("\\").strip() for line in lines if line.startswith((".venv", "--")))
