"""Rebuilding the archives from a clean copy of the tree reproduces the committed bytes."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import MANIFEST, ROOT


def _clean_copy(destination: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file() and not name.startswith("model_artifacts/"):
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    return destination


def test_rebuild_from_a_clean_tree_gives_the_committed_archives(tmp_path: Path) -> None:
    tree = _clean_copy(tmp_path / "tree")
    out = tmp_path / "artifacts"
    subprocess.run([sys.executable, "-m", "training", "build", "--artifacts", str(out)], cwd=tree, check=True)
    rebuilt = json.loads((out / "manifest.json").read_text())["models"]
    assert rebuilt == MANIFEST
    for entry in MANIFEST:
        assert hashlib.sha256((out / entry["archive"]).read_bytes()).hexdigest() == entry["sha256"]
