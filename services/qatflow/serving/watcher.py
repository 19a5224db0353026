"""Model discovery: load the newest complete version from the shared volume, then follow new ones.

The service starts with nothing to serve and stays not-ready until a version verifies and
loads. A version that fails verification or loading is refused with one log line and the
current one keeps serving; it is looked at again only if its files change (a copy still
in progress, a repair).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from qatflow.core.artifacts import ArtifactError, ModelVersion, find_latest, open_version, verify
from qatflow.serving.backends.base import ModelBackend
from qatflow.serving.metrics import ServiceMetrics
from qatflow.serving.settings import ServeSettings

log = logging.getLogger("qatflow.serving")

Fingerprint = tuple[tuple[str, int, int], ...]
T = TypeVar("T")
R = TypeVar("R")


class ModelWatcher:
    """Holds the backend being served and swaps in a newer one once it has fully loaded."""

    def __init__(
        self,
        settings: ServeSettings,
        backend_factory: Callable[[], ModelBackend],
        metrics: ServiceMetrics,
        backend_name: str,
    ) -> None:
        self.settings = settings
        self.backend_factory = backend_factory
        self.metrics = metrics
        self.backend_name = backend_name
        self.current: ModelBackend | None = None
        self._refused: dict[tuple[str, int], Fingerprint] = {}
        self._last_problem = ""

    @property
    def model_name(self) -> str:
        """The served model's name; before a load, the configured one (or "" if none is)."""
        if self.current is not None and self.current.version is not None:
            return self.current.version.name
        return self.settings.model_name or ""

    async def run(self) -> None:
        """Poll until cancelled; one failed look never ends the loop."""
        while True:
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "model discovery failed; retrying in %.0fs", self.settings.poll_interval
                )
            await asyncio.sleep(self.settings.poll_interval)

    async def check(self) -> None:
        candidate = await asyncio.to_thread(self._candidate)
        if candidate is None or not self._is_newer(candidate):
            return
        key = (candidate.name, candidate.version)
        fingerprint = await asyncio.to_thread(_fingerprint, candidate.path)
        if self._refused.get(key) == fingerprint:
            return
        log.info(
            "loading model %s version %d from %s", candidate.name, candidate.version, candidate.path
        )
        try:
            backend = await _in_daemon_thread(self._verify_and_load, candidate)
        except ArtifactError as error:
            self._refuse(
                key, fingerprint, "refused", f"refusing model {key[0]} version {key[1]}: {error}"
            )
            return
        except Exception as error:
            self._refuse(
                key, fingerprint, "failed", f"cannot load model {key[0]} version {key[1]}: {error}"
            )
            return
        previous, self.current = self.current, backend
        self._refused.pop(key, None)
        self.metrics.model_loads.labels(candidate.name, self.backend_name, "loaded").inc()
        series = self._series(backend)
        self.metrics.model_version.labels(*series).set(candidate.version)
        if previous is not None and previous.version is not None:
            log.info("now serving version %d (was %d)", candidate.version, previous.version.version)
            if self._series(previous) != series:
                self.metrics.model_version.remove(*self._series(previous))
        else:
            log.info(
                "model %s version %d ready on %s",
                candidate.name,
                candidate.version,
                self.backend_name,
            )
        # Requests still running on the previous backend hold their own reference to it.

    def _series(self, backend: ModelBackend) -> tuple[str, str, str]:
        """The labels of the served-version gauge: model, backend, inference precision."""
        assert backend.version is not None
        return backend.version.name, self.backend_name, backend.inference_precision or ""

    def _candidate(self) -> ModelVersion | None:
        models_dir = Path(self.settings.models_dir)
        try:
            if self.settings.model_version is not None:
                if self.settings.model_name is None:
                    raise ArtifactError("model_version is set: set model_name too")
                return open_version(
                    models_dir, self.settings.model_name, self.settings.model_version
                )
            found = find_latest(models_dir, self.settings.model_name)
        except ArtifactError as error:
            self._note_problem(str(error))
            return None
        if found is None:
            which = self.settings.model_name or "any model"
            self._note_problem(f"no published version of {which} under {models_dir} yet; waiting")
        else:
            self._last_problem = ""
        return found

    def _is_newer(self, candidate: ModelVersion) -> bool:
        served = self.current.version if self.current is not None else None
        if served is None or candidate.name != served.name:
            return True
        return candidate.version > served.version

    def _verify_and_load(self, version: ModelVersion) -> ModelBackend:
        verify(version)
        backend = self.backend_factory()
        backend.observe_batch = self.metrics.batch_observer(version.name, self.backend_name)
        backend.load(version)
        return backend

    def _refuse(
        self, key: tuple[str, int], fingerprint: Fingerprint, result: str, message: str
    ) -> None:
        self._refused[key] = fingerprint
        self.metrics.model_loads.labels(key[0], self.backend_name, result).inc()
        serving = self.current.version if self.current is not None else None
        suffix = f"; still serving version {serving.version}" if serving else "; not ready"
        log.error("%s%s", message, suffix)

    def _note_problem(self, message: str) -> None:
        # Polling repeats the same finding every few seconds: log it once until it changes.
        if message != self._last_problem:
            log.warning("%s", message)
            self._last_problem = message


async def _in_daemon_thread(work: Callable[[T], R], argument: T) -> R:
    """Run ``work`` off the event loop in a daemon thread: a SIGTERM during a long first load
    then ends the process at once instead of waiting for the load it no longer needs."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[R] = loop.create_future()

    def settle(result: R | None, error: BaseException | None) -> None:
        if future.done():  # the watcher was cancelled meanwhile
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def target() -> None:
        try:
            result, error = work(argument), None
        except BaseException as exc:
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop closed first
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=target, name="model-loader", daemon=True).start()
    return await future


def _fingerprint(path: Path) -> Fingerprint:
    """Names, sizes and modification times: changes when files are still arriving or replaced."""
    entries = []
    for file in sorted(path.rglob("*")):
        if file.is_file():
            stat = file.stat()
            entries.append((str(file.relative_to(path)), stat.st_size, stat.st_mtime_ns))
    return tuple(entries)
