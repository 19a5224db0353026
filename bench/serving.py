"""End to end: the real HTTP services (``python -m qatflow.serving`` under uvicorn on loopback)
and the gRPC client against the OVMS stand-in, each in its own process, with its peak memory."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import http_load
from bench.measure import latency
from qatflow.client.bench import summarize
from qatflow.serving.launcher import start_service

_READY_TIMEOUT = 300.0  # importing and compiling on a busy 2-core machine
_REQUEST_TIMEOUT = 120.0
_QA_PATH = "/v1/question-answering"
REPO = Path(__file__).resolve().parent.parent


class MemoryWatch:
    """Samples a process's resident memory; the peak is also read from the kernel at the end."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        import psutil

        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                self.peak = max(self.peak, self.process.memory_info().rss)
            self._stop.wait(interval)

    def stop(self) -> int:
        """Peak resident bytes: the kernel's high-water mark where it keeps one."""
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak = max(self.peak, int(line.split()[1]) * 1024)
        self._stop.set()
        self._thread.join()
        return self.peak


@contextlib.contextmanager
def http_service(
    backend: str,
    models_dir: Path,
    model_name: str,
    log_path: Path,
    max_concurrency: int,
    **settings: Any,
) -> Iterator[tuple[str, MemoryWatch, float]]:
    """One service process, ready; yields its URL, its memory watch and its start-up seconds.
    ``settings`` are further service settings (``batch_max_delay_ms=2``)."""
    started = time.perf_counter()
    service = start_service(
        {
            "backend": backend,
            "models_dir": models_dir,
            "model_name": model_name,
            # Clients beyond the default 4 slots would be refused with 503 rather than measured.
            "max_concurrency": max_concurrency,
            "log_level": "warning",
            **settings,
        },
        log_path=log_path,
        log_tail=2000,
        source_path=True,
    )
    watch = MemoryWatch(service.process.pid)
    try:
        service.wait_ready(_READY_TIMEOUT)
        yield service.url, watch, time.perf_counter() - started
    finally:
        watch.stop()
        service.stop(timeout=30)


def http_latency(
    url: str, body: dict[str, Any], *, warmup: int, iterations: int, budget_s: float
) -> dict[str, Any]:
    """One client, one request at a time: the latency a lone user sees."""
    connection = http_load.Connection(url, _QA_PATH, body)
    loop = asyncio.new_event_loop()
    answers: list[dict[str, Any]] = []
    try:
        cpu = time.process_time()
        summary = latency(
            lambda: answers.append(http_load.checked(loop.run_until_complete(connection.post()))),
            warmup=warmup,
            iterations=iterations,
            budget_s=budget_s,
        )
        cpu = time.process_time() - cpu
    finally:
        loop.run_until_complete(connection.close())
        loop.close()
    return {**summary, "client_cpu_ms": _per_request_ms(cpu, len(answers)), "answer": answers[-1]}


def http_concurrent(url: str, body: dict[str, Any], clients: int, requests: int) -> dict[str, Any]:
    """``clients`` concurrent clients share ``requests`` requests; 503s are counted, not retried."""
    run = http_load.run_load(url, _QA_PATH, body, clients, requests)
    summary = summarize(run.times, run.wall).as_dict() if run.times else {}
    return {
        **summary,
        "clients": clients,
        "refused_503": run.refused,
        "client_cpu_ms": _per_request_ms(run.client_cpu, len(run.times) + run.refused),
    }


def _per_request_ms(cpu_seconds: float, requests: int) -> float:
    """The load generator's own CPU time per request (ms): what it took from the service."""
    return round(1000 * cpu_seconds / max(requests, 1), 3)


def grpc_latency(
    models_dir: Path,
    version: Any,
    texts: dict[str, tuple[str, str]],
    *,
    warmup: int,
    iterations: int,
    budget_s: float,
) -> dict[str, Any]:
    """The gRPC client (KServe v2) against ``tests/ovms_fixture_server.py``, the OVMS stand-in."""
    from qatflow.client.grpc_qa import GrpcQuestionAnswering
    from qatflow.client.protocol import connect

    script = REPO / "tests" / "ovms_fixture_server.py"
    if not script.is_file():
        return {"skipped": f"{script} not found (the gRPC test server ships with the tests)"}
    process = subprocess.Popen(
        [sys.executable, str(script), "--models-dir", str(models_dir)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "services")},
    )
    watch = MemoryWatch(process.pid)
    timer = threading.Timer(_READY_TIMEOUT, process.kill)
    timer.start()
    try:
        line = process.stdout.readline() if process.stdout else ""
        timer.cancel()
        if not line.startswith("PORT "):
            raise RuntimeError(f"gRPC test server did not start (got {line!r})")
        address = f"127.0.0.1:{line.split()[1]}"
        client = GrpcQuestionAnswering(
            connect("kserve", address, timeout=_REQUEST_TIMEOUT), version.name, version
        )
        client.check()
        results = {}
        for label, (question, context) in texts.items():
            results[label] = latency(
                functools.partial(client.ask, question, context),
                warmup=warmup,
                iterations=iterations,
                budget_s=budget_s,
            )
        client.close()
        return {"latency": results, "peak_rss_bytes": watch.stop(), "address": address}
    finally:
        timer.cancel()
        watch.stop()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


def pytorch_peak_rss(fp32_dir: str, length: int) -> int | None:
    """Peak memory of a bare PyTorch FP32 process answering one window, or None if it failed."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.pytorch_process", fp32_dir, str(length)],
        capture_output=True,
        text=True,
        timeout=_READY_TIMEOUT,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "services")},
    )
    lines = done.stdout.split()
    return int(lines[-1]) if done.returncode == 0 and lines and lines[-1].isdigit() else None
