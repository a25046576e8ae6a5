"""The README's quick start and structure describe the repository as it is."""

from __future__ import annotations

import re

from creative_scoring.paths import ROOT

README = (ROOT / "README.md").read_text()


def test_every_path_in_the_structure_block_exists() -> None:
    block = README.split("## Structure", 1)[1].split("```")[1]
    paths = [line.split()[0] for line in block.strip().splitlines()]
    assert paths
    assert [p for p in paths if not (ROOT / p).exists()] == []


def test_quick_start_commands_are_make_targets_and_ci_runs_the_test_command() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("```")[1]
    targets = re.findall(r"^make (\w+)", quick_start, flags=re.MULTILINE)
    assert targets == ["local", "test"]
    makefile = (ROOT / "Makefile").read_text()
    assert all(re.search(rf"^{target}:", makefile, flags=re.MULTILINE) for target in targets)
    assert "make test" in (ROOT / ".ci" / "run").read_text()
