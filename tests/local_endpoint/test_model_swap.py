"""An inference component switching to another archive on the local endpoint, with requests arriving together.

The container is a stand-in that records loads and unloads with delays, so the interleaving that broke the swap
(an unload finishing after the new load) happens on every run.
"""

from __future__ import annotations

import asyncio
import io
import tarfile
from pathlib import Path
from typing import Any

from local_endpoint.container import ContainerResponse
from local_endpoint.models import ModelManager


class SlowContainer:
    """Loads take 10 ms, unloads 50 ms; ``loaded`` is what the container holds, by name."""

    def __init__(self) -> None:
        self.loaded: dict[str, str] = {}

    async def load(self, name: str, url: str) -> ContainerResponse:
        await asyncio.sleep(0.01)
        self.loaded[name] = (Path(url) / "weights.txt").read_text()
        return ContainerResponse(200, b"")

    async def unload(self, name: str) -> ContainerResponse:
        await asyncio.sleep(0.05)
        self.loaded.pop(name, None)
        return ContainerResponse(200, b"")


def _archive(path: Path, weights: str) -> None:
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("weights.txt")
        info.size = len(weights)
        tar.addfile(info, io.BytesIO(weights.encode()))


async def _swap_with_concurrent_requests(tmp_path: Path) -> tuple[SlowContainer, Any]:
    (tmp_path / "models").mkdir()
    _archive(tmp_path / "models" / "v1.tar.gz", "v1")
    _archive(tmp_path / "models" / "v2.tar.gz", "v2")
    container = SlowContainer()
    models = ModelManager(
        container,  # type: ignore[arg-type]
        models_dir=tmp_path / "models",
        workdir=tmp_path / "work",
        container_models_path=None,
        budget_bytes=10**9,
        load_timeout_s=5,
    )
    await models.preload("ep", "component", "v1.tar.gz")
    await asyncio.gather(*(models.pinned("component", "v2.tar.gz") for _ in range(4)))
    return container, models


def test_requests_arriving_during_a_swap_end_with_the_new_archive_loaded_once(tmp_path: Path) -> None:
    container, models = asyncio.run(_swap_with_concurrent_requests(tmp_path))
    assert container.loaded == {"component": "v2"}
    (slot,) = models.describe()
    assert (slot["target"], slot["state"]) == ("v2.tar.gz", "loaded")
    assert (tmp_path / "work" / "models" / "component" / "model" / "weights.txt").read_text() == "v2"
