"""Running ``qatflow ask`` as a user does: its own process, its own exit code."""

from __future__ import annotations

import os
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
