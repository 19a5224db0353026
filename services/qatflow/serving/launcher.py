"""Start a serving process and wait until ``/v2/health/ready`` says it serves a model.

``qatflow local``, the benchmark and the tests start ``python -m qatflow.serving`` (the
containers' entry point) this one way: settings as ``QATFLOW_SERVE_*`` variables, as the chart
sets them, then readiness polled until it answers 200, the process exits, or time runs out.
Only the standard library: starting a service needs no HTTP client installed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import qatflow
from qatflow.serving.settings import ServeSettings

# The containers' entry point, run by this Python.
SERVING_COMMAND = (sys.executable, "-m", "qatflow.serving")
READY_PATH = "/v2/health/ready"
LIVE_PATH = "/v2/health/live"
# Where this qatflow package lives; ``source_path`` puts it first on the service's import path,
# so that a service started from a checkout runs the checkout's code.
SOURCE_DIR = Path(qatflow.__file__).resolve().parent.parent
# A service reads its model and tokenizer from the models directory, never from the Hub, and
# tokenizes on its request threads without a tokenizers thread pool, as the Makefile runs it.
SERVICE_ENV = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
# No proxy for loopback, whatever HTTP_PROXY says.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServiceStartError(RuntimeError):
    """The service exited, or did not reach a state in time; the message ends with its log."""


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_environment(
    settings: Mapping[str, Any],
    *,
    environ: Mapping[str, str] | None = None,
    inherit_settings: bool = False,
    source_path: bool = False,
) -> dict[str, str]:
    """``environ`` (default: this process's) with ``settings`` as ``QATFLOW_SERVE_<KEY>``, and
    ``SERVICE_ENV``.

    The ``QATFLOW_SERVE_*`` variables already set are dropped unless ``inherit_settings``, so a
    caller's own environment cannot change what it starts. ``source_path`` puts this qatflow
    first on ``PYTHONPATH``.
    """
    base = dict(os.environ if environ is None else environ)
    prefix = ServeSettings.env_prefix
    env = {k: v for k, v in base.items() if inherit_settings or not k.startswith(prefix)}
    env.update(SERVICE_ENV)
    env.update({ServeSettings.env_name(key): str(value) for key, value in settings.items()})
    if source_path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SOURCE_DIR), env.get("PYTHONPATH")]))
    return env


def http_status(url: str, timeout: float = 5.0) -> int:
    """The status code of ``GET url``; OSError when nothing answers."""
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


class ServiceProcess:
    """A started service process: its URL, its log (a file, or this process's output)."""

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        url: str,
        log_path: Path | None = None,
        *,
        log_tail: int | None = None,
        cwd: Path | None = None,
    ) -> None:
        """Start ``command`` (in ``cwd``, default this process's); its output goes to
        ``log_path`` (None: this process's stdout and stderr). Errors quote the last ``log_tail``
        characters of the log (None: all of it)."""
        self.url = url
        self.log_path = log_path
        self.log_tail = log_tail
        self._log: IO[bytes] | None = log_path.open("wb") if log_path is not None else None
        try:
            self.process = subprocess.Popen(
                list(command),
                env=dict(env),
                cwd=cwd,
                stdout=self._log,
                stderr=subprocess.STDOUT if self._log is not None else None,
            )
        except BaseException:
            self._close_log()
            raise

    def log(self) -> str:
        if self.log_path is None:
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def _failure(self, message: str) -> ServiceStartError:
        text = self.log()
        if self.log_tail is not None:
            text = text[-self.log_tail :]
        return ServiceStartError(f"{message}:\n{text}" if text else message)

    def wait_for(
        self,
        condition: Callable[[], bool],
        what: str,
        timeout: float,
        *,
        interval: float = 0.2,
        retry_on: tuple[type[BaseException], ...] = (OSError,),
    ) -> None:
        """Poll ``condition`` until it holds; ``retry_on`` errors count as not yet. Raises
        ServiceStartError when the process exits first or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise self._failure(
                    f"the service exited with {self.process.returncode} before {what}"
                )
            try:
                if condition():
                    return
            except retry_on:
                pass
            time.sleep(interval)
        raise self._failure(f"timed out after {timeout:.0f}s waiting for {what}")

    def wait_ready(self, timeout: float, *, path: str = READY_PATH, interval: float = 0.2) -> None:
        """Until ``GET path`` (default ``/v2/health/ready``) answers 200: a model is loaded."""
        self.wait_for(
            lambda: http_status(self.url + path, timeout=5.0) == 200,
            "readiness",
            timeout,
            interval=interval,
        )

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (the service drains in-flight requests), SIGKILL after ``timeout``; the exit
        code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close_log()
        return self.process.returncode

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()


def start_service(
    settings: Mapping[str, Any],
    *,
    port: int | None = None,
    log_path: Path | None = None,
    log_tail: int | None = None,
    inherit_settings: bool = False,
    source_path: bool = False,
) -> ServiceProcess:
    """``python -m qatflow.serving`` on 127.0.0.1 and a free port (or ``port``) with these
    settings (``{"backend": "onnxruntime", "models_dir": ...}``); not waited for: call
    ``wait_ready``. The environment is built by ``service_environment``."""
    port = port or free_port()
    settings = {**settings, "host": "127.0.0.1", "port": port}
    env = service_environment(settings, inherit_settings=inherit_settings, source_path=source_path)
    return ServiceProcess(
        SERVING_COMMAND,
        env,
        f"http://127.0.0.1:{port}",
        log_path,
        log_tail=log_tail,
    )
