"""Shared fixtures: the committed archives, extracted and loaded the way SageMaker does; a real S3 API."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from creative_scoring.artifacts.archive import read_manifest, safe_extract
from creative_scoring.artifacts.handler_chain import HandlerChain, import_handler
from creative_scoring.config import read_context
from creative_scoring.paths import CDK_JSON, MODEL_ARTIFACTS, SAMPLES

MANIFEST = read_manifest(MODEL_ARTIFACTS)
MODEL_NAMES = [entry["name"] for entry in MANIFEST]
CONTEXT = read_context(CDK_JSON)  # cdk.json's context, as `cdk synth` hands it to the app


@dataclass(frozen=True)
class LoadedArchive:
    entry: dict[str, Any]
    model_dir: Path
    chain: HandlerChain
    model: Any


@pytest.fixture(scope="session")
def loaded_archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, LoadedArchive]:
    """Every committed archive, extracted to ``<tmp>/<name>/model`` and loaded through its own ``code/``."""
    root = tmp_path_factory.mktemp("opt-ml-models")
    loaded = {}
    for entry in MANIFEST:
        model_dir = safe_extract(MODEL_ARTIFACTS / entry["archive"], root / entry["name"] / "model")
        chain = HandlerChain(import_handler(model_dir / "code"))
        loaded[entry["name"]] = LoadedArchive(entry, model_dir, chain, chain.load(model_dir))
    return loaded


@pytest.fixture
def creative() -> dict[str, Any]:
    """A valid creative, fresh for each test to mutate."""
    instances: list[dict[str, Any]] = json.loads((SAMPLES / "creatives.json").read_text())["instances"]
    return copy.deepcopy(instances[0])


@pytest.fixture
def creatives() -> list[dict[str, Any]]:
    instances: list[dict[str, Any]] = json.loads((SAMPLES / "creatives.json").read_text())["instances"]
    return instances


@pytest.fixture
def context() -> dict[str, Any]:
    """A deep copy of cdk.json's context for a test to modify."""
    return copy.deepcopy(CONTEXT)


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's server (S3, CloudFormation, STS, ...) on a free loopback port; yields its URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
