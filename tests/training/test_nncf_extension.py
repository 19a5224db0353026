"""NNCF's CPU kernels: a build that was killed must not block the next training."""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

from qatflow.training import nncf_extension


def _build_dir() -> Path:
    return Path(nncf_extension.QuantizedFunctionsCPULoader.get_build_dir())


def test_a_lock_file_left_by_a_killed_build_is_cleared_and_the_kernels_load():
    build_dir = _build_dir()
    # Written under the same OS lock as ensure_built holds, so no concurrent build sees it half-way.
    with (build_dir.parent / f"{build_dir.name}.qatflow-lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        (build_dir / nncf_extension.TORCH_LOCK_FILE).touch()

    # Before the fix, torch waited on that file for ever: a time limit turns a hang into a failure.
    done = subprocess.run(
        [sys.executable, "-m", "qatflow.training.nncf_extension"],
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert done.returncode == 0, done.stderr
    assert f"NNCF CPU kernels ready in {build_dir}" in done.stdout
    assert not (build_dir / nncf_extension.TORCH_LOCK_FILE).exists()


def test_the_kernels_fake_quantize_in_process():
    assert nncf_extension.ensure_built() == _build_dir()
