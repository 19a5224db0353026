"""Running ``qatflow ask`` as a user does: its own process, its own exit code."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import qatflow

SERVICES_DIR = Path(qatflow.__file__).resolve().parents[1]


def run_ask(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(filter(None, [str(SERVICES_DIR), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "qatflow.cli", "ask", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": path},
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
