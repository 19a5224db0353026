"""NNCF's CPU kernels: a build that was killed must not block the next training."""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from qatflow.training import nncf_extension


def _build_dir() -> Path:
    return Path(nncf_extension.QuantizedFunctionsCPULoader.get_build_dir())


@contextlib.contextmanager
def _holding_build_lock(build_dir: Path) -> Iterator[None]:
    """The OS lock ensure_built holds: meanwhile no other test's training loads the kernels (torch
    creates its lock file for the length of every load, finished builds included)."""
    with (build_dir.parent / f"{build_dir.name}.qatflow-lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        yield


def test_a_lock_file_left_by_a_killed_build_is_cleared_and_the_kernels_load():
    build_dir = _build_dir()
    with _holding_build_lock(build_dir):  # no concurrent build sees it half-way
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
    with _holding_build_lock(build_dir):
        assert not (build_dir / nncf_extension.TORCH_LOCK_FILE).exists()


def test_the_kernels_fake_quantize_in_process():
    assert nncf_extension.ensure_built() == _build_dir()
