"""Settings: an unknown environment or a models folder without its manifest stops the server with a message
naming what is wrong."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from creative_scoring.paths import MODEL_ARTIFACTS, ROOT
from tests.local_endpoint.conftest import LocalServer


def test_server_refuses_an_unknown_environment(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="environment 'staging' is not in"):
        LocalServer(tmp_path, "--env", "staging")


def test_a_models_folder_without_a_manifest_says_what_is_missing_and_where(tmp_path: Path) -> None:
    shutil.copy(MODEL_ARTIFACTS / "creative-scorer-v1.tar.gz", tmp_path)
    command = [sys.executable, "-m", "creative_scoring", "serve", "--port", "0", "--models-dir", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"the models folder {tmp_path} has no manifest.json" in result.stderr
    assert "Traceback" not in result.stderr
