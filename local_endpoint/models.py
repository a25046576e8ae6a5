"""What SageMaker does around the container of a multi-model endpoint: find the archive named by
``TargetModel``, extract it, load it into the container under an opaque name, and unload models the cache
cannot hold.

- A model loads on its first invocation; concurrent first invocations share one load.
- Each endpoint has its own cache, as each has its own instances in SageMaker: a ``TargetModel`` loaded
  by one endpoint is loaded again by another, and one endpoint's evictions never touch another's models.
- The cache holds models up to a memory budget per endpoint (the size of their extracted files, an estimate
  of what the container keeps in memory) and unloads the least recently used idle ones to make room; a 507 from
  the container also unloads one and retries. SageMaker documents "unused" models being unloaded under
  memory pressure, not an exact order: least recently used is this emulation's choice.
- ``ModelCacheSetting: Disabled`` unloads a model as soon as no invocation uses it.
- A load that fails is forgotten, so the next request tries again; other models are not touched.
- A load that outlasts ``load_timeout_s`` answers ModelNotReadyException while the load goes on.
- Archives are looked up at request time, in the models folder and then in the folder of published versions
  (``creative-scoring models publish --local``), so a version added to either is invokable at once.
- Pinned models (inference components, the one model of a serverless or asynchronous endpoint) load at
  start under their own name, apart from the cache; one whose load failed loads again on its next use. An
  inference component switches to the version put live on it (``models publish --component --local``) on
  its next invocation: the old model is unloaded, the new one loaded.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from creative_scoring.artifacts.archive import safe_extract
from local_endpoint.container import Container, ContainerResponse
from local_endpoint.errors import ModelNotReady, ValidationError


class LoadFailed(Exception):
    """The container refused or failed the load; carries its answer."""

    def __init__(self, response: ContainerResponse) -> None:
        super().__init__(response.body.decode("utf-8", "replace"))
        self.response = response


@dataclass
class _Slot:
    endpoint: str
    target: str
    name: str
    ready: asyncio.Future[None]
    footprint: int = 0
    last_used: float = field(default_factory=time.monotonic)
    in_flight: int = 0
    load_ms: float | None = None
    pinned: bool = False

    @property
    def key(self) -> tuple[str, str]:
        # A pinned model is its own slot even when a multi-model target names the same archive.
        return (self.endpoint, f"pinned:{self.name}" if self.pinned else self.target)


class ModelManager:
    def __init__(
        self,
        container: Container,
        *,
        models_dir: Path,
        published_dir: Path | None = None,
        workdir: Path,
        container_models_path: str | None,
        budget_bytes: int,
        load_timeout_s: float,
    ) -> None:
        self.container = container
        self.models_dir = models_dir.resolve()
        self.search = [d.resolve() for d in (models_dir, published_dir) if d is not None]
        self.extract_root = workdir / "models"
        self.container_root = container_models_path or str(self.extract_root)
        self.budget_bytes = budget_bytes
        self.load_timeout_s = load_timeout_s
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._pins: dict[str, tuple[str, str]] = {}  # pinned name -> (endpoint, archive)
        self._swaps: dict[str, asyncio.Lock] = {}  # pinned name -> held while its archive is swapped

    @asynccontextmanager
    async def use(
        self, endpoint: str, target: str, *, cache_enabled: bool = True
    ) -> AsyncIterator[tuple[str, float | None]]:
        """Yield the container's name for ``target`` on ``endpoint`` and the load time when this call loaded it."""
        slot = self._slots.get((endpoint, target))
        loaded_now = slot is None or not slot.ready.done()
        if slot is None:
            slot = self._start_load(endpoint, target, self._archive(target))
        slot.in_flight += 1
        try:
            await self._wait(slot)
            slot.last_used = time.monotonic()
            yield slot.name, slot.load_ms if loaded_now else None
        finally:
            slot.in_flight -= 1
            if not cache_enabled and slot.in_flight == 0 and self._slots.get(slot.key) is slot:
                await self._unload(slot)

    async def preload(self, endpoint: str, name: str, archive: str) -> None:
        """Load ``archive`` under ``name`` for good, as an inference component is (raises `LoadFailed`)."""
        self._pins[name] = (endpoint, archive)
        await self.pinned(name)

    async def pinned(self, name: str, archive: str | None = None) -> None:
        """Wait until the pinned model ``name`` is loaded, loading it again if its last load failed.

        ``archive``, if given, is the archive ``name`` is to serve from now on (a version put live on an inference
        component): the model loaded from another archive is unloaded first, then this one is loaded under the
        same name. The swap holds the name's lock, so requests arriving meanwhile wait for the new load instead
        of starting their own. An invocation already running on the old model when the swap starts may fail.
        """
        endpoint, current = self._pins[name]
        archive = archive or current
        key = (endpoint, f"pinned:{name}")
        async with self._swaps.setdefault(name, asyncio.Lock()):
            if self._pins[name][1] != archive:
                self._pins[name] = (endpoint, archive)
                if (old := self._slots.get(key)) is not None:
                    await asyncio.wait([old.ready])  # a load under way would register after the unload
                    await self._unload(old)
            slot = self._slots.get(key)
            if slot is None:
                slot = self._start_load(endpoint, archive, self._archive(archive), name=name, pinned=True)
        await self._wait(slot)

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "endpoint": s.endpoint,
                "target": s.target,
                "container_model": s.name,
                "state": "loaded" if s.ready.done() and not s.ready.exception() else "loading",
                "footprint_bytes": s.footprint,
                "in_flight": s.in_flight,
                "load_ms": s.load_ms,
                "pinned": s.pinned,
            }
            for s in self._slots.values()
            if not (s.ready.done() and s.ready.exception())
        ]

    def _archive(self, target: str) -> Path:
        for folder in self.search:
            path = (folder / target).resolve()
            if path.is_relative_to(folder) and path.is_file():
                return path
        # The message SageMaker gives when the object is missing is not documented; this names the fix.
        raise ValidationError(
            f"Failed to download model data for target model {target!r}: no such archive in "
            f"{' or '.join(map(str, self.search))}. Please ensure that there is an object located at the URL."
        )

    def _start_load(
        self, endpoint: str, target: str, archive: Path, *, name: str | None = None, pinned: bool = False
    ) -> _Slot:
        name = name or "m-" + hashlib.sha256(f"{endpoint}\0{target}".encode()).hexdigest()[:16]
        slot = _Slot(endpoint, target, name, asyncio.get_running_loop().create_future(), pinned=pinned)
        slot.ready.add_done_callback(lambda f: f.cancelled() or f.exception())  # waiters may all have timed out
        self._slots[slot.key] = slot
        task = asyncio.create_task(self._load(slot, archive))
        task.add_done_callback(lambda t: t.exception())  # failures are delivered through slot.ready
        return slot

    async def _wait(self, slot: _Slot) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(slot.ready), self.load_timeout_s)
        except TimeoutError as e:
            raise ModelNotReady(
                f"Model {slot.target} is still downloading or loading; it keeps loading in the background. "
                "Retry the request."
            ) from e

    async def _load(self, slot: _Slot, archive: Path) -> None:
        started = time.perf_counter()
        try:
            model_dir = self.extract_root / slot.name / "model"
            shutil.rmtree(model_dir.parent, ignore_errors=True)
            await anyio.to_thread.run_sync(safe_extract, archive, model_dir)
            slot.footprint = sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file())
            await self._make_room(slot.footprint, keep=slot)
            await self._register(slot)
        except Exception as e:  # every waiter gets it; the next request loads afresh
            self._forget(slot)
            shutil.rmtree(self.extract_root / slot.name, ignore_errors=True)
            slot.ready.set_exception(e)
            return
        slot.load_ms = (time.perf_counter() - started) * 1000
        slot.ready.set_result(None)

    async def _register(self, slot: _Slot) -> None:
        url = f"{self.container_root}/{slot.name}/model"
        while True:
            response = await self.container.load(slot.name, url)
            if response.ok or response.status == 409:  # 409: the container already has it
                return
            if response.status != 507 or not await self._evict_one(keep=slot):
                raise LoadFailed(response)

    async def _make_room(self, needed: int, *, keep: _Slot) -> None:
        while self._used(keep) + needed > self.budget_bytes and await self._evict_one(keep=keep):
            pass

    def _neighbours(self, keep: _Slot) -> list[_Slot]:
        """The other models on ``keep``'s endpoint: they share its instances' memory."""
        return [s for s in self._slots.values() if s is not keep and s.endpoint == keep.endpoint]

    def _used(self, keep: _Slot) -> int:
        return sum(s.footprint for s in self._neighbours(keep))

    async def _evict_one(self, *, keep: _Slot) -> bool:
        idle = [s for s in self._neighbours(keep) if not s.pinned and s.in_flight == 0 and s.ready.done()]
        if not idle:
            return False
        await self._unload(min(idle, key=lambda s: s.last_used))
        return True

    async def _unload(self, slot: _Slot) -> None:
        self._forget(slot)
        await self.container.unload(slot.name)
        shutil.rmtree(self.extract_root / slot.name, ignore_errors=True)

    def _forget(self, slot: _Slot) -> None:
        if self._slots.get(slot.key) is slot:
            del self._slots[slot.key]
