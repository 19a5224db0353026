"""Shipped training settings files: one per compression mode and one per public data set.

They layer: ``qatflow train --preset distillation_qat --preset sst2`` reads both (the later
wins where they overlap), then ``--config``, ``QATFLOW_TRAIN_*`` and ``--set`` on top.
"""

from __future__ import annotations

from pathlib import Path

_DIRECTORY = Path(__file__).parent


def names() -> list[str]:
    return sorted(file.stem for file in _DIRECTORY.glob("*.yaml"))


def path(name: str) -> Path:
    found = _DIRECTORY / f"{name}.yaml"
    if not found.is_file():
        from qatflow.core.settings import SettingsError

        raise SettingsError(f"unknown preset {name!r}; available: {', '.join(names())}")
    return found
